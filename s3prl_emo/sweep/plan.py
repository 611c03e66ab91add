"""The plan of a sweep: one run per (upstream, condition, fold, grid point[, seed]), each in its own folder.

RESULTS/sweep.json                                   the plan (the arguments that made it)
RESULTS/<upstream>/<condition>/<grid>/fold<k>/run.json    what the run trains
RESULTS/<upstream>/<condition>/<grid>/fold<k>/exp/        S3PRL's experiment folder
RESULTS/<upstream>/<condition>/<grid>/fold<k>/config.yaml the run's config (data root, fold, grid point)
RESULTS/<upstream>/<condition>/<grid>/fold<k>/result.json written last, atomically

Everything handed to S3PRL is data: S3PRL ``eval``s every ``-o`` value, so the data root,
fold and grid point go into the run's own ``config.yaml``, and the user's overrides and the
upstream checkpoint are re-written as Python literals (``guards.s3prl_override``). Names
become folders only if they stay folders inside RESULTS, and whatever is read back from
RESULTS is checked before it is used.

With ``--cross-eval``, ``sweep.json`` also holds ``{"cross_eval": {"classes": {condition: [...]}}}``
(each condition's label classes, read at planning time) and every run's dev-best is evaluated
on each condition of its upstream (``cross_targets``); see ``sweep.cross`` for the files.

With ``--seeds``, ``<grid>`` becomes ``<grid>+seed=<s>`` (same depth); without it the
trainer's own seed is used and the folders are those of a sweep without a seed axis.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import inspect
import itertools
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml

from ..data.layout import label_files, read_config
from ..errors import CorpusLayoutError, InvalidInputError
from ..runtime.atomic import write_json_atomically
from ..runtime.guards import claim_output_dir, refuse_override_keys, resolve_inside, s3prl_override
from ..runtime.paths import Pathlike, resource_dir

PLAN_FILE = "sweep.json"
RUN_FILE = "run.json"
MAX_FOLDER_NAME = 255  # bytes, the limit of common file systems
RUN_CONFIG = "config.yaml"
RESULT_FILE = "result.json"
CROSS_EVAL_KEY = "cross_eval"
DEFAULT_GRID = "default"
TRAINERS = ("runner", "fast", "batched")

# What the sweep sets itself for every run: a user's -o or --grid may not change it (the run
# would leave its folder, train another fold or corpus, or load another upstream).
_SWEEP_ARGS = (
    "mode", "expdir", "expname", "past_exp", "init_ckpt", "auto_resume", "config", "downstream",
    "downstream_variant", "upstream", "upstream_ckpt", "upstream_model_config", "hub", "from_hf_hub",
    "device", "evaluate_split", "override", "local_rank", "backend",
)  # fmt: skip
_SWEEP_DATARC = ("root", "test_fold", "corpus", "p_or_s")
RESERVED_KEYS = frozenset(
    {f"args.{name}" for name in _SWEEP_ARGS}
    | {f"config.downstream_expert.datarc.{name}" for name in _SWEEP_DATARC}
    | {"config.downstream_expert", "config.downstream_expert.datarc"}  # replacing the block replaces them
)


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
    seed: int | None = None  # None: the trainer's default seed (plans written before the seed axis)

    @property
    def grid_name(self) -> str:
        return grid_name(self.grid)

    @property
    def key(self) -> str:
        """``upstream/condition/grid[+seed=<s>]/fold<k>``: the run's folder, relative to RESULTS.

        Raises:
            InvalidInputError: a name maps to no folder of its own (empty, ``.`` or ``..``).
        """
        upstream = folder_name(self.upstream, what="upstream")
        condition = folder_name(self.condition, what="condition")
        point = self.grid_name if self.seed is None else f"{self.grid_name}+seed={self.seed}"
        return f"{upstream}/{condition}/{point}/fold{self.fold}"

    def override_string(self) -> str:
        """The ``-o`` of ``run_downstream``: the upstream checkpoint and the user's overrides, as literals.

        The checkpoint is named here as well as with ``-k`` because a resumed run (``-a``) and
        ``-e`` take S3PRL's arguments from the checkpoint, and only a file named with ``-o`` is
        loaded then. Empty when there is nothing to set.
        """
        values: dict[str, object] = {}
        if self.upstream_ckpt:
            values["args.upstream_ckpt"] = self.upstream_ckpt
        values.update(parse_overrides(self.overrides, grid=self.grid))
        return s3prl_override(values, flag="-o/--override")

    def run_config(self) -> dict:
        """The condition's config with this run's data root, test fold and grid point set.

        Written as the run's ``config.yaml`` (``-c``), so that none of these values passes
        through S3PRL's ``eval``.

        Raises:
            InvalidInputError: the config is unreadable, or a grid key leads through a value
                that is not a mapping.
        """
        config = _load_config(Path(self.config))
        datarc = config["downstream_expert"]["datarc"]
        datarc["root"] = f"{Path(self.root).resolve()}/"
        datarc["test_fold"] = f"fold{self.fold}"
        for key, value in self.grid.items():
            _set_key(config, key, literal(value), where=f"--grid {key} (config {self.config})")
        return config

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object, *, where: str = RUN_FILE) -> RunSpec:
        """A run read back from ``run.json`` or ``sweep.json``, checked field by field.

        Raises:
            InvalidInputError: naming ``where`` and the field: not an object, unknown or missing
                fields, a wrong type, a fold below 1, or names that map to no folder of their own.

        Examples:
            >>> RunSpec.from_json({"upstream": "fbank", "upstream_ckpt": None, "condition": "IEMOCAP",
            ...                    "config": "/c/IEMOCAP.yaml", "fold": 2}).key
            'fbank/IEMOCAP/default/fold2'
        """
        if not isinstance(data, dict):
            raise InvalidInputError(f"{where}: expected a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        missing = [name for name in ("upstream", "upstream_ckpt", "condition", "config", "fold") if name not in data]
        if unknown or missing:
            raise InvalidInputError(f"{where}: unknown fields {unknown} / missing fields {missing}")
        for name, kinds in _FIELD_TYPES.items():
            if name in data and (not isinstance(data[name], kinds) or isinstance(data[name], bool)):
                raise InvalidInputError(f"{where}: {name} {data[name]!r} is not of the expected type")
        if data["fold"] < 1:
            raise InvalidInputError(f"{where}: fold {data['fold']!r} is not a fold number (1, 2, ...)")
        if data.get("seed") is not None and data["seed"] < 0:
            raise InvalidInputError(f"{where}: seed {data['seed']!r} is not a seed (a non-negative integer, or absent)")
        grid = data.get("grid", {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in grid.items()):
            raise InvalidInputError(f"{where}: grid {grid!r} is not a mapping of names to values")
        for key in grid:
            _check_grid_key(key, where=f"{where}: grid")
        if data.get("trainer", "runner") not in TRAINERS:
            raise InvalidInputError(f"{where}: trainer {data['trainer']!r} is not one of {', '.join(TRAINERS)}")
        spec = cls(**data)
        try:
            spec.key  # noqa: B018 (checks the names)
        except InvalidInputError as err:
            raise InvalidInputError(f"{where}: {err}") from None
        return spec


_FIELD_TYPES = {
    "upstream": str,
    "upstream_ckpt": (str, type(None)),
    "condition": str,
    "config": str,
    "fold": int,
    "grid": dict,
    "root": str,
    "overrides": str,
    "trainer": str,
    "seed": (int, type(None)),
}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text)


def folder_name(text: str, *, what: str) -> str:
    """The folder a name maps to, if that is a folder of its own (not empty, ``.``, ``..`` or hidden).

    Examples:
        >>> folder_name("CREMA-D", what="condition"), folder_name("my config", what="condition")
        ('CREMA-D', 'my_config')
    """
    name = _safe(text)
    if len(name.encode()) > MAX_FOLDER_NAME:
        raise InvalidInputError(f"{what} {text[:40]!r}... is too long for a folder name: {len(text)} characters")
    if not name or name.startswith("."):
        raise InvalidInputError(
            f"{what} {text!r} maps to the folder name {name!r}, which is not a run folder inside RESULTS; rename it"
        )
    return name


def grid_name(point: dict[str, str]) -> str:
    """A folder name for a grid point: ``optimizer.lr=1e-3`` or ``default``."""
    if not point:
        return DEFAULT_GRID
    return _safe("+".join(f"{k}={v}" for k, v in point.items()))


def literal(text: str) -> object:
    """A value as S3PRL's ``-o`` reads it, without running it: a Python literal, else the text.

    S3PRL ``eval``s the value and keeps the text when that fails; here only literals are
    read, so a name such as ``AdamW`` stays text and an expression is never run.

    Examples:
        >>> literal("1e-3"), literal("['dev', 'test']"), literal("AdamW"), literal("__import__('os')")
        (0.001, ['dev', 'test'], 'AdamW', "__import__('os')")
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def parse_overrides(text: str, *, grid: dict[str, str] | None = None, flag: str = "-o/--override") -> dict:
    """A user's ``-o "KEY=VALUE,,KEY=VALUE"`` as ``{key: literal value}``, checked.

    Refused: an entry S3PRL could not split (no ``=`` or two), a key that is not
    ``args.NAME`` or ``config.A.B``, a key given twice, a key the sweep sets itself
    (``RESERVED_KEYS``) or one a grid axis sets, and a value S3PRL cannot take as data.

    Examples:
        >>> parse_overrides("config.runner.total_steps=10,,config.optimizer.name=AdamW")
        {'config.runner.total_steps': 10, 'config.optimizer.name': 'AdamW'}
    """
    refuse_override_keys(text, RESERVED_KEYS, flag=flag)
    values: dict[str, object] = {}
    for part in (p.strip() for p in text.split(",,")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or "=" in value:
            raise InvalidInputError(f"{flag}: {part!r} is not KEY=VALUE (S3PRL splits at ',,' and at one '=')")
        head, *rest = key.split(".")
        if head not in ("args", "config") or not rest or (head == "args" and len(rest) != 1):
            raise InvalidInputError(f"{flag}: {key!r} is not an S3PRL override key (args.NAME or config.A.B)")
        if key in values:
            raise InvalidInputError(f"{flag}: {key} is given twice")
        for axis in grid or {}:
            if _overlaps(key, f"config.{axis}"):
                raise InvalidInputError(f"{flag}: {key} would overwrite the --grid axis {axis}")
        values[key] = literal(value.strip())
    s3prl_override(values, flag=flag)  # refuses what S3PRL cannot take as data
    return values


def _load_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        datarc = config["downstream_expert"]["datarc"]
        str(datarc["corpus"]), str(datarc["p_or_s"])
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError) as err:
        raise InvalidInputError(
            f"{path}: not an emotion_multilabel config (needs downstream_expert.datarc.corpus and p_or_s: {err})"
        ) from err
    if not isinstance(datarc, dict):
        raise InvalidInputError(f"{path}: downstream_expert.datarc is not a mapping")
    return config


def _set_key(config: dict, key: str, value: object, *, where: str) -> None:
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InvalidInputError(f"{where}: {part} is {node!r}, not a mapping")
    node[last] = value


def resolve_condition(name_or_path: str) -> Condition:
    """A config of ``downstream_configs/`` by name (``IEMOCAP``), or a path to a YAML file."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        known = sorted(p.stem for p in resource_dir("downstream_configs").glob("*.yaml"))
        candidate = resource_dir("downstream_configs") / f"{name_or_path}.yaml"
        if name_or_path not in known:  # a name, never a path into or out of the package
            raise InvalidInputError(
                f"--conditions: {name_or_path!r} is neither a config file nor one of {', '.join(known)}"
            )
        path = candidate
    datarc = _load_config(path)["downstream_expert"]["datarc"]
    return Condition(
        name=path.stem, config=str(path.resolve()), corpus=str(datarc["corpus"]), p_or_s=str(datarc["p_or_s"])
    )


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
    """``["optimizer.lr=1e-3,1e-4"]`` -> one dict per point of the product of all specs.

    A key is a dotted config path that the sweep does not set itself; two points that would
    share a run folder are refused.

    Examples:
        >>> parse_grid(["optimizer.lr=1e-3,1e-4"])
        [{'optimizer.lr': '1e-3'}, {'optimizer.lr': '1e-4'}]
    """
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().removeprefix("config.")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not choices:
            raise InvalidInputError(f"--grid {spec!r}: expected KEY=V1,V2,... such as optimizer.lr=1e-3,1e-4")
        _check_grid_key(key, where=f"--grid {spec!r}")
        for other, _ in axes:
            if _overlaps(key, other):
                raise InvalidInputError(
                    f"--grid: {key} given twice" if key == other else f"--grid: {key} and {other} overlap"
                )
        axes.append((key, choices))
    if not axes:
        return [{}]
    points = [dict(zip([k for k, _ in axes], v, strict=True)) for v in itertools.product(*(v for _, v in axes))]
    _refuse_shared_folders("--grid", [(str(p), grid_name(p)) for p in points])
    return points


def _check_grid_key(key: str, *, where: str) -> None:
    """A grid key is a dotted config path that the sweep does not set itself."""
    if not all(part.isidentifier() for part in key.split(".")):
        raise InvalidInputError(f"{where}: {key!r} is not a config key such as optimizer.lr")
    clash = sorted(r for r in RESERVED_KEYS if r == f"config.{key}" or r.startswith(f"config.{key}."))
    if clash:
        raise InvalidInputError(f"{where}: {clash[0]} is set by the sweep itself")


def _refuse_shared_folders(flag: str, named: list[tuple[str, str]]) -> None:
    """Refuse two inputs (as shown to the user) that map to one folder name."""
    seen: dict[str, str] = {}
    for shown, folder in named:
        if folder in seen:
            same = "is given twice" if seen[folder] == shown else f"and {shown} both map to the folder {folder!r}"
            raise InvalidInputError(f"{flag}: {seen[folder]} {same}; each run needs a folder of its own")
        seen[folder] = shown


def parse_seeds(text: str | None) -> list[int | None]:
    """``--seeds 1,2,3`` -> [1, 2, 3]; not given -> [None] (one run per fold, the trainer's default seed).

    Examples:
        >>> parse_seeds("3, 1,3"), parse_seeds(None)
        ([1, 3], [None])
    """
    if text is None:
        return [None]
    try:
        seeds = [int(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise InvalidInputError(f"--seeds: {text!r}; expected non-negative integers such as 1,2,3")
    return sorted(set(seeds))


def parse_upstream_ckpts(specs: list[str], upstreams: list[str]) -> dict[str, str]:
    """``["wavlm_local=/m/tiny.pt"]`` -> {"wavlm_local": "/m/tiny.pt"}; the file must exist.

    The path is handed to S3PRL as data (``-k``, and ``-o`` as a literal for resuming), so a
    path S3PRL's ``-o`` would split (``,,`` or ``=`` in it) is refused.
    """
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InvalidInputError(f"--upstream-ckpt {spec!r}: expected UPSTREAM=PATH")
        if name not in upstreams:
            raise InvalidInputError(f"--upstream-ckpt {spec!r}: {name} is not in --upstreams {','.join(upstreams)}")
        if name in out:
            raise InvalidInputError(f"--upstream-ckpt: {name} is given twice")
        if not Path(path).is_file():
            raise InvalidInputError(f"--upstream-ckpt {spec!r}: no such file {path}")
        out[name] = str(Path(path).resolve())
        s3prl_override({"args.upstream_ckpt": out[name]}, flag=f"--upstream-ckpt {name}")
    return out


@functools.lru_cache(maxsize=1)
def hub_upstreams() -> frozenset[str]:
    """The upstream loaders ``s3prl.hub`` exposes (its public functions; imports S3PRL once)."""
    from s3prl import hub

    return frozenset(n for n, f in vars(hub).items() if not n.startswith("_") and inspect.isfunction(f))


def check_upstreams(upstreams: list[str], upstream_ckpts: dict[str, str]) -> None:
    """Refuse, before anything runs, an upstream that S3PRL's hub lacks or the evaluation refuses.

    Each run's ``dev-best.ckpt`` is evaluated with ``-e``, which loads only the upstreams
    ``checkpoints.upstream_spec`` allows (a local-file one on the file named here).

    Raises:
        InvalidInputError: naming the upstream and why.
    """
    from ..runtime.checkpoints import LOCAL_FILE_UPSTREAMS, upstream_spec

    known = hub_upstreams()
    for name in upstreams:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InvalidInputError(f"--upstreams: S3PRL's hub has no upstream {name!r}{hint}")
        ckpt = upstream_ckpts.get(name)
        if name in LOCAL_FILE_UPSTREAMS and ckpt is None:
            raise InvalidInputError(
                f"--upstreams {name}: reads a local weights file; name it with --upstream-ckpt {name}=PATH"
            )
        if name not in LOCAL_FILE_UPSTREAMS and ckpt is not None:
            raise InvalidInputError(f"--upstream-ckpt {name}={ckpt}: upstream {name} reads no local weights file")
        try:
            upstream_spec(argparse.Namespace(upstream=name), ckpt, where=f"--upstreams {name}")
        except InvalidInputError as err:
            raise InvalidInputError(f"{err} (the sweep evaluates each run's dev-best.ckpt with -e)") from None


def claim_results(out: Pathlike, root: Pathlike) -> Path:
    """Check that ``out`` may be a sweep's RESULTS: new, empty, or an earlier sweep's (``sweep.json``).

    Refused: a file, a folder with other content, and the data root or a folder that holds it.
    """
    return claim_output_dir(out, command="sweep", inputs=[root], own_files=[PLAN_FILE])


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
    seeds: list[int | None] | None = None,
) -> list[RunSpec]:
    """Every run of the sweep, in a stable order (upstream, condition, grid point, fold, seed).

    ``seeds`` (``parse_seeds``): one run per seed; None or ``[None]`` is one run with the
    trainer's default seed, in the folders of a sweep without a seed axis. Refuses, naming the
    flag and value: names that map to no folder of their own or to one folder together,
    overrides of what the sweep sets itself, and configs or grid points that do not make a
    run config.
    """
    if not upstreams:
        raise InvalidInputError("--upstreams: give at least one upstream")
    if not Path(root).is_dir():
        raise CorpusLayoutError(f"--root {root}: no such folder")
    _refuse_shared_folders("--upstreams", [(u, folder_name(u, what="--upstreams")) for u in upstreams])
    resolved = [resolve_condition(c) for c in conditions]
    _refuse_shared_folders(
        "--conditions", [(c.config, folder_name(c.name, what=f"--conditions {c.config}:")) for c in resolved]
    )
    points = grid or [{}]
    for point in points:
        parse_overrides(overrides, grid=point)
    runs = []
    for upstream in upstreams:
        for condition in resolved:
            present = available_folds(condition, root)
            chosen = present if folds is None else folds
            missing = sorted(set(chosen) - set(present))
            if missing:
                raise InvalidInputError(f"--folds: condition {condition.name} has folds {present}, not {missing}")
            for point in points:
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
    for run in {(r.config, r.grid_name): r for r in runs}.values():
        try:
            yaml.safe_dump(run.run_config())
        except yaml.YAMLError as err:
            raise InvalidInputError(f"--grid {run.grid}: a value is not a plain YAML value ({err})") from err
    return [replace(run, seed=seed) for run in runs for seed in seeds or [None]]


def run_folder(results: Pathlike, spec: RunSpec) -> Path:
    """The run's folder inside RESULTS, resolved; one reached through a symbolic link is refused.

    Raises:
        InvalidInputError: the folder would be outside RESULTS or behind a link.

    Examples:
        >>> import tempfile
        >>> spec = RunSpec("fbank", None, "IEMOCAP", "/c/IEMOCAP.yaml", 1)
        >>> results = Path(tempfile.mkdtemp())
        >>> run_folder(results, spec) == results.resolve() / "fbank/IEMOCAP/default/fold1"
        True
    """
    base = Path(results).resolve()
    try:
        folder = resolve_inside(base, spec.key, what=f"{results}: run {spec.key}")
    except InvalidInputError:
        folder = None
    if folder != base / spec.key:  # the key has no '..' (RunSpec checks its names): only a link leads elsewhere
        target = (base / spec.key).resolve()
        raise InvalidInputError(
            f"{results}: run folder {spec.key} is reached through a symbolic link (to {target}); refused"
        )
    return folder


def _refuse_constant(name: str) -> None:
    raise ValueError(f"non-finite number {name}")


def read_json_object(path: Path) -> dict:
    """A JSON object read back from RESULTS: a regular file in its folder, finite numbers only.

    Raises:
        InvalidInputError: naming the file: a link out of its folder, not a regular file,
            unreadable, not JSON, ``NaN``/``Infinity``, or not an object.
    """
    path = Path(path)
    resolve_inside(path.parent, path.name, what=str(path))
    if not path.is_file():  # a folder, or a pipe that would block the reader
        raise InvalidInputError(f"{path}: not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path}: unreadable ({err})") from err
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as err:
        raise InvalidInputError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: expected a JSON object, not {type(data).__name__}")
    return data


def read_run(folder: Path) -> RunSpec:
    """``folder/run.json``, checked; it must describe the run of this folder."""
    path = Path(folder) / RUN_FILE
    spec = RunSpec.from_json(read_json_object(path), where=str(path))
    if Path(folder).resolve().parts[-4:] != tuple(spec.key.split("/")):
        raise InvalidInputError(f"{path}: describes the run {spec.key}, not the one of its folder")
    return spec


def write_plan(
    results: Path, runs: list[RunSpec], *, cross_eval: Mapping[str, Sequence[str]] | None = None
) -> list[Path]:
    """Create RESULTS and one folder per run; a folder planned with other arguments is refused.

    Everything is checked before anything is written: each folder is inside RESULTS, an
    existing ``run.json`` is readable and the same run, the earlier plan is readable. The plan
    is written first, so that a RESULTS with run folders always has its ``sweep.json``.

    ``cross_eval`` (condition -> label classes, ``condition_classes``) turns cross-corpus
    evaluation on; None keeps the earlier plan's setting, so a rerun without the flag keeps it.
    """
    results = Path(results)
    exists = os.path.lexists(results / PLAN_FILE)
    previous = read_plan(results) if exists else []
    if cross_eval is None and exists:
        cross_eval = read_cross_eval(results)
    folders = []
    for run in runs:
        folder = run_folder(results, run)
        spec = folder / RUN_FILE
        if os.path.lexists(spec):
            try:
                before = RunSpec.from_json(read_json_object(spec), where=str(spec))
            except InvalidInputError as err:
                raise InvalidInputError(f"{err}; remove this run folder or use another --out") from None
            if before != run:
                changed = sorted(k for k, v in run.to_json().items() if before.to_json().get(k) != v)
                raise InvalidInputError(
                    f"{spec}: this run was planned with other arguments ({', '.join(changed)} differ); "
                    "use another --out for a different sweep"
                )
        folders.append(folder)
    merged = {r.key: r for r in previous}
    merged.update({r.key: r for r in runs})
    results.mkdir(parents=True, exist_ok=True)
    content: dict = {"runs": [r.to_json() for r in merged.values()]}
    if cross_eval is not None:
        content[CROSS_EVAL_KEY] = {"classes": {name: list(classes) for name, classes in cross_eval.items()}}
    write_json_atomically(results / PLAN_FILE, content)
    for run, folder in zip(runs, folders, strict=True):
        folder.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(folder / RUN_FILE):
            write_json_atomically(folder / RUN_FILE, run.to_json())
    return folders


def plan_entries(results: Pathlike) -> list[RunSpec | InvalidInputError]:
    """Each entry of ``RESULTS/sweep.json``: the run, or the error that names what is wrong with it.

    Raises:
        CorpusLayoutError: RESULTS has no plan.
        InvalidInputError: the plan file itself is unreadable or not ``{"runs": [...]}``.
    """
    path = Path(results) / PLAN_FILE
    if not os.path.lexists(path):
        raise CorpusLayoutError(f"{results}: no {PLAN_FILE}; not a sweep RESULTS folder")
    runs = read_json_object(path).get("runs")
    if not isinstance(runs, list):
        raise InvalidInputError(f'{path}: unreadable sweep plan (expected {{"runs": [...]}})')
    entries: list[RunSpec | InvalidInputError] = []
    for index, data in enumerate(runs):
        try:
            entries.append(RunSpec.from_json(data, where=f"{path}: runs[{index}]"))
        except InvalidInputError as err:
            entries.append(err)
    return entries


def read_plan(results: Pathlike) -> list[RunSpec]:
    """The runs of ``RESULTS/sweep.json``; a bad entry is refused by name."""
    entries = plan_entries(results)
    for entry in entries:
        if isinstance(entry, InvalidInputError):
            raise InvalidInputError(f"{entry}; repair or remove this entry")
    return entries


# -- cross-corpus evaluation -------------------------------------------------------------------


@dataclass(frozen=True)
class CrossTarget:
    """A condition a run's dev-best is evaluated on: its name, config YAML and data root."""

    condition: str
    config: str
    root: str


def parse_cross_eval(data: object, *, where: str) -> dict[str, tuple[str, ...]] | None:
    """The ``cross_eval`` block of a plan's content: condition -> its label classes; None when absent.

    Raises:
        InvalidInputError: naming ``where``: not ``{"classes": {condition: [class, ...]}}``,
            or a class list that is not 2 or more distinct names.

    Examples:
        >>> parse_cross_eval({"runs": [], "cross_eval": {"classes": {"A": ["angry", "sad"]}}}, where="sweep.json")
        {'A': ('angry', 'sad')}
        >>> parse_cross_eval({"runs": []}, where="sweep.json") is None
        True
    """
    if not isinstance(data, dict) or data.get(CROSS_EVAL_KEY) is None:
        return None
    block = data[CROSS_EVAL_KEY]
    classes = block.get("classes") if isinstance(block, dict) else None
    if not isinstance(block, dict) or set(block) != {"classes"} or not isinstance(classes, dict):
        raise InvalidInputError(f'{where}: {CROSS_EVAL_KEY} is not {{"classes": {{condition: [class, ...]}}}}')
    out = {}
    for name, names in classes.items():
        if (
            not isinstance(names, list)
            or len(names) < 2
            or not all(isinstance(c, str) and 0 < len(c) <= MAX_FOLDER_NAME for c in names)
            or len(set(names)) < len(names)
        ):
            raise InvalidInputError(
                f"{where}: {CROSS_EVAL_KEY}.classes.{name[:80]}: {str(names)[:200]} is not a list of 2 or more "
                "distinct class names"
            )
        out[name] = tuple(names)
    return out


def read_cross_eval(results: Pathlike) -> dict[str, tuple[str, ...]] | None:
    """The ``cross_eval`` block of ``RESULTS/sweep.json`` (``parse_cross_eval``); None without a plan or block."""
    path = Path(results) / PLAN_FILE
    if not os.path.lexists(path):
        return None
    return parse_cross_eval(read_json_object(path), where=str(path))


def condition_classes(runs: Sequence[RunSpec]) -> dict[str, tuple[str, ...]]:
    """Each condition's label classes (``config.json`` of ``<root>/<corpus>/<p_or_s>``), read once per condition.

    Raises:
        CorpusLayoutError, InvalidInputError: a condition's config or label folder is unreadable.
    """
    out: dict[str, tuple[str, ...]] = {}
    for run in runs:
        if run.condition not in out:
            condition = resolve_condition(run.config)
            out[run.condition] = read_config(Path(run.root) / condition.corpus / condition.p_or_s).classes
    return out


def shared_classes(model: Sequence[str], target: Sequence[str]) -> tuple[str, ...]:
    """The classes a model of one condition and another condition share (cross-eval's name matching).

    Examples:
        >>> shared_classes(["angry", "sad", "neutral", "happy", "fear"], ["Anger", "happy", "sad", "surprise"])
        ('angry', 'sad', 'happy')
        >>> shared_classes(["angry", "sad"], ["angry", "joy"])
        ('angry',)
    """
    from ..inference.cross_eval import match_classes

    return match_classes(model, target, minimum=0).shared


@functools.lru_cache(maxsize=256)
def _config_task(config: str) -> object:
    """A condition config's ``downstream_expert.task``, read once per config (the plan asks per pair of runs)."""
    return _load_config(Path(config))["downstream_expert"].get("task")


def attributes_only(run: RunSpec) -> bool:
    """Whether ``run`` trains the attribute task alone (``downstream_expert.task: attributes``).

    The task is its condition config's, then its grid point's, then its ``-o``'s. Such a run
    has no class head, so cross-evaluation (which scores class probabilities) does not apply.
    A config that is not there is left to the run itself to name (it cannot train either).

    Examples:
        >>> attributes_only(RunSpec("fbank", None, "A", "/no/such/A.yaml", 1, {"downstream_expert.task": "attributes"}))
        True
    """
    key = "downstream_expert.task"
    task = _config_task(run.config) if Path(run.config).is_file() else None
    if key in run.grid:
        task = literal(run.grid[key])
    return parse_overrides(run.overrides, grid=run.grid).get(f"config.{key}", task) == "attributes"


def cross_targets(
    spec: RunSpec, runs: Sequence[RunSpec], classes: Mapping[str, Sequence[str]]
) -> tuple[list[CrossTarget], list[str]]:
    """The conditions a run's dev-best is evaluated on, and the pairs skipped (with why).

    Its own condition first (the in-corpus evaluation a report restricts to each pair's
    shared classes: the diagonal), then every other condition of the plan with runs of the
    same upstream, in plan order. A pair sharing fewer than two classes is skipped. A run of
    the attribute task alone (``attributes_only``) has no targets and is no target: it has
    no class probabilities to cross-evaluate, and its corpus is its categorical condition's.

    Raises:
        InvalidInputError: ``classes`` lacks a condition of the plan (a plan from another version).
    """

    def classes_of(condition: str) -> Sequence[str]:
        if condition not in classes:
            raise InvalidInputError(
                f"{PLAN_FILE}: {CROSS_EVAL_KEY} has no classes for condition {condition}; run the sweep command again"
            )
        return classes[condition]

    own = classes_of(spec.condition)
    if attributes_only(spec):
        return [], []
    targets, skipped, seen = [], [], set()
    for run in [spec, *runs]:
        if run.upstream != spec.upstream or run.condition in seen or attributes_only(run):
            continue
        seen.add(run.condition)
        other = classes_of(run.condition)
        shared = shared_classes(own, other)
        if run.condition != spec.condition and len(shared) < 2:
            skipped.append(
                f"{spec.condition} {list(own)} -> {run.condition} {list(other)}: {len(shared)} shared class(es) "
                f"{list(shared)}, at least 2 are needed; no cross-corpus cell"
            )
            continue
        targets.append(CrossTarget(run.condition, run.config, run.root))
    return targets, skipped


def cross_gaps(runs: Sequence[RunSpec], classes: Mapping[str, Sequence[str]]) -> list[str]:
    """Every pair of the plan's conditions that is skipped for sharing fewer than two classes, once each."""
    gaps: list[str] = []
    for spec in runs:
        for gap in cross_targets(spec, runs, classes)[1]:
            if gap not in gaps:
                gaps.append(gap)
    return gaps
