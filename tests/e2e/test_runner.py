"""End to end through S3PRL's own runner: train -> evaluate -> resume, and torch.hub inference."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers.s3prl_runner import run_downstream, train_downstream

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.inference.recognizer import load_checkpoint

pytestmark = pytest.mark.slow

SMALL = (
    "config.runner.total_steps=20,,config.runner.log_step=10,,config.runner.eval_step=10,,config.runner.save_step=10"
)


def train(repo_root, synth_root, expdir, *upstream):
    train_downstream(
        repo_root, synth_root, expdir, "config.downstream_expert.datarc.train_batch_size=8", SMALL, upstream=upstream
    )


@pytest.fixture(scope="module")
def fbank_exp(repo_root, synth_root, tmp_path_factory):
    expdir = tmp_path_factory.mktemp("fbank") / "exp"
    train(repo_root, synth_root, expdir, "-u", "fbank")
    return expdir


def test_train_writes_checkpoints_predictions_and_metrics(fbank_exp):
    assert (fbank_exp / "dev-best.ckpt").is_file()
    # max_keep: 1 is raised to 2, so that a kill while states-20 is written leaves states-10
    assert sorted(p.name for p in fbank_exp.glob("states-*.ckpt")) == ["states-10.ckpt", "states-20.ckpt"]
    assert list(fbank_exp.glob("events.out.tfevents.*"))
    metrics = json.loads((fbank_exp / "dev_fold1_metrics.json").read_text())
    assert metrics["num_utterances"] == 12
    assert 0.0 <= metrics["macro_f1"] <= 1.0
    assert {"macro_f1_batch_mean", "loss", "f1/fear", "micro_f1"} <= set(metrics)
    for line in (fbank_exp / "test_fold1_predict.txt").read_text().splitlines():
        name, labels = line.split(" ")
        assert name.endswith(".wav")
        assert set(labels.split(";")) <= {"angry", "sad", "neutral", "happy", "fear"}


def read_split(expdir, split):
    """A metrics file, and the probabilities and soft labels of what it scored, from the files alone."""
    metrics = json.loads((expdir / f"{split}_fold1_metrics.json").read_text())
    table = pd.read_csv(expdir / f"{split}_fold1_probs.csv")
    classes = list(table.columns[1:])
    labels = pd.read_csv(metrics["label_file"]).set_index("FileName").loc[table["FileName"], classes]
    return metrics, table[classes].to_numpy(float), labels.to_numpy(float), classes


def numpy_thresholds(probs, labels):
    """Each class's F1-best cut over 0, 1/C and its values (float32, value > cut); ties: closest to 1/C, larger."""
    cut = np.float32(1 / probs.shape[1])
    truth, values = labels.astype(np.float32) > cut, probs.astype(np.float32)
    chosen = []
    for j in range(probs.shape[1]):
        candidates = np.unique(np.append(values[:, j], np.float32([0.0, cut])))
        pred = values[None, :, j] > candidates[:, None]
        tp, on = (pred & truth[:, j]).sum(axis=1), truth[:, j].sum()
        denominator = pred.sum(axis=1) + on
        f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
        best = candidates[f1 == f1.max()]
        distance = np.abs(best.astype(float) - float(cut))
        chosen.append(best[distance == distance.min()].max())
    return np.array(chosen, dtype=np.float32)


def numpy_macro_f1(probs, labels, thresholds):
    truth = labels.astype(np.float32) > np.float32(1 / probs.shape[1])
    pred = probs.astype(np.float32) > thresholds
    tp, fp, fn = (truth & pred).sum(0), (~truth & pred).sum(0), (truth & ~pred).sum(0)
    return float(np.mean(np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)))


def numpy_js_bits(p, q):
    p, q = p / p.sum(axis=1, keepdims=True), q / q.sum(axis=1, keepdims=True)
    m = (p + q) / 2
    kl = [np.sum(np.where(a > 0, a * np.log2(np.where(a > 0, a, 1.0) / m), 0.0), axis=1) for a in (p, q)]
    return float(np.mean((kl[0] + kl[1]) / 2))


def check_secondary_figures(expdir):
    """dev and test metrics files against a direct computation from their _probs.csv and the label file."""
    dev, dev_probs, dev_labels, classes = read_split(expdir, "dev")
    thresholds = numpy_thresholds(dev_probs, dev_labels)
    test, test_probs, test_labels, _ = read_split(expdir, "test")
    for metrics, probs, labels in ((dev, dev_probs, dev_labels), (test, test_probs, test_labels)):
        assert metrics["js_divergence"] == pytest.approx(numpy_js_bits(probs, labels), abs=1e-5)
        assert metrics["macro_f1_tuned_thresholds"] == pytest.approx(numpy_macro_f1(probs, labels, thresholds))
        assert [metrics[f"tuned_threshold/{c}"] for c in classes] == pytest.approx(thresholds, abs=1e-6)
    assert dev["tuned_thresholds_from"].startswith("dev (this split")
    assert test["tuned_thresholds_from"] == "dev, evaluated with the same model"
    assert dev["macro_f1_tuned_thresholds"] >= dev["macro_f1"]  # 1/C is a candidate


def test_training_scores_test_with_thresholds_chosen_on_dev_at_the_same_step(fbank_exp):
    assert json.loads((fbank_exp / "test_fold1_metrics.json").read_text())["step"] == 20
    check_secondary_figures(fbank_exp)


def test_evaluate_dev_best_with_weights_only_loading(fbank_exp):
    for path in fbank_exp.glob("test_fold1_*"):
        path.unlink()
    result = run_downstream("-m", "evaluate", "-e", str(fbank_exp / "dev-best.ckpt"), "--device", "cpu")
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in result.stderr
    assert len((fbank_exp / "test_fold1_predict.txt").read_text().splitlines()) == 12
    assert len((fbank_exp / "test_fold1_truth.txt").read_text().splitlines()) == 12
    probs = np.loadtxt(fbank_exp / "test_fold1_probs.csv", delimiter=",", skiprows=1, usecols=range(1, 6))
    assert probs.sum(axis=1) == pytest.approx(np.ones(12), abs=1e-4)
    assert json.loads((fbank_exp / "test_fold1_metrics.json").read_text())["split"] == "test"


def test_evaluate_applies_the_thresholds_its_checkpoint_carries(fbank_exp, tmp_path):
    ckpt = fbank_exp / "dev-best.ckpt"
    run_downstream("-m", "evaluate", "-e", str(ckpt), "-t", "dev", "--device", "cpu")
    run_downstream("-m", "evaluate", "-e", str(ckpt), "-t", "test", "--device", "cpu")  # another process
    check_secondary_figures(fbank_exp)  # dev-best's thresholds are those chosen anew on its dev predictions
    # A checkpoint without them (as written before they were kept): null, and why.
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    del state["Downstream"]["_extra_state"]["dev_thresholds"]
    torch.save(state, tmp_path / "older.ckpt")
    run_downstream("-m", "evaluate", "-e", str(tmp_path / "older.ckpt"), "--device", "cpu")
    metrics, probs, labels, _ = read_split(tmp_path, "test")  # evaluate writes next to the checkpoint
    assert metrics["macro_f1_tuned_thresholds"] is None
    assert metrics["tuned_threshold/fear"] is None
    assert metrics["tuned_thresholds_from"].startswith("none: no dev evaluation of this model")
    assert metrics["js_divergence"] == pytest.approx(numpy_js_bits(probs, labels), abs=1e-5)


def test_resume_continues_to_the_new_total(fbank_exp):
    run_downstream(
        "-m", "train", "-e", str(fbank_exp / "states-20.ckpt"), "--device", "cpu", "-o", "config.runner.total_steps=30"
    )
    assert sorted(p.name for p in fbank_exp.glob("states-*.ckpt")) == ["states-20.ckpt", "states-30.ckpt"]
    state = load_checkpoint(fbank_exp / "states-30.ckpt")
    assert state["Step"] == 30


def test_torch_hub_labels_a_new_waveform(fbank_exp, repo_root, tmp_path):
    model = torch.hub.load(str(repo_root), "emotion_multilabel", ckpt=str(fbank_exp / "dev-best.ckpt"), source="local")
    rng = np.random.default_rng(0)
    mono = (0.1 * np.sin(2 * np.pi * 180 * np.arange(16_000) / 16_000) + 0.01 * rng.normal(size=16_000)).astype(
        "float32"
    )
    probs = model.predict(mono, 16_000)
    assert list(probs) == ["angry", "sad", "neutral", "happy", "fear"]
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    stereo = np.stack([mono, mono], axis=1)
    sf.write(tmp_path / "x.wav", np.repeat(stereo, 3, axis=0)[:44_100], 44_100)
    from_file = model.predict_file(tmp_path / "x.wav")
    assert sum(from_file.values()) == pytest.approx(1.0, abs=1e-5)
    assert model.predict(stereo.T, 16_000) == pytest.approx(probs, abs=1e-5)  # (channels, T) of torchaudio


def test_runner_inference_mode_labels_one_file(fbank_exp, synth_root):
    wav = sorted((synth_root / "SYNTH" / "Audios").iterdir())[0]
    result = run_downstream(
        "-m", "inference", "-e", str(fbank_exp / "dev-best.ckpt"), "-t", str(wav), "--device", "cpu"
    )
    saved = json.loads((fbank_exp / f"inference_{wav.stem}.json").read_text())
    assert list(saved) == ["angry", "sad", "neutral", "happy", "fear"]
    assert sum(saved.values()) == pytest.approx(1.0, abs=1e-5)
    assert f'"file": "{wav.stem}"' in result.stdout


def test_tiny_wavlm_upstream_trains_and_evaluates(repo_root, synth_root, tiny_wavlm, tmp_path):
    expdir = tmp_path / "exp"
    train(repo_root, synth_root, expdir, "-u", "wavlm_local", "-k", str(tiny_wavlm))
    state = load_checkpoint(expdir / "dev-best.ckpt")
    assert state["Args"].upstream == "wavlm_local"
    assert state["Featurizer"]["weights"].shape == (4,)  # 3 layers + CNN output, weighted by the Featurizer
    (expdir / "test_fold1_predict.txt").unlink()
    # A checkpoint never chooses the local upstream file: without naming it, -e is refused.
    refused = run_downstream("-m", "evaluate", "-e", str(expdir / "dev-best.ckpt"), "--device", "cpu", check=False)
    assert refused.returncode == 2
    assert "-o args.upstream_ckpt=PATH" in refused.stderr
    ckpt = str(expdir / "dev-best.ckpt")
    run_downstream("-m", "evaluate", "-e", ckpt, "--device", "cpu", "-o", f"args.upstream_ckpt={tiny_wavlm}")
    assert len((expdir / "test_fold1_predict.txt").read_text().splitlines()) == 12
    with pytest.raises(InvalidInputError, match="upstream_ckpt=PATH"):
        torch.hub.load(str(repo_root), "emotion_multilabel", ckpt=str(expdir / "dev-best.ckpt"), source="local")
    model = torch.hub.load(
        str(repo_root), "emotion_multilabel", ckpt=str(expdir / "dev-best.ckpt"), upstream_ckpt=str(tiny_wavlm),
        source="local",
    )  # fmt: skip
    assert sum(model.predict(np.zeros(16_000, dtype=np.int16), 16_000).values()) == pytest.approx(1.0, abs=1e-5)
