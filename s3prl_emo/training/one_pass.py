"""``s3prl-emo train``: S3PRL's own Runner, fed from a feature store instead of the upstream.

``OnePassRunner`` subclasses ``s3prl.downstream.runner.Runner`` and changes only where
features come from. It builds the upstream and the Featurizer as the runner does (same
random state, so the same head initialisation and batch order for the same seed), builds the
``emotion_multilabel`` expert, fills the feature store with one upstream pass per audio file
that is not stored yet (``extraction``), then swaps in

* for the upstream, ``StoredUpstream``: it hands the stored layers to the Featurizer;
* for each split's dataset, ``StoredFeatures``: the stored entry of each file instead of
  its waveform (same names, labels, order and sampler).

``Runner.train`` and ``Runner.evaluate`` then run unchanged: optimizer and scheduler from
S3PRL's factories, clipping, accumulation, log/eval/save cadence, dev-best selection by the
expert, max_keep, tensorboard, checkpoints in the runner's layout (the upstream is frozen
and never saved; the Featurizer keeps its weights), so ``run_downstream.py -m evaluate -e``
and torch.hub read them as they are. Saves are atomic through the import hook's runner patch.

Which store (``feature_store``): pooled for heads that pool by a plain mean first
(projector + ``UtteranceLevel``/``MeanPooling``, ``PooledMLP``), sequence otherwise; which of
the stores of one key a fold reads, and when it may reuse another fold's, is
``store_choice``'s job.

The cache folder is shared and may hold anything: a store, alias, shape record or statistics
file that is unreadable, of the wrong type or shape, non-finite, or a link leading out of
the cache folder is named in a warning and built again (``feature_store`` checks the stores
themselves). The config is checked before the upstream is built, so a bad value fails
before any extraction, and a failing run leaves no experiment folder behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from s3prl.downstream.runner import Runner
from s3prl.utility.helper import is_leader_process
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from ..data import audio
from ..data.fold import Normalizer
from ..downstream import NAME as DOWNSTREAM
from ..downstream.dataset import EmotionDataset
from ..downstream.expert import remove_runner_leftovers
from ..downstream.settings import check_expert_config
from ..errors import CorpusLayoutError, InvalidInputError
from ..runtime import runlock
from ..runtime.guards import resolve_inside
from .extraction import extract
from .feature_store import (
    CACHE_ENV,
    DTYPES,
    FeatureStore,
    StoreOptions,
    exclusive,
    file_hashes,
    json_key,
    read_json,
    write_atomic,
)
from .store_choice import AUDIO_READER, StoreChooser, durations, store_folder, upstream_fingerprint

logger = logging.getLogger(__name__)

REPORT_FILE = "one_pass.json"


def default_cache_dir(expdir: str) -> Path:
    """``$S3PRL_EMO_FEATURE_CACHE``, else ``feature_cache/`` next to the experiment folder."""
    return Path(os.environ.get(CACHE_ENV) or Path(expdir).resolve().parent / "feature_cache")


def pooled_head(modelrc: dict) -> bool:
    """Does the head pool by a plain mean before any non-linearity (so the pooled store is exact)?"""
    select = modelrc.get("select", "UtteranceLevel")
    if select == "PooledMLP":
        return True
    if select == "UtteranceLevel":
        sub = modelrc.get("UtteranceLevel", {}) or {}
        return sub.get("pooling", "MeanPooling") == "MeanPooling" and not isinstance(sub.get("pre_net"), dict)
    return False


class StoredUpstream(nn.Module):
    """Stands in for the upstream during training: stored (frames, layers, dim) -> the
    Featurizer's input, under the feature key the real upstream used."""

    def __init__(self, key: str, as_list: bool):
        super().__init__()
        self.key, self.as_list = key, as_list

    def forward(self, entries: list[torch.Tensor]) -> dict:
        layers = list(pad_sequence(entries, batch_first=True).unbind(dim=2))  # (batch, frames, dim) per layer
        return {self.key: layers if self.as_list else layers[0]}


class ShapeProbe:
    """Answers the Featurizer's one probe call from a record, so a run whose features are all
    stored calls the upstream zero times. Recorded from the real upstream's answer."""

    def __init__(self, record: dict):
        self.record = record

    @staticmethod
    def check(record: object) -> str | None:
        """What is wrong with a record read back from the cache, or None.

        Examples:
            >>> ShapeProbe.check({"key": "hidden_states", "raw_layers": 4, "dim": 64, "downsample_rate": 320})
            >>> ShapeProbe.check({"key": "hidden_states", "raw_layers": 4, "dim": "64", "downsample_rate": 320})
            "dim is '64', not a whole number >= 1"
        """
        if not isinstance(record, dict) or set(record) != {"key", "raw_layers", "dim", "downsample_rate"}:
            return "not a record of key, raw_layers, dim and downsample_rate"
        if not isinstance(record["key"], str) or not record["key"]:
            return f"key is {record['key']!r}, not a feature name"
        for name, low in (("raw_layers", 0), ("dim", 1), ("downsample_rate", 1)):
            value = record[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                return f"{name} is {value!r}, not a whole number >= {low}"
        return None

    def eval(self):
        return self

    def get_downsample_rates(self, key: str) -> int:
        return int(self.record["downsample_rate"])

    def __call__(self, wavs):
        frames = max(1, round(len(wavs[0]) / int(self.record["downsample_rate"])))
        zeros = torch.zeros(1, frames, int(self.record["dim"]))
        layers = int(self.record["raw_layers"])
        return {self.record["key"]: [zeros] * layers if layers else zeros}


class RecordingUpstream:
    """The real upstream, remembering the structure of its output for ``ShapeProbe``."""

    def __init__(self, upstream):
        self._upstream, self.outputs = upstream, None

    def __getattr__(self, name):
        return getattr(self._upstream, name)

    def __call__(self, wavs):
        self.outputs = self._upstream(wavs)
        return self.outputs


class StoredFeatures(Dataset):
    """A split's dataset with stored features in place of waveforms: same names, labels, order."""

    def __init__(self, dataset, store: FeatureStore, keys: dict[str, str]):
        self.names, self.labels = dataset.names, dataset.labels
        self.store, self.keys = store, keys

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int):
        name = self.names[index]
        return self.store.get(self.keys[name]), self.labels[index], name

    collate = staticmethod(EmotionDataset.collate)


class OnePassRunner(Runner):
    """S3PRL's Runner with features from a store; see the module docstring."""

    def __init__(self, args: argparse.Namespace, config: dict, options: StoreOptions):
        if getattr(args, "upstream_trainable", False):
            raise InvalidInputError(
                "the experiment fine-tunes its upstream (-f), which needs it at every step: "
                "use `python -m s3prl.run_downstream -m train -f ...`"
            )
        if args.downstream != DOWNSTREAM:
            raise InvalidInputError(f"downstream {args.downstream!r}: s3prl-emo train runs {DOWNSTREAM} only")
        try:  # before the upstream is built and before anything is written for this run
            check_expert_config(config.get("downstream_expert"), config.get("runner"))
        except InvalidInputError:
            remove_runner_leftovers(Path(args.expdir))
            raise
        self.options = options
        self.report: dict = {"upstream_calls": 0}
        self.cache_dir = Path(options.cache_dir) if options.cache_dir else default_cache_dir(args.expdir)
        super().__init__(args, config)
        self._write_report()

    def train(self):
        super().train()
        self._write_report()  # per-step upstream calls happen here when the run fell back to them

    def _write_report(self) -> None:
        self.report["upstream_calls"] = self._calls
        write_atomic(Path(self.args.expdir) / REPORT_FILE, json.dumps(self.report, indent=2) + "\n")

    # --- the runner's three builders ---
    def _get_upstream(self):
        entry = super()._get_upstream()
        self._calls = 0

        def count(module, inputs):
            self._calls += 1

        entry.model.register_forward_pre_hook(count)
        self.upstream_id = {
            "upstream": self.args.upstream,
            "weights": upstream_fingerprint(entry.model),
            "s3prl": _s3prl_version(),
            "feature_selection": self.args.upstream_feature_selection,
            "layer_selection": self.args.upstream_layer_selection,
        }
        return entry

    def _cache_file(self, folder: str, name: str) -> Path | None:
        """``<cache>/<folder>/<name>``, or None (with a warning) when ``folder`` leads out of the cache."""
        try:
            resolve_inside(self.cache_dir, folder, what=f"feature cache {self.cache_dir}")
        except InvalidInputError as err:
            logger.warning("%s: not read or written", err)
            return None
        return self.cache_dir / folder / name

    def _get_featurizer(self):
        shapes_file = self._cache_file("shapes", f"{json_key(self.upstream_id)}.json")
        real = self.upstream.model
        record = read_json(shapes_file) if shapes_file is not None else None
        problem = ShapeProbe.check(record) if record is not None else None
        if problem:
            logger.warning("%s: %s; recording the upstream's shapes again", shapes_file, problem)
            record = None
        probe = ShapeProbe(record) if record else RecordingUpstream(real)
        self.upstream.model = probe
        try:
            entry = super()._get_featurizer()
        finally:
            self.upstream.model = real
        real.eval()  # as the Featurizer leaves it in the stock runner (dropout off)
        featurizer = entry.model
        if record is None:
            feature = probe.outputs[featurizer.feature_selection]
            if isinstance(feature, dict):
                feature = list(feature.values())
            raw_layers = len(feature) if isinstance(feature, list | tuple) else 0
            sample = feature[0] if raw_layers else feature
            record = {
                "key": featurizer.feature_selection,
                "raw_layers": raw_layers,
                "dim": int(sample.shape[-1]),
                "downsample_rate": int(featurizer.downsample_rate),
            }
            if shapes_file is not None:
                shapes_file.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(shapes_file, json.dumps(record))
        self.shape_record = record
        return entry

    def _get_downstream(self):
        # Stored features replace waveforms, so the expert reads a file only when it is needed
        # (statistics, extraction) instead of pre-loading every split. The config the
        # checkpoints carry is left as it was.
        datarc = self.config["downstream_expert"].setdefault("datarc", {})
        had_pre_load, pre_load = "pre_load" in datarc, datarc.get("pre_load", True)
        datarc["pre_load"] = False
        expdir = Path(self.args.expdir)
        stats_file = expdir / "cache" / f"wav_stats_{self._fold(datarc)}.json"
        shared_stats = self._cache_file("wav_stats", f"{json_key([datarc, self._fold(datarc)])}.json")
        shared = read_json(shared_stats) if shared_stats is not None else None
        copied = False
        if isinstance(shared, dict) and not os.path.lexists(stats_file):  # the expert checks its key and values
            if self.args.mode == "train" and is_leader_process():
                runlock.acquire(expdir)  # this run's folder before anything is written there
            stats_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(stats_file, json.dumps(shared))
            copied = True
        try:
            entry = super()._get_downstream()
        except (InvalidInputError, CorpusLayoutError):
            if copied:  # the expert removes the folder S3PRL made only when nothing else is there
                stats_file.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    stats_file.parent.rmdir()
                remove_runner_leftovers(expdir)
            raise
        finally:
            if had_pre_load:
                datarc["pre_load"] = pre_load
            else:
                del datarc["pre_load"]
        computed = read_json(stats_file)
        if shared_stats is not None and isinstance(computed, dict):
            shared_stats.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(shared_stats, json.dumps(computed))
        if not self._use_store(entry.model) and pre_load:  # per-step upstream calls: pre-load as configured
            expert = entry.model
            expert.store.pre_load = True
            for split, data in expert.datasets.items():
                expert.store.load_all(data.names, split)
        return entry

    def _fold(self, datarc: dict) -> str:
        return str(getattr(self.args, "downstream_variant", None) or datarc.get("test_fold", "fold1"))

    # --- the store ---
    def _use_store(self, expert) -> bool:
        """Fill the store and switch the runner to it; False when the run stays on per-step upstream calls."""
        featurizer = self.featurizer.model
        modelrc = self.config["downstream_expert"].get("modelrc", {})
        kind = self.options.store
        if kind == "auto":
            kind = "pooled" if pooled_head(modelrc) else "sequence"
        if kind == "pooled" and not pooled_head(modelrc):
            raise InvalidInputError(
                f"--store pooled: modelrc.select {modelrc.get('select')!r} does not pool by a plain mean first; "
                "use --store sequence (or auto)"
            )
        if kind == "pooled" and self.config.get("specaug"):
            raise InvalidInputError(
                "config.specaug masks frames, which a pooled store no longer has: use --store sequence"
            )
        as_list = isinstance(featurizer._select_feature(ShapeProbe(self.shape_record)([torch.zeros(16_000)])), list)
        layers = int(featurizer.layer_num) if as_list else 1
        dtype = "float32" if kind == "pooled" else self.options.dtype
        rate = int(featurizer.downsample_rate)
        names = sorted({n for d in expert.datasets.values() for n in d.names})
        if kind == "sequence":
            frames = sum(round(seconds * audio.SAMPLE_RATE / rate) for seconds in durations(expert, names).values())
            need = frames * layers * self.shape_record["dim"] * np.dtype(DTYPES[dtype]).itemsize / 1e9
            if need > self.options.budget_gb:
                logger.warning(
                    "sequence store for %d files needs %.1f GB > --cache-budget-gb %.1f: falling back to "
                    "per-step upstream calls (S3PRL's runner, unchanged)",
                    len(names),
                    need,
                    self.options.budget_gb,
                )
                self.report.update(mode="per-step upstream (over the cache budget)", store_gb=need)
                return False
        key_meta = {
            **self.upstream_id,
            "format": 1,
            "kind": kind,
            "dtype": dtype,
            "feature_key": self.shape_record["key"],
            "layers": layers,
            "dim": self.shape_record["dim"],
            "downsample_rate": rate,
            "normalize": bool(featurizer.normalize and as_list),
            "max_duration_s": float(expert.datarc["max_duration_s"]),
            "audio_reader": AUDIO_READER,
        }
        base = store_folder(self.cache_dir / json_key(key_meta))
        hashes = dict(
            zip(
                names,
                file_hashes([expert.data.audio_dir / n for n in names], self.cache_dir / "file_hashes.json"),
                strict=True,
            )
        )
        stats = (float(expert.normalize.mean), float(expert.normalize.std))
        started = time.perf_counter()
        with exclusive(base):
            chooser = StoreChooser(
                self.upstream.model, featurizer, self.args.device, self.options.tolerance, self.report
            )
            store = chooser.pick(base, key_meta, stats, expert, hashes, pooled=kind == "pooled")
            wanted = {h: n for n, h in sorted(hashes.items())}
            missing = store.missing(wanted)
            if missing:
                normalize = Normalizer(store.meta["wav_mean"], store.meta["wav_std"])
                items = [(h, _loader(expert.store, wanted[h], normalize)) for h in missing]
                logger.info("feature store %s: extracting %d of %d files", store.root, len(missing), len(wanted))
                entries = extract(
                    self.upstream.model,
                    featurizer,
                    items,
                    downsample_rate=rate,
                    pooled=kind == "pooled",
                    device=self.args.device,
                    desc="extract",
                )
                store.add(self._checked(entries, wanted, store))
            else:
                logger.info("feature store %s: all %d files stored, no upstream pass needed", store.root, len(wanted))
        self.report.update(
            mode=f"{kind} store",
            store=str(store.root),
            extracted=len(missing),
            files=len(wanted),
            extract_s=round(time.perf_counter() - started, 3),
        )
        # From here on the runner trains and evaluates on stored features.
        for split, data in list(expert.datasets.items()):
            expert.datasets[split] = StoredFeatures(data, store, hashes)
        expert.datarc["num_workers"] = 0  # a stored entry is a memory-map slice: workers only cost start-up
        self.upstream.model = StoredUpstream(self.shape_record["key"], as_list)
        featurizer.normalize = False  # stored frames are already layer-normed where the run asks for it
        featurizer.downsample_rate = 1  # stored entries hold exactly the runner's valid frames
        return True

    def _checked(self, entries, names: dict[str, str], store: FeatureStore):
        """``entries`` as they are extracted, refused before they are stored when their shape is not
        the one the store was keyed with (a shape record that does not describe the upstream: it is
        removed) or when the upstream gave NaN or infinite features for a file (named)."""
        expected = (store.layers, store.dim)
        for key, entry in entries:
            if entry.ndim != 3 or entry.shape[1:] != expected or entry.shape[0] < 1:
                record = self._cache_file("shapes", f"{json_key(self.upstream_id)}.json")
                if record is not None:
                    record.unlink(missing_ok=True)
                raise InvalidInputError(
                    f"{names[key]}: the upstream's features have shape {entry.shape}, the store expects (frames >= 1, "
                    f"{expected[0]}, {expected[1]}) from the recorded shapes of this upstream ({record}), which are "
                    "wrong: the record is removed, run again"
                )
            if not np.isfinite(entry).all():
                raise InvalidInputError(f"{names[key]}: the upstream's features of this file are NaN or infinite")
            yield key, entry


def _loader(audio_store, name: str, normalize: Normalizer):
    return lambda: normalize(audio_store.get(name))


def _s3prl_version() -> str:
    from importlib.metadata import version

    return version("s3prl")


def run_train(argv: list[str], options: StoreOptions) -> None:
    """``python -m s3prl.run_downstream`` with ``argv`` (its own argument handling, resume, seeding
    and experiment files), building an ``OnePassRunner`` where it builds its Runner."""
    import functools

    from ..runtime.runner_guard import run_downstream

    run_downstream(argv, prog="s3prl-emo train", runner=functools.partial(OnePassRunner, options=options))
