"""The stacked step: every run's forward, loss, backward, clipping and update as one set of tensor ops.

The runs of a stack share a head shape and an Adam recipe (class, betas, eps). Each named
parameter (the Featurizer's weights, then the head's, the Runner's optimizer order) is one
leaf of shape ``(R, ...)``, row ``r`` being run ``r``'s, and so are its gradient and its
Adam moments. Then:

* forward: for a head that is a chain of linear layers and elementwise activations (the
  EMO-SUPERB head: projector, then ``UtteranceLevel``'s output layer), batched matrix
  products over the leaves (``torch.baddbmm``); for any other head, ``torch.func.vmap`` of
  ``functional_call`` of one template over the leaves (the same values, more overhead);
* clipping: each run's norm is ``torch.nn.utils.clip_grad_norm_``'s (the norm of the
  per-parameter norms of its rows), its factor ``max_norm / (norm + 1e-6)`` clamped to 1,
  a vector over runs; a run whose norm is NaN takes no step (S3PRL Runner's rule);
* update: torch's fused Adam/AdamW kernel (``torch.optim.adam.adam``/``adamw.adamw`` with
  ``fused=True``) on the row slices of each run of consecutive rows that share lr, weight
  decay and step count (the trainer keeps runs of one learning rate side by side): one
  pass over every parameter, gradient and moment instead of a tensor op per term.

What differs from a run trained alone is the summation order of the stacked matrix products
and of the norms, and the fused kernel's rounding of the Adam formula, which the Runner
evaluates op by op on the CPU (measured by the benchmark: below 1e-6 on the losses).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, vmap
from torch.optim.adam import adam
from torch.optim.adamw import adamw

from ...downstream.model import PooledMLP
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


_ELEMENTWISE = (nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.Identity, nn.Dropout)


def linear_chain(module: PooledForward) -> list[tuple[str, nn.Module]] | None:
    """The layers after pooling as ``(leaf prefix, layer)``, when they are linear layers and
    elementwise activations applied in turn (dropout of probability 0 included), else None.

    Examples:
        >>> from s3prl_emo.downstream.model import EmotionHead
        >>> head = EmotionHead(8, 4, {"select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}})
        >>> [name for name, _ in linear_chain(PooledForward(head, 3))]
        ['head.projector', 'head.model.post_net.linear']
    """
    from s3prl.downstream.model import FrameLevel

    head = module.head
    model = head.model
    if isinstance(model, PooledMLP):
        after = [(f"head.model.mlp.{name}", layer) for name, layer in model.mlp.named_children()]
    elif isinstance(getattr(model, "post_net", None), FrameLevel):
        net = model.post_net
        after = [(f"head.model.post_net.hiddens.{name}", layer) for name, layer in net.hiddens.named_children()]
        after.append(("head.model.post_net.linear", net.linear))
    else:
        return None
    chain = [("head.projector", head.projector), *after]
    for _, layer in chain:
        if type(layer) not in (nn.Linear, *_ELEMENTWISE) or (isinstance(layer, nn.Dropout) and layer.p > 0):
            return None
    return chain


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


def _segments(rows: list[int], settings: list[tuple]) -> list[tuple[int, int]]:
    """``rows`` (ascending) as ``[start, end)`` ranges of consecutive rows with equal ``settings``.

    Examples:
        >>> _segments([0, 1, 2, 4], [(1e-3,), (1e-3,), (5e-4,), (5e-4,), (5e-4,)])
        [(0, 2), (2, 3), (4, 5)]
    """
    out: list[tuple[int, int]] = []
    for row in rows:
        if out and out[-1][1] == row and settings[row] == settings[out[-1][0]]:
            out[-1] = (out[-1][0], row + 1)
        else:
            out.append((row, row + 1))
    return out


def _col(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return vector.view(-1, *([1] * (like.dim() - 1)))


class RunStack:
    """R runs' parameters, gradients and Adam state, stacked by name; see the module docstring.

    Args:
        template: One run's module (the shapes and the forward).
        rows: Per run, its parameters by name (the template's names) in its optimizer's order.
        states: Per run, its optimizer's state by name (``step``, ``exp_avg``, ``exp_avg_sq``), or empty.
        recipe: ``adam_recipe`` of the runs' optimizers (equal for all).
        lr: Per run, its current learning rate.
        weight_decay: Per run.
        max_norm: Per run, its ``gradient_clipping``.
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
        with torch.no_grad():
            self.leaves = {n: torch.stack([r[n].detach() for r in rows]).requires_grad_() for n in self.names}
            self.exp_avg = {
                n: torch.stack(
                    [s[n]["exp_avg"] if n in s else torch.zeros_like(r[n]) for r, s in zip(rows, states, strict=True)]
                )
                for n in self.names
            }
            self.exp_avg_sq = {
                n: torch.stack(
                    [
                        s[n]["exp_avg_sq"] if n in s else torch.zeros_like(r[n])
                        for r, s in zip(rows, states, strict=True)
                    ]
                )
                for n in self.names
            }
        device = self.leaves[self.names[0]].device
        steps = [float(next(iter(s.values()))["step"]) if s else 0.0 for s in states]
        f64 = {"dtype": torch.float64, "device": device}
        self.steps = torch.tensor(steps, **f64)
        self.lr = torch.tensor(lr, **f64)
        self.weight_decay = torch.tensor(weight_decay, **f64)
        self.max_norm = torch.tensor(max_norm, dtype=torch.float32, device=device)
        self.template = template
        self.chain = linear_chain(template)

        def one(params: dict, stored: torch.Tensor) -> torch.Tensor:
            return functional_call(self.template, params, (stored,))

        self._shared = vmap(one, in_dims=(0, None))
        self._own = vmap(one, in_dims=(0, 0))

    def __len__(self) -> int:
        return len(self.steps)

    def logits(self, stored: torch.Tensor, rows: list[int] | None = None, *, shared: bool = False) -> torch.Tensor:
        """(R', B, C) logits of the runs ``rows`` (all by default) on their own batches (R', B, L, D),
        or on one shared (B, L, D)."""
        params = self.leaves if rows is None else {n: leaf[rows] for n, leaf in self.leaves.items()}
        if self.chain is None:
            return (self._shared if shared else self._own)(params, stored)
        if self.template.layers:  # the Featurizer's weighted sum, each run with its own weights
            weights = F.softmax(params["weights"], dim=-1)
            hidden = (weights[:, :, None, None] * stored.transpose(-3, -2)).sum(dim=1)
        else:
            runs = len(params[self.names[0]])
            hidden = stored[..., 0, :].expand(runs, stored.shape[-3], stored.shape[-1])
        for name, layer in self.chain:
            if isinstance(layer, nn.Linear):
                weight = params[f"{name}.weight"].transpose(1, 2)
                bias = params.get(f"{name}.bias")
                hidden = torch.bmm(hidden, weight) if bias is None else torch.baddbmm(bias[:, None], hidden, weight)
            else:
                hidden = layer(hidden)
        return hidden

    @torch.no_grad()
    def clip(self, stepping: torch.Tensor | None) -> torch.Tensor:
        """Clip the rows ``stepping`` (a bool (R,), None for all) by their own norm; the (R,) norms."""
        grads = [leaf.grad for leaf in self.leaves.values()]
        if any(g is None for g in grads):
            raise RuntimeError("batched trainer: a step without a backward")
        per_name = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads], dim=1)
        norms = torch.linalg.vector_norm(per_name, dim=1)
        coef = torch.clamp(self.max_norm / (norms + 1e-6), max=1.0)
        if stepping is not None:
            coef = torch.where(stepping, coef, torch.ones_like(coef))
        for g in grads:
            g.mul_(_col(coef, g))
        return norms

    @torch.no_grad()
    def update(self, rows: torch.Tensor | None) -> None:
        """Adam/AdamW's step for the rows ``rows`` (indices, None for all), by torch's fused kernel."""
        chosen = list(range(len(self))) if rows is None else sorted(int(r) for r in rows)
        settings = torch.stack([self.lr, self.weight_decay, self.steps], dim=1).tolist()  # per row
        step_fn, device = (adamw if self.decoupled else adam), self.steps.device
        for start, end in _segments(chosen, settings):
            lr, decay, step = settings[start]
            # one step count per parameter (the kernel adds 1 to each): views of one tensor
            steps = torch.full((len(self.names),), step, dtype=torch.float32, device=device).unbind()
            step_fn(
                [self.leaves[n][start:end] for n in self.names],
                [self.leaves[n].grad[start:end] for n in self.names],
                [self.exp_avg[n][start:end] for n in self.names],
                [self.exp_avg_sq[n][start:end] for n in self.names],
                [],
                list(steps),
                fused=True,
                amsgrad=False,
                beta1=self.beta1,
                beta2=self.beta2,
                lr=lr,
                weight_decay=decay,
                eps=self.eps,
                maximize=False,
            )
        self.steps[chosen] += 1

    @torch.no_grad()
    def zero_grad(self, stepping: torch.Tensor | None) -> None:
        """Zero the gradient rows ``stepping`` (a bool (R,), None for all)."""
        for leaf in self.leaves.values():
            if stepping is None:
                leaf.grad = None
            elif leaf.grad is not None:
                leaf.grad.masked_fill_(_col(stepping, leaf.grad), 0.0)

    def keep(self, rows: list[int]) -> None:
        """Keep only the runs ``rows`` (in this order): the others have left the stack."""
        index = torch.as_tensor(rows, dtype=torch.long, device=self.steps.device)
        with torch.no_grad():
            for name, leaf in list(self.leaves.items()):
                kept = leaf.detach().index_select(0, index).requires_grad_()
                if leaf.grad is not None:
                    kept.grad = leaf.grad.index_select(0, index)
                self.leaves[name] = kept
                self.exp_avg[name] = self.exp_avg[name].index_select(0, index)
                self.exp_avg_sq[name] = self.exp_avg_sq[name].index_select(0, index)
        for attr in ("steps", "lr", "weight_decay", "max_norm"):
            setattr(self, attr, getattr(self, attr).index_select(0, index))

    def run_values(self, row: int) -> dict[str, torch.Tensor]:
        """Run ``row``'s parameters by name (copies)."""
        return {n: leaf[row].detach().clone() for n, leaf in self.leaves.items()}

    def run_state(self, row: int) -> dict[str, dict] | None:
        """Run ``row``'s Adam state by name in ``torch.optim``'s format, None before its first step."""
        step = float(self.steps[row])
        if step == 0:
            return None
        return {
            n: {
                "step": torch.tensor(step, dtype=torch.float32),
                "exp_avg": self.exp_avg[n][row].clone(),
                "exp_avg_sq": self.exp_avg_sq[n][row].clone(),
            }
            for n in self.names
        }
