"""``s3prl-emo cross-eval``: a SYNTH model scored on a second synthetic corpus and on its own."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from s3prl_emo.cli import main
from s3prl_emo.data.layout import read_config, read_labels
from s3prl_emo.errors import InvalidInputError
from s3prl_emo.inference.cross_eval import match_classes, restrict_rows

MODEL_CLASSES = ["angry", "sad", "neutral", "happy", "fear"]
B_CLASSES = "angry,happy,sad,neutral,surprise"


# -- pure functions ----------------------------------------------------------------------------


def test_a_row_without_mass_on_the_shared_classes_is_uniform_and_has_no_class():
    values = np.array([[0.0, 0.0, 0.0, 1.0], [0.2, 0.6, 0.2, 0.0]])
    out = restrict_rows(values, [(0,), (1,), (2,)])
    assert out[0].tolist() == pytest.approx([1 / 3] * 3)
    assert out[1].tolist() == pytest.approx([0.2, 0.6, 0.2])
    from s3prl_emo.metrics import binarize

    assert binarize(out)[0].tolist() == [False, False, False]


def test_aliases_match_and_several_target_classes_can_feed_one_model_class():
    match = match_classes(
        MODEL_CLASSES, ["Anger", "Neutral state", "Sadness", "excited", "happy"], {"excited": "happy"}
    )
    assert match.shared == ("angry", "sad", "neutral", "happy")
    assert match.mapping == {"Anger": "angry", "Neutral state": "neutral", "Sadness": "sad", "excited": "happy",
                             "happy": "happy"}  # fmt: skip
    labels = np.array([[0.1, 0.2, 0.1, 0.3, 0.3]])
    merged = restrict_rows(labels, match.target_columns)
    assert merged[0].tolist() == pytest.approx([0.1, 0.1, 0.2, 0.6])  # excited + happy added


def test_too_few_shared_classes_and_bad_restrictions_are_named():
    with pytest.raises(InvalidInputError, match=r"\['angry', 'sad', 'neutral', 'happy', 'fear'\].*\['angry', 'joy'\]"):
        match_classes(MODEL_CLASSES, ["angry", "joy"])
    with pytest.raises(InvalidInputError, match="--map"):
        match_classes(MODEL_CLASSES, ["angry", "joy"])
    with pytest.raises(InvalidInputError, match=r"'surprise'.*not shared"):
        match_classes(MODEL_CLASSES, MODEL_CLASSES, only=["angry", "surprise"])
    assert match_classes(MODEL_CLASSES, ["angry", "joy"], {"joy": "happy"}).shared == ("angry", "happy")


# -- end to end --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exp(repo_root, synth_root, tmp_path_factory):
    """dev-best.ckpt of a two-step fbank run on SYNTH fold 1 (S3PRL's runner): its test figures
    were computed with the dev-best weights (one evaluation, at the last step)."""
    expdir = tmp_path_factory.mktemp("cross") / "exp"
    override = (
        f"config.downstream_expert.datarc.root='{synth_root}/',,config.runner.total_steps=2,,"
        "config.downstream_expert.datarc.train_batch_size=4"
    )
    result = subprocess.run(
        [sys.executable, "-m", "s3prl.run_downstream", "-m", "train", "-u", "fbank", "-d", "emotion_multilabel",
         "-c", str(repo_root / "downstream_configs" / "SYNTH.yaml"), "-p", str(expdir), "--device", "cpu",
         "-o", override],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return expdir


def _synth(root: Path, name: str, classes: str, per_speaker: int) -> None:
    argv = ["synth", "--out", str(root), "--name", name, "--classes", classes, "--seed", "7",
            "--utterances-per-speaker", str(per_speaker)]  # fmt: skip
    assert main(argv) == 0


def _condition(repo_root: Path, folder: Path, corpus: str) -> Path:
    path = folder / f"{corpus}.yaml"
    path.write_text(
        (repo_root / "downstream_configs" / "SYNTH.yaml").read_text().replace("corpus: SYNTH\n", f"corpus: {corpus}\n")
    )
    return path


@pytest.fixture(scope="module")
def targets(repo_root, synth_root, tmp_path_factory):
    """ROOT with SYNTH (the model's corpus), SYNTH_B (5 classes, 4 shared) and SYNTH_C (one shared)."""
    root = tmp_path_factory.mktemp("targets")
    (root / "SYNTH").symlink_to(synth_root / "SYNTH")
    _synth(root, "SYNTH_B", B_CLASSES, 6)
    _synth(root, "SYNTH_C", "angry,surprise,disgust", 2)
    return root, {c: _condition(repo_root, root, c) for c in ("SYNTH_B", "SYNTH_C")}


def _cross_eval(exp, root, condition, *extra) -> int:
    return main(["cross-eval", "-e", str(exp / "dev-best.ckpt"), "--root", str(root), "--condition", str(condition),
                 *extra])  # fmt: skip


def _pooled_test_labels(label_dir: Path) -> pd.DataFrame:
    """Every fold's test rows, each file once (independently of the package's pooling)."""
    classes = read_config(label_dir).classes
    frames = [read_labels(p, classes) for p in sorted(label_dir.glob("labels_consensus_*.csv"))]
    test = pd.concat([f[f["Split_Set"] == "Test"] for f in frames]).drop_duplicates("FileName")
    return test.set_index("FileName")


def _macro_f1_by_the_rule(probs: pd.DataFrame, soft: pd.DataFrame) -> float:
    """Restrict both to the same columns, renormalise each row, on if > 1/C' (float32), macro-F1."""
    p = probs.to_numpy(float)
    t = soft.to_numpy(float)
    p, t = p / p.sum(axis=1, keepdims=True), t / t.sum(axis=1, keepdims=True)
    cut = np.float32(1 / p.shape[1])
    return f1_score(t.astype(np.float32) > cut, p.astype(np.float32) > cut, average="macro", zero_division=0)


@pytest.mark.slow
def test_cross_eval_scores_the_four_shared_classes(exp, targets):
    root, conditions = targets
    assert _cross_eval(exp, root, conditions["SYNTH_B"]) == 0
    out = exp / "cross" / "SYNTH_B"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["shared_classes"] == ["angry", "sad", "neutral", "happy"]
    assert metrics["target_classes"] == B_CLASSES.split(",")
    assert metrics["model_classes"] == MODEL_CLASSES
    assert metrics["unscored_target_classes"] == ["surprise"]
    assert metrics["threshold"] == 0.25
    assert metrics["in_corpus"] is False
    assert metrics["folds"] == [1, 2, 3, 4, 5]

    probs = pd.read_csv(out / "probs.csv").set_index("FileName")
    truth = _pooled_test_labels(root / "SYNTH_B" / "Primary")
    assert sorted(probs.index) == sorted(truth.index)
    assert len(probs) == 60
    shared = metrics["shared_classes"]
    recomputed = _macro_f1_by_the_rule(probs[shared], truth.loc[probs.index, shared])
    assert abs(metrics["macro_f1"] - recomputed) < 1e-6
    for c in shared:
        assert abs(metrics[f"f1/{c}"] - f1_score(*(
            (m[c].to_numpy(float) / m[shared].to_numpy(float).sum(axis=1)).astype(np.float32) > np.float32(0.25)
            for m in (truth.loc[probs.index], probs)), zero_division=0)) < 1e-6  # fmt: skip

    # the probabilities are the model's, in the expert's batches, restricted and renormalised
    from s3prl_emo.data.audio import load_audio
    from s3prl_emo.inference.recognizer import EmotionRecognizer

    model = EmotionRecognizer.from_checkpoint(exp / "dev-best.ckpt")
    first = list(probs.index[:32])  # the first batch (eval_batch_size 32), in label-file order
    raw = model.predict_batch([load_audio(root / "SYNTH_B" / "Audios" / n, 10.0) for n in first])
    kept = raw[:, [MODEL_CLASSES.index(c) for c in shared]]
    assert probs.loc[first, shared].to_numpy() == pytest.approx(kept / kept.sum(axis=1, keepdims=True), abs=1e-6)

    lines = (out / "predict.txt").read_text().splitlines()
    assert len(lines) == 60
    assert all(set(line.split(" ")[1].split(";")) <= set(shared) | {""} for line in lines)
    assert len((out / "truth.txt").read_text().splitlines()) == 60
    labels = pd.read_csv(out / "labels.csv").set_index("FileName")
    assert labels.to_numpy().sum(axis=1) == pytest.approx(np.ones(60))


@pytest.mark.slow
def test_a_map_adds_surprise_as_fear(exp, targets, tmp_path):
    root, conditions = targets
    class_map = tmp_path / "map.toml"
    class_map.write_text('# target class = "model class"\nsurprise = "fear"\n')
    out = tmp_path / "mapped"
    assert _cross_eval(exp, root, conditions["SYNTH_B"], "--map", str(class_map), "--out", str(out)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["shared_classes"] == MODEL_CLASSES
    assert metrics["threshold"] == 0.2
    assert metrics["mapping"]["surprise"] == "fear"
    assert metrics["mapped_by_map_file"] == ["surprise"]
    assert metrics["map_file"] == str(class_map)
    probs = pd.read_csv(out / "probs.csv").set_index("FileName")
    truth = _pooled_test_labels(root / "SYNTH_B" / "Primary").loc[probs.index]
    soft = truth[["angry", "sad", "neutral", "happy", "surprise"]]
    assert abs(metrics["macro_f1"] - _macro_f1_by_the_rule(probs[MODEL_CLASSES], soft)) < 1e-6
    assert metrics["support/fear"] == float(
        ((soft.to_numpy() / soft.to_numpy().sum(1, keepdims=True))[:, 4] > 0.2).sum()
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("surprise = 3\n", "surprise = 3; each value must be a model class name"),
        ('joy = "happy"\n', "'joy' is not a class of the target condition; its classes are ['angry', 'happy'"),
        ('surprise = "joy"\n', "'joy' is not a class of the model; its classes are ['angry', 'sad'"),
        ("surprise = \n", "not valid TOML"),
    ],
)
def test_bad_maps_are_refused_before_anything_is_written(exp, targets, tmp_path, caplog, text, message):
    root, conditions = targets
    class_map = tmp_path / "map.toml"
    class_map.write_text(text)
    out = tmp_path / "out"
    assert _cross_eval(exp, root, conditions["SYNTH_B"], "--map", str(class_map), "--out", str(out)) == 2
    assert message in caplog.text
    assert str(class_map) in caplog.text
    assert not out.exists()


@pytest.mark.slow
def test_one_shared_class_is_refused_naming_both_lists(exp, targets, caplog):
    root, conditions = targets
    assert _cross_eval(exp, root, conditions["SYNTH_C"]) == 2
    assert str(MODEL_CLASSES) in caplog.text
    assert "['angry', 'surprise', 'disgust']" in caplog.text
    assert "--map" in caplog.text
    assert not [p for p in exp.rglob("*") if "SYNTH_C" in p.name]


@pytest.mark.slow
def test_own_condition_reproduces_the_runs_test_figures(exp, targets, tmp_path):
    root, _ = targets
    assert _cross_eval(exp, root, "SYNTH", "--out", str(tmp_path / "own")) == 0
    own = json.loads((tmp_path / "own" / "metrics.json").read_text())
    test = json.loads((exp / "test_fold1_metrics.json").read_text())
    assert own["in_corpus"] is True
    assert own["folds"] == [1]
    assert own["num_utterances"] == test["num_utterances"] == 12
    # every figure both compute (the expert also tunes thresholds on dev, which cross-eval does not)
    figures = [k for k, v in test.items() if isinstance(v, float) and not k.startswith("loss") and k in own]
    assert {"macro_f1", "micro_f1", "weighted_f1", "samples_f1", "f1/fear", "support/fear"} <= set(figures)
    for key in figures:  # the divergence sums logarithms of probabilities: equal up to their float32 rounding
        assert own[key] == pytest.approx(test[key], abs=1e-6 if key == "js_divergence" else 1e-12), key

    # on the classes SYNTH_B shares: the run's own test probabilities, restricted the same way
    shared = ["angry", "sad", "neutral", "happy"]
    assert _cross_eval(exp, root, "SYNTH", "--classes", ",".join(shared), "--out", str(tmp_path / "own4")) == 0
    own4 = json.loads((tmp_path / "own4" / "metrics.json").read_text())
    assert own4["shared_classes"] == shared
    run_probs = pd.read_csv(exp / "test_fold1_probs.csv").set_index("FileName")[shared]
    labels = read_labels(root / "SYNTH" / "Primary" / "labels_consensus_1.csv", MODEL_CLASSES).set_index("FileName")
    restricted = run_probs.to_numpy() / run_probs.to_numpy().sum(axis=1, keepdims=True)
    assert np.abs(restricted - 0.25).min() > 1e-4  # the run's 6-decimal probabilities decide the same way
    expected = _macro_f1_by_the_rule(run_probs, labels.loc[run_probs.index, shared])
    assert own4["macro_f1"] == pytest.approx(expected, abs=1e-12)
    written = pd.read_csv(tmp_path / "own4" / "probs.csv").set_index("FileName")
    assert written.loc[run_probs.index].to_numpy() == pytest.approx(restricted, abs=1e-5)


@pytest.fixture(scope="module")
def one_pass_exp(repo_root, synth_root, tmp_path_factory):
    """A two-step ``s3prl-emo train`` run (fbank, sequence store of float16 features)."""
    base = tmp_path_factory.mktemp("onepass")
    override = (
        f"config.downstream_expert.datarc.root='{synth_root}/',,config.runner.total_steps=2,,"
        "config.downstream_expert.datarc.train_batch_size=4"
    )
    result = subprocess.run(
        [sys.executable, "-m", "s3prl_emo.cli", "train", "-u", "fbank", "-c",
         str(repo_root / "downstream_configs" / "SYNTH.yaml"), "-p", str(base / "exp"), "--device", "cpu",
         "--cache-dir", str(base / "cache"), "-o", override],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return base / "exp"


@pytest.mark.slow
def test_a_one_pass_run_is_scored_from_its_feature_store(one_pass_exp, targets, tmp_path, caplog):
    from s3prl_emo.training.feature_store import FeatureStore

    root, conditions = targets
    store_root = Path(json.loads((one_pass_exp / "one_pass.json").read_text())["store"])
    assert _cross_eval(one_pass_exp, root, "SYNTH", "--out", str(tmp_path / "own")) == 0
    own = json.loads((tmp_path / "own" / "metrics.json").read_text())
    test = json.loads((one_pass_exp / "test_fold1_metrics.json").read_text())
    assert own["features"] == f"feature store {store_root}"
    for key in ("macro_f1", "micro_f1", "weighted_f1", "f1/sad", "f1/neutral"):
        assert own[key] == pytest.approx(test[key], abs=1e-12), key

    before = len(FeatureStore.open(store_root).index)
    assert _cross_eval(one_pass_exp, root, conditions["SYNTH_B"], "--out", str(tmp_path / "b1")) == 0
    assert len(FeatureStore.open(store_root).index) == before + 60  # SYNTH_B's audio, extracted once
    caplog.clear()
    caplog.set_level(logging.INFO, logger="s3prl_emo")
    assert _cross_eval(one_pass_exp, root, conditions["SYNTH_B"], "--out", str(tmp_path / "b2")) == 0
    assert "no upstream pass needed" in caplog.text
    assert len(FeatureStore.open(store_root).index) == before + 60
    first, again = (pd.read_csv(tmp_path / d / "probs.csv").set_index("FileName") for d in ("b1", "b2"))
    assert again.equals(first)
    # the upstream path agrees up to the store's float16 rounding
    args = ("--no-feature-store", "--out", str(tmp_path / "b3"))
    assert _cross_eval(one_pass_exp, root, conditions["SYNTH_B"], *args) == 0
    direct = pd.read_csv(tmp_path / "b3" / "probs.csv").set_index("FileName")
    assert json.loads((tmp_path / "b3" / "metrics.json").read_text())["features"] == "upstream"
    assert direct.to_numpy() == pytest.approx(first.loc[direct.index].to_numpy(), abs=1e-2)


def _state(task: str) -> dict:
    import argparse

    from s3prl_emo.downstream.settings import attribute_state

    extra = {"classes": ["angry", "sad"], "wav_mean": 0.0, "wav_std": 1.0, "max_duration_s": 12.0, "fold": "fold1"}
    if task != "categorical":
        extra.update(attribute_state(task, ("EmoAct",), [3.0], [0.5]))
    config = {"downstream_expert": {"datarc": {"corpus": "SYNTH", "p_or_s": "P"}}}
    return {"Args": argparse.Namespace(), "Config": config, "Downstream": {"_extra_state": extra}}


def test_an_attributes_only_checkpoint_is_refused_and_a_both_one_scores_its_classes():
    from s3prl_emo.inference.cross_eval import model_info

    with pytest.raises(InvalidInputError, match=r"x\.ckpt: an attributes-only checkpoint .* has no class head"):
        model_info("x.ckpt", _state("attributes"))
    assert model_info("x.ckpt", _state("both")).classes == ("angry", "sad")
    assert model_info("x.ckpt", _state("categorical")).classes == ("angry", "sad")
