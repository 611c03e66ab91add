"""The stacked step: every run's forward, loss, backward, clipping and update as one set of tensor ops.

The runs of a stack share a head shape and an Adam recipe (class, betas, eps). Their
trainable values live in one ``(R, P)`` matrix, row ``r`` holding run ``r``'s parameters in
the Runner's optimizer order (Featurizer weights first, then the head); each named leaf of
shape ``(R, ...)`` is a view of it, and so is each leaf's gradient, so that autograd
accumulates straight into the ``(R, P)`` gradient. Then:

* forward: ``torch.func.vmap`` of ``functional_call`` of one template over the leaves;
* clipping: each run's norm is the norm of its row of the gradient, its factor
  ``max_norm / (norm + 1e-6)`` clamped to 1 (``torch.nn.utils.clip_grad_norm_``'s rule), a
  vector over runs; a run whose norm is NaN takes no step (S3PRL Runner's rule);
* update: ``torch.optim.Adam``/``AdamW``'s single-tensor formula on the ``(R, P)``
  matrices, with each run's lr, weight decay and step count (bias correction) as columns.

What differs from a run trained alone is only the summation order of the stacked matrix
products and of the norm (measured by the benchmark: about 1e-7 on the losses).
"""

from __future__ import annotations

import itertools
import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, vmap

from .setup import pooled_logits

# The leaves' gradients are views of the (R, P) gradient on purpose (see the module docstring).
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")


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


_FLAGS = ("amsgrad", "maximize", "capturable", "differentiable", "fused")


def adam_recipe(optimizer: torch.optim.Optimizer) -> tuple[bool, float, float, float] | str:
    """``(decoupled weight decay, beta1, beta2, eps)`` of a torch Adam/AdamW the stack reproduces, or why not.

    Examples:
        >>> adam_recipe(torch.optim.AdamW([nn.Parameter(torch.zeros(1))]))
        (True, 0.9, 0.999, 1e-08)
        >>> adam_recipe(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1))
        'optimizer SGD: only torch.optim.Adam and AdamW are stacked'
    """
    kind = type(optimizer)
    if kind not in (torch.optim.Adam, torch.optim.AdamW):
        return f"optimizer {kind.__name__}: only torch.optim.Adam and AdamW are stacked"
    if len(optimizer.param_groups) != 1:
        return f"optimizer {kind.__name__} has {len(optimizer.param_groups)} parameter groups; one is stacked"
    group = optimizer.param_groups[0]
    on = [flag for flag in _FLAGS if group.get(flag)]
    if on:
        return f"optimizer {kind.__name__} with {', '.join(on)}: not stacked"
    if any(isinstance(group[k], torch.Tensor) for k in ("lr", "betas", "weight_decay")) or isinstance(
        group["betas"][0], torch.Tensor
    ):
        return f"optimizer {kind.__name__} with tensor hyperparameters: not stacked"
    beta1, beta2 = (float(b) for b in group["betas"])
    return bool(group.get("decoupled_weight_decay", kind is torch.optim.AdamW)), beta1, beta2, float(group["eps"])


def _col(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return vector.view(-1, *([1] * (like.dim() - 1)))


class RunStack:
    """R runs' parameters, gradients and Adam state as ``(R, P)`` matrices; see the module docstring.

    Args:
        template: One run's module (the shapes and the forward).
        rows: Per run, its parameters by name (the template's names) in its optimizer's order.
        states: Per run, its optimizer's state by name (``step``, ``exp_avg``, ``exp_avg_sq``), or empty.
        recipe: ``adam_recipe`` of the runs' optimizers (equal for all).
        lr, weight_decay, max_norm: Per run.
    """

    def __init__(
        self,
        template: PooledForward,
        rows: list[dict[str, torch.Tensor]],
        states: list[dict[str, dict]],
        recipe: tuple[bool, float, float, float],
        lr: list[float],
        weight_decay: list[float],
        max_norm: list[float],
    ):
        self.decoupled, self.beta1, self.beta2, self.eps = recipe
        self.names = list(rows[0])
        self.shapes = {n: tuple(rows[0][n].shape) for n in self.names}
        sizes = [math.prod(self.shapes[n]) for n in self.names]
        ends = list(itertools.accumulate(sizes))
        self.spans = {n: (e - s, e) for n, s, e in zip(self.names, sizes, ends, strict=True)}
        device = rows[0][self.names[0]].device

        def flat(tensors: list[torch.Tensor]) -> torch.Tensor:
            return torch.cat([t.detach().reshape(-1) for t in tensors]).to(device)

        zeros = {n: torch.zeros(self.shapes[n], device=device) for n in self.names}
        self.values = torch.stack([flat([r[n] for n in self.names]) for r in rows])
        self.exp_avg = torch.stack([flat([s.get(n, {}).get("exp_avg", zeros[n]) for n in self.names]) for s in states])
        self.exp_avg_sq = torch.stack(
            [flat([s.get(n, {}).get("exp_avg_sq", zeros[n]) for n in self.names]) for s in states]
        )
        steps = [float(next(iter(s.values()))["step"]) if s else 0.0 for s in states]
        f64 = {"dtype": torch.float64, "device": device}
        self.steps = torch.tensor(steps, **f64)
        self.lr = torch.tensor(lr, **f64)
        self.weight_decay = torch.tensor(weight_decay, **f64)
        self.max_norm = torch.tensor(max_norm, dtype=torch.float32, device=device)
        self._bind()
        self.template = template

        def one(params: dict, stored: torch.Tensor) -> torch.Tensor:
            return functional_call(self.template, params, (stored,))

        self._shared = vmap(one, in_dims=(0, None))
        self._own = vmap(one, in_dims=(0, 0))

    def __len__(self) -> int:
        return self.values.shape[0]

    def _view(self, matrix: torch.Tensor, name: str) -> torch.Tensor:
        start, end = self.spans[name]
        return matrix[:, start:end].view(matrix.shape[0], *self.shapes[name])

    def _bind(self) -> None:
        """The named leaves and their gradients as views of the (R, P) matrices."""
        self.grad = torch.zeros_like(self.values)
        self.leaves = {}
        for name in self.names:
            leaf = self._view(self.values, name).detach().requires_grad_()
            leaf.grad = self._view(self.grad, name)
            self.leaves[name] = leaf

    def logits(self, stored: torch.Tensor, rows: list[int] | None = None, *, shared: bool = False) -> torch.Tensor:
        """(R', B, C) logits of the runs ``rows`` (all by default) on their own batches (R', B, L, D),
        or on one shared (B, L, D)."""
        params = self.leaves if rows is None else {n: leaf[rows] for n, leaf in self.leaves.items()}
        return (self._shared if shared else self._own)(params, stored)

    def check_grads(self) -> None:
        """Autograd accumulated into the gradient matrix (it would replace a gradient it could not add to)."""
        for name, leaf in self.leaves.items():
            if leaf.grad is None or leaf.grad.data_ptr() != self._view(self.grad, name).data_ptr():
                raise RuntimeError(f"batched trainer: the gradient of {name} left the stacked gradient")

    @torch.no_grad()
    def clip(self, stepping: torch.Tensor | None) -> torch.Tensor:
        """Clip the rows ``stepping`` (a bool (R,), None for all) by their own norm; the (R,) norms."""
        self.check_grads()
        norms = torch.linalg.vector_norm(self.grad, dim=1)
        coef = torch.clamp(self.max_norm / (norms + 1e-6), max=1.0)
        if stepping is not None:
            coef = torch.where(stepping, coef, torch.ones_like(coef))
        self.grad.mul_(coef.unsqueeze(1))
        return norms

    @torch.no_grad()
    def update(self, rows: torch.Tensor | None) -> None:
        """Adam/AdamW's single-tensor step for the rows ``rows`` (indices, None for all)."""
        if rows is None:
            self._adam(self.values, self.grad, self.exp_avg, self.exp_avg_sq, slice(None))
            return
        values, exp_avg, exp_avg_sq = self.values[rows], self.exp_avg[rows], self.exp_avg_sq[rows]
        self._adam(values, self.grad[rows], exp_avg, exp_avg_sq, rows)
        self.values[rows], self.exp_avg[rows], self.exp_avg_sq[rows] = values, exp_avg, exp_avg_sq

    def _adam(self, param, grad, exp_avg, exp_avg_sq, rows) -> None:
        self.steps[rows] += 1
        step, lr, decay = self.steps[rows], self.lr[rows], self.weight_decay[rows]
        if bool((decay != 0).any()):
            if self.decoupled:
                param.mul_((1 - lr * decay).float().unsqueeze(1))
            else:
                grad = grad.add(decay.float().unsqueeze(1) * param)
        exp_avg.lerp_(grad, 1 - self.beta1)
        exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        step_size = lr / (1 - torch.pow(self.beta1, step))
        bias_correction2_sqrt = (1 - torch.pow(self.beta2, step)) ** 0.5
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt.float().unsqueeze(1)).add_(self.eps)
        param.add_((-step_size).float().unsqueeze(1) * exp_avg / denom)

    @torch.no_grad()
    def zero_grad(self, stepping: torch.Tensor | None) -> None:
        """Zero the gradient rows ``stepping`` (a bool (R,), None for all)."""
        if stepping is None:
            self.grad.zero_()
        else:
            self.grad.masked_fill_(stepping.unsqueeze(1), 0.0)

    def keep(self, rows: list[int]) -> None:
        """Keep only the runs ``rows`` (in this order): the others have left the stack."""
        index = torch.as_tensor(rows, dtype=torch.long, device=self.values.device)
        grad = self.grad.index_select(0, index)
        for attr in ("values", "exp_avg", "exp_avg_sq", "steps", "lr", "weight_decay", "max_norm"):
            setattr(self, attr, getattr(self, attr).index_select(0, index))
        self._bind()
        self.grad.copy_(grad)

    def run_values(self, row: int) -> dict[str, torch.Tensor]:
        """Run ``row``'s parameters by name (copies)."""
        return {n: self._view(self.values, n)[row].clone() for n in self.names}

    def run_state(self, row: int) -> dict[str, dict] | None:
        """Run ``row``'s Adam state by name in ``torch.optim``'s format, None before its first step."""
        step = float(self.steps[row])
        if step == 0:
            return None
        return {
            n: {
                "step": torch.tensor(step, dtype=torch.float32),
                "exp_avg": self._view(self.exp_avg, n)[row].clone(),
                "exp_avg_sq": self._view(self.exp_avg_sq, n)[row].clone(),
            }
            for n in self.names
        }
