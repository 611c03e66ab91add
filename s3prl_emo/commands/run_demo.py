"""The main job on the built-in corpus: synthesise, train and evaluate through S3PRL's runner.

Training and evaluation run ``python -m s3prl.run_downstream`` in a subprocess, the very
code path of ``run_downstream.py``, with the ``fbank`` upstream (no download needed).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ..data.layout import TRAIN, Pathlike, labels_path, read_config, read_labels
from ..data.synth import NAME, make_synthetic_corpus
from ..errors import InvalidInputError
from ..metrics import format_table, prior_baseline, score
from ..runtime.resources import resource_dir

logger = logging.getLogger(__name__)

FOLD = 1


def run_downstream(*args: str) -> None:
    """Run S3PRL's runner with this interpreter; fail loudly with its exit code."""
    command = [sys.executable, "-m", "s3prl.run_downstream", *args]
    logger.info("running %s", " ".join(command))
    result = subprocess.run(command)
    if result.returncode != 0:
        raise InvalidInputError(f"S3PRL's runner failed (exit {result.returncode}): {' '.join(command)}")


def run_demo(workdir: Pathlike = "demo", *, upstream: str = "fbank", seed: int = 0) -> dict[str, float]:
    """Synthesise ``workdir/data/SYNTH``, train into ``workdir/exp``, evaluate ``dev-best.ckpt``.

    Returns the test scores plus ``prior_baseline_macro_f1``, the macro-F1 of predicting
    the train split's mean soft label for every test utterance.
    """
    workdir = Path(workdir).resolve()
    data_root, expdir = workdir / "data", workdir / "exp"
    make_synthetic_corpus(data_root, seed=seed)
    if expdir.exists():
        shutil.rmtree(expdir)
    config = resource_dir("downstream_configs") / f"{NAME}.yaml"
    run_downstream(
        "-m",
        "train",
        "-u",
        upstream,
        "-d",
        "emotion_multilabel",
        "-c",
        str(config),
        "-p",
        str(expdir),
        "--device",
        "cpu",
        "-o",
        f"config.downstream_expert.datarc.root='{data_root}/',,config.downstream_expert.datarc.test_fold='fold{FOLD}'",
    )
    run_downstream("-m", "evaluate", "-e", str(expdir / "dev-best.ckpt"), "--device", "cpu")

    label_dir = data_root / NAME / "Primary"
    classes = read_config(label_dir).classes
    labels = read_labels(labels_path(label_dir, FOLD), classes)
    probs = pd.read_csv(expdir / f"test_fold{FOLD}_probs.csv")
    truth = labels.set_index("FileName").loc[probs["FileName"], list(classes)].to_numpy()
    train = labels[labels["Split_Set"] == TRAIN][list(classes)].to_numpy()
    scores = score(probs[list(classes)].to_numpy(), truth, classes)
    scores["prior_baseline_macro_f1"] = score(prior_baseline(train, len(truth)), truth, classes)["macro_f1"]
    print(format_table(scores, classes))
    print(f"test macro-F1: {scores['macro_f1']:.3f} (prior baseline: {scores['prior_baseline_macro_f1']:.3f})")
    return scores
