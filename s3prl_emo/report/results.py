"""Collect a sweep's ``result.json`` files into per-(upstream, condition) cells.

The grid point of a cell is chosen by the best mean dev macro-F1 over its finished folds,
never by a test score. A cell knows how many folds the plan asked for, so an incomplete
sweep is reported as such and never averaged over missing folds.

Everything under RESULTS is untrusted input. A plan entry or ``result.json`` whose path
leads outside RESULTS (``..``, a symbolic link), a file that is not JSON, a figure that is
not a finite number in its range, a result written for another run, or classes that differ
from the other runs of its cell: each is named in ``Sweep.problems`` (and logged) and
skipped. It never crashes the report and never becomes one of its figures.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CorpusLayoutError, InvalidInputError
from ..runtime.guards import finite_number, read_json, resolve_inside
from ..sweep.plan import PLAN_FILE, RESULT_FILE, RunSpec

logger = logging.getLogger(__name__)

UNIT_SCORES = ("macro_f1", "micro_f1", "weighted_f1", "samples_f1", "macro_f1_batch_mean")
"""Scores of a split that are shares, in [0, 1], wherever they appear."""
UNIT_PREFIXES = ("f1/", "precision/", "recall/")
COUNT_PREFIXES = ("support/",)
LOSSES = ("loss", "loss_batch_mean")
MAX_COUNT = 2**40  # a count beyond this is no count of test utterances (and sums of them fit in int64)
MAX_NAME = 255  # characters of an upstream, condition or class name (a file name's length)
MAX_PROBLEM = 500  # characters of a problem as logged and shown: a value quoted in it may be huge


@dataclass
class Cell:
    """The runs of one (upstream, condition) at its chosen grid point."""

    upstream: str
    condition: str
    grid: str
    expected_folds: int
    results: list[dict] = field(default_factory=list)
    grid_dev: dict[str, float] = field(default_factory=dict)  # grid point -> mean dev macro-F1

    @property
    def folds(self) -> int:
        return len(self.results)

    @property
    def complete(self) -> bool:
        return self.folds == self.expected_folds

    def test_scores(self, key: str = "macro_f1") -> np.ndarray:
        return np.array([r["test"][key] for r in self.results], dtype=float)

    @property
    def mean(self) -> float:
        return float(self.test_scores().mean()) if self.results else float("nan")

    @property
    def std(self) -> float:
        """Sample standard deviation over folds (0 for a single fold)."""
        scores = self.test_scores()
        return float(scores.std(ddof=1)) if len(scores) > 1 else 0.0

    @property
    def classes(self) -> list[str]:
        return list(self.results[0]["classes"]) if self.results else []

    def per_class_f1(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std over folds of each class's test F1."""
        values = np.array([[r["test"][f"f1/{c}"] for c in self.classes] for r in self.results], dtype=float)
        return values.mean(axis=0), values.std(axis=0)

    def cooccurrence(self) -> np.ndarray:
        """Reference class (rows) x predicted class (columns) counts, summed over folds."""
        return np.sum([np.array(r["cooccurrence"], dtype=np.int64) for r in self.results], axis=0)

    def layer_weights(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Softmax of each fold's Featurizer weights, mean and std over folds (None: single layer)."""
        raw = [r["layer_weights"] for r in self.results if r.get("layer_weights")]
        if not raw:
            return None
        soft = np.array([np.exp(w - np.max(w)) / np.exp(w - np.max(w)).sum() for w in map(np.array, raw)])
        return soft.mean(axis=0), soft.std(axis=0)


@dataclass
class Sweep:
    cells: dict[tuple[str, str], Cell]
    upstreams: list[str]
    conditions: list[str]
    planned_runs: int
    finished_runs: int
    problems: list[str] = field(default_factory=list)  # inputs named and skipped, one line each

    @property
    def complete(self) -> bool:
        return self.finished_runs == self.planned_runs


def check_scores(scores: object, *, where: str, required: list[str]) -> dict[str, float]:
    """A split's scores as floats: shares in [0, 1], counts >= 0, losses finite; ``required`` present.

    Keys the report does not know (the split's name, its label file, ...) are left out.

    Raises:
        InvalidInputError: naming ``where`` and the key.

    Examples:
        >>> check_scores({"macro_f1": 0.5, "loss": 1.2, "split": "dev"}, where="dev", required=["macro_f1"])
        {'macro_f1': 0.5, 'loss': 1.2}
        >>> check_scores({"macro_f1": 1e300}, where="dev", required=["macro_f1"])
        Traceback (most recent call last):
        ...
        s3prl_emo.errors.InvalidInputError: dev.macro_f1: 1e+300 is not a finite number in [0, 1]
    """
    if not isinstance(scores, dict):
        raise InvalidInputError(f"{where}: {type(scores).__name__} where an object of scores belongs")
    missing = [key for key in required if key not in scores]
    if missing:
        raise InvalidInputError(f"{where}: no {', '.join(missing)}")
    out = {}
    for key, value in scores.items():
        if key in UNIT_SCORES or key.startswith(UNIT_PREFIXES):
            out[key] = finite_number(value, where=f"{where}.{key}", low=0, high=1)
        elif key.startswith(COUNT_PREFIXES):
            out[key] = finite_number(value, where=f"{where}.{key}", low=0)
        elif key in LOSSES:
            out[key] = finite_number(value, where=f"{where}.{key}")
    return out


def check_result(data: object, spec: RunSpec, *, where: str) -> dict:
    """The fields of a ``result.json`` the report uses, checked against the run the plan puts there.

    Returns:
        ``fold`` (the plan's), ``classes``, ``dev`` and ``test`` scores (``check_scores``),
        ``layer_weights`` (finite numbers, or None) and ``cooccurrence`` (C x C counts).

    Raises:
        InvalidInputError: naming ``where`` and the first key that is wrong.

    Examples:
        >>> spec = RunSpec("fbank", None, "IEMOCAP", "IEMOCAP.yaml", 1)
        >>> good = {**spec.to_json(), "classes": ["a", "b"], "dev": {"macro_f1": 0.5},
        ...         "test": {"macro_f1": 0.4, "f1/a": 0.3, "f1/b": 0.5}, "cooccurrence": [[1, 0], [0, 2]]}
        >>> check_result(good, spec, where="result.json")["test"]["macro_f1"]
        0.4
        >>> check_result({**good, "dev": {"macro_f1": float("nan")}}, spec, where="result.json")
        Traceback (most recent call last):
        ...
        s3prl_emo.errors.InvalidInputError: result.json: dev.macro_f1: nan is not a finite number in [0, 1]
    """
    if not isinstance(data, dict):
        raise InvalidInputError(f"{where}: a JSON {type(data).__name__}, not a result object")
    for name in ("upstream", "condition", "fold", "grid"):
        if data.get(name) != getattr(spec, name):
            raise InvalidInputError(
                f"{where}: {name} is {data.get(name)!r} but the plan puts run {spec.key} here "
                "(a result copied from another run?)"
            )
    classes = data.get("classes")
    if (
        not isinstance(classes, list)
        or not classes
        or not all(isinstance(c, str) and 0 < len(c) <= MAX_NAME for c in classes)
        or len(set(classes)) < len(classes)
    ):
        raise InvalidInputError(
            f"{where}: classes {classes!r} is not a list of distinct class names of 1 to {MAX_NAME} characters"
        )
    dev = check_scores(data.get("dev"), where=f"{where}: dev", required=["macro_f1"])
    test = check_scores(data.get("test"), where=f"{where}: test", required=["macro_f1", *(f"f1/{c}" for c in classes)])
    weights = data.get("layer_weights")
    if weights is not None:
        if not isinstance(weights, list):
            raise InvalidInputError(f"{where}: layer_weights {weights!r} is not a list of numbers")
        weights = [finite_number(w, where=f"{where}: layer_weights[{i}]") for i, w in enumerate(weights)] or None
    counts = data.get("cooccurrence")
    size = len(classes)
    if (
        not isinstance(counts, list)
        or len(counts) != size
        or not all(isinstance(r, list) and len(r) == size for r in counts)
    ):
        raise InvalidInputError(f"{where}: cooccurrence is not a {size} x {size} matrix of counts")
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_COUNT:
                raise InvalidInputError(f"{where}: cooccurrence[{i}][{j}]: {count!r} is not a count")
    return {
        "fold": spec.fold,
        "classes": classes,
        "dev": dev,
        "test": test,
        "layer_weights": weights,
        "cooccurrence": counts,
    }


def choose_grid(dev: Mapping[str, float]) -> str | None:
    """The grid point with the best mean dev score, ignoring scores that are not finite.

    ``max`` over a NaN would return whichever point came first (NaN compares false with
    everything), so a broken score could pick the grid point; it is never considered. On a
    tie the first point wins; with no finite score there is no choice (None).

    Examples:
        >>> choose_grid({"lr=1e-3": float("nan"), "lr=1e-4": 0.5, "lr=1e-5": 0.4})
        'lr=1e-4'
        >>> choose_grid({"lr=1e-3": float("nan")}) is None
        True
    """
    finite = {g: s for g, s in dev.items() if isinstance(s, int | float) and math.isfinite(s)}
    return max(finite, key=finite.get) if finite else None


def _skip(problems: list[str], problem: str) -> None:
    """Record an input that is not used, and say so at once."""
    if len(problem) > MAX_PROBLEM:  # keep the file (start) and the verdict (end)
        half = MAX_PROBLEM // 2
        problem = f"{problem[:half]} ...[{len(problem) - 2 * half} characters]... {problem[-half:]}"
    problems.append(problem)
    logger.warning("%s", problem)


def _plan_entries(results: Path, problems: list[str]) -> list[RunSpec]:
    """The plan's runs, each checked; an entry that names no usable run folder is a problem."""
    plan = results / PLAN_FILE
    if not os.path.lexists(plan):
        raise CorpusLayoutError(f"{results}: no {PLAN_FILE}; not a sweep RESULTS folder")
    data = read_json(resolve_inside(results, PLAN_FILE, what=str(plan)))
    entries = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InvalidInputError(f"{plan}: no list of runs; not a sweep plan")
    runs, seen = [], {}
    for number, entry in enumerate(entries, 1):
        where = f"{plan}: run {number}"
        try:  # the sweep's own reading of a plan entry: types, names that map to a folder of their own
            spec, problem = RunSpec.from_json(entry, where=where), None
            spec.key  # noqa: B018  (raises for a name that maps to no folder of its own)
        except InvalidInputError as err:
            spec, problem = None, str(err).removeprefix(f"{where}: ")
        if problem is None and spec.key in seen:
            problem = f"the same run folder {spec.key} as run {seen[spec.key]}; counted once"
        if problem is not None:
            _skip(problems, f"{where}: {problem}; skipped")
            continue
        seen[spec.key] = number
        runs.append(spec)
    if not runs:
        raise InvalidInputError(f"{plan}: no usable run ({len(entries)} entries, see the warnings)")
    return runs


def _read_result(results: Path, spec: RunSpec, problems: list[str]) -> dict | None:
    """The checked result of a finished run; None if unfinished or a problem (recorded)."""
    shown = results / spec.key / RESULT_FILE
    try:
        path = resolve_inside(results, Path(spec.key) / RESULT_FILE, what=f"{results / PLAN_FILE}: run {spec.key}")
        if not os.path.lexists(path):
            return None
        return check_result(read_json(path), spec, where=str(shown))
    except InvalidInputError as err:
        _skip(problems, f"{err}; skipped")
        return None


def _consistent(records: list[tuple[RunSpec, dict]], problems: list[str], results: Path) -> list[tuple[RunSpec, dict]]:
    """Results whose classes and number of layer weights agree with the first of their cell."""
    reference: dict[tuple[str, str], tuple[list[str], int]] = {}
    kept = []
    for spec, record in records:
        shape = (record["classes"], len(record["layer_weights"] or []))
        first = reference.setdefault((spec.upstream, spec.condition), shape)
        if shape != first:
            _skip(
                problems,
                f"{results / spec.key / RESULT_FILE}: classes {shape[0]} and {shape[1]} layer weight(s) differ from "
                f"the {first[0]} and {first[1]} of the other runs of {spec.upstream} / {spec.condition}; skipped",
            )
            continue
        kept.append((spec, record))
    return kept


def load_sweep(results: Path) -> Sweep:
    """Read the plan and every finished run of RESULTS; what cannot be used is in ``problems``.

    Raises:
        InvalidInputError: RESULTS has no readable plan, or no usable entry in it.
    """
    results = Path(results)
    problems: list[str] = []
    runs = _plan_entries(results, problems)
    records = [(spec, record) for spec in runs if (record := _read_result(results, spec, problems)) is not None]
    records = _consistent(records, problems, results)
    groups: dict[tuple[str, str, str], list[dict]] = {}
    expected: dict[tuple[str, str, str], int] = {}
    for spec in runs:
        key = (spec.upstream, spec.condition, spec.grid_name)
        expected[key] = expected.get(key, 0) + 1
        groups.setdefault(key, [])
    for spec, record in records:
        groups[(spec.upstream, spec.condition, spec.grid_name)].append(record)
    upstreams = list(dict.fromkeys(s.upstream for s in runs))
    conditions = list(dict.fromkeys(s.condition for s in runs))
    cells = {}
    for upstream in upstreams:
        for condition in conditions:
            options = {g: rs for (u, c, g), rs in groups.items() if (u, c) == (upstream, condition)}
            if not options:
                continue
            dev = {g: float(np.mean([r["dev"]["macro_f1"] for r in rs])) for g, rs in options.items() if rs}
            grid = choose_grid(dev) or next(iter(options))  # no finished fold: the first point, shown as missing
            cells[(upstream, condition)] = Cell(
                upstream,
                condition,
                grid,
                expected[(upstream, condition, grid)],
                sorted(options[grid], key=lambda r: r["fold"]),
                dev,
            )
    return Sweep(cells, upstreams, conditions, len(runs), len(records), problems)
