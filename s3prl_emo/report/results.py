"""Collect a sweep's ``result.json`` files into per-(upstream, condition) cells.

The grid point of a cell is chosen by the best mean dev macro-F1 over its finished folds,
never by a test score. A cell knows how many folds the plan asked for, so an incomplete
sweep is reported as such and never averaged over missing folds.

A cell whose planned runs are all finished also gets its test utterances, pooled over
folds and averaged over seeds (``Cell.pooled``, see ``pool``): the per-utterance
probabilities and references the expert wrote into each run's ``exp/`` folder. Where they
are missing (an experiment folder removed) the cell has no interval and ``Cell.pooled_note``
says why.

Everything under RESULTS is untrusted input. A plan entry, ``result.json`` or prediction
file whose path leads outside RESULTS (``..``, a symbolic link), a file that is not JSON (or
CSV), a figure that is not a finite number in its range, a result written for another run,
or classes that differ from the other runs of its cell: each is named in ``Sweep.problems``
(and logged) and skipped. It never crashes the report and never becomes one of its figures.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CorpusLayoutError, InvalidInputError
from ..metrics import multilabel_macro_f1
from ..runtime.guards import finite_number, read_json, resolve_inside
from ..sweep.plan import PLAN_FILE, RESULT_FILE, RunSpec

logger = logging.getLogger(__name__)

UNIT_SCORES = ("macro_f1", "micro_f1", "weighted_f1", "samples_f1", "macro_f1_batch_mean")
"""Scores of a split that are shares, in [0, 1], wherever they appear."""
UNIT_PREFIXES = ("f1/", "precision/", "recall/")
COUNT_PREFIXES = ("support/",)
LOSSES = ("loss", "loss_batch_mean", "loss_attributes", "loss_categorical")
CORRELATION_SCORES = ("ccc_mean",)
CORRELATION_PREFIXES = ("ccc/", "pearson/")
"""Coefficients in [-1, 1]; null (undefined: both sides constant) is read as NaN."""
ERROR_PREFIXES = ("mae/",)
MAX_COUNT = 2**40  # a count beyond this is no count of test utterances (and sums of them fit in int64)
MAX_NAME = 255  # characters of an upstream, condition or class name (a file name's length)
MAX_PROBLEM = 500  # characters of a problem as logged and shown: a value quoted in it may be huge
MAX_PREDICTION_BYTES = 512 * 2**20  # a test split's probabilities: megabytes for the largest corpora
F1_TOLERANCE = 1e-3  # undigested predictions must give the result's test macro-F1 (probabilities have 6 decimals)


@dataclass(frozen=True)
class RunPredictions:
    """One run's test split, utterance by utterance, rows sorted by file name.

    ``truth`` is the reference binarised at 1/C, as the expert wrote it (``*_truth.txt``):
    the metrics binarise soft labels by that rule, so it is all they need.
    """

    fold: int
    seed: int | None
    names: np.ndarray  # (N,) file names
    truth: np.ndarray  # (N, C) bool
    probs: np.ndarray  # (N, C) predicted probabilities


@dataclass(frozen=True)
class Pooled:
    """A cell's test utterances over all its folds, seeds averaged in probability space."""

    names: np.ndarray  # (N,) file names, sorted
    truth: np.ndarray  # (N, C) bool
    probs: np.ndarray  # (N, C) mean over seeds of each utterance's probabilities
    folds: int
    seeds: int


class FoldRuns:
    """What a cell's finished runs (``results``, their ``result.json`` records) say over folds."""

    results: list[dict]
    planned_runs: int  # how many runs the plan holds for the cell
    upstream: str
    condition: str
    pooled: object | None
    pooled_note: str

    @property
    def runs(self) -> int:
        return len(self.results)

    @property
    def folds(self) -> int:
        """Folds with at least one finished run (with one seed: the finished runs)."""
        return len({r["fold"] for r in self.results})

    @property
    def complete(self) -> bool:
        return self.runs == self.planned_runs

    def fold_std(self, key: str = "macro_f1") -> float:
        """Sample standard deviation over folds of each fold's mean test ``key`` over seeds (0 for one fold)."""
        groups: dict = {}
        for record in self.results:
            groups.setdefault(record["fold"], []).append(record["test"][key])
        means = [float(np.mean(v)) for v in groups.values()]
        return float(np.std(means, ddof=1)) if len(means) > 1 else 0.0


@dataclass
class Cell(FoldRuns):
    """The runs of one (upstream, condition) at its chosen grid point."""

    upstream: str
    condition: str
    grid: str
    expected_folds: int
    results: list[dict] = field(default_factory=list)
    grid_dev: dict[str, float] = field(default_factory=dict)  # grid point -> mean dev macro-F1
    expected_runs: int | None = None  # folds x seeds planned (None: one seed, expected_folds)
    pooled: Pooled | None = None  # set when every planned run is finished and its predictions read
    pooled_note: str = ""  # why ``pooled`` is None
    specs: list[RunSpec] = field(default_factory=list)  # the runs of ``results``, in the same order

    @property
    def seeds(self) -> int:
        """Seeds with at least one finished run."""
        return len({r.get("seed") for r in self.results})

    @property
    def planned_runs(self) -> int:
        return self.expected_folds if self.expected_runs is None else self.expected_runs

    def test_scores(self, key: str = "macro_f1") -> np.ndarray:
        return np.array([r["test"][key] for r in self.results], dtype=float)

    @property
    def mean(self) -> float:
        """Mean test score over all finished runs (seeds and folds)."""
        return float(self.test_scores().mean()) if self.results else float("nan")

    @property
    def std(self) -> float:
        """Sample standard deviation over folds of each fold's mean over seeds (0 for a single fold)."""
        return self.fold_std("macro_f1")

    @property
    def seed_std(self) -> float:
        """Seed-to-seed sample standard deviation of each seed's mean over folds (NaN below two seeds).

        Only seeds with every finished fold count, so that a seed missing a hard fold does not
        look like a better seed."""
        folds = {r["fold"] for r in self.results}
        full = [s for s in {r.get("seed") for r in self.results} if {r["fold"] for r in self._of(s)} == folds]
        means = [float(np.mean([r["test"]["macro_f1"] for r in self._of(s)])) for s in full]
        return float(np.std(means, ddof=1)) if len(means) > 1 else float("nan")

    def _of(self, seed) -> list[dict]:
        return [r for r in self.results if r.get("seed") == seed]

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
    # (upstream, condition) -> the attribute scores of its runs (``attributes.AttributeCell``);
    # empty for a categorical sweep. Conditions whose runs are all attribute-only are not in
    # ``conditions`` (the macro-F1 leaderboard) but in ``attribute_conditions``.
    attribute_cells: dict = field(default_factory=dict)
    attribute_conditions: list[str] = field(default_factory=list)

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
        if key in CORRELATION_SCORES or key.startswith(CORRELATION_PREFIXES):
            out[key] = math.nan if value is None else finite_number(value, where=f"{where}.{key}", low=-1, high=1)
        elif key.startswith(ERROR_PREFIXES):
            out[key] = finite_number(value, where=f"{where}.{key}", low=0)
        elif key in UNIT_SCORES or key.startswith(UNIT_PREFIXES):
            out[key] = finite_number(value, where=f"{where}.{key}", low=0, high=1)
        elif key.startswith(COUNT_PREFIXES):
            out[key] = finite_number(value, where=f"{where}.{key}", low=0)
        elif key in LOSSES:
            out[key] = finite_number(value, where=f"{where}.{key}")
    return out


def check_result(data: object, spec: RunSpec, *, where: str) -> dict:
    """The fields of a ``result.json`` the report uses, checked against the run the plan puts there.

    Returns:
        ``fold`` and ``seed`` (the plan's), ``classes``, ``dev`` and ``test`` scores
        (``check_scores``), ``layer_weights`` (finite numbers, or None), ``cooccurrence``
        (C x C counts) and ``test_predictions`` (as found; ``read_predictions`` checks it).

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
    for name in ("upstream", "condition", "fold", "grid", "seed"):
        if data.get(name) != getattr(spec, name):
            raise InvalidInputError(
                f"{where}: {name} is {data.get(name)!r} but the plan puts run {spec.key} here "
                "(a result copied from another run?)"
            )
    classes = data.get("classes")
    attributes = _attributes_of(data.get("test"), where)
    if (
        not isinstance(classes, list)
        or not (classes or attributes)
        or not all(isinstance(c, str) and 0 < len(c) <= MAX_NAME for c in classes)
        or len(set(classes)) < len(classes)
    ):
        raise InvalidInputError(
            f"{where}: classes {classes!r} is not a list of distinct class names of 1 to {MAX_NAME} characters"
        )
    required = ["macro_f1"] if classes else []
    dev = check_scores(data.get("dev"), where=f"{where}: dev", required=required + (["ccc_mean"] if attributes else []))
    test = check_scores(
        data.get("test"),
        where=f"{where}: test",
        required=required + [f"f1/{c}" for c in classes] + [f"ccc/{a}" for a in attributes],
    )
    weights = data.get("layer_weights")
    if weights is not None:
        if not isinstance(weights, list):
            raise InvalidInputError(f"{where}: layer_weights {weights!r} is not a list of numbers")
        weights = [finite_number(w, where=f"{where}: layer_weights[{i}]") for i, w in enumerate(weights)] or None
    counts = data.get("cooccurrence", [] if not classes else None)
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
        "seed": spec.seed,
        "classes": classes,
        "dev": dev,
        "test": test,
        "layer_weights": weights,
        "cooccurrence": counts,
        "test_predictions": data.get("test_predictions"),
        "attributes": attributes,
        "attribute_predictions": data.get("attribute_predictions"),
    }


def _attributes_of(test: object, where: str) -> list[str]:
    """The attributes a run's test scores hold (``ccc/<attr>`` keys, in order); [] for a categorical run."""
    if not isinstance(test, dict):
        return []
    names = [key.split("/", 1)[1] for key in test if isinstance(key, str) and key.startswith("ccc/")]
    if any(not 0 < len(name) <= MAX_NAME for name in names):
        raise InvalidInputError(f"{where}: test: an attribute name of none or more than {MAX_NAME} characters")
    return names


def _prediction_files(record: dict, spec: RunSpec, where: str) -> tuple[str, str, dict[str, str] | None]:
    """The probabilities and truth files of a run (relative to its folder) and their digests.

    ``result.json`` names them in ``test_predictions`` since the sweep records them; results
    written before that hold no such entry, and the expert's own names are used, undigested.
    """
    entry = record.get("test_predictions")
    if entry is None:
        return f"exp/test_fold{spec.fold}_probs.csv", f"exp/test_fold{spec.fold}_truth.txt", None
    files = _prediction_entry(entry, "test_predictions", ("probs", "truth"), where)
    return files["probs"], files["truth"], {"probs": files["probs_sha256"], "truth": files["truth_sha256"]}


def _prediction_entry(entry: object, field: str, kinds: tuple[str, str], where: str) -> dict[str, str]:
    """The two prediction files a record's ``field`` names (``<kind>``) and their digests
    (``<kind>_sha256``), checked: plain names of a sane length, SHA-256 hex digests."""
    keys = (*kinds, *(f"{kind}_sha256" for kind in kinds))
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in keys):
        raise InvalidInputError(f"{where}: {field} is not an object of {', '.join(keys)} strings")
    for name in kinds:
        if not 0 < len(entry[name]) <= 4 * MAX_NAME:
            raise InvalidInputError(f"{where}: {field}.{name} {entry[name][:80]!r} is not a file name")
    for name in keys[2:]:
        if not re.fullmatch(r"[0-9a-f]{64}", entry[name]):
            raise InvalidInputError(f"{where}: {field}.{name} {entry[name][:80]!r} is not a SHA-256 digest")
    return {k: entry[k] for k in keys}


def _read_bounded(path: Path, shown: str, digest: str | None) -> str:
    """A regular file's UTF-8 text, at most ``MAX_PREDICTION_BYTES``; its SHA-256 checked if one is given."""
    if not path.is_file():
        raise InvalidInputError(f"{shown}: not a regular file")
    size = path.stat().st_size
    if size > MAX_PREDICTION_BYTES:
        raise InvalidInputError(
            f"{shown}: {size} bytes, more than the {MAX_PREDICTION_BYTES} a prediction file may hold"
        )
    data = path.read_bytes()[: MAX_PREDICTION_BYTES + 1]
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        raise InvalidInputError(
            f"{shown}: its SHA-256 differs from the one result.json recorded (rewritten after the run finished?)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidInputError(f"{shown}: not UTF-8 text ({err.reason} at byte {err.start})") from err


def parse_table(
    text: str, columns: Sequence[str], *, where: str, unit: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """File names and (N, K) values of a ``FileName,<column>...`` CSV, e.g. ``*_attributes.csv``.

    Args:
        text: the file's text.
        columns: the value columns expected after ``FileName``, in order.
        where: the file, as errors name it.
        unit: the closed interval every value must lie in (None: any finite number).

    Raises:
        InvalidInputError: not a CSV, other columns, no rows, an empty or repeated FileName,
            or a value that is not a finite number (in ``unit``), naming the line and column.

    Examples:
        >>> names, values = parse_table("FileName,EmoAct\\nx.wav,2.5\\n", ["EmoAct"], where="a.csv")
        >>> names.tolist(), values.tolist()
        (['x.wav'], [[2.5]])
    """
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise InvalidInputError(f"{where}: not a CSV table ({str(err).strip()[:200]})") from err
    expected = ["FileName", *columns]
    if list(table.columns) != expected:
        raise InvalidInputError(f"{where}: columns {list(table.columns)[:20]}; expected {expected}")
    if table.empty:
        raise InvalidInputError(f"{where}: no rows")
    bad_name = table["FileName"].duplicated().to_numpy() | (table["FileName"] == "").to_numpy()
    if bad_name.any():
        raise InvalidInputError(f"{where}: line {int(np.argmax(bad_name)) + 2}: an empty or repeated FileName")
    values = table[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if unit is not None:
        bad |= (values < unit[0]) | (values > unit[1])
    if bad.any():
        row, column = np.argwhere(bad)[0]
        kind = "a finite number" if unit is None else f"a probability in [{unit[0]:g}, {unit[1]:g}]"
        raise InvalidInputError(
            f"{where}: line {row + 2}, column {columns[column]}: {table.iat[row, column + 1][:80]!r} is not {kind}"
        )
    return table["FileName"].to_numpy(dtype=object), values


def parse_probabilities(text: str, classes: Sequence[str], *, where: str) -> tuple[np.ndarray, np.ndarray]:
    """File names and (N, C) probabilities of an expert's ``*_probs.csv`` (``FileName`` + one column a class).

    Raises:
        InvalidInputError: other columns, no rows, an empty or repeated file name, or a
            value that is not a finite number in [0, 1]; naming ``where`` and the row.

    Examples:
        >>> names, probs = parse_probabilities("FileName,a,b\\nx.wav,0.25,0.75\\n", ["a", "b"], where="p.csv")
        >>> names.tolist(), probs.tolist()
        (['x.wav'], [[0.25, 0.75]])
    """
    return parse_table(text, classes, where=where, unit=(0.0, 1.0))


def parse_truth(text: str, names: np.ndarray, classes: Sequence[str], *, where: str) -> np.ndarray:
    """(N, C) bool reference of an expert's ``*_truth.txt``: ``FileName class1;class2`` lines in ``names``' order.

    Raises:
        InvalidInputError: another number of lines, another file name on a line, an unknown
            class, or class names that hold ``;`` (the format cannot tell them apart).

    Examples:
        >>> parse_truth("x.wav b\\ny.wav \\n", np.array(["x.wav", "y.wav"]), ["a", "b"], where="t.txt").tolist()
        [[False, True], [False, False]]
    """
    if any(";" in c or "\n" in c for c in classes):
        raise InvalidInputError(
            f"{where}: class names {list(classes)} hold ';' or a line break; the file cannot name them"
        )
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(names):
        raise InvalidInputError(f"{where}: {len(lines)} lines for the {len(names)} rows of the probabilities")
    index = {c: i for i, c in enumerate(classes)}
    truth = np.zeros((len(names), len(classes)), dtype=bool)
    for row, (line, name) in enumerate(zip(lines, names, strict=True)):
        if not line.startswith(f"{name} "):
            raise InvalidInputError(
                f"{where}: line {row + 1} is not about {str(name)[:80]!r}, row {row + 1} of the probabilities"
            )
        labels = line[len(name) + 1 :]
        for label in labels.split(";") if labels else []:
            if label not in index:
                raise InvalidInputError(
                    f"{where}: line {row + 1}: {label[:80]!r} is not one of the classes {list(classes)}"
                )
            truth[row, index[label]] = True
    return truth


def read_predictions(results: Path, spec: RunSpec, record: dict) -> RunPredictions | None:
    """The test split of a finished run, utterance by utterance; None when its files are gone.

    Paths come from ``result.json`` and are used only inside RESULTS. Files whose digest was
    recorded must still have it; older runs' files (no digest) must reproduce the result's
    test macro-F1 to ``F1_TOLERANCE``, so that files of another run are never pooled.

    Raises:
        InvalidInputError: a path leads outside RESULTS, or a file is not what the run wrote.
    """
    where = str(results / spec.key / RESULT_FILE)
    probs_name, truth_name, digests = _prediction_files(record, spec, where)
    paths = {}
    for kind, name in (("probs", probs_name), ("truth", truth_name)):
        paths[kind] = resolve_inside(results, Path(spec.key) / name, what=f"{where}: test_predictions.{kind}")
        if not os.path.lexists(paths[kind]):
            return None
    shown = {kind: str(results / spec.key / name) for kind, name in (("probs", probs_name), ("truth", truth_name))}
    classes = record["classes"]
    names, probs = parse_probabilities(
        _read_bounded(paths["probs"], shown["probs"], digests and digests["probs"]), classes, where=shown["probs"]
    )
    truth = parse_truth(
        _read_bounded(paths["truth"], shown["truth"], digests and digests["truth"]),
        names,
        classes,
        where=shown["truth"],
    )
    if digests is None:
        score = multilabel_macro_f1(probs, truth.astype(float))
        if abs(score - record["test"]["macro_f1"]) > F1_TOLERANCE:
            raise InvalidInputError(
                f"{shown['probs']}: gives test macro-F1 {score:.5f}, not the {record['test']['macro_f1']:.5f} of "
                "result.json: not the predictions this result was computed from"
            )
    order = np.argsort(names, kind="stable")
    return RunPredictions(spec.fold, spec.seed, names[order], truth[order], probs[order])


def pool(runs: Sequence[RunPredictions]) -> Pooled:
    """One cell's test utterances over its folds, each utterance's probabilities averaged over seeds.

    Every utterance of the corpus is in exactly one fold's test split and is scored by that
    fold's models; the seeds of a fold are averaged in probability space (the mean of their
    predicted distributions, binarised afterwards), so the pooled set holds each utterance once.

    Raises:
        InvalidInputError: no runs, the seeds of a fold saw other utterances or another
            reference, or an utterance is in the test split of two folds.

    Examples:
        >>> truth = np.array([[True, False]])
        >>> a = RunPredictions(1, 1, np.array(["x"]), truth, np.array([[0.8, 0.2]]))
        >>> b = RunPredictions(1, 2, np.array(["x"]), truth, np.array([[0.4, 0.6]]))
        >>> c = RunPredictions(2, 1, np.array(["y"]), ~truth, np.array([[0.1, 0.9]]))
        >>> pooled = pool([a, b, c])
        >>> pooled.names.tolist(), pooled.probs.round(2).tolist(), (pooled.folds, pooled.seeds)
        (['x', 'y'], [[0.6, 0.4], [0.1, 0.9]], (2, 2))
    """
    if not runs:
        raise InvalidInputError("pool: no runs to pool")
    by_fold: dict[int, list[RunPredictions]] = {}
    for run in runs:
        by_fold.setdefault(run.fold, []).append(run)
    names, truth, probs = [], [], []
    for fold, group in sorted(by_fold.items()):
        first = group[0]
        for other in group[1:]:
            if not np.array_equal(other.names, first.names) or not np.array_equal(other.truth, first.truth):
                raise InvalidInputError(
                    f"fold {fold}: seeds {first.seed} and {other.seed} were tested on other utterances or references"
                )
        names.append(first.names)
        truth.append(first.truth)
        probs.append(np.mean([run.probs for run in group], axis=0))
    all_names = np.concatenate(names)
    order = np.argsort(all_names, kind="stable")
    all_names = all_names[order]
    twice = all_names[1:] == all_names[:-1]
    if twice.any():
        name = all_names[1:][twice][0]
        folds = [fold for fold, group in sorted(by_fold.items()) if name in set(group[0].names)]
        raise InvalidInputError(
            f"utterance {str(name)[:80]!r} is in the test split of folds {folds}; expected one fold"
        )
    return Pooled(
        all_names,
        np.concatenate(truth)[order],
        np.concatenate(probs)[order],
        len(by_fold),
        len({run.seed for run in runs}),
    )


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
        shape = (record["classes"], len(record["layer_weights"] or []), record["attributes"])
        first = reference.setdefault((spec.upstream, spec.condition), shape)
        if shape != first:
            _skip(
                problems,
                f"{results / spec.key / RESULT_FILE}: classes {shape[0]}, {shape[1]} layer weight(s) and attributes "
                f"{shape[2]} differ from the {first[0]}, {first[1]} and {first[2]} of the other runs of "
                f"{spec.upstream} / {spec.condition}; skipped",
            )
            continue
        kept.append((spec, record))
    return kept


def pool_cell(
    results: Path,
    cell: FoldRuns,
    runs: list[tuple[RunSpec, dict]],
    read: Callable[[Path, RunSpec, dict], object | None],
    combine: Callable[[list[tuple[RunSpec, object]]], object],
    problems: list[str],
    *,
    what: str = "predictions",
    interval: str = "interval",
) -> None:
    """Set ``cell.pooled`` to ``combine`` of what ``read`` finds for each run, or ``cell.pooled_note`` to why not.

    The class table pools each run's probabilities, the attribute table its attribute values:
    one rule for both (every planned run finished, each one's files readable and present).
    """
    if not cell.complete:
        cell.pooled_note = f"{cell.runs} of {cell.planned_runs} planned runs finished"
        return
    found, missing = [], []
    for spec, record in runs:
        try:
            kept = read(results, spec, record)
        except InvalidInputError as err:
            _skip(problems, f"{err}; no {interval} for {spec.upstream} / {spec.condition}")
            cell.pooled_note = f"the {what} of run {spec.key} are unusable (see the skipped inputs)"
            return
        if kept is None:
            missing.append(spec.key)
        else:
            found.append((spec, kept))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        cell.pooled_note = f"no per-utterance test {what} in run {missing[0]}{more} (its exp/ folder is gone)"
        return
    try:
        cell.pooled = combine(found)
    except InvalidInputError as err:
        _skip(problems, f"{results}: {cell.upstream} / {cell.condition}: {err}; no {interval}")
        cell.pooled_note = f"its runs' test utterances do not pool: {err}"


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
    groups: dict[tuple[str, str, str], list[tuple[RunSpec, dict]]] = {}
    planned: dict[tuple[str, str, str], list[RunSpec]] = {}
    for spec in runs:
        key = (spec.upstream, spec.condition, spec.grid_name)
        planned.setdefault(key, []).append(spec)
        groups.setdefault(key, [])
    for spec, record in records:
        groups[(spec.upstream, spec.condition, spec.grid_name)].append((spec, record))
    upstreams = list(dict.fromkeys(s.upstream for s in runs))
    every_condition = list(dict.fromkeys(s.condition for s in runs))
    finished_of = {c: [r for s, r in records if s.condition == c] for c in every_condition}
    # A condition whose finished runs have no class head (task: attributes) has no macro-F1.
    attribute_only = {c for c, rs in finished_of.items() if rs and not any(r["classes"] for r in rs)}
    conditions = [c for c in every_condition if c not in attribute_only]
    cells = {}
    for upstream in upstreams:
        for condition in conditions:
            options = {g: rs for (u, c, g), rs in groups.items() if (u, c) == (upstream, condition)}
            if not options:
                continue
            dev = {g: float(np.mean([r["dev"]["macro_f1"] for _, r in rs])) for g, rs in options.items() if rs}
            grid = choose_grid(dev) or next(iter(options))  # no finished fold: the first point, shown as missing
            chosen = sorted(options[grid], key=lambda pair: (pair[1]["fold"], pair[1]["seed"] or 0))
            specs = planned[(upstream, condition, grid)]
            cell = Cell(
                upstream,
                condition,
                grid,
                len({s.fold for s in specs}),
                [record for _, record in chosen],
                dev,
                expected_runs=len(specs),
                specs=[spec for spec, _ in chosen],
            )
            pool_cell(results, cell, chosen, read_predictions, lambda found: pool([r for _, r in found]), problems)
            cells[(upstream, condition)] = cell
    from .attributes import attribute_cells  # the attribute table builds on this module

    grids = {key: cell.grid for key, cell in cells.items()}
    found = attribute_cells(results, upstreams, every_condition, groups, planned, grids, problems)
    attribute_conditions = [c for c in every_condition if any((u, c) in found for u in upstreams)]
    return Sweep(cells, upstreams, conditions, len(runs), len(records), problems, found, attribute_conditions)
