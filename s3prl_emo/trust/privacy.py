"""Gender-inference probe on frozen upstream features: how much the upstream leaks.

Features are per-utterance means of each layer, (N, L, H). Two probes are fitted on train
and selected on dev: a logistic regression on the checkpoint's own layer mixture, and
(as TrustSER) a learned softmax weighting of all layers with a linear classifier. The one
with the better dev UAR is reported on test; higher means more leakage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.preprocessing import StandardScaler

from ..errors import InvalidInputError

C_GRID = (0.01, 0.1, 1.0, 10.0)
EPOCHS = 200


def _encode(labels: Sequence, known: list[str], split: str) -> np.ndarray:
    labels = np.asarray(labels).astype(str)
    unknown = sorted(set(labels) - set(known))
    if unknown:
        raise InvalidInputError(f"privacy: {split} has groups {unknown} absent from train ({known})")
    return np.searchsorted(np.asarray(known), labels)


def _scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(accuracy_score(y, pred)), "uar": float(balanced_accuracy_score(y, pred))}


def _mixture_probe(x: dict, y: dict, weights: np.ndarray) -> dict:
    mixed = {s: np.einsum("nlh,l->nh", x[s], weights) for s in x}
    scaler = StandardScaler().fit(mixed["train"])
    best = None
    for c in C_GRID:
        clf = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(mixed["train"]), y["train"])
        dev = _scores(y["dev"], clf.predict(scaler.transform(mixed["dev"])))
        if best is None or dev["uar"] > best["dev"]["uar"]:
            best = {"dev": dev, "test": _scores(y["test"], clf.predict(scaler.transform(mixed["test"]))), "C": c}
    return best


class _LayerWeightedLinear(torch.nn.Module):
    def __init__(self, n_layers: int, dim: int, n_classes: int):
        super().__init__()
        self.weights = torch.nn.Parameter(torch.zeros(n_layers))
        self.linear = torch.nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.einsum("nlh,l->nh", x, torch.softmax(self.weights, dim=0)))


def _all_layers_probe(x: dict, y: dict, n_classes: int, seed: int) -> dict:
    mean, std = x["train"].mean(axis=0), x["train"].std(axis=0) + 1e-6
    data = {s: torch.as_tensor((x[s] - mean) / std, dtype=torch.float32) for s in x}
    target = torch.as_tensor(y["train"])
    generator_state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a few thousand parameters: threads only add overhead
    try:
        probe = _LayerWeightedLinear(x["train"].shape[1], x["train"].shape[2], n_classes)
        optimizer = torch.optim.Adam(probe.parameters(), lr=5e-3, weight_decay=1e-4)
        best, best_state = None, None
        for epoch in range(EPOCHS):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(probe(data["train"]), target).backward()
            optimizer.step()
            with torch.no_grad():
                dev = _scores(y["dev"], probe(data["dev"]).argmax(dim=1).numpy())
            if best is None or dev["uar"] > best["dev"]["uar"]:
                best = {"dev": dev, "epoch": epoch + 1}
                best_state = {k: v.clone() for k, v in probe.state_dict().items()}
        probe.load_state_dict(best_state)
        with torch.no_grad():
            best["test"] = _scores(y["test"], probe(data["test"]).argmax(dim=1).numpy())
            best["layer_weights"] = torch.softmax(probe.weights, dim=0).tolist()
    finally:
        torch.random.set_rng_state(generator_state)
        torch.set_num_threads(threads)
    return best


def privacy(
    train_features: np.ndarray,
    train_groups: Sequence,
    dev_features: np.ndarray,
    dev_groups: Sequence,
    test_features: np.ndarray,
    test_groups: Sequence,
    layer_weights: np.ndarray | None = None,
    seed: int = 0,
) -> dict:
    """Test accuracy and UAR of the dev-selected gender probe.

    Args:
        *_features: (N, L, H) per-layer mean-pooled upstream features of each split.
        *_groups: N group labels (Gender) of each split.
        layer_weights: (L,) the checkpoint's layer mixture (softmax of its Featurizer
            weights, or one-hot for a selected layer); uniform when absent.
    """
    x = {"train": train_features, "dev": dev_features, "test": test_features}
    x = {s: np.asarray(v, dtype=np.float64) for s, v in x.items()}
    shapes = {s: v.shape for s, v in x.items()}
    if any(v.ndim != 3 for v in x.values()) or len({v.shape[1:] for v in x.values()}) != 1:
        raise InvalidInputError(f"privacy: expected (N, L, H) features with the same L and H, got {shapes}")
    known = sorted(set(np.asarray(train_groups).astype(str)))
    if len(known) < 2:
        raise InvalidInputError(f"privacy: the train split needs at least two groups, found {known}")
    y = {s: _encode(g, known, s) for s, g in (("train", train_groups), ("dev", dev_groups), ("test", test_groups))}
    for s in x:
        if len(y[s]) != len(x[s]):
            raise InvalidInputError(f"privacy: {len(x[s])} {s} feature rows for {len(y[s])} group labels")
    n_layers = x["train"].shape[1]
    weights = np.full(n_layers, 1.0 / n_layers) if layer_weights is None else np.asarray(layer_weights, float)
    if weights.shape != (n_layers,):
        raise InvalidInputError(f"privacy: {weights.shape} layer weights for {n_layers} layers")
    probes = {
        "checkpoint_layers": _mixture_probe(x, y, weights),
        "all_layers": _all_layers_probe(x, y, len(known), seed),
    }
    chosen = max(probes, key=lambda name: (probes[name]["dev"]["uar"], name == "all_layers"))
    majority = np.bincount(y["test"], minlength=len(known)).max() / len(y["test"])
    return {
        "accuracy": probes[chosen]["test"]["accuracy"],
        "uar": probes[chosen]["test"]["uar"],
        "probe": chosen,
        "probes": probes,
        "groups": known,
        "majority_accuracy": float(majority),
        "n_items": {s: len(v) for s, v in x.items()},
        "n_layers": int(n_layers),
        "definitions": {
            "accuracy": "test accuracy of the gender probe chosen by dev UAR; higher means more leakage",
            "uar": "test unweighted average recall (balanced accuracy); chance is 1 / number of groups",
            "checkpoint_layers": f"standardised mean-pooled features mixed with the checkpoint's layer weights, "
            f"logistic regression, C in {list(C_GRID)} chosen on dev",
            "all_layers": f"learned softmax weighting of all layers + linear layer, Adam 5e-3, weight decay 1e-4, "
            f"full batch, epoch (of {EPOCHS}) chosen on dev",
        },
    }
