"""Cross-corpus evaluation of a sweep's runs (``sweep --cross-eval``): each run's dev-best on every
condition of its upstream, its own included.

RUN/cross/<condition>/       ``s3prl-emo cross-eval``'s output folder (metrics.json, probs.csv,
                             labels.csv, predict.txt, truth.txt), staged: all files or none
RUN/cross/<condition>.json   written last, atomically: the metrics, the run it belongs to, and
                             the per-utterance files with their SHA-256

A ``<condition>.json`` that is there and readable is finished and never computed again; a
worker killed half-way leaves at most a folder, which the next worker replaces. The run's own
condition is evaluated like the others (on the test set of the run's fold, reproducing its
test figures): a report restricts its probabilities and soft labels to the classes the run's
condition shares with each other one, the in-corpus figure of the matrix's diagonal.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from ..errors import InvalidInputError
from ..runtime.atomic import write_json_atomically
from ..runtime.guards import resolve_inside
from .plan import (
    PLAN_FILE,
    CrossTarget,
    RunSpec,
    cross_targets,
    folder_name,
    plan_entries,
    read_cross_eval,
    read_json_object,
)

CROSS_DIR = "cross"
BEST = "exp/dev-best.ckpt"


def cross_paths(run_dir: Path, condition: str) -> tuple[Path, Path]:
    """``RUN/cross/<condition>.json`` and ``RUN/cross/<condition>/``, inside the run folder.

    Raises:
        InvalidInputError: ``cross`` is a symbolic link, or a path leads outside the run folder.

    Examples:
        >>> cross_paths(Path("/r/fbank/A/default/fold1"), "B")[0].as_posix()
        '/r/fbank/A/default/fold1/cross/B.json'
    """
    run_dir = Path(run_dir)
    if (run_dir / CROSS_DIR).is_symlink():
        raise InvalidInputError(f"{run_dir / CROSS_DIR}: is a symbolic link; remove it")
    name = folder_name(condition, what="condition")
    what = f"{run_dir}: cross-eval of {condition}"
    return (
        resolve_inside(run_dir, f"{CROSS_DIR}/{name}.json", what=what),
        resolve_inside(run_dir, f"{CROSS_DIR}/{name}", what=what),
    )


def cross_finished(run_dir: Path, condition: str) -> bool:
    """Whether ``RUN/cross/<condition>.json`` is there and readable (an unreadable one is computed again)."""
    path = Path(run_dir) / CROSS_DIR / f"{folder_name(condition, what='condition')}.json"
    if path.parent.is_symlink() or not os.path.lexists(path):
        return False
    try:
        read_json_object(path)
    except InvalidInputError:
        return False
    return True


def run_targets(run_dir: Path, spec: RunSpec) -> tuple[list[CrossTarget], list[str]]:
    """The run's cross-eval targets from its sweep's plan (RESULTS = the folder four levels up).

    None (``[]``) when the plan has no ``cross_eval`` block or the folder is in no sweep;
    entries of the plan that are no run are left out (the sweep names them).

    Raises:
        InvalidInputError: the plan or its ``cross_eval`` block is unreadable.
    """
    results = Path(run_dir).resolve().parents[3]
    if not os.path.lexists(results / PLAN_FILE):
        return [], []
    classes = read_cross_eval(results)
    if classes is None:
        return [], []
    runs = [entry for entry in plan_entries(results) if isinstance(entry, RunSpec)]
    return cross_targets(spec, runs, classes)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evaluate_target(run_dir: Path, spec: RunSpec, target: CrossTarget, device: str) -> dict:
    """Evaluate the run's dev-best on ``target``; write its folder, then its JSON; return the JSON's content.

    Raises:
        InvalidInputError: the target cannot be evaluated (named by ``cross_eval.evaluate``), or
            a figure is not finite.
    """
    from ..inference.cross_eval import LABELS_FILE, PROBS_FILE, evaluate, write_cross_eval
    from .plan import resolve_condition
    from .worker import _finite_everywhere

    run_dir = Path(run_dir)
    json_path, folder = cross_paths(run_dir, target.condition)
    best = run_dir / BEST
    if not best.is_file():
        raise InvalidInputError(f"{best}: no dev-best checkpoint to evaluate on {target.condition}")
    corpus = resolve_condition(target.config).corpus
    result = evaluate(best, target.root, target.config, upstream_ckpt=spec.upstream_ckpt, device=device)
    write_cross_eval(result, folder, inputs=[best, Path(target.root) / corpus])
    files = {"probs": f"{CROSS_DIR}/{folder.name}/{PROBS_FILE}", "labels": f"{CROSS_DIR}/{folder.name}/{LABELS_FILE}"}
    record = {
        "run": {key: spec.to_json()[key] for key in ("upstream", "condition", "fold", "grid", "seed")},
        **result.metrics(),
        "predictions": {**files, **{f"{name}_sha256": _sha256(run_dir / file) for name, file in files.items()}},
    }
    _finite_everywhere(record, where=str(json_path))
    write_json_atomically(json_path, record)
    return record


def evaluate_pending(run_dir: Path, spec: RunSpec, targets: list[CrossTarget], device: str) -> int:
    """Evaluate every target without a finished JSON; return how many were evaluated."""
    done = 0
    for target in targets:
        if cross_finished(run_dir, target.condition):
            continue
        print(f"cross-eval: {spec.key} on {target.condition}", file=sys.stderr)
        evaluate_target(run_dir, spec, target, device)
        done += 1
    return done
