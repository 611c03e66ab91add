"""Class probabilities of a one-pass run (``s3prl-emo train``) from its feature store.

A one-pass run trains and evaluates on stored upstream features (``one_pass``), and its
experiment folder records the store it used (``one_pass.json``: ``store``). Scoring such a
model on other audio through the same store keeps its figures comparable with its own test
figures (a float16 sequence store rounds features; the upstream path would not), and costs
no upstream pass for audio already stored. Audio that is not stored yet is extracted into
the store exactly as the run would have extracted it (same reader, crop, waveform
statistics of the store, layer selection), under the store's lock.

The store is used only when its ``meta.json`` describes this checkpoint's upstream: same
loader, weights fingerprint, s3prl version, feature and layer selection, crop and audio
reader, and its folder name is the key of that description. Otherwise (or for a run of
S3PRL's own runner, which records no store) ``run_store`` returns None and the caller runs
the upstream.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from tqdm import tqdm

from ..data.audio import load_audio
from ..data.fold import Normalizer
from ..runtime.checkpoints import load_checkpoint
from ..runtime.paths import Pathlike
from ..training.feature_store import FeatureStore, exclusive, file_hashes, json_key
from ..training.one_pass import REPORT_FILE, StoredUpstream, _s3prl_version, pooled_head
from ..training.store_choice import AUDIO_READER, STATS_KEYS, upstream_fingerprint

logger = logging.getLogger(__name__)


class RunStore:
    """The feature store of a one-pass run, bound to the run's recogniser."""

    def __init__(self, store: FeatureStore, recognizer, *, as_list: bool):
        self.store, self.recognizer, self.as_list = store, recognizer, as_list

    @property
    def root(self) -> Path:
        return self.store.root

    def probabilities(self, paths: Sequence[Path], *, batch_size: int, device: str, desc: str) -> np.ndarray:
        """(N, C) class probabilities of ``paths`` in order, batches of ``batch_size`` stored
        entries through the Featurizer and head as the one-pass runner feeds them."""
        keys = file_hashes(list(paths), None)
        self._fill({key: path for key, path in zip(keys, paths, strict=True)}, device)
        model = self.recognizer
        stored = StoredUpstream(self.store.meta["feature_key"], self.as_list)
        out = []
        with _stored_mode(model.featurizer), torch.no_grad(), tqdm(total=len(keys), desc=desc, unit="utt") as bar:
            for start in range(0, len(keys), batch_size):
                chunk = keys[start : start + batch_size]
                entries = [torch.from_numpy(self.store.get(k)).to(device) for k in chunk]
                features = model.featurizer(entries, stored(entries))
                lengths = torch.as_tensor([len(f) for f in features], device=device)
                logits = model.head(pad_sequence(features, batch_first=True), lengths)
                out.append(model._split_outputs(logits)[0])  # a 'both' head: its class outputs only
                bar.update(len(chunk))
        return np.concatenate(out).astype(np.float64)

    def _fill(self, wanted: dict[str, Path], device: str) -> None:
        """Extract the entries that are missing, under the store's lock."""
        from ..training.extraction import extract

        if not self.store.missing(wanted):
            logger.info("feature store %s: all %d files stored, no upstream pass needed", self.root, len(wanted))
            return
        meta = self.store.meta
        with exclusive(self.root.parent):
            store = FeatureStore.open(self.root, meta, repair=True)
            missing = store.missing(wanted)
            normalize = Normalizer(meta["wav_mean"], meta["wav_std"])
            crop = float(meta["max_duration_s"])
            items = [(key, _loader(wanted[key], crop, normalize)) for key in missing]
            logger.info("feature store %s: extracting %d of %d files", self.root, len(missing), len(wanted))
            store.add(
                extract(
                    self.recognizer.upstream,
                    self.recognizer.featurizer,
                    items,
                    downsample_rate=int(meta["downsample_rate"]),
                    pooled=meta["kind"] == "pooled",
                    device=device,
                    desc="extract",
                )
            )
        self.store = store


def _loader(path: Path, crop: float, normalize: Normalizer):
    return lambda: normalize(load_audio(path, crop))


@contextlib.contextmanager
def _stored_mode(featurizer) -> Iterator[None]:
    """The Featurizer as the one-pass runner sets it: stored frames are already layer-normed
    where asked and hold exactly the valid frames."""
    saved = featurizer.normalize, featurizer.downsample_rate
    featurizer.normalize, featurizer.downsample_rate = False, 1
    try:
        yield
    finally:
        featurizer.normalize, featurizer.downsample_rate = saved


def expected_meta(args, config: dict, extra: dict, recognizer, *, as_list: bool) -> dict:
    """What a one-pass store of this checkpoint's upstream records (the fields that do not
    depend on ``--store`` and ``--store-dtype``)."""
    featurizer = recognizer.featurizer
    return {
        "upstream": args.upstream,
        "weights": upstream_fingerprint(recognizer.upstream),
        "s3prl": _s3prl_version(),
        "feature_selection": args.upstream_feature_selection,
        "layer_selection": args.upstream_layer_selection,
        "feature_key": featurizer.feature_selection,
        "layers": int(featurizer.layer_num) if as_list else 1,
        "dim": int(featurizer.output_dim),
        "downsample_rate": int(featurizer.downsample_rate),
        "normalize": bool(featurizer.normalize and as_list),
        "max_duration_s": float(extra["max_duration_s"]),
        "audio_reader": AUDIO_READER,
        "modelrc_pooled": pooled_head(config.get("downstream_expert", {}).get("modelrc", {}) or {}),
    }


def check_store_meta(meta: dict, expected: dict, folder_key: str) -> str | None:
    """Why a store's ``meta.json`` does not describe this checkpoint's features, or None.

    Examples:
        >>> meta = {"upstream": "fbank", "kind": "sequence", "dtype": "float16", "wav_mean": 0.0, "wav_std": 1.0}
        >>> check_store_meta(meta, {"upstream": "fbank", "modelrc_pooled": False},
        ...                  json_key({k: v for k, v in meta.items() if k not in STATS_KEYS}))
        >>> check_store_meta(meta, {"upstream": "wavlm", "modelrc_pooled": False}, "x")
        "upstream is 'fbank', the checkpoint's is 'wavlm'"
    """
    for key, value in expected.items():
        if key == "modelrc_pooled":
            continue
        if meta.get(key) != value:
            return f"{key} is {meta.get(key)!r}, the checkpoint's is {value!r}"
    if meta.get("kind") not in ("pooled", "sequence") or (meta["kind"] == "pooled" and not expected["modelrc_pooled"]):
        return f"kind {meta.get('kind')!r} does not fit the head"
    if json_key({k: v for k, v in meta.items() if k not in STATS_KEYS}) != folder_key:
        return "its folder is not the key of its meta.json"
    return None


def run_store(ckpt: Pathlike, recognizer, state: dict | None = None) -> RunStore | None:
    """The feature store the run of ``ckpt`` trained on (``EXP/one_pass.json``), if it
    describes this checkpoint's upstream; None for a run without one. ``state`` is the
    checkpoint, when the caller has loaded it already."""
    report_file = Path(ckpt).resolve().parent / REPORT_FILE
    if not report_file.is_file():
        return None
    try:
        report = json.loads(report_file.read_text())
    except (OSError, ValueError):
        logger.warning("%s: unreadable; running the upstream instead of the run's feature store", report_file)
        return None
    store_path = report.get("store") if isinstance(report, dict) else None
    if not isinstance(store_path, str) or not Path(store_path).is_absolute():
        return None  # per-step upstream run, or a store named relative to an unknown folder
    store = FeatureStore.open(Path(store_path)) if (Path(store_path) / "meta.json").is_file() else None
    if store is None:
        logger.warning("%s: the run's feature store %s is gone; running the upstream", report_file, store_path)
        return None
    state = state if state is not None else load_checkpoint(ckpt)
    args, config, extra = state["Args"], state["Config"], state["Downstream"]["_extra_state"]
    with torch.no_grad():
        probe = recognizer.upstream([torch.zeros(16_000, device=next(recognizer.head.parameters()).device)])
    as_list = isinstance(recognizer.featurizer._select_feature(probe), list | tuple)
    problem = check_store_meta(
        store.meta, expected_meta(args, config, extra, recognizer, as_list=as_list), store.root.parent.name
    )
    if problem:
        logger.warning("feature store %s does not fit %s (%s); running the upstream", store.root, ckpt, problem)
        return None
    logger.info("evaluating from the run's feature store %s", store.root)
    return RunStore(store, recognizer, as_list=as_list)
