"""The main job on the built-in corpus: synthesise, train and evaluate through S3PRL's runner.

Training and evaluation run ``python -m s3prl.run_downstream`` in a subprocess, the very
code path of ``run_downstream.py``, with the ``fbank`` upstream (no download needed).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ..data.layout import TRAIN, labels_path, read_config, read_labels
from ..data.synth import NAME, make_synthetic_corpus
from ..downstream import NAME as DOWNSTREAM_NAME
from ..errors import InvalidInputError
from ..metrics import format_table, prior_baseline, score
from ..runtime.atomic import write_text_atomically
from ..runtime.guards import OUTPUT_MARKER, claim_output_dir, s3prl_override
from ..runtime.paths import Pathlike, resource_dir

logger = logging.getLogger(__name__)

FOLD = 1
COMMAND = "demo"


def run_downstream(*args: str) -> None:
    """Run S3PRL's runner with this interpreter; fail loudly with its exit code."""
    command = [sys.executable, "-m", "s3prl.run_downstream", *args]
    logger.info("running %s", " ".join(command))
    result = subprocess.run(command)
    if result.returncode != 0:
        raise InvalidInputError(f"S3PRL's runner failed (exit {result.returncode}): {' '.join(command)}")


def claim_workdir(workdir: Pathlike) -> Path:
    """``workdir`` resolved, once it is known to be the demo's own: new, empty, or an earlier demo's.

    The demo replaces ``workdir/data/SYNTH`` and removes ``workdir/exp`` before training, so
    it works only in a folder it made (``guards.claim_output_dir``, marker of ``s3prl-emo
    demo``); its ``data`` and ``exp`` must be folders, not links to elsewhere. The marker
    is written before anything else, so an interrupted demo's folder is still its own.

    Raises:
        InvalidInputError: naming ``--workdir`` and why it is not the demo's.

    Examples:
        >>> import tempfile
        >>> claim_workdir(Path(tempfile.mkdtemp()) / "demo").name
        'demo'
    """
    workdir = claim_output_dir(workdir, command=COMMAND, flag="--workdir")
    if workdir.is_symlink():
        raise InvalidInputError(f"--workdir {workdir}: is a symbolic link; name the folder itself")
    for part in ("data", "exp"):
        inner = workdir / part
        if os.path.lexists(inner) and (inner.is_symlink() or not inner.is_dir()):
            raise InvalidInputError(f"--workdir {workdir}: {part} is a link or a file, not the demo's folder")
    workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / OUTPUT_MARKER
    if not os.path.lexists(marker):
        write_text_atomically(marker, json.dumps({"command": COMMAND}) + "\n")
    return workdir.resolve()


def run_demo(workdir: Pathlike = "demo", *, upstream: str = "fbank", seed: int = 0) -> dict[str, float]:
    """Synthesise ``workdir/data/SYNTH``, train into ``workdir/exp``, evaluate ``dev-best.ckpt``.

    Returns the test scores plus ``prior_baseline_macro_f1``, the macro-F1 of predicting
    the train split's mean soft label for every test utterance.
    """
    # S3PRL evaluates each -o value: the folder goes in as a Python literal, or is refused
    # before anything is written.
    root = f"{Path(workdir).resolve() / 'data'}/"
    override = s3prl_override(
        {"config.downstream_expert.datarc.root": root, "config.downstream_expert.datarc.test_fold": f"fold{FOLD}"},
        flag="--workdir",
    )
    workdir = claim_workdir(workdir)
    data_root, expdir = workdir / "data", workdir / "exp"
    make_synthetic_corpus(data_root, seed=seed)
    if expdir.exists():
        shutil.rmtree(expdir)  # inside a claimed workdir, and checked not to be a link: the demo's own
    config = resource_dir("downstream_configs") / f"{NAME}.yaml"
    run_downstream(
        "-m",
        "train",
        "-u",
        upstream,
        "-d",
        DOWNSTREAM_NAME,
        "-c",
        str(config),
        "-p",
        str(expdir),
        "--device",
        "cpu",
        "-o",
        override,
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
