"""One run of a sweep: train, evaluate dev-best on dev and test, write ``result.json`` last.

``python -m s3prl_emo.sweep.worker RUN_DIR`` (what both launchers start). Training goes
through S3PRL's ``run_downstream`` with ``-a``, so a run interrupted earlier resumes from its
newest ``states-*.ckpt``; the three steps share one interpreter to pay S3PRL's import once.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import InvalidInputError
from ..metrics import binarize
from ..runtime.runner_guard import run_downstream
from .plan import RESULT_FILE, RUN_FILE, RunSpec, write_json_atomic

STATE_FILE = "state.json"
TRAIN_DONE = "train.done"
FAST_TRAINER_MODULE = "s3prl_emo.commands.train"
SPLITS = ("dev", "test")


def fast_trainer_available() -> bool:
    """Whether the one-pass trainer (``s3prl-emo train``) is installed."""
    return importlib.util.find_spec(FAST_TRAINER_MODULE) is not None


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def _argv(args: list[str]):
    saved = sys.argv
    sys.argv = ["run_downstream.py", *args]
    try:
        yield
    finally:
        sys.argv = saved


def evaluate(ckpt: Path, splits: tuple[str, ...], device: str, override: str = "none") -> None:
    """``run_downstream.py -m evaluate -e CKPT -t SPLIT`` for each split, on one Runner built once."""
    from s3prl import run_downstream as s3prl_run_downstream
    from s3prl.downstream.runner import Runner
    from s3prl.utility.helper import hack_isinstance

    hack_isinstance()
    with _argv(["-m", "evaluate", "-e", str(ckpt), "--device", device, "-o", override]):
        args, config, _ = s3prl_run_downstream.get_downstream_args()
    runner = Runner(args, config)
    for split in splits:
        runner.args.evaluate_split = split
        runner.evaluate()  # as from the command line: seeds fixed, scores dumped by the expert


def _train(spec: RunSpec, run_dir: Path, device: str) -> None:
    """``run_downstream.py -m train -a`` (resumes from the newest states checkpoint), or the same
    flags to ``s3prl-emo train`` with ``--trainer fast``, whose feature stores the runs of a
    sweep share (``RESULTS/feature_cache``)."""
    upstream = ["-u", spec.upstream] + (["-k", spec.upstream_ckpt] if spec.upstream_ckpt else [])
    common = ["-a", "-d", "emotion_multilabel", *upstream, "-c", spec.config, "-p", str(run_dir / "exp")]
    common += ["--device", device, "-o", spec.override_string()]
    if spec.trainer == "fast":
        if not fast_trainer_available():
            raise InvalidInputError("--trainer fast: the one-pass trainer (s3prl-emo train) is not installed")
        store = run_dir.parents[3] / "feature_cache"  # RESULTS/<upstream>/<condition>/<grid>/fold<k>
        subprocess.run([sys.executable, "-m", "s3prl_emo.cli", "train", *common, "--cache-dir", str(store)], check=True)
        return
    run_downstream(["-m", "train", *common])


def _layer_weights(ckpt: Path) -> list[float] | None:
    """The Featurizer's raw layer weights in dev-best (None for single-layer upstreams such as fbank)."""
    from ..inference.recognizer import load_checkpoint

    weights = load_checkpoint(ckpt).get("Featurizer", {}).get("weights")
    return None if weights is None else [float(w) for w in weights.flatten()]


def _cooccurrence(probs_csv: Path, truth_txt: Path, classes: list[str]) -> list[list[int]]:
    """counts[i][j]: test utterances whose reference has class i on and whose prediction has class j on."""
    probs = pd.read_csv(probs_csv)
    predicted = binarize(probs[classes].to_numpy())
    reference = {}
    for line in truth_txt.read_text().splitlines():
        name, _, labels = line.partition(" ")
        reference[name] = set(labels.split(";"))
    truth = np.array([[c in reference[name] for c in classes] for name in probs["FileName"]], dtype=int)
    return (truth.T @ predicted.astype(int)).tolist()


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def run_one(run_dir: Path) -> dict:
    """Train (or resume) and evaluate the run in ``run_dir``; return what ``result.json`` holds."""
    spec = RunSpec.from_json(json.loads((run_dir / RUN_FILE).read_text()))
    expdir = run_dir / "exp"
    device = _device()
    started = time.time()
    write_json_atomic(
        run_dir / STATE_FILE,
        {"state": "running", "pid": os.getpid(), "host": socket.gethostname(), "started": started},
    )
    if not (run_dir / TRAIN_DONE).is_file():
        _train(spec, run_dir, device)
        (run_dir / TRAIN_DONE).write_text(f"{time.time() - started:.1f}\n")
    best = expdir / "dev-best.ckpt"
    if not best.is_file():
        raise InvalidInputError(f"{expdir}: training ended without dev-best.ckpt")
    evaluate(best, SPLITS, device, f"args.upstream_ckpt={spec.upstream_ckpt}" if spec.upstream_ckpt else "none")
    scores = {split: json.loads((expdir / f"{split}_fold{spec.fold}_metrics.json").read_text()) for split in SPLITS}
    classes = [key.split("/", 1)[1] for key in scores["test"] if key.startswith("f1/")]
    train_seconds = float((run_dir / TRAIN_DONE).read_text())
    result = {
        **spec.to_json(),
        "grid_name": spec.grid_name,
        "classes": classes,
        "dev": scores["dev"],
        "test": scores["test"],
        "layer_weights": _layer_weights(best),
        "cooccurrence": _cooccurrence(
            expdir / f"test_fold{spec.fold}_probs.csv", expdir / f"test_fold{spec.fold}_truth.txt", classes
        ),
        "wall_time_s": {"train": train_seconds, "total": round(time.time() - started, 1)},
        "versions": {
            "s3prl": _package_version("s3prl"),
            "s3prl_emo": __version__,
            "torch": _package_version("torch"),
            "python": sys.version.split()[0],
        },
        "host": socket.gethostname(),
        "device": device,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json_atomic(run_dir / RESULT_FILE, result)
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    return result


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s3prl_emo.sweep.worker", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run folder of a sweep (holds run.json)")
    run_dir = parser.parse_args(argv).run_dir
    if (run_dir / RESULT_FILE).is_file():
        print(f"{run_dir}: already done")
        return 0
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        run_one(run_dir)
    except KeyboardInterrupt:
        (run_dir / STATE_FILE).unlink(missing_ok=True)  # interrupted, not failed: the next sweep resumes it
        raise
    except Exception as err:  # record why, then fail with the error
        write_json_atomic(
            run_dir / STATE_FILE,
            {
                "state": "failed",
                "error": f"{type(err).__name__}: {err}",
                "host": socket.gethostname(),
                "at": time.time(),
            },
        )
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
