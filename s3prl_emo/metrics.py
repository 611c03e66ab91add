"""Threshold-based multi-label scores, the EMO-SUPERB way.

A class is on when its value exceeds 1/C, in the soft label and in the predicted
distribution alike, so an utterance can carry several emotions. Probabilities are
required: logits are rejected, never silently squashed.

The F1 family is scikit-learn's (``precision_recall_fscore_support`` with
``zero_division=0``: 2TP / (2TP + FP + FN), 0 where undefined), computed from the
multi-label confusion counts here: scikit-learn validates its inputs on every call
(about 9 ms each), which made scoring most of a training run's wall time once the
heads train together. The tests hold these functions equal to scikit-learn's, exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.special import rel_entr

from .errors import InvalidInputError

Reduction = Literal["split", "batch_mean"]


def _check_scores(probs: np.ndarray, soft_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=float)
    soft_labels = np.asarray(soft_labels, dtype=float)
    if probs.ndim != 2 or probs.shape != soft_labels.shape or probs.shape[1] < 2:
        raise InvalidInputError(
            f"expected probabilities and soft labels of the same shape (N, C>=2), got {probs.shape} "
            f"and {soft_labels.shape}"
        )
    for name, values in (("probabilities", probs), ("soft labels", soft_labels)):
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise InvalidInputError(f"{name} must lie in [0, 1] (apply softmax to logits first)")
    return probs, soft_labels


def _f1(tp: np.ndarray, true_sum: np.ndarray, pred_sum: np.ndarray) -> np.ndarray:
    """scikit-learn's F1 from counts: 2TP / (true + predicted), 0 where both are 0."""
    denominator = true_sum + pred_sum
    return np.divide(2.0 * tp, denominator, out=np.zeros(np.shape(denominator)), where=denominator > 0)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(np.shape(denominator)), where=denominator > 0)


def _macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """``f1_score(truth, pred, average="macro", zero_division=0)`` of two multi-hot matrices."""
    return float(np.mean(_f1((truth & pred).sum(axis=0), truth.sum(axis=0), pred.sum(axis=0))))


def binarize(values: np.ndarray, threshold: float | np.ndarray | None = None) -> np.ndarray:
    """Multi-hot matrix: value > threshold (default 1/C), compared in float32.

    The package's one binarisation rule, for losses, metrics, prediction files and reports
    alike. EMO-SUPERB compares float32 tensors with 1/C, which torch casts to float32, so a
    value equal to 1/C is not above it even where float64 would say 0.2000000030 > 0.2.
    ``threshold`` may also hold one value per class (C,), as ``tune_thresholds`` returns.

    Examples:
        >>> binarize(np.array([[0.2, 0.2, 0.2, 0.2, 0.2], [0.6, 0.1, 0.1, 0.1, 0.1]])).astype(int).tolist()
        [[0, 0, 0, 0, 0], [1, 0, 0, 0, 0]]
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] < 2:
        raise InvalidInputError(f"binarize: expected an (N, C>=2) matrix, got shape {values.shape}")
    cut = np.asarray(1.0 / values.shape[1] if threshold is None else threshold, dtype=np.float32)
    if cut.shape not in ((), (values.shape[1],)):
        raise InvalidInputError(
            f"binarize: threshold of shape {cut.shape}; expected one number or one per class ({values.shape[1]},)"
        )
    return values > cut


def multilabel_macro_f1(
    probs: np.ndarray,
    soft_labels: np.ndarray,
    *,
    reduction: Reduction = "split",
    batch_size: int | None = None,
    threshold: float | None = None,
) -> float:
    """Macro-F1 over binarised soft labels and predictions (zero_division=0).

    ``reduction="split"`` scores the whole split at once (the sound choice).
    ``"batch_mean"`` averages the score of consecutive batches of ``batch_size``, as
    EMO-SUPERB's released code did for the paper's published numbers.

    Examples:
        >>> multilabel_macro_f1(np.array([[0.7, 0.3], [0.2, 0.8]]), np.array([[0.9, 0.1], [0.6, 0.4]]))
        0.3333333333333333
    """
    probs, soft_labels = _check_scores(probs, soft_labels)
    truth, pred = binarize(soft_labels, threshold), binarize(probs, threshold)
    if reduction == "split":
        return _macro_f1(truth, pred)
    if reduction != "batch_mean" or not batch_size or batch_size < 1:
        raise InvalidInputError(
            f"multilabel_macro_f1: reduction {reduction!r} with batch_size {batch_size!r}; expected "
            "'split', or 'batch_mean' with a positive batch_size"
        )
    # the per-class F1 of all batches at once, from each batch's counts
    starts = np.arange(0, len(truth), batch_size)
    tp, true_sum, pred_sum = (np.add.reduceat(m.astype(np.int64), starts, axis=0) for m in (truth & pred, truth, pred))
    return float(np.mean(_f1(tp, true_sum, pred_sum).mean(axis=1)))


def score(
    probs: np.ndarray,
    soft_labels: np.ndarray,
    classes: Sequence[str],
    *,
    batch_size: int | None = None,
) -> dict[str, float]:
    """All scores of one split.

    Args:
        probs: (N, C) predicted class probabilities.
        soft_labels: (N, C) reference distributions.
        classes: the C class names, in column order.
        batch_size: when given, also report ``macro_f1_batch_mean``, EMO-SUPERB's
            per-batch average, to compare with published numbers.

    Returns:
        ``macro_f1`` (whole split), ``micro_f1``, ``weighted_f1``, ``samples_f1``,
        ``js_divergence`` (``js_divergence``: how far the predicted distributions are from the
        soft labels, no threshold involved) and ``precision/<class>``, ``recall/<class>``,
        ``f1/<class>``, ``support/<class>``.

    Examples:
        >>> scores = score(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[1.0, 0.0], [0.0, 1.0]]), ["Happy", "Sad"])
        >>> scores["macro_f1"], scores["f1/Sad"]
        (1.0, 1.0)
    """
    probs, soft_labels = _check_scores(probs, soft_labels)
    if len(classes) != probs.shape[1]:
        raise InvalidInputError(f"score: {len(classes)} class names for {probs.shape[1]} columns")
    truth, pred = binarize(soft_labels), binarize(probs)
    hits = truth & pred
    tp, support, predicted = hits.sum(axis=0), truth.sum(axis=0), pred.sum(axis=0)
    precision, recall, f1 = _ratio(tp, predicted), _ratio(tp, support), _f1(tp, support, predicted)
    out = {  # scikit-learn's average="macro", "micro", "weighted" and "samples" (zero_division=0)
        "macro_f1": float(np.mean(f1)),
        "micro_f1": float(_f1(tp.sum(), support.sum(), predicted.sum())),
        "weighted_f1": float(np.average(f1, weights=support)) if support.sum() else 0.0,
        "samples_f1": float(np.mean(_f1(hits.sum(axis=1), truth.sum(axis=1), pred.sum(axis=1)))),
        "js_divergence": js_divergence(probs, soft_labels),
    }
    for j, name in enumerate(classes):
        out[f"precision/{name}"] = float(precision[j])
        out[f"recall/{name}"] = float(recall[j])
        out[f"f1/{name}"] = float(f1[j])
        out[f"support/{name}"] = float(support[j])
    if batch_size:
        out["macro_f1_batch_mean"] = multilabel_macro_f1(
            probs, soft_labels, reduction="batch_mean", batch_size=batch_size
        )
    return out


def tune_thresholds(probs: np.ndarray, soft_labels: np.ndarray) -> np.ndarray:
    """Per-class thresholds that maximise each class's F1 on these (dev) predictions.

    The reference stays binarised by the 1/C rule; only the prediction's cut moves. Class c
    is predicted when its probability > t_c (float32, as ``binarize``), and t_c is searched
    over 0, 1/C and every distinct value class c takes in ``probs`` (each value itself, so
    every distinct set of predicted utterances is reachable). Ties in F1 go to the candidate
    closest to 1/C (the larger one if two are equally close), so a class that F1 cannot
    tell apart, e.g. one never on in the reference, keeps the 1/C rule.

    Choose on dev and apply to test (``macro_f1_at_thresholds``): scored on the utterances it
    was chosen on, the result is optimistic by construction.

    Args:
        probs: (N, C) predicted probabilities (dev).
        soft_labels: (N, C) reference distributions (dev).

    Returns:
        (C,) float64 array of thresholds, each exactly representable in float32.

    Examples:
        >>> probs = np.array([[0.6, 0.4], [0.45, 0.55], [0.3, 0.7]])
        >>> tune_thresholds(probs, np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])).round(2).tolist()
        [0.3, 0.55]
    """
    probs, soft_labels = _check_scores(probs, soft_labels)
    truth, values = binarize(soft_labels), probs.astype(np.float32)
    default = np.float32(1.0 / probs.shape[1])
    thresholds = np.empty(probs.shape[1])
    for c in range(probs.shape[1]):
        on = truth[:, c]
        candidates = np.unique(np.concatenate([values[:, c], np.array([0.0, default], dtype=np.float32)]))
        predicted = len(values) - np.searchsorted(np.sort(values[:, c]), candidates, side="right")
        tp = on.sum() - np.searchsorted(np.sort(values[on, c]), candidates, side="right")
        denominator = predicted + on.sum()  # 2TP + FP + FN
        f1 = np.divide(2 * tp, denominator, out=np.zeros(len(candidates)), where=denominator > 0)
        best = np.flatnonzero(f1 == f1.max())
        distance = np.abs(candidates[best].astype(float) - float(default))
        thresholds[c] = candidates[best[distance == distance.min()][-1]]
    return thresholds


def macro_f1_at_thresholds(probs: np.ndarray, soft_labels: np.ndarray, thresholds: np.ndarray) -> float:
    """Macro-F1 (zero_division=0) with per-class prediction thresholds; the reference keeps the 1/C rule.

    Args:
        probs: (N, C) predicted probabilities.
        soft_labels: (N, C) reference distributions, binarised at 1/C.
        thresholds: (C,) prediction thresholds, e.g. ``tune_thresholds`` on dev.

    Examples:
        >>> probs, labels = np.array([[0.7, 0.3], [0.2, 0.8]]), np.array([[0.9, 0.1], [0.6, 0.4]])
        >>> macro_f1_at_thresholds(probs, labels, np.array([0.1, 0.9]))  # class 2: never on, F1 0
        0.5
    """
    probs, soft_labels = _check_scores(probs, soft_labels)
    thresholds = np.asarray(thresholds, dtype=float)
    if thresholds.shape != (probs.shape[1],) or not np.isfinite(thresholds).all():
        raise InvalidInputError(
            f"macro_f1_at_thresholds: thresholds of shape {thresholds.shape}; expected {probs.shape[1]} finite values"
        )
    return _macro_f1(binarize(soft_labels), binarize(probs, thresholds))


def js_divergence(probs: np.ndarray, soft_labels: np.ndarray) -> float:
    """Mean Jensen-Shannon divergence, in bits, between predicted distributions and soft labels.

    JS(p, q) = (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2 and log base 2, so each
    utterance's value lies in [0, 1] (0: identical distributions). It is the divergence,
    the square of ``scipy.spatial.distance.jensenshannon(p, q, base=2)``, not that distance.
    Rows are normalised to sum to 1 first, as scipy does. Unlike F1 it needs no threshold:
    it scores the whole distribution that soft-label training aims at.

    Args:
        probs: (N, C) predicted probabilities.
        soft_labels: (N, C) reference distributions.

    Examples:
        >>> js_divergence(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([[0.0, 1.0], [0.5, 0.5]]))
        0.5
    """
    probs, soft_labels = _check_scores(probs, soft_labels)
    for name, values in (("probabilities", probs), ("soft labels", soft_labels)):
        if (values.sum(axis=1) <= 0).any():
            raise InvalidInputError(f"js_divergence: a row of the {name} sums to 0; expected distributions")
    p = probs / probs.sum(axis=1, keepdims=True)
    q = soft_labels / soft_labels.sum(axis=1, keepdims=True)
    m = (p + q) / 2
    per_utterance = (rel_entr(p, m).sum(axis=1) + rel_entr(q, m).sum(axis=1)) / (2 * np.log(2))
    return float(np.clip(per_utterance, 0.0, 1.0).mean())


def prior_baseline(train_labels: np.ndarray, n: int) -> np.ndarray:
    """Predict the train split's mean soft label for each of ``n`` utterances.

    Examples:
        >>> prior_baseline(np.array([[1.0, 0.0], [0.0, 1.0]]), 3).tolist()
        [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]
    """
    return np.tile(np.asarray(train_labels, dtype=float).mean(axis=0), (n, 1))


def format_table(scores: dict[str, float], classes: Sequence[str]) -> str:
    """A per-class table (precision, recall, F1, support) for people to read."""
    width = max(len("class"), *(len(c) for c in classes))
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for name in classes:
        lines.append(
            f"{name:<{width}}  {scores[f'precision/{name}']:9.3f}  {scores[f'recall/{name}']:6.3f}"
            f"  {scores[f'f1/{name}']:5.3f}  {int(scores[f'support/{name}']):7d}"
        )
    lines.append(f"{'macro':<{width}}  {'':9}  {'':6}  {scores['macro_f1']:5.3f}")
    return "\n".join(lines)


def concordance_cc(predictions: np.ndarray, truth: np.ndarray) -> float | np.ndarray:
    """Lin's (1989) concordance correlation coefficient, with population moments.

    CCC = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2): Pearson's correlation
    penalised for any shift or change of scale between the two, so it is 1 only when the
    predictions equal the truth. The MSP-Podcast challenge ranks its attribute track by the
    mean CCC of arousal, valence and dominance.

    Computed over the last axis, so a (..., N) stack (e.g. bootstrap resamples) gives (...,)
    values in one call. Constant predictions of a varying truth score 0. Where the
    denominator is 0 (both constant and equal, e.g. N = 1 with equal values) the coefficient
    is undefined and NaN is returned.

    Args:
        predictions: (..., N) predicted values.
        truth: (..., N) reference values, the same shape.

    Returns:
        A float for 1-D input, else an array of the leading shape.

    Raises:
        InvalidInputError: shapes differ, N = 0, or a value is NaN or infinite.

    Examples:
        >>> concordance_cc(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
        1.0
        >>> round(concordance_cc(np.array([2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0])), 4)  # shifted by 1
        0.5714
        >>> concordance_cc(np.array([2.0, 2.0]), np.array([1.0, 3.0]))  # constant predictions
        0.0
    """
    x = np.asarray(predictions, dtype=float)
    y = np.asarray(truth, dtype=float)
    if x.shape != y.shape or x.ndim == 0 or x.shape[-1] == 0:
        raise InvalidInputError(
            f"concordance_cc: expected predictions and truth of the same shape (..., N >= 1), got {x.shape} "
            f"and {y.shape}"
        )
    for name, values in (("predictions", x), ("truth", y)):
        if not np.isfinite(values).all():
            raise InvalidInputError(f"concordance_cc: the {name} hold NaN or infinite values")
    mean_x, mean_y = x.mean(axis=-1), y.mean(axis=-1)
    dx, dy = x - mean_x[..., None], y - mean_y[..., None]
    covariance = (dx * dy).mean(axis=-1)
    denominator = (dx * dx).mean(axis=-1) + (dy * dy).mean(axis=-1) + (mean_x - mean_y) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        ccc = np.where(denominator > 0, 2 * covariance / np.where(denominator > 0, denominator, 1.0), np.nan)
    return float(ccc) if ccc.ndim == 0 else ccc


def pearson_r(predictions: np.ndarray, truth: np.ndarray) -> float:
    """Pearson's correlation of two 1-D samples; NaN where either is constant (undefined).

    Examples:
        >>> pearson_r(np.array([2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0]))
        1.0
    """
    x, y = np.asarray(predictions, dtype=float), np.asarray(truth, dtype=float)
    concordance_cc(x, y)  # the same checks of shape and values
    dx, dy = x - x.mean(), y - y.mean()
    scale = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / scale) if scale > 0 else float("nan")


def attribute_scores(predictions: np.ndarray, truth: np.ndarray, attributes: Sequence[str]) -> dict:
    """The attribute scores of one split: ``ccc/<attr>``, ``ccc_mean``, ``pearson/<attr>``, ``mae/<attr>``.

    ``ccc_mean`` is the mean CCC over the attributes, the MSP-Podcast challenge's ranking
    figure. An undefined coefficient (``concordance_cc``: both constant) is None, so the JSON
    it goes to stays strict; ``ccc_mean`` is then None too.

    Args:
        predictions: (N, A) predicted values, on the corpus's scale.
        truth: (N, A) the label file's values.
        attributes: the A column names (``EmoAct``, ...).

    Examples:
        >>> scores = attribute_scores(np.array([[1.0], [3.0]]), np.array([[1.0], [3.0]]), ["EmoAct"])
        >>> scores["ccc/EmoAct"], scores["ccc_mean"], scores["mae/EmoAct"]
        (1.0, 1.0, 0.0)
    """
    x, y = np.asarray(predictions, dtype=float), np.asarray(truth, dtype=float)
    if x.ndim != 2 or x.shape != y.shape or x.shape[1] != len(attributes) or not len(attributes):
        raise InvalidInputError(
            f"attribute_scores: expected predictions and truth of shape (N, {len(attributes)}), got {x.shape} "
            f"and {y.shape}"
        )
    out: dict = {}
    cccs = []
    for j, name in enumerate(attributes):
        value = concordance_cc(x[:, j], y[:, j])
        cccs.append(value)
        out[f"ccc/{name}"] = None if np.isnan(value) else value
    out["ccc_mean"] = None if np.isnan(cccs).any() else float(np.mean(cccs))
    for j, name in enumerate(attributes):
        value = pearson_r(x[:, j], y[:, j])
        out[f"pearson/{name}"] = None if np.isnan(value) else value
        out[f"mae/{name}"] = float(np.abs(x[:, j] - y[:, j]).mean())
    return out
