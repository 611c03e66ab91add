"""Threshold-based multi-label scores, the EMO-SUPERB way (numpy + scikit-learn only).

A class is on when its value exceeds 1/C, in the soft label and in the predicted
distribution alike, so an utterance can carry several emotions. Probabilities are
required: logits are rejected, never silently squashed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

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


def binarize(values: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Multi-hot matrix: value > threshold (default 1/C), compared in float32.

    The package's one binarisation rule, for losses, metrics, prediction files and reports
    alike. EMO-SUPERB compares float32 tensors with 1/C, which torch casts to float32, so a
    value equal to 1/C is not above it even where float64 would say 0.2000000030 > 0.2.

    Examples:
        >>> binarize(np.array([[0.2, 0.2, 0.2, 0.2, 0.2], [0.6, 0.1, 0.1, 0.1, 0.1]])).astype(int).tolist()
        [[0, 0, 0, 0, 0], [1, 0, 0, 0, 0]]
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] < 2:
        raise InvalidInputError(f"binarize: expected an (N, C>=2) matrix, got shape {values.shape}")
    cut = np.float32(1.0 / values.shape[1] if threshold is None else threshold)
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
        return float(f1_score(truth, pred, average="macro", zero_division=0))
    if reduction != "batch_mean" or not batch_size or batch_size < 1:
        raise InvalidInputError(
            f"multilabel_macro_f1: reduction {reduction!r} with batch_size {batch_size!r}; expected "
            "'split', or 'batch_mean' with a positive batch_size"
        )
    # scikit-learn's per-class F1 (2TP / (2TP + FP + FN), 0 where undefined) for all batches
    # at once: one f1_score call per batch made this the slowest part of a log step.
    starts = np.arange(0, len(truth), batch_size)
    tp, fp, fn = (
        np.add.reduceat((a & b).astype(np.int64), starts, axis=0)
        for a, b in ((truth, pred), (~truth, pred), (truth, ~pred))
    )
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
    return float(np.mean(f1.mean(axis=1)))


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
        ``macro_f1`` (whole split), ``micro_f1``, ``weighted_f1``, ``samples_f1`` and
        ``precision/<class>``, ``recall/<class>``, ``f1/<class>``, ``support/<class>``.
    """
    probs, soft_labels = _check_scores(probs, soft_labels)
    if len(classes) != probs.shape[1]:
        raise InvalidInputError(f"score: {len(classes)} class names for {probs.shape[1]} columns")
    truth, pred = binarize(soft_labels), binarize(probs)
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, average=None, zero_division=0)
    out = {  # macro and weighted averages of the per-class F1, as scikit-learn's average="macro"/"weighted"
        "macro_f1": float(np.mean(f1)),
        "micro_f1": float(f1_score(truth, pred, average="micro", zero_division=0)),
        "weighted_f1": float(np.average(f1, weights=support)) if support.sum() else 0.0,
        "samples_f1": float(f1_score(truth, pred, average="samples", zero_division=0)),
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


def prior_baseline(train_labels: np.ndarray, n: int) -> np.ndarray:
    """Predict the train split's mean soft label for each of ``n`` utterances."""
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
