"""Collect a sweep's ``result.json`` files into per-(upstream, condition) cells.

The grid point of a cell is chosen by the best mean dev macro-F1 over its finished folds,
never by a test score. A cell knows how many folds the plan asked for, so an incomplete
sweep is reported as such and never averaged over missing folds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..sweep.plan import RESULT_FILE, read_plan


@dataclass
class Cell:
    """The runs of one (upstream, condition) at its chosen grid point."""

    upstream: str
    condition: str
    grid: str
    expected_folds: int
    results: list[dict] = field(default_factory=list)
    grid_dev: dict[str, float] = field(default_factory=dict)  # grid point -> mean dev macro-F1

    @property
    def folds(self) -> int:
        return len(self.results)

    @property
    def complete(self) -> bool:
        return self.folds == self.expected_folds

    def test_scores(self, key: str = "macro_f1") -> np.ndarray:
        return np.array([r["test"][key] for r in self.results], dtype=float)

    @property
    def mean(self) -> float:
        return float(self.test_scores().mean()) if self.results else float("nan")

    @property
    def std(self) -> float:
        """Sample standard deviation over folds (0 for a single fold)."""
        scores = self.test_scores()
        return float(scores.std(ddof=1)) if len(scores) > 1 else 0.0

    @property
    def classes(self) -> list[str]:
        return list(self.results[0]["classes"]) if self.results else []

    def per_class_f1(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std over folds of each class's test F1."""
        values = np.array([[r["test"][f"f1/{c}"] for c in self.classes] for r in self.results], dtype=float)
        return values.mean(axis=0), values.std(axis=0)

    def cooccurrence(self) -> np.ndarray:
        """Reference class (rows) x predicted class (columns) counts, summed over folds."""
        return np.sum([np.array(r["cooccurrence"], dtype=int) for r in self.results], axis=0)

    def layer_weights(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Softmax of each fold's Featurizer weights, mean and std over folds (None: single layer)."""
        raw = [r["layer_weights"] for r in self.results if r.get("layer_weights")]
        if not raw:
            return None
        soft = np.array([np.exp(w - np.max(w)) / np.exp(w - np.max(w)).sum() for w in map(np.array, raw)])
        return soft.mean(axis=0), soft.std(axis=0)


@dataclass
class Sweep:
    cells: dict[tuple[str, str], Cell]
    upstreams: list[str]
    conditions: list[str]
    planned_runs: int
    finished_runs: int

    @property
    def complete(self) -> bool:
        return self.finished_runs == self.planned_runs


def load_sweep(results: Path) -> Sweep:
    """Read the plan and every finished run of RESULTS."""
    results = Path(results)
    runs = read_plan(results)
    groups: dict[tuple[str, str, str], list[dict]] = {}
    expected: dict[tuple[str, str, str], int] = {}
    finished = 0
    for spec in runs:
        key = (spec.upstream, spec.condition, spec.grid_name)
        expected[key] = expected.get(key, 0) + 1
        groups.setdefault(key, [])
        path = results / spec.key / RESULT_FILE
        if path.is_file():
            try:
                groups[key].append(json.loads(path.read_text()))
            except json.JSONDecodeError as err:
                raise InvalidInputError(f"{path}: unreadable result ({err})") from err
            finished += 1
    upstreams = list(dict.fromkeys(s.upstream for s in runs))
    conditions = list(dict.fromkeys(s.condition for s in runs))
    cells = {}
    for upstream in upstreams:
        for condition in conditions:
            options = {g: rs for (u, c, g), rs in groups.items() if (u, c) == (upstream, condition)}
            if not options:
                continue
            dev = {g: float(np.mean([r["dev"]["macro_f1"] for r in rs])) for g, rs in options.items() if rs}
            grid = max(dev, key=dev.get) if dev else next(iter(options))
            cells[(upstream, condition)] = Cell(
                upstream,
                condition,
                grid,
                expected[(upstream, condition, grid)],
                sorted(options[grid], key=lambda r: r["fold"]),
                dev,
            )
    return Sweep(cells, upstreams, conditions, len(runs), finished)
