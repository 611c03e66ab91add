"""``s3prl-emo trust`` / ``trust-compare`` end to end on a model trained on the built-in corpus."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from s3prl_emo.cli import main
from s3prl_emo.runtime.guards import OUTPUT_MARKER

pytestmark = pytest.mark.slow

CLASSES = ["angry", "sad", "neutral", "happy", "fear"]
STEPS = (
    "config.runner.total_steps=10,,config.runner.log_step=10,,config.runner.eval_step=10,,config.runner.save_step=10"
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """On a shared 2-core CPU, torch's threads mostly wait for each other on these tiny models."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(repo_root, synth_root, tmp_path_factory):
    expdir = tmp_path_factory.mktemp("trust") / "exp"
    result = subprocess.run(
        [sys.executable, "-m", "s3prl.run_downstream", "-m", "train", "-u", "fbank", "-d", "emotion_multilabel",
         "-c", str(repo_root / "downstream_configs" / "SYNTH.yaml"), "-p", str(expdir), "--device", "cpu",
         "-o", f"config.downstream_expert.datarc.root='{synth_root}/',,{STEPS}"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return expdir / "dev-best.ckpt"


@pytest.fixture(scope="module")
def trust_dir(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("trust_out") / "fbank"
    assert main(["trust", "-e", str(trained), "--snr", "45,25", "--pgd-steps", "2", "--out", str(out)]) == 0
    return out


def _ece(prob, target, n_bins):
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        inside = (prob >= edges[b]) & ((prob < edges[b + 1]) if b < n_bins - 1 else (prob <= 1))
        if inside.any():
            total += inside.mean() * abs(prob[inside].mean() - target[inside].mean())
    return total


def test_trust_writes_every_axis_and_matches_independent_computations(trust_dir, synth_root):
    report = json.loads((trust_dir / "trust.json").read_text())
    assert report["skipped"] == {}
    assert report["failed"] == {}
    assert report["split"] == "test"
    assert report["n_items"]["test"] == 12
    assert report["performance"]["macro_f1"] == pytest.approx(report["calibration"]["macro_f1"])
    for name in CLASSES:
        assert {"equalized_odds_difference", "demographic_parity_difference"} <= set(
            report["fairness"]["per_class"][name]
        )
    assert {"equalized_odds_difference", "demographic_parity_difference"} <= set(report["fairness"]["macro"])
    assert 0 <= report["privacy"]["accuracy"] <= 1
    assert 0 <= report["privacy"]["uar"] <= 1
    assert report["privacy"]["n_items"] == {"train": 36, "dev": 12, "test": 12}
    for method in ("fgsm", "pgd"):
        low, high = report["safety"][method]["25"], report["safety"][method]["45"]
        assert low["n_attacked"] == high["n_attacked"] == report["safety"]["n_correct"]
        if low["n_attacked"]:
            assert low["success_rate"] >= high["success_rate"]
            assert abs(low["achieved_snr_db"] - 25) < 0.5
            assert abs(high["achieved_snr_db"] - 45) < 0.5
    sus = report["sustainability"]
    assert sus["upstream_params"] == 0
    assert sus["head_params"] > 0
    assert sus["macs_6s"] * 2 == sus["flops_6s"] > 0
    assert sus["seconds_per_audio_second"] > 0
    assert sus["peak_memory_bytes"] > 0
    cal = report["calibration"]
    assert cal["dev_log_likelihood_after_scaling"] >= cal["dev_log_likelihood"]
    assert cal["temperature"] > 0
    assert {"ece_macro", "ece_per_class", "brier", "temperature", "ece_macro_after_scaling"} <= set(cal)

    # The figures again, from the written predictions and the label file, without the package.
    preds = pd.read_csv(trust_dir / "test_probs.csv")
    labels = pd.read_csv(synth_root / "SYNTH" / "Primary" / "labels_consensus_1.csv")
    labels = labels[labels["Split_Set"] == "Test"].set_index("FileName").loc[preds["FileName"]]
    probs, soft = preds[CLASSES].to_numpy(), labels[CLASSES].to_numpy()
    truth, pred = soft.astype(np.float32) > np.float32(1 / 5), probs.astype(np.float32) > np.float32(1 / 5)
    for j, name in enumerate(CLASSES):
        kwargs = {"sensitive_features": labels["Gender"].to_numpy()}
        got = report["fairness"]["per_class"][name]
        assert got["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(truth[:, j], pred[:, j], **kwargs)
        )
        assert got["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(truth[:, j], pred[:, j], **kwargs)
        )
        assert cal["ece_per_class"][name] == pytest.approx(_ece(probs[:, j], soft[:, j], cal["n_bins"]), abs=1e-6)
    assert cal["brier"] == pytest.approx(np.mean(np.sum((probs - soft) ** 2, axis=1)), abs=1e-6)
    for png in ("profile.png", "reliability.png"):
        assert (trust_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((trust_dir / OUTPUT_MARKER).read_text()) == {"command": "trust"}  # a rerun may replace it


def test_corpus_without_gender_skips_fairness_and_privacy(trained, synth_copy, tmp_path, trust_dir, monkeypatch):
    label_file = synth_copy / "SYNTH" / "Primary" / "labels_consensus_1.csv"
    pd.read_csv(label_file).drop(columns=["Gender"]).to_csv(label_file, index=False)

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("s3prl_emo.trust.evaluate.sustainability", broken)  # one axis failing
    out = tmp_path / "nogender"
    code = main(["trust", "-e", str(trained), "--root", str(synth_copy), "--axes", "all", "--snr", "45",
                 "--pgd-steps", "1", "--out", str(out)])  # fmt: skip
    assert code == 1
    report = json.loads((out / "trust.json").read_text())
    assert set(report["skipped"]) == {"fairness", "privacy"}
    assert all("no Gender column" in reason for reason in report["skipped"].values())
    assert report["failed"] == {"sustainability": "RuntimeError: out of memory"}
    assert {"safety", "calibration"} <= set(report)
    assert "fairness" not in report
    assert "sustainability" not in report
    assert report["profile"]["fairness"]["scaled"] is None

    compared = tmp_path / "compare"
    assert main(["trust-compare", str(trust_dir), str(out), "--out", str(compared)]) == 0
    table = pd.read_csv(compared / "compare.csv")
    assert list(table["model"]) == ["fbank", "nogender"]
    assert table.shape[1] == 13
    assert (compared / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_is_one_error_before_any_output(trained, tmp_path, caplog):
    out = tmp_path / "never"
    assert main(["trust", "-e", str(trained), "--axes", "fairness,loudness", "--out", str(out)]) == 2
    assert main(["trust", "-e", str(tmp_path / "missing.ckpt"), "--out", str(out)]) == 2
    assert main(["trust-compare", str(tmp_path), "--out", str(out)]) == 2
    assert main(["trust", "-e", str(trained), "--out", str(trained.parent)]) == 2  # would replace the experiment
    assert not out.exists()
    assert trained.is_file()
    assert "loudness" in caplog.text
    assert "missing.ckpt" in caplog.text
