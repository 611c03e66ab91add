"""One run of a sweep: train, evaluate dev-best on dev and test, write ``result.json``; with
``--cross-eval``, then evaluate dev-best on each condition of its upstream (``sweep.cross``).

``python -m s3prl_emo.sweep.worker RUN_DIR`` (what both launchers start). Training goes
through S3PRL's ``run_downstream`` with ``-a``, so a run interrupted earlier resumes from its
newest ``states-*.ckpt``; the three steps share one interpreter to pay S3PRL's import once.

The worker trusts nothing in the folder it is given: ``run.json`` is checked (and must
describe this folder) before anything is written, the data root, fold and grid point reach
S3PRL in the run's ``config.yaml``, and the ``-o`` it passes holds literals only.
"""

from __future__ import annotations

import argparse
import hashlib
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
import yaml

from .. import __version__
from ..downstream import NAME as DOWNSTREAM_NAME
from ..errors import CorpusLayoutError, InvalidInputError
from ..metrics import binarize
from ..runtime.atomic import write_json_atomically, write_text_atomically
from ..runtime.guards import create_exclusive, finite_number, s3prl_override
from ..runtime.runlock import process_alive
from ..runtime.runner_guard import run_downstream
from .cross import cross_finished, evaluate_pending, run_targets
from .plan import RESULT_FILE, RUN_CONFIG, RunSpec, check_upstreams, read_json_object, read_run

STATE_FILE = "state.json"
TRAIN_DONE = "train.done"
EVALUATED_SPLITS = ("dev", "test")


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

    from ..runtime.runner_guard import expdir_next_to_checkpoints

    hack_isinstance()
    # S3PRL takes expdir from the checkpoint: a RESULTS folder that was moved writes next to its checkpoint
    with expdir_next_to_checkpoints(), _argv(["-m", "evaluate", "-e", str(ckpt), "--device", device, "-o", override]):
        args, config, _ = s3prl_run_downstream.get_downstream_args()
    runner = Runner(args, config)
    for split in splits:
        runner.args.evaluate_split = split
        runner.evaluate()  # as from the command line: seeds fixed, scores dumped by the expert


def read_state(path: Path) -> dict:
    """``state.json`` checked: ``{"state": "running", "pid": N, "host": H, ...}`` or ``{"state": "failed", ...}``.

    Raises:
        InvalidInputError: naming the file and the field.
    """
    data = read_json_object(path)
    state = data.get("state")
    if state == "running":
        pid, host = data.get("pid"), data.get("host")
        if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
            raise InvalidInputError(f"{path}: pid {pid!r} is not a process id")
        if not isinstance(host, str):
            raise InvalidInputError(f"{path}: host {host!r} is not a host name")
    elif state == "failed":
        if not isinstance(data.get("error", ""), str):
            raise InvalidInputError(f"{path}: error {data['error']!r} is not a message")
    else:
        raise InvalidInputError(f"{path}: state {state!r} is neither 'running' nor 'failed'")
    for key in ("started", "at"):
        if key in data:
            finite_number(data[key], where=f"{path}: {key}")
    return data


def _claim(run_dir: Path) -> None:
    """Mark the run as running by this process: ``state.json`` created exclusively.

    A state of a live process of this machine is left alone (an error); any other state
    (failed, stale, unreadable, or a link) is removed first, never followed.
    """
    path = run_dir / STATE_FILE
    if os.path.lexists(path):
        try:
            previous = read_state(path)
        except InvalidInputError:
            previous = {}
        if (
            previous.get("state") == "running"
            and previous.get("host") == socket.gethostname()
            and previous.get("pid") != os.getpid()
            and process_alive(previous["pid"])
        ):
            raise InvalidInputError(f"{run_dir}: already running (pid {previous['pid']}); left alone")
        path.unlink()
    record = {"state": "running", "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    try:
        handle = create_exclusive(path)
    except FileExistsError:
        raise InvalidInputError(f"{path}: another worker started this run at the same time; left alone") from None
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def train_argv(spec: RunSpec, run_dir: Path, device: str) -> list[str]:
    """The ``run_downstream.py -m train -a`` command line of a run (it writes the run's ``config.yaml``).

    The data root, fold and grid point are in ``RUN_DIR/config.yaml``; ``-o`` carries only
    literals (the upstream checkpoint, for resuming, and the user's overrides)."""
    config = run_dir / RUN_CONFIG
    write_text_atomically(config, yaml.safe_dump(spec.run_config(), sort_keys=False))
    upstream = ["-u", spec.upstream] + (["-k", spec.upstream_ckpt] if spec.upstream_ckpt else [])
    common = ["-m", "train", "-a", "-d", DOWNSTREAM_NAME, *upstream, "-c", str(config), "-p", str(run_dir / "exp")]
    common += ["--device", device]
    override = spec.override_string()
    if override:
        common += ["-o", override]
    if spec.seed is not None:
        common += ["--seed", str(spec.seed)]
    return common


def _train(spec: RunSpec, run_dir: Path, device: str, trainer: str | None = None) -> None:
    """``run_downstream.py -m train -a`` (resumes from the newest states checkpoint), or the same
    flags to ``s3prl-emo train`` with ``--trainer fast`` (and for a ``batched`` run trained on its
    own: one run gains nothing from stacking), whose feature stores the runs of a sweep share
    (``RESULTS/feature_cache``)."""
    common = train_argv(spec, run_dir, device)
    if (trainer or spec.trainer) in ("fast", "batched"):
        store = run_dir.parents[3] / "feature_cache"  # RESULTS/<upstream>/<condition>/<grid>/fold<k>
        subprocess.run(
            [sys.executable, "-m", "s3prl_emo.cli", "train", *common[2:], "--feature-cache-dir", str(store)],
            check=True,
        )
        return
    run_downstream(common)


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


def _test_predictions(run_dir: Path, fold: int) -> dict[str, str]:
    """The test split's per-utterance files (relative to the run folder) and their SHA-256: the
    report pools them over folds and seeds, and uses them only if they are still these files."""
    files = {"probs": f"exp/test_fold{fold}_probs.csv", "truth": f"exp/test_fold{fold}_truth.txt"}
    digests = {
        f"{name}_sha256": hashlib.sha256((run_dir / path).read_bytes()).hexdigest() for name, path in files.items()
    }
    return {**files, **digests}


def _attribute_predictions(run_dir: Path, fold: int) -> dict[str, str]:
    """The test split's attribute predictions and their truth (relative to the run folder) with SHA-256s."""
    stem = f"exp/test_fold{fold}_attributes"
    files = {"predictions": f"{stem}.csv", "truth": f"{stem}_truth.csv"}
    digests = {
        f"{name}_sha256": hashlib.sha256((run_dir / path).read_bytes()).hexdigest() for name, path in files.items()
    }
    return {**files, **digests}


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _train_seconds(path: Path) -> float:
    """The training time ``train.done`` records; a link or anything but a finite number is refused."""
    if path.is_symlink():
        raise InvalidInputError(f"{path}: is a symbolic link; remove it")
    try:
        text = path.read_text(encoding="utf-8").strip()
        value = float(text)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InvalidInputError(f"{path}: not a training time in seconds ({err}); remove it to retrain") from err
    return finite_number(value, where=str(path), low=0)


def _finite_everywhere(value: object, *, where: str, key: str = "") -> None:
    """Refuse a NaN or infinity anywhere in ``value``, naming ``where`` and its key (``dev.loss``)."""
    if isinstance(value, dict):
        for name, item in value.items():
            _finite_everywhere(item, where=where, key=f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _finite_everywhere(item, where=where, key=f"{key}[{index}]")
    elif isinstance(value, float):
        finite_number(value, where=f"{where}: {key}")


def scores_from_training(expdir: Path, fold: int) -> bool:
    """Put dev-best's own evaluation files, kept by the batched trainer, in place of a stock evaluation.

    The batched trainer copies the dev and test files of the evaluation that saved
    ``dev-best.ckpt`` to ``EXPDIR/dev-best-scores`` (``training.batched.files``), with the
    checkpoint's SHA-256: when that still names this ``dev-best.ckpt``, the files are what
    ``-m evaluate -e dev-best.ckpt`` would write (same head, same dev thresholds), and they are
    copied back to ``EXPDIR`` (with ``step`` 0 in the metrics, as the command line's evaluation
    writes it; the snapshot keeps the dev-best step). Otherwise (another trainer, a kill between the two writes, a
    missing split) nothing is touched and the caller evaluates as before.

    Examples:
        >>> scores_from_training(Path("no-such-exp"), 1)
        False
    """
    from ..training.batched.files import BEST_SCORES, BEST_SOURCE, SCORE_FILES

    folder = Path(expdir) / BEST_SCORES
    names = [f"{split}_fold{fold}_{suffix}" for split in EVALUATED_SPLITS for suffix in SCORE_FILES]
    source = folder / BEST_SOURCE
    if not source.is_file() or source.is_symlink() or any(not (folder / n).is_file() for n in names):
        return False
    try:
        recorded = read_json_object(source)
    except InvalidInputError:
        return False
    digest = hashlib.sha256((Path(expdir) / "dev-best.ckpt").read_bytes()).hexdigest()
    if recorded.get("sha256") != digest:
        return False
    for name in names:
        text = (folder / name).read_text(encoding="utf-8")
        if name.endswith("_metrics.json"):  # as S3PRL's command-line evaluation logs it: global step 0
            text = json.dumps({**json.loads(text), "step": 0}, indent=2) + "\n"
        write_text_atomically(Path(expdir) / name, text)
    return True


def run_one(run_dir: Path, spec: RunSpec | None = None) -> dict:
    """Train (or resume) and evaluate the run in ``run_dir``; return what ``result.json`` holds.

    A figure that is not finite (a diverged training) fails the run, naming the figure:
    ``result.json`` holds finite numbers only."""
    spec = read_run(run_dir) if spec is None else spec
    check_upstreams([spec.upstream], {spec.upstream: spec.upstream_ckpt} if spec.upstream_ckpt else {})
    expdir = run_dir / "exp"
    device = _device()
    started = time.time()
    done = run_dir / TRAIN_DONE
    if not os.path.lexists(done):
        _train(spec, run_dir, device)
        with os.fdopen(create_exclusive(done), "w", encoding="utf-8") as f:
            f.write(f"{time.time() - started:.1f}\n")
    train_seconds = _train_seconds(done)
    best = expdir / "dev-best.ckpt"
    if not best.is_file():
        raise InvalidInputError(f"{expdir}: training ended without dev-best.ckpt")
    scores_from = "training" if scores_from_training(expdir, spec.fold) else "evaluate"
    if scores_from == "evaluate":
        ckpt = {"args.upstream_ckpt": spec.upstream_ckpt} if spec.upstream_ckpt else {}
        evaluate(best, EVALUATED_SPLITS, device, s3prl_override(ckpt) or "none")
    scores = {split: read_json_object(expdir / f"{split}_fold{spec.fold}_metrics.json") for split in EVALUATED_SPLITS}
    classes = [key.split("/", 1)[1] for key in scores["test"] if key.startswith("f1/")]
    result = {
        **spec.to_json(),
        "grid_name": spec.grid_name,
        "classes": classes,
        "dev": scores["dev"],
        "test": scores["test"],
        "layer_weights": _layer_weights(best),
        # an attributes-only run has no class head: no co-occurrence, no probabilities
        **(
            {
                "cooccurrence": _cooccurrence(
                    expdir / f"test_fold{spec.fold}_probs.csv", expdir / f"test_fold{spec.fold}_truth.txt", classes
                ),
                "test_predictions": _test_predictions(run_dir, spec.fold),
            }
            if classes
            else {}
        ),
        **(
            {"attribute_predictions": _attribute_predictions(run_dir, spec.fold)}
            if "ccc_mean" in scores["test"]
            else {}
        ),
        "scores_from": scores_from,
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
    _finite_everywhere(result, where=str(run_dir / RESULT_FILE))
    write_json_atomically(run_dir / RESULT_FILE, result)
    return result


def finished(run_dir: Path) -> bool:
    """Whether ``result.json`` is there and readable (an unreadable one is evaluated again)."""
    path = run_dir / RESULT_FILE
    if not os.path.lexists(path):
        return False
    try:
        read_json_object(path)
    except InvalidInputError as err:
        print(f"{err}; evaluating this run again", file=sys.stderr)
        return False
    return True


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s3prl_emo.sweep.worker", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run folder of a sweep (holds run.json)")
    run_dir = parser.parse_args(argv).run_dir
    try:  # nothing is written in a folder whose run.json is not a run of this folder
        spec = read_run(run_dir)
        targets, _ = run_targets(run_dir, spec)
    except (InvalidInputError, CorpusLayoutError) as err:
        print(f"s3prl-emo sweep worker: {err}", file=sys.stderr)
        return 2
    trained = finished(run_dir)
    if trained and all(cross_finished(run_dir, t.condition) for t in targets):
        print(f"{run_dir}: already done")
        return 0
    try:
        _claim(run_dir)
    except InvalidInputError as err:
        print(f"s3prl-emo sweep worker: {err}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if not trained:
            run_one(run_dir, spec)
        evaluate_pending(run_dir, spec, targets, _device())
        (run_dir / STATE_FILE).unlink(missing_ok=True)
    except KeyboardInterrupt:
        (run_dir / STATE_FILE).unlink(missing_ok=True)  # interrupted, not failed: the next sweep resumes it
        raise
    except Exception as err:  # record why, then fail with the error
        write_json_atomically(
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
