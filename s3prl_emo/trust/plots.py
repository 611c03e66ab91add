"""Figures of a trust report: the reliability diagram and the radar of scaled axes (Agg).

Class names and model names are drawn as plain text (``PLAIN_TEXT``, never mathtext or LaTeX).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ..metrics import binarize
from ..report.charts import PLAIN_TEXT
from .calibration import N_BINS, reliability_bins


def _save(fig, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)


@plt.rc_context(PLAIN_TEXT)
def reliability_diagram(
    probs: np.ndarray, soft_labels: np.ndarray, classes: Sequence[str], path: Path, n_bins: int = N_BINS
) -> None:
    """One panel per class: mean soft label and share of binarised positives per bin of
    the class probability, against the diagonal; bar shading = items in the bin."""
    truth = binarize(soft_labels).astype(float)
    cols = min(len(classes), 4)
    rows = int(np.ceil(len(classes) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    centers = (np.arange(n_bins) + 0.5) / n_bins
    for j, name in enumerate(classes):
        ax = axes[j // cols][j % cols]
        soft = reliability_bins(probs[:, j], soft_labels[:, j], n_bins)
        hard = reliability_bins(probs[:, j], truth[:, j], n_bins)
        used = soft["count"] > 0
        alpha = 0.25 + 0.75 * soft["count"] / max(soft["count"].max(), 1)
        for k in np.flatnonzero(used):
            ax.bar(centers[k], soft["accuracy"][k], width=1 / n_bins, color="tab:blue", alpha=alpha[k], edgecolor="k")
        ax.plot(hard["confidence"][used], hard["accuracy"][used], "o", color="tab:red", label="binarised truth")
        ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
        ax.set(xlim=(0, 1), ylim=(0, 1), title=name, xlabel="predicted probability", ylabel="observed")
        if j == 0:
            ax.bar([], [], color="tab:blue", label="mean soft label")
            ax.legend(fontsize=7, loc="upper left")
    for k in range(len(classes), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"Reliability diagram ({n_bins} equal-width bins, {len(probs)} test items)")
    fig.tight_layout()
    _save(fig, path)


@plt.rc_context(PLAIN_TEXT)
def radar(profiles: dict[str, dict], path: Path, title: str = "Trust profile (outward is better)") -> None:
    """Overlay the scaled axes of one or more profiles (``name -> profile()``); a missing
    axis is drawn at the centre and marked n/a."""
    axes_names = list(next(iter(profiles.values())))
    angles = np.linspace(0, 2 * np.pi, len(axes_names), endpoint=False)
    fig = plt.figure(figsize=(6, 6))
    ax = fig.add_subplot(projection="polar")
    for name, prof in profiles.items():
        values = [prof[a]["scaled"] if prof[a]["scaled"] is not None else 0.0 for a in axes_names]
        missing = [a for a in axes_names if prof[a]["scaled"] is None]
        label = f"{name} (n/a, drawn at 0: {', '.join(missing)})" if missing else name
        closed = np.append(values, values[0])
        ax.plot(np.append(angles, angles[0]), closed, "o-", label=label)
        ax.fill(np.append(angles, angles[0]), closed, alpha=0.15)
    labels = []
    for a in axes_names:
        missing = all(p[a]["scaled"] is None for p in profiles.values())
        labels.append(f"{a}\n(n/a)" if missing else a)
    ax.set_xticks(angles, labels)
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_title(title, pad=20)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), fontsize=8)
    _save(fig, path)
