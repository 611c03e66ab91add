"""Matplotlib figures of a sweep (PNG, headless): radar of conditions (paper's Fig. C1), layer
weights (Fig. 3), per-class F1 bars and reference-vs-predicted co-occurrence matrices.

Names of upstreams, conditions and classes come from the user's folders and are drawn as
plain text (``PLAIN_TEXT``): matplotlib would otherwise parse ``$...$`` as mathtext (and fail
on an unknown command) or hand the text to LaTeX when a matplotlibrc asks for ``usetex``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .results import Cell, Sweep

DPI = 110
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


@plt.rc_context(PLAIN_TEXT)
def conditions_chart(sweep: Sweep, path: Path) -> Path:
    """A radar of test macro-F1 per condition, one polygon per upstream (bars below 3 conditions,
    where a radar has no area). Incomplete cells are drawn from their finished folds and hatched
    in the legend label."""
    conditions = sweep.conditions
    if len(conditions) >= 3:
        angles = np.linspace(0, 2 * np.pi, len(conditions), endpoint=False)
        fig, ax = plt.subplots(figsize=(6, 6), subplot_kw={"polar": True})
        for upstream in sweep.upstreams:
            values = [_mean(sweep, upstream, c) for c in conditions]
            closed = np.r_[values, values[:1]]
            ax.plot(np.r_[angles, angles[:1]], closed, marker="o", label=_label(sweep, upstream))
            ax.fill(np.r_[angles, angles[:1]], closed, alpha=0.1)
        ax.set_xticks(angles, conditions)
        ax.set_ylim(0, 1)
        ax.set_rlabel_position(90 + 180 / len(conditions))  # radial ticks between two axes
        ax.set_title("test macro-F1 per condition")
        ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1), fontsize=8)
    else:
        fig, ax = plt.subplots(figsize=(6, 4))
        width = 0.8 / max(1, len(sweep.upstreams))
        x = np.arange(len(conditions))
        for i, upstream in enumerate(sweep.upstreams):
            cells = [sweep.cells.get((upstream, c)) for c in conditions]
            means = [c.mean if c and c.folds else 0.0 for c in cells]
            stds = [c.std if c and c.folds else 0.0 for c in cells]
            ax.bar(x + i * width, means, width, yerr=stds, capsize=3, label=_label(sweep, upstream))
        ax.set_xticks(x + width * (len(sweep.upstreams) - 1) / 2, conditions)
        ax.set_ylim(0, 1)
        ax.set_ylabel("test macro-F1 (mean ± std over folds)")
        ax.set_title("test macro-F1 per condition (a radar needs 3 or more conditions)")
        ax.legend(fontsize=8)
    return _save(fig, path)


def _mean(sweep: Sweep, upstream: str, condition: str) -> float:
    cell = sweep.cells.get((upstream, condition))
    return cell.mean if cell and cell.folds else 0.0


def _label(sweep: Sweep, upstream: str) -> str:
    incomplete = any(not c.complete for (u, _), c in sweep.cells.items() if u == upstream)
    return f"{upstream} (incomplete)" if incomplete else upstream


def _runs(cell: Cell) -> str:
    """``5 fold(s)``, or ``5 fold(s) x 3 seeds`` with a seed axis."""
    return f"{cell.folds} fold(s)" if cell.seeds <= 1 else f"{cell.folds} fold(s) x {cell.seeds} seeds"


@plt.rc_context(PLAIN_TEXT)
def layer_weights_chart(cell: Cell, path: Path) -> Path | None:
    """Softmax of the Featurizer weights of each run's dev-best, mean ± std over runs (folds and seeds)."""
    weights = cell.layer_weights()
    if weights is None:
        return None
    mean, std = weights
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(np.arange(len(mean)), mean, yerr=std, capsize=3, color="tab:purple")
    ax.set_xlabel("layer (0 = CNN output)")
    ax.set_ylabel("softmax weight")
    step = 1 if len(mean) <= 13 else 2
    ax.set_xticks(np.arange(0, len(mean), step))
    ax.set_title(f"{cell.upstream} / {cell.condition}: layer weights ({_runs(cell)})")
    return _save(fig, path)


@plt.rc_context(PLAIN_TEXT)
def per_class_f1_chart(cell: Cell, path: Path) -> Path:
    mean, std = cell.per_class_f1()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(cell.classes, mean, yerr=std, capsize=3, color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test F1 (mean ± std over runs)")
    ax.set_title(f"{cell.upstream} / {cell.condition}: per-class F1 ({_runs(cell)})")
    ax.tick_params(axis="x", rotation=45)
    return _save(fig, path)


@plt.rc_context(PLAIN_TEXT)
def cooccurrence_chart(cell: Cell, path: Path) -> Path:
    """Counts of test utterances with reference class i (row) on and predicted class j (column) on,
    summed over runs (with several seeds an utterance counts once per seed)."""
    counts = cell.cooccurrence()
    shares = counts / np.maximum(counts.max(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shares[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(len(cell.classes)), cell.classes, rotation=45)
    ax.set_yticks(range(len(cell.classes)), cell.classes)
    ax.set_xlabel("predicted (above 1/C)")
    ax.set_ylabel("reference (above 1/C)")
    ax.set_title(f"{cell.upstream} / {cell.condition}: co-occurrence, {_runs(cell)}")
    fig.colorbar(image, ax=ax, label="share of the row's largest count")
    return _save(fig, path)


@plt.rc_context(PLAIN_TEXT)
def cross_matrix_chart(matrix, upstream: str, path: Path) -> Path:
    """A heatmap of an upstream's cross-corpus matrix (``cross_matrix.CrossMatrix``): rows the training
    condition, columns the tested one, colour and text the cell's mean macro-F1 over its shared
    classes; off the diagonal, the in-corpus reference on the same classes below it. The diagonal is
    outlined; skipped and missing cells are grey."""
    from matplotlib.patches import Rectangle

    conditions = matrix.conditions[upstream]
    size = len(conditions)
    values = np.full((size, size), np.nan)
    fig, ax = plt.subplots(figsize=(1.6 * size + 2.5, 1.3 * size + 1.8))
    texts = {}
    for i, train in enumerate(conditions):
        for j, test in enumerate(conditions):
            cell = matrix.cells[(upstream, train, test)]
            if cell.skipped:
                texts[(i, j)] = "skipped"
            elif cell.figure is None or not cell.figure.runs:
                texts[(i, j)] = "missing"
            else:
                values[i, j] = cell.figure.mean
                text = f"{cell.figure.mean:.3f}"
                if cell.in_corpus is not None and cell.in_corpus.runs:
                    text += f"\n(in-corpus {cell.in_corpus.mean:.3f})"
                elif cell.diagonal:
                    text += f"\n({len(cell.figure.classes)} classes)"
                texts[(i, j)] = text
    colours = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=colours, vmin=0, vmax=1)
    for (i, j), text in texts.items():
        dark = not np.isnan(values[i, j]) and values[i, j] < 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    for k in range(size):
        ax.add_patch(Rectangle((k - 0.46, k - 0.46), 0.92, 0.92, fill=False, edgecolor="black", linewidth=1.5))
    ax.set_xticks(range(size), conditions, rotation=30, ha="right")
    ax.set_yticks(range(size), conditions)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title(f"{upstream}: macro-F1 over shared classes")
    fig.colorbar(image, ax=ax, label="macro-F1 (mean over runs)")
    return _save(fig, path)
