"""Soft-target cross-entropy and EMO-SUPERB's class-balanced variant (CBCE).

Class weights come from the train split only: with N train utterances, n_j of them with a
soft label above 1/K for class j, and beta = (N - 1) / N, w_j = (1 - beta) / (1 - beta^n_j),
rescaled to sum to K ("Class-Balanced Loss Based on Effective Number of Samples").
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import InvalidInputError
from .metrics import binarize

Weighting = Literal["sample", "class"]


def class_balanced_weights(train_labels: np.ndarray, beta: float | None = None) -> np.ndarray:
    """Effective-number class weights, shape (K,), summing to K, as float32.

    Computed as EMO-SUPERB's released code computes them (float32 torch operations in the
    same order), so the weights are the same numbers. n_j counts by the package's one rule,
    ``metrics.binarize``. A class with no positive train utterance (n_j = 0) would get
    1 / 0; it gets the weight of a class seen once instead, the largest finite weight, so
    the loss stays finite.

    Examples:
        >>> class_balanced_weights(np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9]])).round(3).tolist()
        [0.75, 1.25]
    """
    labels = np.asarray(train_labels, dtype=float)
    if labels.ndim != 2 or labels.shape[1] < 2 or labels.shape[0] < 1:
        raise InvalidInputError(f"class_balanced_weights: expected an (N, K>=2) matrix, got shape {labels.shape}")
    n, k = labels.shape
    if beta is None:
        beta = (n - 1) / n
    if not 0.0 <= beta < 1.0:
        raise InvalidInputError(f"class_balanced_weights: beta must be in [0, 1), got {beta}")
    positives = torch.as_tensor(np.maximum(binarize(labels).sum(axis=0), 1), dtype=torch.float32)
    weights = (1.0 - beta) / (1.0 - torch.pow(beta, positives))
    return (weights / torch.sum(weights) * k).numpy()


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-utterance cross-entropy against a target distribution, shape (B,)."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1)


class ClassBalancedCrossEntropy(nn.Module):
    """CBCE over soft targets; calling it returns the batch mean.

    ``weighting="sample"`` (default) is EMO-SUPERB's released code, which produced the
    published numbers: utterance i is scaled by s_i = sum_j w_j t_ij. ``"class"`` is the
    paper's Eq. 1: each class term is scaled by w_j.

    Args:
        train_labels: (N, C) soft labels of the training split; the class weights come from them.
        weighting: ``"sample"`` or ``"class"``, as above.
        beta: The class-balanced weights' beta; None for the default.

    Raises:
        InvalidInputError: when ``weighting`` is neither.

    Examples:
        >>> import numpy as np, torch
        >>> loss = ClassBalancedCrossEntropy(np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 0.0]], dtype=np.float32))
        >>> value = loss(torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> bool(value > 0)
        True
    """

    # forward reduces the last two dimensions only: (R, B, C) logits and targets with (R, 1, C)
    # weights give the R batch means at once (the batched trainer's runs)
    leading_dims = True

    def __init__(self, train_labels: np.ndarray, weighting: Weighting = "sample", beta: float | None = None):
        """Compute the class weights once; they are a non-persistent buffer, rebuilt from the labels, never saved."""
        super().__init__()
        if weighting not in ("sample", "class"):
            raise InvalidInputError(
                f"ClassBalancedCrossEntropy: weighting must be 'sample' or 'class', got {weighting!r}"
            )
        self.weighting = weighting
        weights = torch.as_tensor(class_balanced_weights(train_labels, beta), dtype=torch.float32)
        self.register_buffer("weights", weights, persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Batch mean of the weighted cross-entropy of (B, C) logits against (B, C) soft targets."""
        log_probs = F.log_softmax(logits, dim=-1)
        if self.weighting == "sample":
            per_utterance = (targets * self.weights).sum(dim=-1) * -(targets * log_probs).sum(dim=-1)
        else:
            per_utterance = -(self.weights * targets * log_probs).sum(dim=-1)
        return per_utterance.mean(dim=-1)


class SoftCrossEntropy(nn.Module):
    """Plain cross-entropy against soft targets, batch mean.

    Examples:
        >>> import torch
        >>> round(SoftCrossEntropy()(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]])).item(), 4)
        0.6931
    """

    leading_dims = True  # as ClassBalancedCrossEntropy's

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Batch mean of ``soft_cross_entropy``."""
        return soft_cross_entropy(logits, targets).mean(dim=-1)


def batch_ccc(predictions: torch.Tensor, targets: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-attribute CCC of one batch, shape (A,), with population moments (``metrics.concordance_cc``).

    ``eps`` keeps the gradient finite where a batch is constant in an attribute; otherwise
    the value is ``metrics.concordance_cc`` of the same numbers.
    """
    mean_p, mean_t = predictions.mean(dim=0), targets.mean(dim=0)
    dp, dt = predictions - mean_p, targets - mean_t
    covariance = (dp * dt).mean(dim=0)
    denominator = (dp * dp).mean(dim=0) + (dt * dt).mean(dim=0) + (mean_p - mean_t) ** 2
    return 2 * covariance / (denominator + eps)


class AttributeLoss(nn.Module):
    """The loss of the attribute regression: ``ccc`` (1 - mean CCC over attributes, per batch) or ``mse``.

    ``ccc`` is how the MSP-Podcast challenge baseline trains (``utils/loss_manager.py`` of
    msplabresearch/MSP-Podcast_Challenge): a batch's CCC, so batches should not be tiny.

    Args:
        name: ``"ccc"`` or ``"mse"``.

    Raises:
        InvalidInputError: another name.

    Examples:
        >>> loss = AttributeLoss("ccc")
        >>> float(loss(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[1.0], [2.0], [3.0]]))) < 1e-6
        True
    """

    NAMES = ("ccc", "mse")

    def __init__(self, name: str = "ccc"):
        """Choose the loss by name."""
        super().__init__()
        if name not in self.NAMES:
            raise InvalidInputError(f"AttributeLoss: name must be one of {list(self.NAMES)}, got {name!r}")
        self.name = name

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The scalar loss of (B, A) predictions against (B, A) targets."""
        if self.name == "mse":
            return F.mse_loss(predictions, targets)
        return 1.0 - batch_ccc(predictions, targets).mean()
