"""Calibration of the class probabilities: ECE against soft and binarised labels, Brier
score, and one temperature fitted on dev.

No library computes ECE against soft targets, so the binning is written out here (NumPy,
equal-width bins); each class is scored as its own probability, as in multi-label SER.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import f1_score

from ..errors import InvalidInputError
from ..metrics import binarize

N_BINS = 15
TEMPERATURE_BOUNDS = (0.05, 20.0)
_EPS = 1e-12


def reliability_bins(prob: np.ndarray, target: np.ndarray, n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Equal-width bins on [0, 1] (the last one closed): count, mean probability, mean target."""
    prob, target = np.asarray(prob, dtype=float), np.asarray(target, dtype=float)
    index = np.clip(np.floor(prob * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(float)
    safe = np.maximum(count, 1)
    return {
        "count": count,
        "confidence": np.bincount(index, weights=prob, minlength=n_bins) / safe,
        "accuracy": np.bincount(index, weights=target, minlength=n_bins) / safe,
    }


def expected_calibration_error(prob: np.ndarray, target: np.ndarray, n_bins: int = N_BINS) -> float:
    """sum_b |B_b|/N * |mean prob in b - mean target in b| for one class."""
    bins = reliability_bins(prob, target, n_bins)
    return float(np.sum(bins["count"] / len(prob) * np.abs(bins["confidence"] - bins["accuracy"])))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the same as dividing the logits by T."""
    logits = np.log(np.clip(np.asarray(probs, dtype=float), _EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def soft_log_likelihood(probs: np.ndarray, soft_labels: np.ndarray) -> float:
    """Mean over items of sum_c y_c log p_c (minus the soft-label cross-entropy)."""
    return float(np.mean(np.sum(soft_labels * np.log(np.clip(probs, _EPS, 1.0)), axis=1)))


def fit_temperature(dev_probs: np.ndarray, dev_soft_labels: np.ndarray) -> float:
    """The T that maximises the dev soft-label log-likelihood; T = 1 unless another does better."""
    result = minimize_scalar(
        lambda log_t: -soft_log_likelihood(apply_temperature(dev_probs, float(np.exp(log_t))), dev_soft_labels),
        bounds=tuple(np.log(TEMPERATURE_BOUNDS)),
        method="bounded",
    )
    temperature = float(np.exp(result.x))
    before = soft_log_likelihood(dev_probs, dev_soft_labels)
    after = soft_log_likelihood(apply_temperature(dev_probs, temperature), dev_soft_labels)
    return temperature if after >= before else 1.0


def _ece_block(probs: np.ndarray, soft_labels: np.ndarray, classes: Sequence[str], n_bins: int) -> dict:
    truth = binarize(soft_labels).astype(float)
    soft = [expected_calibration_error(probs[:, j], soft_labels[:, j], n_bins) for j in range(len(classes))]
    hard = [expected_calibration_error(probs[:, j], truth[:, j], n_bins) for j in range(len(classes))]
    return {
        "ece_macro": float(np.mean(soft)),
        "ece_per_class": dict(zip(classes, soft, strict=True)),
        "ece_macro_binarized": float(np.mean(hard)),
        "ece_per_class_binarized": dict(zip(classes, hard, strict=True)),
        "brier": float(np.mean(np.sum((probs - soft_labels) ** 2, axis=1))),
        "brier_binarized": float(np.mean((probs - truth) ** 2)),
        "macro_f1": float(f1_score(binarize(soft_labels), binarize(probs), average="macro", zero_division=0)),
    }


def calibration(
    test_probs: np.ndarray,
    test_soft_labels: np.ndarray,
    classes: Sequence[str],
    dev_probs: np.ndarray | None = None,
    dev_soft_labels: np.ndarray | None = None,
    n_bins: int = N_BINS,
) -> dict:
    """ECE (per class, macro), Brier, and the effect of a dev-fitted temperature on test."""
    test_probs, test_soft_labels = np.asarray(test_probs, float), np.asarray(test_soft_labels, float)
    if test_probs.ndim != 2 or test_probs.shape != test_soft_labels.shape or test_probs.shape[1] != len(classes):
        raise InvalidInputError(
            f"calibration: expected (N, {len(classes)}) probabilities and soft labels, got {test_probs.shape} and "
            f"{test_soft_labels.shape}"
        )
    if n_bins < 1:
        raise InvalidInputError(f"calibration: n_bins must be positive, got {n_bins}")
    out = {**_ece_block(test_probs, test_soft_labels, classes, n_bins), "n_bins": n_bins, "n_items": len(test_probs)}
    if dev_probs is not None and dev_soft_labels is not None:
        dev_probs, dev_soft_labels = np.asarray(dev_probs, float), np.asarray(dev_soft_labels, float)
        temperature = fit_temperature(dev_probs, dev_soft_labels)
        scaled = _ece_block(apply_temperature(test_probs, temperature), test_soft_labels, classes, n_bins)
        out.update(
            temperature=temperature,
            dev_log_likelihood=soft_log_likelihood(dev_probs, dev_soft_labels),
            dev_log_likelihood_after_scaling=soft_log_likelihood(
                apply_temperature(dev_probs, temperature), dev_soft_labels
            ),
            ece_macro_after_scaling=scaled["ece_macro"],
            ece_macro_binarized_after_scaling=scaled["ece_macro_binarized"],
            brier_after_scaling=scaled["brier"],
            macro_f1_after_scaling=scaled["macro_f1"],
            n_dev_items=len(dev_probs),
        )
    out["definitions"] = {
        "ece": f"per class, {n_bins} equal-width bins of the class probability on [0, 1]: sum over bins of "
        "|bin|/N * |mean probability - mean target|; target = soft label (ece_*) or binarised truth (*_binarized, "
        "value > 1/C); ece_macro = mean over classes",
        "brier": "mean over items of sum over classes (p - soft label)^2; brier_binarized: mean over items and "
        "classes of (p - binarised truth)^2",
        "temperature": "one T > 0 fitted on dev by maximising the soft-label log-likelihood of softmax(log p / T); "
        "kept at 1 when no T improves it; *_after_scaling are test figures with that T",
    }
    return out
