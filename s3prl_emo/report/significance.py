"""Intervals and paired tests of a sweep: which upstreams a condition can tell apart, and which not.

Per (upstream, condition) whose runs are pooled (``results.Pooled``: the condition's test
utterances over its folds, each scored by its own fold's model, seeds averaged in
probability space): the macro-F1 of the pooled utterances and a percentile bootstrap
interval over them (``stats.bootstrap_scores``). Per condition: the best upstream (highest
pooled macro-F1) and, for every other one, the two-sided paired approximate-randomization
p-value against it on the same utterances (``stats.paired_test``), Holm-adjusted within the
condition (``stats.holm``); an upstream whose adjusted p-value is at least ``ALPHA`` is
*tied with the best*: the test split cannot tell it from the best. Per upstream: the
interval of the average over conditions, from the conditions' resampled scores averaged
resample by resample (each condition resampled on its own), as the table averages them.

These intervals describe test-sample variance: another draw of test utterances. Seed
variance (another training run) is the seed-to-seed standard deviation of the table.

Random draws are seeded per condition with the CRC-32 of its name (``condition_seed``): a
report is reproducible, every upstream of a condition is resampled on the same utterance
indices, and different conditions are resampled independently.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..metrics import multilabel_macro_f1
from ..stats import bootstrap_scores, holm, paired_test, percentile_interval
from .results import Pooled, Sweep

ALPHA = 0.05
"""Family-wise error rate of the comparisons of one condition: tied when Holm's p >= ALPHA."""
CONFIDENCE = 0.95
N_RESAMPLES = 2000
"""Bootstrap resamples per interval and random swaps per paired test."""


@dataclass(frozen=True)
class Interval:
    """A pooled figure and its percentile bootstrap interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """One upstream against the best of its condition: a row of ``significance.csv``."""

    condition: str
    upstream: str
    best: str
    metric_upstream: float
    metric_best: float
    p_value: float
    p_holm: float
    tied_with_best: bool


@dataclass
class ConditionResult:
    """What ``compare_condition`` finds for one condition."""

    intervals: dict[str, Interval] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # upstream -> (R,) resampled macro-F1
    best: str | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    tied: dict[str, bool] = field(default_factory=dict)  # upstream -> tied with the best (the best: True)
    notes: list[str] = field(default_factory=list)


@dataclass
class Analysis:
    """Every interval and test of a sweep; ``notes`` say why one is missing."""

    intervals: dict[tuple[str, str], Interval]  # (upstream, condition)
    averages: dict[str, Interval]  # upstream -> the average over conditions
    best: dict[str, str]  # condition -> upstream
    comparisons: list[Comparison]
    tied: dict[tuple[str, str], bool]  # (upstream, condition); absent where there is no decision
    notes: list[str]
    n_resamples: int = N_RESAMPLES
    confidence: float = CONFIDENCE
    alpha: float = ALPHA


def condition_seed(condition: str) -> int:
    """The seed of a condition's resamples and swaps: the CRC-32 of its name (stable across runs and machines).

    Examples:
        >>> condition_seed("IEMOCAP") == condition_seed("IEMOCAP") != condition_seed("CREMA-D")
        True
    """
    return zlib.crc32(condition.encode("utf-8"))


def compare_condition(
    pooled: Mapping[str, Pooled],
    *,
    condition: str,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    alpha: float = ALPHA,
) -> ConditionResult:
    """Intervals of the upstreams of one condition, the best of them, and the others' tests against it.

    Args:
        pooled: upstream -> its pooled test utterances (in the order the upstreams are listed).
        condition: the condition's name (seeds the draws, names the rows).
        n_resamples: bootstrap resamples and random swaps.
        confidence: the intervals' coverage.
        alpha: the family-wise error rate; tied when the Holm-adjusted p-value >= alpha.

    Returns:
        A ``ConditionResult``. The best is the first upstream with the highest pooled
        macro-F1. An upstream tested on other utterances or another reference than the best
        is not compared (a note says so).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.dirichlet(np.ones(4), size=200) > 0.25
        >>> good = 0.8 * truth / truth.sum(1, keepdims=True).clip(1) + 0.2 * rng.dirichlet(np.ones(4), size=200)
        >>> names = np.array([f"u{i:03d}" for i in range(200)])
        >>> pools = {u: Pooled(names, truth, p / p.sum(1, keepdims=True), 5, 1)
        ...          for u, p in [("a", good), ("b", good), ("c", rng.dirichlet(np.ones(4), size=200))]}
        >>> found = compare_condition(pools, condition="X", n_resamples=200)
        >>> found.best, found.tied
        ('a', {'a': True, 'b': True, 'c': False})
    """
    out = ConditionResult()
    seed = condition_seed(condition)
    values = {}
    for upstream, data in pooled.items():
        truth = data.truth.astype(float)
        values[upstream] = multilabel_macro_f1(data.probs, truth)
        scores = bootstrap_scores(truth, data.probs, n_resamples=n_resamples, seed=seed)
        out.scores[upstream] = scores
        out.intervals[upstream] = Interval(values[upstream], *percentile_interval(scores, confidence=confidence))
    if not values:
        return out
    best = max(values, key=values.get)
    out.best, out.tied[best] = best, True
    reference = pooled[best]
    tested = []
    for upstream, data in pooled.items():
        if upstream == best:
            continue
        if not (np.array_equal(data.names, reference.names) and np.array_equal(data.truth, reference.truth)):
            out.notes.append(
                f"{upstream} / {condition}: not compared with {best}: tested on other utterances or references"
            )
            continue
        p = paired_test(reference.truth.astype(float), data.probs, reference.probs, n_resamples=n_resamples, seed=seed)
        tested.append((upstream, p))
    for (upstream, p), adjusted in zip(tested, holm([p for _, p in tested]), strict=True):
        tied = adjusted >= alpha
        out.tied[upstream] = tied
        out.comparisons.append(Comparison(condition, upstream, best, values[upstream], values[best], p, adjusted, tied))
    return out


def analyse(
    sweep: Sweep, *, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, alpha: float = ALPHA
) -> Analysis:
    """``compare_condition`` for every condition of the sweep, and the interval of each upstream's average.

    The average's interval is the quantiles of the mean over conditions of each condition's
    resampled scores, resample r with resample r: only for upstreams pooled in every condition.

    Examples:
        >>> empty = Sweep({}, ["fbank"], ["IEMOCAP"], 0, 0)
        >>> analyse(empty).notes
        ['fbank / IEMOCAP: no interval: not in the plan']
    """
    analysis = Analysis({}, {}, {}, [], {}, [], n_resamples, confidence, alpha)
    scores: dict[str, list[np.ndarray]] = {u: [] for u in sweep.upstreams}
    values: dict[str, list[float]] = {u: [] for u in sweep.upstreams}
    for condition in sweep.conditions:
        pooled = {}
        for upstream in sweep.upstreams:
            cell = sweep.cells.get((upstream, condition))
            if cell is not None and cell.pooled is not None:
                pooled[upstream] = cell.pooled
            else:
                why = cell.pooled_note if cell is not None else "not in the plan"
                analysis.notes.append(f"{upstream} / {condition}: no interval: {why}")
        found = compare_condition(
            pooled, condition=condition, n_resamples=n_resamples, confidence=confidence, alpha=alpha
        )
        analysis.notes += found.notes
        if found.best is not None:
            analysis.best[condition] = found.best
        analysis.comparisons += found.comparisons
        for upstream, interval in found.intervals.items():
            analysis.intervals[(upstream, condition)] = interval
            scores[upstream].append(found.scores[upstream])
            values[upstream].append(interval.value)
        for upstream, tied in found.tied.items():
            analysis.tied[(upstream, condition)] = tied
    for upstream in sweep.upstreams:
        if sweep.conditions and len(scores[upstream]) == len(sweep.conditions):
            low, high = percentile_interval(np.mean(scores[upstream], axis=0), confidence=confidence)
            analysis.averages[upstream] = Interval(float(np.mean(values[upstream])), low, high)
    return analysis
