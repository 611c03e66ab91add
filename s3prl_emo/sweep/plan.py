"""The plan of a sweep: one run per (upstream, condition, fold, grid point), each in its own folder.

RESULTS/sweep.json                                   the plan (the arguments that made it)
RESULTS/<upstream>/<condition>/<grid>/fold<k>/run.json    what the run trains
RESULTS/<upstream>/<condition>/<grid>/fold<k>/exp/        S3PRL's experiment folder
RESULTS/<upstream>/<condition>/<grid>/fold<k>/result.json written last, atomically
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ..data.layout import Pathlike, label_files
from ..errors import CorpusLayoutError, InvalidInputError
from ..runtime.atomic import write_text_atomically
from ..runtime.resources import resource_dir

PLAN_FILE = "sweep.json"
RUN_FILE = "run.json"
RESULT_FILE = "result.json"
DEFAULT_GRID = "default"


@dataclass(frozen=True)
class Condition:
    """A downstream config: its name (the file stem), path, and where its folds live."""

    name: str
    config: str
    corpus: str
    p_or_s: str


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs; stored as ``run.json`` in its folder."""

    upstream: str
    upstream_ckpt: str | None
    condition: str
    config: str
    fold: int
    grid: dict[str, str] = field(default_factory=dict)
    root: str = ""
    overrides: str = ""
    trainer: str = "runner"

    @property
    def grid_name(self) -> str:
        return grid_name(self.grid)

    @property
    def key(self) -> str:
        """``upstream/condition/grid/fold<k>``: the run's folder, relative to RESULTS."""
        return f"{_safe(self.upstream)}/{_safe(self.condition)}/{self.grid_name}/fold{self.fold}"

    def override_string(self) -> str:
        """The ``-o`` of ``run_downstream``: data root, fold, grid point, then the user's overrides."""
        parts = [
            f"config.downstream_expert.datarc.root='{Path(self.root).resolve()}/'",
            f"config.downstream_expert.datarc.test_fold='fold{self.fold}'",
            *(f"config.{k}={v}" for k, v in self.grid.items()),
        ]
        if self.upstream_ckpt:  # named by the user, so that resuming (-a) and -e read this file
            parts.append(f"args.upstream_ckpt={self.upstream_ckpt}")
        if self.overrides:
            parts.append(self.overrides)
        return ",,".join(parts)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RunSpec:
        return cls(**data)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text)


def grid_name(point: dict[str, str]) -> str:
    """A folder name for a grid point: ``optimizer.lr=1e-3`` or ``default``."""
    if not point:
        return DEFAULT_GRID
    return _safe("+".join(f"{k}={v}" for k, v in point.items()))


def resolve_condition(name_or_path: str) -> Condition:
    """A config of ``downstream_configs/`` by name (``IEMOCAP``), or a path to a YAML file."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        candidate = resource_dir("downstream_configs") / f"{name_or_path}.yaml"
        if not candidate.is_file():
            known = sorted(p.stem for p in resource_dir("downstream_configs").glob("*.yaml"))
            raise InvalidInputError(
                f"--conditions: {name_or_path!r} is neither a config file nor one of {', '.join(known)}"
            )
        path = candidate
    try:
        config = yaml.safe_load(path.read_text())
        datarc = config["downstream_expert"]["datarc"]
        corpus, p_or_s = str(datarc["corpus"]), str(datarc["p_or_s"])
    except (yaml.YAMLError, KeyError, TypeError) as err:
        raise InvalidInputError(
            f"{path}: not an emotion_multilabel config (needs downstream_expert.datarc.corpus and p_or_s: {err})"
        ) from err
    return Condition(name=path.stem, config=str(path.resolve()), corpus=corpus, p_or_s=p_or_s)


def available_folds(condition: Condition, root: Pathlike) -> list[int]:
    """The folds of a condition: its ``labels_consensus_<k>.csv`` files under ROOT."""
    folder = Path(root) / condition.corpus / condition.p_or_s
    folds = list(label_files(folder))
    if not folds:
        raise CorpusLayoutError(f"condition {condition.name}: no labels_consensus_<k>.csv in {folder} (check --root)")
    return folds


def parse_folds(text: str) -> list[int] | None:
    """``all`` -> None (every fold of each condition); ``1,2`` -> [1, 2]."""
    if text.strip().lower() == "all":
        return None
    try:
        folds = [int(part.strip().lower().removeprefix("fold")) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise InvalidInputError(f"--folds: {text!r}; expected 'all' or a list such as 1,2,3") from err
    if not folds or min(folds) < 1:
        raise InvalidInputError(f"--folds: {text!r}; expected 'all' or 1-based fold numbers")
    return sorted(set(folds))


def parse_grid(specs: list[str]) -> list[dict[str, str]]:
    """``["optimizer.lr=1e-3,1e-4"]`` -> one dict per point of the product of all specs."""
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().removeprefix("config.")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not choices:
            raise InvalidInputError(f"--grid {spec!r}: expected KEY=V1,V2,... such as optimizer.lr=1e-3,1e-4")
        if key in dict(axes):
            raise InvalidInputError(f"--grid: {key} given twice")
        axes.append((key, choices))
    if not axes:
        return [{}]
    return [dict(zip([k for k, _ in axes], values, strict=True)) for values in itertools.product(*(v for _, v in axes))]


def parse_upstream_ckpts(specs: list[str], upstreams: list[str]) -> dict[str, str]:
    """``["wavlm_local=/m/tiny.pt"]`` -> {"wavlm_local": "/m/tiny.pt"}; the file must exist."""
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InvalidInputError(f"--upstream-ckpt {spec!r}: expected UPSTREAM=PATH")
        if name not in upstreams:
            raise InvalidInputError(f"--upstream-ckpt {spec!r}: {name} is not in --upstreams {','.join(upstreams)}")
        if not Path(path).exists():
            raise InvalidInputError(f"--upstream-ckpt {spec!r}: no such file {path}")
        out[name] = str(Path(path).resolve())
    return out


def build_plan(
    upstreams: list[str],
    conditions: list[str],
    root: Pathlike,
    *,
    folds: list[int] | None = None,
    grid: list[dict[str, str]] | None = None,
    upstream_ckpts: dict[str, str] | None = None,
    overrides: str = "",
    trainer: str = "runner",
) -> list[RunSpec]:
    """Every run of the sweep, in a stable order (upstream, condition, grid point, fold)."""
    if not upstreams:
        raise InvalidInputError("--upstreams: give at least one upstream")
    if not Path(root).is_dir():
        raise CorpusLayoutError(f"--root {root}: no such folder")
    runs = []
    for upstream in upstreams:
        for condition in map(resolve_condition, conditions):
            present = available_folds(condition, root)
            chosen = present if folds is None else folds
            missing = sorted(set(chosen) - set(present))
            if missing:
                raise InvalidInputError(f"--folds: condition {condition.name} has folds {present}, not {missing}")
            for point in grid or [{}]:
                for fold in chosen:
                    runs.append(
                        RunSpec(
                            upstream=upstream,
                            upstream_ckpt=(upstream_ckpts or {}).get(upstream),
                            condition=condition.name,
                            config=condition.config,
                            fold=fold,
                            grid=dict(point),
                            root=str(Path(root).resolve()),
                            overrides=overrides,
                            trainer=trainer,
                        )
                    )
    return runs


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON through a temporary sibling so that readers never see half a file."""
    write_text_atomically(path, json.dumps(data, indent=2) + "\n")


def write_plan(results: Path, runs: list[RunSpec]) -> list[Path]:
    """Create RESULTS and one folder per run; a folder planned with other arguments is refused."""
    folders = []
    for run in runs:
        folder = results / run.key
        spec = folder / RUN_FILE
        if spec.is_file():
            before = RunSpec.from_json(json.loads(spec.read_text()))
            if before != run:
                changed = sorted(k for k, v in run.to_json().items() if before.to_json().get(k) != v)
                raise InvalidInputError(
                    f"{spec}: this run was planned with other arguments ({', '.join(changed)} differ); "
                    "use another --out for a different sweep"
                )
        folders.append(folder)
    for run, folder in zip(runs, folders, strict=True):
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / RUN_FILE).is_file():
            write_json_atomic(folder / RUN_FILE, run.to_json())
    results.mkdir(parents=True, exist_ok=True)
    previous = read_plan(results) if (results / PLAN_FILE).is_file() else []
    merged = {r.key: r for r in previous}
    merged.update({r.key: r for r in runs})
    write_json_atomic(results / PLAN_FILE, {"runs": [r.to_json() for r in merged.values()]})
    return folders


def read_plan(results: Path) -> list[RunSpec]:
    path = Path(results) / PLAN_FILE
    if not path.is_file():
        raise CorpusLayoutError(f"{results}: no {PLAN_FILE}; not a sweep RESULTS folder")
    try:
        return [RunSpec.from_json(r) for r in json.loads(path.read_text())["runs"]]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InvalidInputError(f"{path}: unreadable sweep plan ({err})") from err
