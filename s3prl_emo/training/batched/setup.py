"""What the runs of a batched group are and what they share.

Each run is read exactly as ``s3prl-emo train ARGV`` reads it: S3PRL's ``run_downstream``
parses the command line (resume with ``-a``, ``-o`` overrides, the args/config files it
writes, the seed) and hands ``(args, config)`` to the Runner it builds; here that Runner is
``_Captured``, which keeps them and the random state the real Runner would start from.

Shared, built once: a ``OnePassRunner`` per upstream (upstream, Featurizer, feature store,
extraction of whatever is not stored yet), and per fold and expert config its expert (the
fold's data, normalisation statistics, CBCE class weights) with the fold's pooled features
loaded as one tensor per split. Per run only its head is built, from the random state the
Runner has when the expert builds it (seed, then upstream, then the Featurizer's probe).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ...downstream.model import EmotionHead, PooledMLP
from ...errors import InvalidInputError
from ..feature_store import StoreOptions
from ..one_pass import OnePassRunner, StoredFeatures, pooled_head


@dataclass
class RunSetup:
    """One run: its command line, S3PRL's reading of it, and the random state after seeding."""

    argv: list[str]
    args: argparse.Namespace
    config: dict
    seeded_rng: torch.Tensor

    @functools.cached_property
    def expdir(self) -> Path:
        return Path(self.args.expdir)


class _Captured:
    """Stands where ``run_downstream`` builds its Runner: keeps what it is given, trains nothing."""

    last: tuple | None = None

    def __init__(self, args: argparse.Namespace, config: dict):
        _Captured.last = (args, config, torch.get_rng_state())

    def train(self) -> None:
        return None


def read_run(argv: list[str]) -> RunSetup:
    """S3PRL's ``(args, config)`` for ``s3prl-emo train ARGV`` (its args/config yaml are written).

    Examples:
        >>> read_run(["-m", "train", "-c", "cfg.yaml", ...]).args.seed  # doctest: +SKIP
        1337
    """
    from ...runtime.runner_guard import run_downstream

    _Captured.last = None
    run_downstream(argv, prog="s3prl-emo train", runner=_Captured)
    if _Captured.last is None:  # pragma: no cover - run_downstream always builds a runner for -m train
        raise InvalidInputError(f"{' '.join(argv)}: S3PRL built no runner")
    args, config, rng = _Captured.last
    # The Runner's expert fits log/eval/save steps to a short run in the Runner's own config dict
    # (it shares it); the batched trainer builds experts on copies, so it fits the run's here.
    from ...downstream.expert import _fit_schedule

    _fit_schedule(config.get("runner"))
    return RunSetup(list(argv), args, config, rng)


def _has_random_layers(module: nn.Module) -> str | None:
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Dropout) and sub.p > 0:
            return f"{name or 'the head'} has dropout {sub.p}"
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            return f"{name or 'the head'} is a batch norm"
    return None


def fallback_reason(config: dict, args: argparse.Namespace, options: StoreOptions) -> str | None:
    """Why the batched path cannot train this run as ``s3prl-emo train`` would, or None.

    Examples:
        >>> import argparse
        >>> cfg = {"runner": {}, "downstream_expert": {"modelrc": {"select": "DeepModel"}}}
        >>> fallback_reason(cfg, argparse.Namespace(), StoreOptions())
        "modelrc.select 'DeepModel' does not mean-pool first: no pooled store"
    """
    expert = config.get("downstream_expert") or {}
    modelrc = expert.get("modelrc") or {}
    runner = config.get("runner") or {}
    device = str(getattr(args, "device", "cpu"))
    if device != "cpu":
        return f"--device {device}: the stacked step computes on the CPU only"
    task = expert.get("task", "categorical")
    if task != "categorical":
        return f"downstream_expert.task {task!r}: the stacked step trains class heads with CBCE only"
    if not pooled_head(modelrc):
        return f"modelrc.select {modelrc.get('select', 'UtteranceLevel')!r} does not mean-pool first: no pooled store"
    if options.store == "sequence":
        return "--store sequence: the batched trainer reads pooled stores"
    select = modelrc.get("select", "UtteranceLevel")
    if select == "PooledMLP" and float((modelrc.get("PooledMLP") or {}).get("dropout", 0.5)) > 0:
        return "PooledMLP has dropout, whose random masks the stacked step does not draw as the Runner does"
    if select == "UtteranceLevel" and isinstance((modelrc.get("UtteranceLevel") or {}).get("post_net"), dict):
        post = modelrc["UtteranceLevel"]["post_net"]
        if post.get("select", "FrameLevel") != "FrameLevel":
            return f"UtteranceLevel.post_net {post.get('select')!r}: only FrameLevel is stacked"
    checks = (
        (config.get("specaug"), "config.specaug masks frames, which a pooled store no longer has"),
        (runner.get("fp16"), "runner.fp16 (a gradient scaler per run) is not stacked"),
        (runner.get("train_dataloader", "train") != "train", "runner.train_dataloader is not 'train'"),
        (float(runner.get("evaluate_ratio", 1)) != 1, "runner.evaluate_ratio is not 1"),
        (getattr(args, "upstream_trainable", False), "-f fine-tunes the upstream"),
    )
    for failed, reason in checks:
        if failed:
            return reason
    return _optimizer_reason(config)


def _optimizer_reason(config: dict) -> str | None:
    """Why the stacked update cannot be the run's optimizer: S3PRL's factory builds it, on a probe parameter."""
    from s3prl.optimizers import get_optimizer

    from .engine import adam_recipe

    if not config.get("optimizer"):
        return None  # the run's own build reports a missing optimizer
    probe = nn.Module()
    probe.weight = nn.Parameter(torch.zeros(1))
    try:
        optimizer = get_optimizer([probe], int((config.get("runner") or {}).get("total_steps", 1)), config["optimizer"])
    except Exception:  # the run's own build reports a config S3PRL refuses
        return None
    recipe = adam_recipe(optimizer)
    return recipe if isinstance(recipe, str) else None


def head_for(
    upstream_dim: int, classes: int, modelrc: dict, rng_state: torch.Tensor
) -> tuple[EmotionHead, torch.Tensor]:
    """The run's head as the expert builds it from ``rng_state``, and the random state after it.

    The global random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(rng_state)
        head = EmotionHead(upstream_dim, classes, modelrc)
        after = torch.get_rng_state()
    problem = _has_random_layers(head)
    if problem:  # fallback_reason refuses these configs first; a model class added later is caught here
        raise InvalidInputError(f"batched trainer: {problem}")
    return head, after


def pooled_logits(head: EmotionHead, pooled: torch.Tensor) -> torch.Tensor:
    """The head on pooled features (B, H): projector, the mean of one frame (itself), then what follows it."""
    hidden = head.projector(pooled)
    model = head.model
    if isinstance(model, PooledMLP):
        return model.mlp(hidden)
    return model.post_net(hidden, None)[0]


@dataclass
class FoldData:
    """One fold and expert config: the expert (its files, loss, rule) and, per split, its utterances
    as rows of ``table``, the pooled features the folds of one upstream share (each stored file
    once, whatever its folds)."""

    expert: nn.Module
    labels: dict[str, torch.Tensor]  # split -> (N, C) float32
    names: dict[str, list[str]]
    label_arrays: dict[str, np.ndarray]
    rows: dict[str, torch.Tensor]  # split -> (N,) rows of ``table``
    table: torch.Tensor | None = None  # (files, layers, dim), set once every fold is known

    def stored(self, split: str, index: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled features of ``split``, or of its utterances ``index`` (any shape): (..., layers, dim)."""
        return self.table[self.rows[split] if index is None else self.rows[split][index]]


class _GroupRunner(OnePassRunner):
    """``OnePassRunner`` remembering the random state at which the expert (and its head) is built."""

    def _get_downstream(self):
        # The store switch swaps in StoredUpstream and changes the Featurizer: each further fold's
        # expert starts from the real upstream and Featurizer settings again.
        featurizer = self.featurizer.model
        if not hasattr(self, "real"):
            self.real = (self.upstream.model, featurizer.normalize, featurizer.downsample_rate)
        self.upstream.model, featurizer.normalize, featurizer.downsample_rate = self.real
        self.before_expert = torch.get_rng_state()
        return super()._get_downstream()


def _upstream_key(args: argparse.Namespace) -> str:
    keys = ("upstream", "upstream_ckpt", "upstream_model_config", "upstream_feature_selection")
    keys += ("upstream_layer_selection", "upstream_feature_normalize", "device", "upstream_refresh")
    return json.dumps([str(getattr(args, k, None)) for k in keys])


def fold_key(run: RunSetup) -> str:
    """Runs with one key share an expert: same upstream, fold and ``downstream_expert`` config."""
    expert = run.config.get("downstream_expert") or {}
    fold = getattr(run.args, "downstream_variant", None) or (expert.get("datarc") or {}).get("test_fold", "fold1")
    return json.dumps([_upstream_key(run.args), str(fold), expert], sort_keys=True, default=str)


class Shared:
    """What the runs of one upstream share, built on first use."""

    def __init__(self, options: StoreOptions):
        self.options = options
        self.runners: dict[str, _GroupRunner] = {}
        self.folds: dict[str, FoldData] = {}
        self.before_expert: dict[tuple[str, int], torch.Tensor] = {}
        self._row_of: dict[tuple[str, str], int] = {}  # (store, key) -> row of the features table
        self._rows: list[np.ndarray] = []

    def _runner(self, run: RunSetup) -> _GroupRunner:
        key = _upstream_key(run.args)
        if key not in self.runners:
            args = copy.copy(run.args)
            args.init_ckpt = None  # the shared runner loads no run's weights
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(run.seeded_rng)
                runner = _GroupRunner(args, copy.deepcopy(run.config), self.options)
            self.runners[key] = runner
            self.before_expert[(key, int(run.args.seed))] = runner.before_expert
            self.folds[fold_key(run)] = self._fold_data(runner.downstream.model)
        return self.runners[key]

    def rng_before_expert(self, run: RunSetup) -> torch.Tensor:
        """The random state the Runner of ``run`` has when its expert builds the head."""
        runner = self._runner(run)
        key = (_upstream_key(run.args), int(run.args.seed))
        if key not in self.before_expert:  # another seed: the upstream and the Featurizer's probe again
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(run.seeded_rng)
                saved = runner.upstream, runner.featurizer
                try:
                    runner.upstream = runner._get_upstream()
                    runner.featurizer = runner._get_featurizer()
                    self.before_expert[key] = torch.get_rng_state()
                finally:
                    runner.upstream, runner.featurizer = saved
        return self.before_expert[key]

    def fold(self, run: RunSetup) -> FoldData:
        """The expert and pooled features of ``run``'s fold, built once per fold and expert config."""
        runner = self._runner(run)
        key = fold_key(run)
        if key not in self.folds:
            saved = runner.args, runner.config
            runner.args, runner.config = copy.copy(run.args), copy.deepcopy(run.config)
            runner.args.init_ckpt = None
            try:
                with torch.random.fork_rng(devices=[]):
                    entry = runner._get_downstream()
            finally:
                runner.args, runner.config = saved
            self.folds[key] = self._fold_data(entry.model)
        return self.folds[key]

    def featurizer(self, run: RunSetup) -> nn.Module:
        return self._runner(run).featurizer.model

    def _fold_data(self, expert) -> FoldData:
        rows, labels, names, arrays = {}, {}, {}, {}
        for split, data in expert.datasets.items():
            if not isinstance(data, StoredFeatures):
                raise InvalidInputError(f"batched trainer: split {split} of {expert.expdir} has no pooled store")
            index = []
            for name in data.names:
                key = (str(data.store.root), data.keys[name])
                if key not in self._row_of:
                    row = np.asarray(data.store.get(key[1]))
                    if row.shape[0] != 1:
                        raise InvalidInputError(f"batched trainer: the store of {expert.expdir} is not a pooled store")
                    self._row_of[key] = len(self._rows)
                    self._rows.append(row[0])
                index.append(self._row_of[key])
            rows[split] = torch.as_tensor(index, dtype=torch.long)
            labels[split] = torch.as_tensor(data.labels)
            names[split] = list(data.names)
            arrays[split] = data.labels
        return FoldData(expert, labels, names, arrays, rows)

    def share_features(self) -> None:
        """Stack every stored file the folds use into one table (each file once) that every fold indexes."""
        table = torch.from_numpy(np.stack(self._rows).astype(np.float32, copy=False)) if self._rows else None
        self._rows = list(table.numpy()) if table is not None else []  # views: a later fold adds to them
        for fold in self.folds.values():
            fold.table = table


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
