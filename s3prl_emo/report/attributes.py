"""The attribute table of a sweep: CCC per attribute and its mean, per upstream and condition.

Runs of the ``attributes`` and ``both`` tasks score arousal, valence and dominance (the
label file's ``Emo*`` columns) by the concordance correlation coefficient. Their cells are
read like macro-F1's (``results``): the grid point of a ``both`` cell is the one its
macro-F1 chose, that of an ``attributes`` cell the best mean dev ``ccc_mean``; a complete
cell pools its test utterances over folds, each utterance's predictions averaged over seeds
(``exp/test_fold<k>_attributes.csv`` beside ``_attributes_truth.csv``, the label file's
values of the same utterances). The pooled CCCs get percentile bootstrap intervals and the
upstreams of a condition a paired approximate-randomization test of the mean CCC against
the condition's best, Holm-adjusted (``stats.bootstrap_ccc``, ``stats.paired_test_ccc``,
``stats.holm``), with the draws seeded as macro-F1's (``significance.condition_seed``).

A prediction file is untrusted input as everywhere under RESULTS: paths stay inside it, a
recorded digest must still match, and an undigested file must give the result's test CCCs.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..metrics import concordance_cc
from ..runtime.guards import resolve_inside
from ..stats import bootstrap_ccc, holm, paired_test_ccc, percentile_interval
from ..sweep.plan import RESULT_FILE, RunSpec
from .results import FoldRuns, _prediction_entry, _read_bounded, choose_grid, parse_table, pool_cell
from .significance import ALPHA, CONFIDENCE, N_RESAMPLES, Comparison, Interval, condition_seed
from .tables import BOLD, MEASURED, to_html, to_markdown

MEAN = "mean"
"""The column of the mean CCC over a condition's attributes (``ccc_mean``)."""
CCC_TOLERANCE = 1e-6  # an undigested file must give the result's CCCs (every digit is kept)


@dataclass(frozen=True)
class PooledAttributes:
    """A cell's test utterances over all its folds, each utterance's predictions averaged over seeds."""

    names: np.ndarray  # (N,) file names, sorted
    truth: np.ndarray  # (N, A) the label file's values
    predictions: np.ndarray  # (N, A)
    folds: int
    seeds: int


@dataclass
class AttributeCell(FoldRuns):
    """The attribute scores of one (upstream, condition) at its chosen grid point."""

    upstream: str
    condition: str
    grid: str
    attributes: list[str]
    expected_runs: int
    results: list[dict] = field(default_factory=list)
    specs: list[RunSpec] = field(default_factory=list)
    pooled: PooledAttributes | None = None
    pooled_note: str = ""

    @property
    def planned_runs(self) -> int:
        return self.expected_runs

    def mean(self, key: str) -> float:
        """Mean test ``key`` (``ccc/EmoAct``, ``ccc_mean``) over the finished runs; NaN if undefined in one."""
        return float(np.mean([r["test"][key] for r in self.results])) if self.results else math.nan

    def std(self, key: str) -> float:
        """Sample standard deviation over folds of each fold's mean over seeds (0 for one fold)."""
        return self.fold_std(key)


def _files(record: dict, spec: RunSpec, where: str) -> tuple[dict[str, str], dict[str, str] | None]:
    """The run's attribute predictions and truth (relative to its folder) and their digests (None: not recorded)."""
    entry = record.get("attribute_predictions")
    if entry is None:
        stem = f"exp/test_fold{spec.fold}_attributes"
        return {"predictions": f"{stem}.csv", "truth": f"{stem}_truth.csv"}, None
    files = _prediction_entry(entry, "attribute_predictions", ("predictions", "truth"), where)
    return (
        {k: files[k] for k in ("predictions", "truth")},
        {k: files[f"{k}_sha256"] for k in ("predictions", "truth")},
    )


def read_attribute_predictions(
    results: Path, spec: RunSpec, record: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Names, truth and predictions of a finished run's test split, rows sorted by name; None when gone.

    Raises:
        InvalidInputError: a path leads outside RESULTS, a digest differs, the two files name
            other utterances, or undigested files do not give the result's test CCCs.
    """
    where = str(results / spec.key / RESULT_FILE)
    files, digests = _files(record, spec, where)
    paths = {}
    for kind, name in files.items():
        paths[kind] = resolve_inside(results, Path(spec.key) / name, what=f"{where}: attribute_predictions.{kind}")
        if not os.path.lexists(paths[kind]):
            return None
    attributes = record["attributes"]
    read = {}
    for kind, name in files.items():
        shown = str(results / spec.key / name)
        text = _read_bounded(paths[kind], shown, digests and digests[kind])
        read[kind] = parse_table(text, attributes, where=shown)
    names, predictions = read["predictions"]
    truth_names, truth = read["truth"]
    if not np.array_equal(names, truth_names):
        raise InvalidInputError(f"{paths['truth']}: not the utterances of {files['predictions']}, row by row")
    if digests is None:
        found = concordance_cc(predictions.T, truth.T)
        recorded = np.array([record["test"][f"ccc/{a}"] for a in attributes])
        if not np.allclose(found, recorded, atol=CCC_TOLERANCE, rtol=0, equal_nan=True):
            raise InvalidInputError(
                f"{paths['predictions']}: gives test CCCs {np.round(found, 5).tolist()}, not the "
                f"{np.round(recorded, 5).tolist()} of result.json: not the predictions this result was computed from"
            )
    order = np.argsort(names, kind="stable")
    return names[order], truth[order], predictions[order]


def pool_attributes(runs: Sequence[tuple[RunSpec, tuple[np.ndarray, np.ndarray, np.ndarray]]]) -> PooledAttributes:
    """A cell's test utterances over its folds, each utterance's predictions averaged over seeds.

    Raises:
        InvalidInputError: no runs, the seeds of a fold saw other utterances or values, or an
            utterance is in the test split of two folds.

    Examples:
        >>> a = RunSpec("u", None, "C", "C.yaml", 1, seed=1)
        >>> b = RunSpec("u", None, "C", "C.yaml", 1, seed=2)
        >>> one = (np.array(["x"]), np.array([[3.0]]), np.array([[2.0]]))
        >>> two = (np.array(["x"]), np.array([[3.0]]), np.array([[4.0]]))
        >>> pool_attributes([(a, one), (b, two)]).predictions.tolist()
        [[3.0]]
    """
    if not runs:
        raise InvalidInputError("pool_attributes: no runs to pool")
    by_fold: dict[int, list] = {}
    for spec, found in runs:
        by_fold.setdefault(spec.fold, []).append((spec, found))
    names, truth, predictions = [], [], []
    for fold, group in sorted(by_fold.items()):
        first_spec, (first_names, first_truth, _) = group[0]
        for spec, (other_names, other_truth, _) in group[1:]:
            if not (np.array_equal(other_names, first_names) and np.array_equal(other_truth, first_truth)):
                raise InvalidInputError(
                    f"fold {fold}: seeds {first_spec.seed} and {spec.seed} were tested on other utterances or values"
                )
        names.append(first_names)
        truth.append(first_truth)
        predictions.append(np.mean([found[2] for _, found in group], axis=0))
    all_names = np.concatenate(names)
    order = np.argsort(all_names, kind="stable")
    all_names = all_names[order]
    twice = all_names[1:] == all_names[:-1]
    if twice.any():
        raise InvalidInputError(f"utterance {str(all_names[1:][twice][0])[:80]!r} is in the test split of two folds")
    seeds = len({spec.seed for spec, _ in runs})
    return PooledAttributes(
        all_names, np.concatenate(truth)[order], np.concatenate(predictions)[order], len(by_fold), seeds
    )


def attribute_cells(
    results: Path,
    upstreams: Sequence[str],
    conditions: Sequence[str],
    groups: Mapping[tuple[str, str, str], list[tuple[RunSpec, dict]]],
    planned: Mapping[tuple[str, str, str], list[RunSpec]],
    grids: Mapping[tuple[str, str], str],
    problems: list[str],
) -> dict[tuple[str, str], AttributeCell]:
    """The cells of the runs that score attributes (``results.load_sweep`` calls this).

    Args:
        results: RESULTS.
        upstreams: in the plan's order.
        conditions: in the plan's order, attribute-only ones included.
        groups: (upstream, condition, grid) -> its finished, checked runs.
        planned: (upstream, condition, grid) -> its planned runs.
        grids: (upstream, condition) -> the grid point macro-F1 chose (cells with a class head).
        problems: where unusable inputs are recorded.
    """
    cells = {}
    for upstream in upstreams:
        for condition in conditions:
            options = {
                g: rs
                for (u, c, g), rs in groups.items()
                if (u, c) == (upstream, condition) and rs and rs[0][1]["attributes"]
            }
            if not options:
                continue
            dev = {g: float(np.mean([r["dev"]["ccc_mean"] for _, r in rs])) for g, rs in options.items()}
            grid = grids.get((upstream, condition))
            if grid not in options:
                grid = choose_grid(dev) or next(iter(options))
            chosen = sorted(options[grid], key=lambda pair: (pair[1]["fold"], pair[1]["seed"] or 0))
            cell = AttributeCell(
                upstream,
                condition,
                grid,
                list(chosen[0][1]["attributes"]),
                len(planned[(upstream, condition, grid)]),
                [record for _, record in chosen],
                [spec for spec, _ in chosen],
            )
            pool_cell(
                Path(results),
                cell,
                list(zip(cell.specs, cell.results, strict=True)),
                read_attribute_predictions,
                pool_attributes,
                problems,
                what="attribute predictions",
                interval="CCC interval",
            )
            cells[(upstream, condition)] = cell
    return cells


@dataclass
class AttributeAnalysis:
    """Intervals of the pooled CCCs and the paired tests of the mean CCC; ``notes`` say why one is missing."""

    intervals: dict[tuple[str, str], dict[str, Interval]]  # (upstream, condition) -> attribute or MEAN -> interval
    best: dict[str, str]  # condition -> upstream
    comparisons: list[Comparison]
    tied: dict[tuple[str, str], bool]
    notes: list[str]
    n_resamples: int = N_RESAMPLES
    confidence: float = CONFIDENCE
    alpha: float = ALPHA


def _intervals(pooled: PooledAttributes, attributes: list[str], seed: int, n_resamples: int, confidence: float):
    """The pooled CCC of each attribute and of their mean with its interval; None where undefined."""
    values = concordance_cc(pooled.predictions.T, pooled.truth.T)
    scores = bootstrap_ccc(pooled.truth, pooled.predictions, n_resamples=n_resamples, seed=seed)
    columns = {**{a: (values[j], scores[:, j]) for j, a in enumerate(attributes)}}
    columns[MEAN] = (float(np.mean(values)), scores.mean(axis=1))
    if not all(np.isfinite(v) and np.isfinite(s).all() for v, s in columns.values()):
        return None
    return {k: Interval(float(v), *percentile_interval(s, confidence=confidence)) for k, (v, s) in columns.items()}


def analyse_attributes(
    cells: Mapping[tuple[str, str], AttributeCell],
    upstreams: Sequence[str],
    conditions: Sequence[str],
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    alpha: float = ALPHA,
) -> AttributeAnalysis:
    """Per condition: each pooled upstream's CCC intervals, the best (highest pooled mean CCC), and
    the others' paired tests of the mean CCC against it, Holm-adjusted; tied when p_holm >= alpha.

    Examples:
        >>> analyse_attributes({}, ["fbank"], ["IEMOCAP_attributes"]).comparisons
        []
    """
    out = AttributeAnalysis({}, {}, [], {}, [], n_resamples, confidence, alpha)
    for condition in conditions:
        seed = condition_seed(condition)
        pooled: dict[str, tuple[AttributeCell, dict[str, Interval]]] = {}
        for upstream in upstreams:
            cell = cells.get((upstream, condition))
            if cell is None:
                continue
            if cell.pooled is None:
                out.notes.append(f"{upstream} / {condition}: no CCC interval: {cell.pooled_note}")
                continue
            found = _intervals(cell.pooled, cell.attributes, seed, n_resamples, confidence)
            if found is None:
                out.notes.append(f"{upstream} / {condition}: no CCC interval: a coefficient is undefined")
                continue
            out.intervals[(upstream, condition)] = found
            pooled[upstream] = (cell, found)
        if not pooled:
            continue
        best = max(pooled, key=lambda u: pooled[u][1][MEAN].value)
        out.best[condition], out.tied[(best, condition)] = best, True
        reference = pooled[best][0].pooled
        tested = []
        for upstream, (cell, _) in pooled.items():
            if upstream == best:
                continue
            data = cell.pooled
            if not (np.array_equal(data.names, reference.names) and np.array_equal(data.truth, reference.truth)):
                out.notes.append(f"{upstream} / {condition}: not compared with {best}: other utterances or values")
                continue
            p = paired_test_ccc(
                reference.truth, data.predictions, reference.predictions, n_resamples=n_resamples, seed=seed
            )
            tested.append((upstream, p))
        for (upstream, p), adjusted in zip(tested, holm([p for _, p in tested]), strict=True):
            tied = adjusted >= alpha
            out.tied[(upstream, condition)] = tied
            value, best_value = pooled[upstream][1][MEAN].value, pooled[best][1][MEAN].value
            out.comparisons.append(Comparison(condition, upstream, best, value, best_value, p, adjusted, tied))
    return out


def _columns(cells: Mapping[tuple[str, str], AttributeCell]) -> list[str]:
    """Every attribute of the sweep, in the order first met, then the mean."""
    return [*dict.fromkeys(a for cell in cells.values() for a in cell.attributes), MEAN]


def attribute_board(sweep, analysis: AttributeAnalysis) -> pd.DataFrame:
    """Numbers, one row per (condition, upstream) with attribute scores: ``grid``, ``runs``,
    ``expected``, ``folds``, per attribute and ``mean`` (CCC): ``<a> mean`` (over runs),
    ``<a> std`` (over folds), ``<a> pooled``, ``<a> ci_low``, ``<a> ci_high``; ``tied_with_best``."""
    rows = []
    columns = _columns(sweep.attribute_cells)
    for condition in sweep.attribute_conditions:
        for upstream in sweep.upstreams:
            cell = sweep.attribute_cells.get((upstream, condition))
            if cell is None:
                continue
            row: dict = {"condition": condition, "upstream": upstream, "grid": cell.grid, "runs": cell.runs}
            row.update(expected=cell.expected_runs, folds=cell.folds)
            intervals = analysis.intervals.get((upstream, condition), {})
            for column in columns:
                key = "ccc_mean" if column == MEAN else f"ccc/{column}"
                held = column == MEAN or column in cell.attributes
                row[f"{column} mean"] = cell.mean(key) if held and cell.runs else math.nan
                row[f"{column} std"] = cell.std(key) if held and cell.runs else math.nan
                interval = intervals.get(column)
                row[f"{column} pooled"] = interval.value if interval else math.nan
                row[f"{column} ci_low"] = interval.low if interval else math.nan
                row[f"{column} ci_high"] = interval.high if interval else math.nan
            tied = analysis.tied.get((upstream, condition))
            row["tied_with_best"] = "" if tied is None else str(tied).lower()
            rows.append(row)
    return pd.DataFrame(rows)


def _text(board_row: pd.Series, column: str) -> str:
    mean = board_row[f"{column} mean"]
    if pd.isna(mean):
        return "" if pd.isna(board_row[f"{column} std"]) else "undefined"
    text = f"{mean:.3f} ± {board_row[f'{column} std']:.3f} ({board_row['folds']})"
    if not pd.isna(board_row[f"{column} pooled"]):
        pooled, low, high = (board_row[f"{column} {k}"] for k in ("pooled", "ci_low", "ci_high"))
        text += f"; pooled {pooled:.3f} [{low:.3f}, {high:.3f}]"
    return text


def display_attributes(board: pd.DataFrame, cells: Mapping[tuple[str, str], AttributeCell]) -> pd.DataFrame:
    """Text cells (``0.512 ± 0.010 (5); pooled 0.520 [0.480, 0.560]``) for ``tables.to_markdown``/``to_html``;
    the mean column is bold where the upstream is tied with its condition's best."""
    columns = _columns(cells)
    rows = []
    for _, row in board.iterrows():
        out = {"condition": row["condition"], "upstream": row["upstream"]}
        for column in columns:
            out["mean CCC" if column == MEAN else column] = _text(row, column)
        if row["runs"] < row["expected"]:
            out["mean CCC"] += f" incomplete: {row['runs']} of {row['expected']} runs"
        out["source"] = MEASURED
        out[BOLD] = frozenset({"mean CCC"} if row["tied_with_best"] == "true" else ())
        rows.append(out)
    return pd.DataFrame(rows)


def legend(analysis: AttributeAnalysis) -> str:
    """What the attribute table's cells say."""
    confidence = round(100 * analysis.confidence)
    return (
        "Cells: concordance correlation coefficient (CCC) of each attribute and their mean, on the test split: mean ± "
        "standard deviation over folds (number of folds), then the pooled figure and its "
        f"{confidence}% bootstrap interval: the condition's test utterances pooled over its folds, the seeds' "
        f"predictions averaged per utterance ({analysis.n_resamples} resamples). Bold: the condition's best upstream "
        f"(highest pooled mean CCC) and those tied with it, not significantly worse at {analysis.alpha:g} (paired "
        "approximate randomization of the mean CCC, Holm-adjusted within the condition); "
        "attributes_significance.csv holds the p-values."
    )


def markdown(shown: pd.DataFrame, analysis: AttributeAnalysis) -> str:
    """``attributes.md``: the table and its legend, every name escaped."""
    return "# Emotional attributes: test CCC\n\n" + to_markdown(shown) + f"\n{legend(analysis)}\n"


def html_section(shown: pd.DataFrame, analysis: AttributeAnalysis) -> str:
    """The index.html section: the table, its legend, and why a cell has no interval."""
    table = to_html(shown).replace('<table id="leaderboard">', '<table id="attributes">', 1)
    parts = ["<h2>Emotional attributes: test CCC</h2>", table, f"<p>{html.escape(legend(analysis))}</p>"]
    if analysis.notes:
        items = "\n".join(f"<li>{html.escape(note)}</li>" for note in analysis.notes)
        parts.append(
            f'<p>Without a CCC interval or test ({len(analysis.notes)}):</p>\n<ul class="notes">\n{items}\n</ul>'
        )
    return "\n".join(parts)
