"""``trust`` on checkpoints of the attribute task: CCC fairness by gender, the axes that do not
apply to an attributes-only model, and a ``both`` model's class probabilities from its class
outputs only. The checkpoints are built directly (fbank upstream, random head): no training."""

import argparse

import numpy as np
import pandas as pd
import pytest
import torch

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.metrics import concordance_cc
from s3prl_emo.trust.compare import compare
from s3prl_emo.trust.evaluate import run_trust
from s3prl_emo.trust.fairness import attribute_fairness
from s3prl_emo.trust.profile import check_report, profile

ATTRIBUTES = ["EmoAct", "EmoVal", "EmoDom"]
MODELRC = {"select": "DeepModel", "projector_dim": 16, "DeepModel": {"model_type": "CNNSelfAttention",
           "hidden_dim": 8, "kernel_size": 5, "padding": 2, "pooling": 5, "dropout": 0.4}}  # fmt: skip


def _checkpoint(path, synth_root, task: str):
    """An emotion_multilabel checkpoint of ``task`` on SYNTH fold1 with a randomly initialised head."""
    from s3prl import hub
    from s3prl.upstream.interfaces import Featurizer

    from s3prl_emo.data.layout import read_config
    from s3prl_emo.downstream.model import EmotionHead
    from s3prl_emo.downstream.settings import attribute_state

    torch.manual_seed(0)
    classes = list(read_config(synth_root / "SYNTH" / "Primary").classes)
    featurizer = Featurizer(hub.fbank(), upstream_device="cpu")
    outputs = (0 if task == "attributes" else len(classes)) + len(ATTRIBUTES)
    head = EmotionHead(featurizer.output_dim, outputs, MODELRC)
    extra = {"classes": classes, "wav_mean": 0.0, "wav_std": 0.1, "max_duration_s": 10.0, "fold": "fold1"}
    extra.update(attribute_state(task, ATTRIBUTES, [3.0, 3.0, 3.0], [0.8, 0.8, 0.8]))
    args = argparse.Namespace(
        upstream="fbank",
        upstream_feature_selection="hidden_states",
        upstream_layer_selection=None,
        upstream_feature_normalize=False,
        upstream_ckpt=None,
    )
    datarc = {"root": f"{synth_root}/", "corpus": "SYNTH", "p_or_s": "Primary"}
    state = {
        "Args": args,
        "Config": {"downstream_expert": {"task": task, "datarc": datarc, "modelrc": MODELRC}},
        "Featurizer": featurizer.state_dict(),
        "Downstream": {**{f"head.{k}": v for k, v in head.state_dict().items()}, "_extra_state": extra},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path, classes


def _truth(synth_root, frame: pd.DataFrame) -> pd.DataFrame:
    labels = pd.read_csv(synth_root / "SYNTH" / "Primary" / "labels_consensus_1.csv").set_index("FileName")
    return labels.loc[frame["FileName"]]


def test_an_attributes_only_checkpoint_is_scored_by_ccc_and_its_class_axes_are_na(synth_root, tmp_path):
    ckpt, _ = _checkpoint(tmp_path / "attr" / "dev-best.ckpt", synth_root, "attributes")
    out = tmp_path / "trust_attr"
    report = run_trust(ckpt, out, axes=("fairness", "safety", "calibration"))
    assert report["task"] == "attributes"
    assert set(report["not_applicable"]) == {"safety", "calibration"}
    assert "no attribute counterpart" in report["not_applicable"]["safety"]
    assert "safety" not in report
    assert "calibration" not in report
    assert not report["failed"]
    assert not (out / "test_probs.csv").exists()
    assert not (out / "reliability.png").exists()
    # every figure again from the written predictions and the label file
    predicted = pd.read_csv(out / "test_attributes.csv")
    truth = _truth(synth_root, predicted)
    cccs = [concordance_cc(predicted[a].to_numpy(), truth[a].to_numpy()) for a in ATTRIBUTES]
    assert report["performance"]["ccc_mean"] == pytest.approx(np.mean(cccs), abs=1e-9)
    assert "macro_f1" not in report["performance"]
    again = attribute_fairness(predicted[ATTRIBUTES].to_numpy(), truth[ATTRIBUTES].to_numpy(),
                               truth["Gender"].astype(str).to_numpy(), ATTRIBUTES)  # fmt: skip
    assert report["fairness"]["attributes"]["macro"]["ccc_gap"] == pytest.approx(again["macro"]["ccc_gap"])
    assert "macro" not in report["fairness"]  # no equalized odds without classes
    prof = report["profile"]
    assert prof["performance"]["raw"] == pytest.approx(report["performance"]["ccc_mean"])
    assert prof["performance"]["source"] == "performance.ccc_mean"
    assert prof["fairness"]["scaled"] == pytest.approx(max(0.0, 1 - again["macro"]["ccc_gap"]))
    assert prof["safety"]["scaled"] is None
    assert prof["calibration"]["scaled"] is None
    assert report["skipped"]["sustainability"] == "not requested (--axes)"
    assert (out / "profile.png").stat().st_size > 0


def test_a_both_checkpoint_softmaxes_its_class_outputs_only(synth_root, tmp_path):
    from s3prl_emo.inference.recognizer import EmotionRecognizer
    from s3prl_emo.trust import model_io

    ckpt, classes = _checkpoint(tmp_path / "both" / "dev-best.ckpt", synth_root, "both")
    model = EmotionRecognizer.from_checkpoint(ckpt)
    rng = np.random.default_rng(1)
    wavs = [0.1 * rng.standard_normal(16_000 + 4_000 * i).astype(np.float32) for i in range(3)]
    probs, values = model_io.predict_outputs(model, wavs)
    assert probs.shape == (3, len(classes))
    assert values.shape == (3, len(ATTRIBUTES))
    assert probs.sum(axis=1) == pytest.approx(1.0)
    with torch.no_grad():
        raw = model_io.outputs(model, [torch.as_tensor(w) for w in wavs])
    assert raw.shape[1] == len(classes) + len(ATTRIBUTES)
    expected = torch.softmax(raw[:, : len(classes)], dim=-1).double().numpy()
    assert model_io.predict_probs(model, wavs) == pytest.approx(expected, abs=1e-6)
    assert values == pytest.approx(raw[:, len(classes) :].double().numpy() * 0.8 + 3.0, abs=1e-5)

    out = tmp_path / "trust_both"
    report = run_trust(ckpt, out, axes=("fairness", "safety", "calibration"), pgd_steps=1)
    assert not report["failed"]
    assert report.get("not_applicable") == {}
    assert {"safety", "calibration"} <= set(report)
    assert report["fairness"]["macro"]["equalized_odds_difference"] is not None
    assert set(report["fairness"]["attributes"]["per_attribute"]) == set(ATTRIBUTES)
    written = pd.read_csv(out / "test_probs.csv")
    assert list(written.columns[-len(classes) :]) == classes
    assert written[classes].sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-6)
    assert report["profile"]["fairness"]["source"] == "fairness.macro.equalized_odds_difference"

    # trust-compare of a both and an attributes-only profile: the class axes are n/a for the latter
    attr, _ = _checkpoint(tmp_path / "attr" / "dev-best.ckpt", synth_root, "attributes")
    run_trust(attr, tmp_path / "trust_attr", axes=("fairness", "safety", "calibration"))
    profiles = compare([out, tmp_path / "trust_attr"], tmp_path / "compare")
    assert profiles["trust_attr"]["calibration"]["scaled"] is None
    assert profiles["trust_both"]["calibration"]["scaled"] is not None
    table = pd.read_csv(tmp_path / "compare" / "compare.csv", keep_default_na=False).set_index("model")
    assert table.loc["trust_attr", "safety scaled"] == "n/a"
    assert (tmp_path / "compare" / "compare.png").stat().st_size > 0


def test_profile_reads_the_attribute_figures_in_their_own_ranges():
    report = {"performance": {"ccc_mean": -0.2}, "fairness": {"attributes": {"macro": {"ccc_gap": 1.5}}}}
    check_report(report, where="t.json")  # a negative CCC and a gap above 1 are valid figures
    prof = profile(report)
    assert prof["performance"]["raw"] == pytest.approx(-0.2)
    assert prof["performance"]["scaled"] == 0.0
    assert prof["fairness"]["scaled"] == 0.0
    assert "CCC" in prof["fairness"]["meaning"]
    both = {"performance": {"macro_f1": 0.5, "ccc_mean": 0.9}}
    assert profile(both)["performance"]["raw"] == 0.5  # macro-F1 first where the model has classes
    with pytest.raises(InvalidInputError, match="ccc_mean"):
        check_report({"performance": {"ccc_mean": 1.5}}, where="t.json")
