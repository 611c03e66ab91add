"""The attribute task end to end: S3PRL's runner (train, evaluate dev-best, resume), ``s3prl-emo train``
on the pooled store with a tiny WavLM (task ``both``), ``predict`` and torch.hub."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers.s3prl_runner import run_downstream

from s3prl_emo.metrics import concordance_cc

pytestmark = pytest.mark.slow

ATTRIBUTES = ["EmoAct", "EmoVal", "EmoDom"]
SMALL = (
    "config.downstream_expert.datarc.train_batch_size=8,,config.runner.total_steps=20,,config.runner.log_step=10,,"
    "config.runner.eval_step=10,,config.runner.save_step=10"
)


@pytest.fixture(scope="module")
def attributes_exp(repo_root, synth_root, tmp_path_factory):
    expdir = tmp_path_factory.mktemp("attributes") / "exp"
    config = repo_root / "downstream_configs" / "SYNTH_attributes.yaml"
    options = f"config.downstream_expert.datarc.root='{synth_root}/',,{SMALL}"
    args = ["-m", "train", "-u", "fbank", "-d", "emotion_multilabel", "-c", str(config), "-p", str(expdir)]
    run_downstream(*args, "--device", "cpu", "-o", options)
    return expdir


def ccc_from_files(expdir, split):
    """``ccc/<attr>`` recomputed from the predictions CSV and the label file alone."""
    metrics = json.loads((expdir / f"{split}_fold1_metrics.json").read_text())
    table = pd.read_csv(expdir / f"{split}_fold1_attributes.csv")
    truth = pd.read_csv(metrics["label_file"]).set_index("FileName").loc[table["FileName"], ATTRIBUTES]
    return metrics, {a: concordance_cc(table[a].to_numpy(), truth[a].to_numpy()) for a in ATTRIBUTES}


def test_runner_trains_and_evaluates_dev_best_with_ccc_equal_to_the_files(attributes_exp):
    log = (attributes_exp / "log.log").read_text()
    assert "CCC mean" in log
    assert "macro-F1" not in log
    for path in attributes_exp.glob("test_fold1_*"):
        path.unlink()
    run_downstream("-m", "evaluate", "-e", str(attributes_exp / "dev-best.ckpt"), "--device", "cpu")
    table = pd.read_csv(attributes_exp / "test_fold1_attributes.csv")
    assert list(table.columns) == ["FileName", *ATTRIBUTES]
    assert len(table) == 12
    assert not (attributes_exp / "test_fold1_predict.txt").exists()  # no class head
    metrics, recomputed = ccc_from_files(attributes_exp, "test")
    assert metrics["task"] == "attributes"
    for name in ATTRIBUTES:
        assert metrics[f"ccc/{name}"] == pytest.approx(recomputed[name], abs=1e-6)
        assert {f"pearson/{name}", f"mae/{name}"} <= set(metrics)
    assert metrics["ccc_mean"] == pytest.approx(np.mean(list(recomputed.values())), abs=1e-6)
    assert "macro_f1" not in metrics


def test_runner_resumes_the_attribute_run(attributes_exp):
    run_downstream(
        "-m", "train", "-e", str(attributes_exp / "states-20.ckpt"), "--device", "cpu",
        "-o", "config.runner.total_steps=30,,config.runner.eval_step=10,,config.runner.save_step=10",
    )  # fmt: skip
    steps = [json.loads((attributes_exp / "dev_fold1_metrics.json").read_text())["step"]]
    assert steps == [30]


def test_torch_hub_returns_attribute_values(attributes_exp, repo_root, synth_root):
    model = torch.hub.load(
        str(repo_root), "emotion_multilabel", ckpt=str(attributes_exp / "dev-best.ckpt"), source="local"
    )
    wav, rate = sf.read(next((synth_root / "SYNTH" / "Audios").iterdir()))
    out = model.predict(wav, rate)
    assert list(out) == ATTRIBUTES
    assert all(np.isfinite(v) for v in out.values())


@pytest.fixture(scope="module")
def both_exp(repo_root, synth_root, tiny_wavlm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("both")
    config = folder / "both.yaml"  # EMO-SUPERB's head: the pooled store is exact for it
    config.write_text((repo_root / "downstream_configs" / "SYNTH_both.yaml").read_text().replace(
        "select: DeepModel", "select: UtteranceLevel"))  # fmt: skip
    expdir = folder / "exp"
    args = [sys.executable, "-m", "s3prl_emo.cli", "train", "-c", str(config), "-p", str(expdir), "--device", "cpu"]
    args += ["-u", "wavlm_local", "-k", str(tiny_wavlm), "--cache-dir", str(folder / "cache")]
    args += ["-o", f"config.downstream_expert.datarc.root='{synth_root}/',,{SMALL}"]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return expdir


def test_one_pass_both_logs_cbce_and_ccc_and_writes_both_files(both_exp):
    assert json.loads((both_exp / "one_pass.json").read_text())["mode"] == "pooled store"
    metrics, recomputed = ccc_from_files(both_exp, "test")
    assert metrics["task"] == "both"
    assert {"loss_categorical", "loss_attributes", "macro_f1", "ccc_mean"} <= set(metrics)
    assert metrics["loss"] == pytest.approx(metrics["loss_categorical"] + metrics["loss_attributes"], abs=1e-5)
    for name in ATTRIBUTES:
        assert metrics[f"ccc/{name}"] == pytest.approx(recomputed[name], abs=1e-6)
    assert len((both_exp / "test_fold1_predict.txt").read_text().splitlines()) == 12
    log = (both_exp / "log.log").read_text()
    assert "CCC mean" in log
    assert "macro-F1" in log


def test_predict_gives_class_probabilities_and_attribute_values(both_exp, synth_root, tiny_wavlm, tmp_path):
    files = sorted((synth_root / "SYNTH" / "Audios").iterdir())[:2]
    out = tmp_path / "out.json"
    args = [sys.executable, "-m", "s3prl_emo.cli", "predict", "--ckpt", str(both_exp / "dev-best.ckpt")]
    args += ["--upstream-ckpt", str(tiny_wavlm), "--out", str(out), "--format", "json", *map(str, files)]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert list(rows[0]["attributes"]) == ATTRIBUTES
    assert "EmoAct" in result.stdout
