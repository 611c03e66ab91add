"""How sure a test score is, and whether two systems differ: resampling over utterances (numpy only).

A score on one test split is a sample: another draw of utterances from the same corpus would
give another number. ``bootstrap_ci`` puts a percentile bootstrap interval on it (Efron &
Tibshirani, 1993; ``bootstrap_scores`` returns the resampled scores themselves, to combine
several test sets resample by resample), ``paired_test`` asks whether two systems scored on the same utterances
differ by approximate randomization (Noreen, 1989; Riezler & Maxwell, 2005), and ``holm``
adjusts the p-values of several comparisons (Holm, 1979). This is test-sample variance;
the variance over training seeds is a different quantity and needs several runs.

Macro-F1 is not a mean of per-utterance scores, so it is recomputed on every resample. Each
utterance contributes, per class, one of true positive, false positive or false negative
(or nothing); a resample's counts are its utterance multiplicities times that indicator
matrix, so all resamples of a block are scored with one matrix product. Labels and
predictions are binarised by the package's one rule (``metrics.binarize``: value > 1/C in
float32), and F1 is 2TP / (2TP + FP + FN), 0 where undefined, as in ``metrics.score``.

The random draws are part of the interface, so that a result can be reproduced by hand:
``rng = np.random.default_rng(seed)``, then one call per resample, in order ``r = 0 ..
n_resamples - 1``: ``rng.integers(0, N, size=N)`` (utterance indices drawn with replacement)
in ``bootstrap_ci`` and ``bootstrap_scores``, ``rng.integers(0, 2, size=N, dtype=bool)`` (True: swap this utterance's
two predictions) in ``paired_test``. ``scipy.stats.bootstrap`` would materialise every resampled
data set and draw its indices in batches whose size changes the stream, so it is not used.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from .errors import InvalidInputError
from .metrics import binarize, concordance_cc

Metric = str | Callable[[np.ndarray, np.ndarray], float]
METRICS = ("macro_f1", "micro_f1")
# Resamples are scored in blocks of about this many (resample, utterance) entries (32 MiB of float64).
_BLOCK_ENTRIES = 1 << 22
# |d*| >= |d_obs| counts ties that differ by rounding only (the same tolerance idea as scipy's permutation_test).
_TIE_TOLERANCE = 1e-12


def bootstrap_ci(
    truth: np.ndarray,
    probs: np.ndarray,
    *,
    metric: Metric = "macro_f1",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a split's score, resampling utterances.

    Each resample draws N utterance indices with replacement and recomputes the metric on
    them (``bootstrap_scores``); the interval is the (1 - confidence)/2 and (1 + confidence)/2
    quantiles of the ``n_resamples`` scores (``percentile_interval``). Percentile rather than
    BCa: BCa's jackknife costs N more scorings and buys little for a statistic bounded in
    [0, 1] at test-split sizes.

    Args:
        truth: (N, C) soft labels (binarised by the 1/C rule).
        probs: (N, C) predicted probabilities (binarised by the same rule).
        metric: ``"macro_f1"``, ``"micro_f1"``, or a callable ``(truth_bin, pred_bin) -> float``
            on boolean (n, C) matrices (called once per resample: slow, but any score works).
        confidence: the interval's nominal coverage, in (0, 1).
        n_resamples: how many resamples (at least 1).
        seed: seeds ``np.random.default_rng``; resample r uses the r-th ``rng.integers(0, N, size=N)``.

    Returns:
        (low, high), the interval's ends.

    Raises:
        InvalidInputError: shapes differ, N = 0, C < 2, values outside [0, 1] or not finite,
            ``confidence`` outside (0, 1), ``n_resamples`` < 1, or an unknown ``metric``.

    Examples:
        >>> from s3prl_emo.metrics import multilabel_macro_f1
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.dirichlet(np.ones(4), size=300)
        >>> probs = 0.6 * truth + 0.4 * rng.dirichlet(np.ones(4), size=300)
        >>> low, high = bootstrap_ci(truth, probs, n_resamples=500)
        >>> bool(low < multilabel_macro_f1(probs, truth) < high)
        True
    """
    confidence = _check_confidence("bootstrap_ci", confidence)
    scores = bootstrap_scores(truth, probs, metric=metric, n_resamples=n_resamples, seed=seed, where="bootstrap_ci")
    return percentile_interval(scores, confidence=confidence)


def bootstrap_scores(
    truth: np.ndarray,
    probs: np.ndarray,
    *,
    metric: Metric = "macro_f1",
    n_resamples: int = 2000,
    seed: int | None = 0,
    where: str = "bootstrap_scores",
) -> np.ndarray:
    """The metric on each bootstrap resample of the utterances: the distribution behind ``bootstrap_ci``.

    Returned rather than summarised so that scores of several test sets can be combined
    resample by resample before taking quantiles: the interval of an average over conditions
    is the quantiles of the per-resample averages, each condition resampled on its own (with
    its own ``seed``). The draws are those of ``bootstrap_ci``: the same ``seed`` gives the
    same resamples, so ``percentile_interval(bootstrap_scores(...))`` equals ``bootstrap_ci(...)``.

    Args:
        truth: (N, C) soft labels (binarised by the 1/C rule).
        probs: (N, C) predicted probabilities (binarised by the same rule).
        metric: ``"macro_f1"``, ``"micro_f1"``, or a callable ``(truth_bin, pred_bin) -> float``.
        n_resamples: how many resamples (at least 1).
        seed: seeds ``np.random.default_rng``; resample r uses the r-th ``rng.integers(0, N, size=N)``.
        where: the caller's name in error messages.

    Returns:
        (n_resamples,) float array, one score per resample, in the order drawn.

    Raises:
        InvalidInputError: as ``bootstrap_ci`` (no ``confidence`` here).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.dirichlet(np.ones(4), size=200)
        >>> probs = 0.6 * truth + 0.4 * rng.dirichlet(np.ones(4), size=200)
        >>> scores = bootstrap_scores(truth, probs, n_resamples=300, seed=1)
        >>> scores.shape, percentile_interval(scores) == bootstrap_ci(truth, probs, n_resamples=300, seed=1)
        ((300,), True)
    """
    score, n_resamples, truth_bin, (pred_bin,) = _checked_inputs(where, metric, n_resamples, truth, probs=probs)
    n = len(truth_bin)
    rng = np.random.default_rng(seed)
    scores = np.empty(n_resamples)
    if callable(score):
        for r in range(n_resamples):
            idx = rng.integers(0, n, size=n)
            scores[r] = score(truth_bin[idx], pred_bin[idx])
    else:
        indicators = _indicators(truth_bin, pred_bin)

        def drawn() -> np.ndarray:  # one resample: how often each utterance was drawn
            return np.bincount(rng.integers(0, n, size=n), minlength=n)

        for start, stop, multiplicity in _drawn_blocks(n_resamples, n, drawn):
            scores[start:stop] = _f1(multiplicity @ indicators, score)
    return scores


def percentile_interval(scores: np.ndarray, *, confidence: float = 0.95) -> tuple[float, float]:
    """The (1 - confidence)/2 and (1 + confidence)/2 quantiles of resampled scores (``np.quantile``'s default).

    Args:
        scores: (R,) finite scores, e.g. from ``bootstrap_scores`` or their mean over conditions.
        confidence: the interval's nominal coverage, in (0, 1).

    Raises:
        InvalidInputError: ``scores`` is empty or not finite, or ``confidence`` outside (0, 1).

    Examples:
        >>> percentile_interval(np.arange(5.0), confidence=0.5)
        (1.0, 3.0)
    """
    where = "percentile_interval"
    confidence = _check_confidence(where, confidence)
    values = np.asarray(scores, dtype=float).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise InvalidInputError(f"{where}: scores are empty or not finite; expected resampled scores")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def paired_test(
    truth: np.ndarray,
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    *,
    metric: Metric = "macro_f1",
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> float:
    """Two-sided p-value that systems A and B, scored on the same utterances, are equally good.

    Approximate randomization: under the null hypothesis the two systems' predictions of an
    utterance are exchangeable, so each resample swaps them with probability 1/2, utterance
    by utterance, and recomputes d* = metric(A*) - metric(B*). With d = metric(A) - metric(B),
    p = (1 + #{|d*| >= |d|}) / (1 + R). Chosen over the paired bootstrap because it is
    calibrated under its null by construction (the resamples are draws from the very null
    distribution, and the +1 makes p valid at any R), whereas the bootstrap test shifts a
    distribution centred on d and is only asymptotically right.

    Args:
        truth: (N, C) soft labels.
        probs_a: (N, C) probabilities of system A, row i for the same utterance as ``truth[i]``.
        probs_b: (N, C) probabilities of system B, likewise.
        metric: ``"macro_f1"``, ``"micro_f1"``, or a callable ``(truth_bin, pred_bin) -> float``.
        n_resamples: R, the number of random swaps (at least 1).
        seed: seeds ``np.random.default_rng``; resample r swaps where the r-th
            ``rng.integers(0, 2, size=N, dtype=bool)`` is True.

    Returns:
        The p-value, in (0, 1].

    Raises:
        InvalidInputError: ``probs_a`` or ``probs_b`` differs from ``truth`` in shape, N = 0, C < 2,
            values outside [0, 1] or not finite, ``n_resamples`` < 1, or an unknown ``metric``.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.dirichlet(np.ones(4), size=300)
        >>> good = 0.8 * truth + 0.2 * rng.dirichlet(np.ones(4), size=300)
        >>> bad = rng.dirichlet(np.ones(4), size=300)
        >>> paired_test(truth, good, good)
        1.0
        >>> bool(paired_test(truth, good, bad, n_resamples=500) < 0.01)
        True
    """
    score, n_resamples, truth_bin, (pred_a, pred_b) = _checked_inputs(
        "paired_test", metric, n_resamples, truth, probs_a=probs_a, probs_b=probs_b
    )
    n = len(truth_bin)
    rng = np.random.default_rng(seed)
    if callable(score):
        observed = score(truth_bin, pred_a) - score(truth_bin, pred_b)
        null = np.empty(n_resamples)
        for r in range(n_resamples):
            swap = rng.integers(0, 2, size=n, dtype=bool)[:, None]
            a_star, b_star = np.where(swap, pred_b, pred_a), np.where(swap, pred_a, pred_b)
            null[r] = score(truth_bin, a_star) - score(truth_bin, b_star)
    else:
        # A* = A + S (B - A) and B* = B - S (B - A) in counts, S the swap indicator.
        ind_a, ind_b = _indicators(truth_bin, pred_a), _indicators(truth_bin, pred_b)
        total_a, total_b, change = ind_a.sum(axis=0), ind_b.sum(axis=0), ind_b - ind_a
        observed = float(_f1(total_a[None], score)[0] - _f1(total_b[None], score)[0])
        null = np.empty(n_resamples)

        def swapped() -> np.ndarray:  # one resample: True where an utterance's two predictions swap
            return rng.integers(0, 2, size=n, dtype=bool)

        for start, stop, swaps in _drawn_blocks(n_resamples, n, swapped):
            moved = swaps @ change
            null[start:stop] = _f1(total_a + moved, score) - _f1(total_b - moved, score)
    extreme = np.abs(null) >= abs(observed) - _TIE_TOLERANCE * max(1.0, abs(observed))
    return float((1 + np.count_nonzero(extreme)) / (1 + n_resamples))


def bootstrap_ccc(
    truth: np.ndarray, predictions: np.ndarray, *, n_resamples: int = 2000, seed: int | None = 0
) -> np.ndarray:
    """The CCC of each attribute on each bootstrap resample of the utterances.

    The continuous counterpart of ``bootstrap_scores`` (whose metrics binarise
    probabilities): the same draws, ``rng.integers(0, N, size=N)`` per resample in order,
    so an attribute table's intervals are resampled like macro-F1's. The CCC is recomputed
    on every resample (``metrics.concordance_cc``, in blocks over stacked resamples).

    Args:
        truth: (N, A) reference values (the label file's), one column per attribute.
        predictions: (N, A) predicted values on the same scale.
        n_resamples: how many resamples (at least 1).
        seed: seeds ``np.random.default_rng``.

    Returns:
        (n_resamples, A) CCCs; NaN where a resample leaves both sides constant.

    Raises:
        InvalidInputError: shapes differ or are not (N >= 1, A >= 1), a value is not finite,
            or ``n_resamples`` < 1.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.normal(3, 1, size=(200, 2))
        >>> scores = bootstrap_ccc(truth, truth + rng.normal(0, 0.5, size=(200, 2)), n_resamples=300)
        >>> scores.shape, bool(0.7 < scores.mean() < 0.95)
        ((300, 2), True)
    """
    x, y, count = _checked_values("bootstrap_ccc", n_resamples, truth, predictions)
    n = len(x)
    rng = np.random.default_rng(seed)
    scores = np.empty((count, x.shape[1]))
    step = max(1, _BLOCK_ENTRIES // (n * x.shape[1]))
    for start in range(0, count, step):
        stop = min(start + step, count)
        idx = np.stack([rng.integers(0, n, size=n) for _ in range(start, stop)])  # (b, N)
        scores[start:stop] = concordance_cc(np.swapaxes(x[idx], 1, 2), np.swapaxes(y[idx], 1, 2))
    return scores


def paired_test_ccc(
    truth: np.ndarray,
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    *,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> float:
    """Two-sided p-value that systems A and B have the same mean CCC over attributes on the same utterances.

    ``paired_test``'s approximate randomization for continuous outputs: each resample swaps
    the two systems' predictions of an utterance (all its attributes together) with
    probability 1/2, drawn as ``rng.integers(0, 2, size=N, dtype=bool)``, and recomputes
    d* = mean CCC(A*) - mean CCC(B*); p = (1 + #{|d*| >= |d|}) / (1 + R).

    Args:
        truth: (N, A) reference values.
        predictions_a: (N, A) predictions of system A, row i for the utterance of ``truth[i]``.
        predictions_b: (N, A) predictions of system B, likewise.
        n_resamples: R, the number of random swaps (at least 1).
        seed: seeds ``np.random.default_rng``.

    Returns:
        The p-value, in (0, 1].

    Raises:
        InvalidInputError: as ``bootstrap_ccc``.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.normal(3, 1, size=(300, 3))
        >>> good, bad = truth + rng.normal(0, 0.3, size=(300, 3)), rng.normal(3, 1, size=(300, 3))
        >>> paired_test_ccc(truth, good, good)
        1.0
        >>> bool(paired_test_ccc(truth, good, bad, n_resamples=200) < 0.01)
        True
    """
    a, y, count = _checked_values("paired_test_ccc", n_resamples, truth, predictions_a)
    b, _, _ = _checked_values("paired_test_ccc", n_resamples, truth, predictions_b)
    n = len(y)
    rng = np.random.default_rng(seed)

    def mean_ccc(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
        reference = np.broadcast_to(reference, values.shape)
        return concordance_cc(np.swapaxes(values, -1, -2), np.swapaxes(reference, -1, -2)).mean(axis=-1)

    observed = float(mean_ccc(a, y) - mean_ccc(b, y))
    null = np.empty(count)
    step = max(1, _BLOCK_ENTRIES // (n * y.shape[1]))
    for start in range(0, count, step):
        stop = min(start + step, count)
        swaps = np.stack([rng.integers(0, 2, size=n, dtype=bool) for _ in range(start, stop)])[..., None]
        a_star, b_star = np.where(swaps, b, a), np.where(swaps, a, b)
        null[start:stop] = mean_ccc(a_star, y) - mean_ccc(b_star, y)
    if not math.isfinite(observed):
        return 1.0  # an undefined coefficient: no evidence of a difference
    extreme = np.abs(null) >= abs(observed) - _TIE_TOLERANCE * max(1.0, abs(observed))
    return float((1 + np.count_nonzero(extreme)) / (1 + count))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: family-wise error control over several comparisons.

    With p_(1) <= ... <= p_(m) sorted, the adjusted value of p_(k) is
    max_{j <= k} min(1, (m - j + 1) p_(j)); reject where the adjusted value is below alpha.
    Valid under any dependence between the tests (Holm, 1979), unlike Hochberg's or BH.

    Args:
        p_values: the m p-values of one family of comparisons, each in [0, 1].

    Returns:
        The adjusted p-values, in the input's order (monotone in the raw ones, at most 1).

    Raises:
        InvalidInputError: a value is not a finite number in [0, 1].

    Examples:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    values = np.asarray(p_values, dtype=float).ravel()
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        raise InvalidInputError(
            f"holm: p_values[{int(np.argmax(bad))}] is {values[bad][0]!r}; expected p-values in [0, 1]"
        )
    m = len(values)
    order = np.argsort(values, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * values[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return [float(p) for p in adjusted]


# -- helpers ------------------------------------------------------------------------------------


def _checked_inputs(
    where: str, metric: Metric, n_resamples: int, truth: np.ndarray, **probs: np.ndarray
) -> tuple[Metric, int, np.ndarray, list[np.ndarray]]:
    """The checked metric and resample count, ``truth`` binarised, and each of ``probs`` (same shape) binarised."""
    truth = _check_matrix(where, "truth", truth)
    checked = [_check_matrix(where, name, values, like=truth) for name, values in probs.items()]
    score, count = _metric(where, metric), _check_resamples(where, n_resamples)
    return score, count, binarize(truth), [binarize(values) for values in checked]


def _checked_values(
    where: str, n_resamples: int, truth: np.ndarray, predictions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """(predictions, truth, n_resamples) checked: finite (N >= 1, A >= 1) matrices of one shape."""
    count = _check_resamples(where, n_resamples)
    arrays = []
    for name, values in (("predictions", predictions), ("truth", truth)):
        try:
            array = np.asarray(values, dtype=float)
        except (TypeError, ValueError) as err:
            raise InvalidInputError(f"{where}: {name} is not a numeric matrix ({err})") from None
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0 or not np.isfinite(array).all():
            raise InvalidInputError(
                f"{where}: {name} has shape {array.shape} or values that are not finite; expected finite (N, A)"
            )
        arrays.append(array)
    if arrays[0].shape != arrays[1].shape:
        raise InvalidInputError(f"{where}: predictions {arrays[0].shape} and truth {arrays[1].shape} differ in shape")
    return arrays[0], arrays[1], count


def _check_matrix(where: str, name: str, values: np.ndarray, *, like: np.ndarray | None = None) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"{where}: {name} is not a numeric matrix ({err})") from None
    if like is not None and array.shape != like.shape:
        raise InvalidInputError(
            f"{where}: {name} has shape {array.shape} but truth has {like.shape}; expected the same (N, C)"
        )
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] < 2:
        raise InvalidInputError(
            f"{where}: {name} has shape {array.shape}; expected (N, C) with N >= 1 utterances and C >= 2 classes"
        )
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise InvalidInputError(
            f"{where}: {name} holds values outside [0, 1] or not finite; expected probabilities "
            "(apply softmax to logits first)"
        )
    return array


def _metric(where: str, metric: Metric) -> Metric:
    if callable(metric) or metric in METRICS:
        return metric
    raise InvalidInputError(
        f"{where}: metric {metric!r} is unknown; expected one of {list(METRICS)} or a callable "
        "(truth_bin, pred_bin) -> float"
    )


def _check_confidence(where: str, confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float | np.floating):
        raise InvalidInputError(f"{where}: confidence {confidence!r} is not a number; expected a value in (0, 1)")
    if not (math.isfinite(confidence) and 0 < confidence < 1):
        raise InvalidInputError(f"{where}: confidence {confidence!r}; expected a value in (0, 1), e.g. 0.95")
    return float(confidence)


def _check_resamples(where: str, n_resamples: int) -> int:
    try:
        count = operator.index(n_resamples)
    except TypeError:
        count = None
    if count is None or isinstance(n_resamples, bool) or count < 1:
        raise InvalidInputError(f"{where}: n_resamples {n_resamples!r}; expected an integer >= 1")
    return count


def _indicators(truth_bin: np.ndarray, pred_bin: np.ndarray) -> np.ndarray:
    """(N, 3C) 0/1 matrix: each utterance's true positives, false positives, false negatives per class."""
    return np.concatenate([truth_bin & pred_bin, ~truth_bin & pred_bin, truth_bin & ~pred_bin], axis=1).astype(float)


def _f1(counts: np.ndarray, metric: str) -> np.ndarray:
    """Macro- or micro-F1 of each row of (R, 3C) counts [TP | FP | FN], 0 where 2TP + FP + FN = 0."""
    tp, fp, fn = np.split(counts, 3, axis=-1)
    if metric == "micro_f1":
        tp, fp, fn = tp.sum(axis=-1), fp.sum(axis=-1), fn.sum(axis=-1)
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
    return f1 if metric == "micro_f1" else f1.mean(axis=-1)


def _drawn_blocks(n_resamples: int, n: int, draw: Callable[[], np.ndarray]) -> Iterator[tuple[int, int, np.ndarray]]:
    """The resamples in blocks of about ``_BLOCK_ENTRIES`` entries, each drawn as documented, in order.

    Yields ``(start, stop, rows)``: row i of the (stop - start, n) float matrix ``rows`` is ``draw()``
    (one resample's n draws) for resample ``start + i``, so blocking never changes the random stream.
    """
    step = max(1, _BLOCK_ENTRIES // n)
    for start in range(0, n_resamples, step):
        stop = min(start + step, n_resamples)
        rows = np.empty((stop - start, n))
        for row in rows:
            row[:] = draw()
        yield start, stop, rows
