"""The stacked step: every run's forward, loss, backward, clipping and update in one pass.

Each run keeps its own leaf tensors (the Featurizer's layer weights and its head), so its
optimizer state, clipping and checkpoint are its own. A step stacks the leaves of the runs
that take a batch of the same size (``torch.stack``, differentiable, so gradients land in
each run's leaves), runs the head over runs with ``torch.func.vmap`` of
``functional_call``, and takes each run's loss with its own expert's objective. The
optimizer is the class S3PRL's factory built for each run, holding one parameter group per
run (its own lr and scheduler): the update is elementwise per parameter, so each run's
arithmetic is that of its own optimizer. What differs from a run trained alone is the
summation order inside the stacked matrix products (measured by the benchmark: about 1e-7).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, vmap

from .setup import pooled_logits


class PooledForward(nn.Module):
    """The Featurizer's weighted sum of the stored layers, then the head on the pooled features.

    ``weights`` mirrors ``Featurizer.weights`` (absent for a single-layer upstream); the
    arithmetic is the Featurizer's: softmax of the weights, products, sum over layers.
    """

    def __init__(self, head: nn.Module, layers: int | None):
        super().__init__()
        self.head = head
        self.layers = layers
        if layers:
            self.weights = nn.Parameter(torch.zeros(layers))

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        """(B, layers, dim) pooled layers -> (B, C) logits."""
        if self.layers:
            norm_weights = F.softmax(self.weights, dim=-1)
            pooled = (norm_weights.unsqueeze(-1).unsqueeze(-1) * stored.transpose(0, 1)).sum(dim=0)
        else:
            pooled = stored[:, 0]
        return pooled_logits(self.head, pooled)


def run_parameters(featurizer: nn.Module, head: nn.Module) -> dict[str, nn.Parameter]:
    """A run's trainable leaves in the Runner's optimizer order: Featurizer first, then the expert's head."""
    params = {}
    weights = getattr(featurizer, "weights", None)
    if isinstance(weights, nn.Parameter):
        params["weights"] = weights
    for name, value in head.named_parameters():
        params[f"head.{name}"] = value
    return params


class Stack:
    """The forward of a stack of runs sharing one head shape (``template``)."""

    def __init__(self, template: PooledForward):
        self.template = template

        def one(params: dict, stored: torch.Tensor) -> torch.Tensor:
            return functional_call(self.template, params, (stored,))

        self._shared = vmap(one, in_dims=(0, None))
        self._own = vmap(one, in_dims=(0, 0))

    def logits(self, params: list[dict[str, torch.Tensor]], stored: torch.Tensor, *, shared: bool) -> torch.Tensor:
        """(R, B, C) logits of R runs on their own batches (R, B, L, D), or on one shared (B, L, D)."""
        stacked = {name: torch.stack([p[name] for p in params]) for name in params[0]}
        return (self._shared if shared else self._own)(stacked, stored)


def clip_per_run(groups: list[list[torch.Tensor]], max_norm: float) -> list[float]:
    """``torch.nn.utils.clip_grad_norm_`` over each run's own parameters; each run's total norm.

    Examples:
        >>> p = torch.nn.Parameter(torch.ones(4)); p.grad = torch.full((4,), 2.0)
        >>> clip_per_run([[p]], 1.0)
        [4.0]
    """
    norms = []
    for params in groups:
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm)))
    return norms


def finite(value: float) -> bool:
    return not math.isnan(value)
