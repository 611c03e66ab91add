"""The cross-corpus matrix of a sweep run with ``--cross-eval``: per upstream, train x test condition.

Definitions (``docs/guide/cross-corpus.md`` says the same in words):

- ``S(i, j)``: the classes the models of condition i share with condition j, matched by name
  as ``cross-eval`` matches them (``sweep.plan.shared_classes``), in i's class order. A pair
  sharing fewer than two classes is skipped: the sweep evaluated nothing there.
- Off-diagonal cell (i, j): macro-F1 over ``S(i, j)`` of i's runs (those the leaderboard
  reports: the cell's grid point, every fold and seed) on j's test utterances, read from each
  run's ``cross/<j>.json``. Beside it, the *in-corpus reference*: the same runs on their own
  test sets, restricted to ``S(i, j)``: what the cell compares like with like.
- Diagonal cell (i, i): the in-corpus figure over the row's common classes, the classes i
  shares with every column of its row that is not skipped (all of i's classes when there is
  none), so that one number sits on a class set every cell of the row scores.
- Figures: the mean over runs (seeds and folds), the standard deviation over folds of each
  fold's mean over seeds, and the number of runs, as the leaderboard counts them.

In-corpus figures come from each run's evaluation on its own condition (``cross/<i>.json``
and its ``probs.csv`` / ``labels.csv``, over all of i's classes): both matrices keep the
cell's classes and each row is divided by its sum, which is exactly what ``cross-eval
--classes`` scores, since renormalising commutes with dropping columns.

Intervals (only where every run of the figure has readable per-utterance files; resamples index
the utterances in file-name order):

- cross cells: every fold's model scores every one of j's utterances, so folds are not
  concatenated as the leaderboard concatenates them: per fold the seeds are averaged in
  probability space, the figure is the mean over folds of each fold's macro-F1, and its
  bootstrap resamples j's utterances once per resample for all folds alike (seeded with
  ``significance.condition_seed(j)``), averaging the folds' scores resample by resample;
- in-corpus figures: the leaderboard's pooling (``results.pool``: folds concatenated, seeds
  averaged), each run restricted first, resampled with ``condition_seed(i)``.
  (A target of the model's own corpus in another condition, e.g. IMPROV_S for IMPROV_P, is
  scored on each fold's test set, and pooled the same way.)

Every ``cross/<condition>.json`` and its files are untrusted, as the rest of RESULTS: a path
outside RESULTS, a file that is not JSON, a figure that is not finite or in range, a field of
the wrong type, a result written for another run or other classes, or per-utterance files
that do not give its figure: each is named in ``problems`` and skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..inference.cross_eval import restrict_rows
from ..metrics import binarize, multilabel_macro_f1
from ..runtime.guards import read_json, resolve_inside
from ..stats import bootstrap_scores, percentile_interval
from ..sweep.cross import CROSS_DIR
from ..sweep.plan import PLAN_FILE, RunSpec, folder_name, parse_cross_eval, shared_classes
from .results import (
    MAX_NAME,
    Cell,
    RunPredictions,
    Sweep,
    _prediction_entry,
    _read_bounded,
    _skip,
    check_scores,
    parse_probabilities,
)
from .results import pool as pool_folds
from .significance import CONFIDENCE, N_RESAMPLES, Interval, condition_seed

F1_TOLERANCE = 1e-6  # per-utterance files are written at full precision: they give the JSON's macro-F1


@dataclass(frozen=True)
class Evaluation:
    """One run's evaluation on one condition; ``probs``/``labels`` None when the files are unusable."""

    fold: int
    seed: int | None
    classes: tuple[str, ...]  # the classes scored (model names)
    macro_f1: float
    in_corpus: bool
    names: np.ndarray | None = None  # (N,) sorted
    probs: np.ndarray | None = None  # (N, C') restricted model probabilities
    labels: np.ndarray | None = None  # (N, C') restricted soft labels

    def restricted(self, keep: Sequence[str]) -> Evaluation:
        """The same evaluation over ``keep`` (a subset of its classes): both matrices restricted and renormalised.

        Examples:
            >>> e = Evaluation(1, None, ("a", "b", "c"), 0.0, True, np.array(["x"]),
            ...                np.array([[0.5, 0.3, 0.2]]), np.array([[0.6, 0.0, 0.4]]))
            >>> r = e.restricted(["a", "c"])
            >>> r.probs.round(3).tolist(), r.labels.round(3).tolist(), r.macro_f1
            ([[0.714, 0.286]], [[0.6, 0.4]], 0.5)
        """
        keep = tuple(keep)
        if keep == self.classes or self.probs is None:
            return self
        columns = [[self.classes.index(c)] for c in keep]
        probs, labels = restrict_rows(self.probs, columns), restrict_rows(self.labels, columns)
        score = multilabel_macro_f1(probs, labels)
        return Evaluation(self.fold, self.seed, keep, score, self.in_corpus, self.names, probs, labels)


@dataclass
class Figure:
    """A number of the matrix: per-run macro-F1 over ``classes`` and, when pooled, an interval."""

    classes: tuple[str, ...]
    scores: list[tuple[int, int | None, float]]  # (fold, seed, macro-F1) of each run
    expected_runs: int
    interval: Interval | None = None
    note: str = ""  # why there is no interval

    @property
    def runs(self) -> int:
        return len(self.scores)

    @property
    def folds(self) -> int:
        return len({fold for fold, _, _ in self.scores})

    @property
    def seeds(self) -> int:
        return len({seed for _, seed, _ in self.scores})

    @property
    def complete(self) -> bool:
        return self.runs == self.expected_runs

    @property
    def mean(self) -> float:
        return float(np.mean([s for _, _, s in self.scores])) if self.scores else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over folds of each fold's mean over seeds (0 for one fold)."""
        by_fold: dict[int, list[float]] = {}
        for fold, _, score in self.scores:
            by_fold.setdefault(fold, []).append(score)
        means = [np.mean(v) for v in by_fold.values()]
        return float(np.std(means, ddof=1)) if len(means) > 1 else (0.0 if means else math.nan)


@dataclass
class MatrixCell:
    """Row ``train``, column ``test`` of an upstream's matrix."""

    upstream: str
    train: str
    test: str
    figure: Figure | None = None  # None: skipped, or no run of the row finished
    in_corpus: Figure | None = None  # off-diagonal: the row's own test sets on the same classes
    skipped: str = ""  # why the pair has no cell

    @property
    def diagonal(self) -> bool:
        return self.train == self.test


@dataclass
class CrossMatrix:
    """Every upstream's matrix; ``problems`` are inputs named and skipped."""

    upstreams: list[str]
    conditions: dict[str, list[str]]  # upstream -> its conditions (rows and columns alike)
    cells: dict[tuple[str, str, str], MatrixCell]  # (upstream, train, test)
    problems: list[str] = field(default_factory=list)
    n_resamples: int = N_RESAMPLES
    confidence: float = CONFIDENCE


# -- reading ----------------------------------------------------------------------------------


def check_evaluation(data: object, spec: RunSpec, condition: str, classes: Sequence[str], *, where: str) -> dict:
    """The fields of a ``cross/<condition>.json`` the matrix uses, checked against the run and its classes.

    Returns:
        ``classes`` (the shared classes scored, a subset of the model's ``classes``),
        ``macro_f1``, ``in_corpus`` and ``predictions`` (as found; checked when read).

    Raises:
        InvalidInputError: naming ``where`` and the first field that is wrong.

    Examples:
        >>> spec = RunSpec("fbank", None, "A", "A.yaml", 1)
        >>> good = {"run": {"upstream": "fbank", "condition": "A", "fold": 1, "grid": {}, "seed": None},
        ...         "condition": "B", "shared_classes": ["x", "y"], "in_corpus": False,
        ...         "macro_f1": 0.5, "f1/x": 0.4, "f1/y": 0.6}
        >>> check_evaluation(good, spec, "B", ["x", "y", "z"], where="B.json")["classes"]
        ('x', 'y')
        >>> check_evaluation({**good, "macro_f1": "0.5"}, spec, "B", ["x", "y"], where="B.json")
        Traceback (most recent call last):
        ...
        s3prl_emo.errors.InvalidInputError: B.json: scores.macro_f1: '0.5' is not a number
    """
    if not isinstance(data, dict):
        raise InvalidInputError(f"{where}: a JSON {type(data).__name__}, not an evaluation object")
    run = data.get("run")
    expected = {"upstream": spec.upstream, "condition": spec.condition, "fold": spec.fold, "grid": spec.grid}
    if not isinstance(run, dict) or any(run.get(k) != v for k, v in {**expected, "seed": spec.seed}.items()):
        raise InvalidInputError(
            f"{where}: run is {str(run)[:200]} but the plan puts run {spec.key} here (copied from another run?)"
        )
    if data.get("condition") != condition:
        raise InvalidInputError(f"{where}: condition is {str(data.get('condition'))[:80]!r}, not {condition!r}")
    shared = data.get("shared_classes")
    if (
        not isinstance(shared, list)
        or len(shared) < 2
        or not all(isinstance(c, str) and 0 < len(c) <= MAX_NAME and c in classes for c in shared)
        or len(set(shared)) < len(shared)
    ):
        raise InvalidInputError(
            f"{where}: shared_classes {repr(shared)[:200]} is not a list of 2 or more distinct classes of the "
            f"model's {list(classes)}"
        )
    if not isinstance(data.get("in_corpus"), bool):
        raise InvalidInputError(f"{where}: in_corpus {str(data.get('in_corpus'))[:80]!r} is not true or false")
    scores = check_scores(data, where=f"{where}: scores", required=["macro_f1", *(f"f1/{c}" for c in shared)])
    return {
        "classes": tuple(shared),
        "macro_f1": scores["macro_f1"],
        "in_corpus": data["in_corpus"],
        "predictions": data.get("predictions"),
    }


def _read_matrices(results: Path, spec: RunSpec, checked: dict, where: str) -> tuple[np.ndarray, ...] | None:
    """(names, probs, labels) sorted by name, from the files ``predictions`` names; None when they are gone.

    Raises:
        InvalidInputError: a path leads outside RESULTS, a file is not what the evaluation wrote,
            or the files do not give its macro-F1.
    """
    files = _prediction_entry(checked["predictions"], "predictions", ("probs", "labels"), where)
    classes = checked["classes"]
    read = {}
    for kind in ("probs", "labels"):
        path = resolve_inside(results, Path(spec.key) / files[kind], what=f"{where}: predictions.{kind}")
        if not path.exists():
            return None
        shown = str(results / spec.key / files[kind])
        text = _read_bounded(path, shown, files[f"{kind}_sha256"])
        read[kind] = parse_probabilities(text, classes, where=shown)
    names, probs = read["probs"]
    if not np.array_equal(read["labels"][0], names):
        raise InvalidInputError(f"{where}: its labels and probabilities list other utterances")
    labels = read["labels"][1]
    score = multilabel_macro_f1(probs, labels)
    if abs(score - checked["macro_f1"]) > F1_TOLERANCE:
        raise InvalidInputError(
            f"{where}: its per-utterance files give macro-F1 {score:.6f}, not its {checked['macro_f1']:.6f}"
        )
    order = np.argsort(names, kind="stable")
    return names[order], probs[order], labels[order]


def read_evaluation(
    results: Path, spec: RunSpec, condition: str, classes: Sequence[str], problems: list[str]
) -> Evaluation | None:
    """A run's ``cross/<condition>.json`` and, where usable, its per-utterance files; None: absent or skipped.

    A bad JSON is named in ``problems`` and skipped (None); bad per-utterance files are named
    and the evaluation kept without them (its figure stands, it has no interval).
    """
    name = f"{CROSS_DIR}/{folder_name(condition, what='condition')}.json"
    where = str(results / spec.key / name)
    try:
        path = resolve_inside(results, Path(spec.key) / name, what=where)
        if not path.exists() and not Path(where).is_symlink():
            return None
        checked = check_evaluation(read_json(path), spec, condition, classes, where=where)
    except InvalidInputError as err:
        _skip(problems, f"{err}; skipped")
        return None
    evaluation = Evaluation(spec.fold, spec.seed, checked["classes"], checked["macro_f1"], checked["in_corpus"])
    try:
        matrices = _read_matrices(results, spec, checked, where)
    except InvalidInputError as err:
        _skip(problems, f"{err}; no interval or in-corpus figure from this evaluation")
        return evaluation
    if matrices is None:
        return evaluation
    return Evaluation(spec.fold, spec.seed, checked["classes"], checked["macro_f1"], checked["in_corpus"], *matrices)


def read_cross_classes(results: Path, problems: list[str]) -> dict[str, tuple[str, ...]] | None:
    """The plan's ``cross_eval`` classes (None: the sweep did not evaluate across corpora, or the block is bad)."""
    where = str(results / PLAN_FILE)
    try:
        return parse_cross_eval(read_json(resolve_inside(results, PLAN_FILE, what=where)), where=where)
    except InvalidInputError as err:
        _skip(problems, f"{err}; no cross-corpus matrix")
        return None


# -- the figures ------------------------------------------------------------------------------


def _by_fold(evaluations: Sequence[Evaluation]) -> dict[int, list[Evaluation]]:
    groups: dict[int, list[Evaluation]] = {}
    for evaluation in evaluations:
        groups.setdefault(evaluation.fold, []).append(evaluation)
    return dict(sorted(groups.items()))


def cross_interval(
    evaluations: Sequence[Evaluation], *, seed: int, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE
) -> Interval:
    """The interval of a cross cell: every fold scored on the same target utterances.

    Per fold, seeds are averaged in probability space; the value is the mean over folds of
    each fold's macro-F1, and each bootstrap resample draws the target's utterances once for
    all folds (the same ``seed``), averaging their scores.

    Raises:
        InvalidInputError: the runs were scored on other utterances or references.

    Examples:
        >>> names, labels = np.array(["u1", "u2"]), np.array([[0.9, 0.1], [0.2, 0.8]])
        >>> a = Evaluation(1, None, ("x", "y"), 1.0, False, names, np.array([[0.8, 0.2], [0.1, 0.9]]), labels)
        >>> b = Evaluation(2, None, ("x", "y"), 0.0, False, names, np.array([[0.2, 0.8], [0.9, 0.1]]), labels)
        >>> cross_interval([a, b], seed=0, n_resamples=50).value
        0.5
    """
    first = evaluations[0]
    for other in evaluations:
        if not (np.array_equal(other.names, first.names) and np.array_equal(other.labels, first.labels)):
            raise InvalidInputError(
                f"fold {other.fold}, seed {other.seed}: scored on other utterances or references than "
                f"fold {first.fold}, seed {first.seed}"
            )
    scores, values = [], []
    for group in _by_fold(evaluations).values():
        probs = np.mean([e.probs for e in group], axis=0)
        values.append(multilabel_macro_f1(probs, first.labels))
        scores.append(bootstrap_scores(first.labels, probs, n_resamples=n_resamples, seed=seed))
    low, high = percentile_interval(np.mean(scores, axis=0), confidence=confidence)
    return Interval(float(np.mean(values)), low, high)


def pooled_interval(
    evaluations: Sequence[Evaluation], *, seed: int, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE
) -> Interval:
    """The interval of an in-corpus figure: folds' test sets concatenated, seeds averaged (``results.pool``).

    Raises:
        InvalidInputError: the runs do not pool (``results.pool``).
    """
    runs = [RunPredictions(e.fold, e.seed, e.names, binarize(e.labels), e.probs) for e in evaluations]
    pooled = pool_folds(runs)
    truth = pooled.truth.astype(float)
    scores = bootstrap_scores(truth, pooled.probs, n_resamples=n_resamples, seed=seed)
    return Interval(multilabel_macro_f1(pooled.probs, truth), *percentile_interval(scores, confidence=confidence))


def figure(
    evaluations: Sequence[Evaluation],
    classes: Sequence[str],
    *,
    expected_runs: int,
    seed: int,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    from_files: bool = False,
) -> Figure:
    """One number of the matrix over ``classes`` from the evaluations of a row's runs.

    ``from_files``: an in-corpus figure, recomputed from each run's own-condition matrices
    restricted to ``classes`` (runs without them are left out); else the evaluations are
    already over ``classes`` and their recorded macro-F1 is used.
    """
    classes = tuple(classes)
    usable = [e.restricted(classes) for e in evaluations if e.probs is not None] if from_files else list(evaluations)
    out = Figure(classes, [(e.fold, e.seed, e.macro_f1) for e in usable], expected_runs)
    if not out.complete:
        missing = expected_runs - out.runs
        what = "on their own test set (with its per-utterance files)" if from_files else "on it"
        out.note = f"{missing} of {expected_runs} runs have no usable evaluation {what}"
        return out
    if any(e.probs is None for e in usable):
        out.note = "per-utterance files of a run are gone or unusable"
        return out
    in_corpus = {e.in_corpus for e in usable}
    if len(in_corpus) > 1:
        out.note = "its runs disagree on whether the target is their own corpus"
        return out
    try:
        pooled = pooled_interval if in_corpus == {True} else cross_interval
        out.interval = pooled(usable, seed=seed, n_resamples=n_resamples, confidence=confidence)
    except InvalidInputError as err:
        out.note = f"its runs' utterances do not pool: {err}"
    return out


def row_classes(own: Sequence[str], shared: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The diagonal's classes: those ``own`` shares with every column (``shared``: column -> S(i, j)).

    Examples:
        >>> row_classes(["a", "b", "c", "d"], {"B": ["a", "b", "c"], "C": ["b", "c", "d"]})
        ('b', 'c')
        >>> row_classes(["a", "b"], {})
        ('a', 'b')
    """
    return tuple(c for c in own if all(c in s for s in shared.values()))


def build_matrix(
    results: Path,
    sweep: Sweep,
    classes: Mapping[str, Sequence[str]],
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> CrossMatrix:
    """Every upstream's train x test matrix from the runs the leaderboard reports.

    ``classes``: each condition's label classes, from the plan (``read_cross_classes``); a
    condition the plan lacks takes its runs' classes.
    """
    results = Path(results)
    problems: list[str] = []
    matrix = CrossMatrix([], {}, {}, problems, n_resamples, confidence)
    for upstream in sweep.upstreams:
        rows = [c for c in sweep.conditions if (upstream, c) in sweep.cells]
        if not rows:
            continue
        matrix.upstreams.append(upstream)
        matrix.conditions[upstream] = rows
        labels = {c: tuple(classes.get(c) or sweep.cells[(upstream, c)].classes) for c in rows}
        for train in rows:
            _fill_row(matrix, results, sweep.cells[(upstream, train)], rows, labels, problems)
    return matrix


def _evaluations(
    results: Path, cell: Cell, test: str, model: tuple[str, ...], wanted: tuple[str, ...], problems: list[str]
) -> list[Evaluation]:
    """The readable evaluations on ``test`` of the runs of ``cell`` that score the ``wanted`` classes."""
    found = []
    for spec in cell.specs:
        evaluation = read_evaluation(results, spec, test, model, problems)
        if evaluation is None:
            continue
        if evaluation.classes != wanted:
            _skip(
                problems,
                f"{results / spec.key / CROSS_DIR}: its evaluation on {test} scores {list(evaluation.classes)}, "
                f"not the {list(wanted)} the plan's classes give; skipped",
            )
            continue
        found.append(evaluation)
    return found


def _fill_row(
    matrix: CrossMatrix,
    results: Path,
    cell: Cell,
    columns: list[str],
    labels: Mapping[str, tuple[str, ...]],
    problems: list[str],
) -> None:
    """The cells of row ``cell.condition``: read each run's evaluations, then compute the figures."""
    upstream, train = cell.upstream, cell.condition
    own = labels[train]
    model = tuple(cell.classes) or own
    expected = cell.expected_runs or cell.expected_folds
    settings = {"n_resamples": matrix.n_resamples, "confidence": matrix.confidence}
    shared, skipped = {}, {}
    for test in columns:
        if test != train:
            pair = shared_classes(own, labels[test])
            if len(pair) < 2:
                skipped[test] = f"{train} and {test} share {len(pair)} class(es) {list(pair)}; at least 2 are needed"
            else:
                shared[test] = pair
    evaluations = {
        test: _evaluations(results, cell, test, model, own if test == train else shared[test], problems)
        for test in columns
        if test not in skipped
    }
    own_runs = evaluations.get(train, [])
    for test in columns:
        out = MatrixCell(upstream, train, test, skipped=skipped.get(test, ""))
        matrix.cells[(upstream, train, test)] = out
        if out.skipped:
            continue
        if test == train:
            common = row_classes(own, shared)
            if len(common) < 2:
                out.skipped = f"{train} shares {len(common)} class(es) {list(common)} with every column; no diagonal"
                continue
            out.figure = figure(
                own_runs, common, expected_runs=expected, seed=condition_seed(train), from_files=True, **settings
            )
            continue
        out.figure = figure(
            evaluations[test], shared[test], expected_runs=expected, seed=condition_seed(test), **settings
        )
        out.in_corpus = figure(
            own_runs, shared[test], expected_runs=expected, seed=condition_seed(train), from_files=True, **settings
        )


def cross_matrix(
    results: Path, sweep: Sweep, *, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE
) -> CrossMatrix | None:
    """The matrix of RESULTS, or None when its plan has no ``cross_eval`` block; problems go to ``sweep.problems``."""
    classes = read_cross_classes(Path(results), sweep.problems)
    if classes is None:
        return None
    matrix = build_matrix(results, sweep, classes, n_resamples=n_resamples, confidence=confidence)
    sweep.problems.extend(matrix.problems)
    return matrix
