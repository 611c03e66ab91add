"""Which feature store a run reads, and when one fold may reuse another's.

Stores of one key (``training.one_pass``) differ only in the train split's waveform
statistics. A fold reads the store built under its own statistics if there is one; else one
an alias names (a check made before, within the tolerance); else another fold's store when
the upstream provably cancels a global shift and scale of the waveform
(``provably_invariant``), or when a sample of files gives features within the tolerance
under both statistics (the result is kept as an alias); else a new store is built.

The key names the upstream by a hash of its weights (``upstream_fingerprint``) and the audio
reader by a fixed value (``AUDIO_READER``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..data.fold import Normalizer
from ..errors import InvalidInputError
from ..runtime.guards import finite_number, resolve_inside
from .extraction import features_of, max_relative_difference
from .feature_store import FeatureStore, json_key, read_json, write_atomic

logger = logging.getLogger(__name__)

INVARIANCE_SAMPLE = 5

# Keys of a store's meta that depend on the waveform statistics, not on the store's key.
STATS_KEYS = ("wav_mean", "wav_std")


def upstream_fingerprint(model: nn.Module) -> str:
    """Hash of the upstream's class and every tensor of its state: changes with its checkpoint."""
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    for name, tensor in model.state_dict().items():
        hasher.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        hasher.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


AUDIO_READER = "cdf73449d2b2778b0821741cfa8a9bc7"
"""How a file becomes the upstream's input (reading, soxr resampling, cropping, padding,
normalising), as store keys name it. Stores written by earlier versions carry this value, so a
module that moves or is reformatted keeps its stores; ``tests/test_audio_reader_key.py`` pins
the samples the reader produces, and a change of that behaviour must change this value."""


def store_folder(folder: Path) -> Path:
    """``folder`` where a store is built: a link or a file there (made by no builder) is removed, not
    followed, and the store built in its place."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        what = f"a symbolic link (to {os.readlink(folder)})" if folder.is_symlink() else "a file"
        logger.warning("feature store %s is %s: removing it and building the store in its place", folder, what)
        folder.unlink()
    return folder


@dataclass
class StoreChooser:
    """Picks the store of one key for a run (see the module docstring); ``report`` is updated
    with the case that applied, for ``one_pass.json``."""

    upstream: nn.Module
    featurizer: nn.Module
    device: str
    tolerance: float
    report: dict = field(default_factory=dict)

    def _usable(self, folder: Path, key_meta: dict) -> FeatureStore | None:
        """The store in ``folder`` if it is a store of this key (any statistics), else None with a warning."""
        if folder.is_symlink() or not folder.is_dir():
            logger.warning("feature store %s: not a folder of the cache (a link or a file): ignored", folder)
            return None
        store = FeatureStore.open(folder, repair=True)
        if store is None:
            return None
        if {k: v for k, v in store.meta.items() if k not in STATS_KEYS} != key_meta or not all(
            k in store.meta for k in STATS_KEYS
        ):
            logger.warning("feature store %s: its meta.json is not this store's key: ignored", folder)
            return None
        return store

    def _alias(self, alias_file: Path, base: Path, key_meta: dict) -> tuple[FeatureStore, dict] | None:
        """The store an alias of ``base`` names and the alias, if the alias is sound and within tolerance."""
        alias = read_json(alias_file)
        if alias is None:
            if os.path.lexists(alias_file):
                logger.warning("alias %s: unreadable or not a plain file: ignored", alias_file)
            return None
        try:
            if not isinstance(alias, dict):
                raise InvalidInputError(f"alias {alias_file}: not a JSON object")
            target = alias.get("target")
            if target is None:
                return None  # checked before: not invariant
            if not isinstance(target, str) or not target.startswith("stats-"):
                raise InvalidInputError(f"alias {alias_file}: target {target!r} is not a stats-* store")
            folder = resolve_inside(base, target, what=f"alias {alias_file}: target")
            if folder.parent != base.resolve():
                raise InvalidInputError(f"alias {alias_file}: target {target!r} is not a store of {base}")
            diff = finite_number(alias.get("max_rel_diff"), where=f"alias {alias_file}: max_rel_diff", low=0)
            finite_number(alias.get("tolerance"), where=f"alias {alias_file}: tolerance", low=0)
        except InvalidInputError as err:
            logger.warning("%s; ignored, the statistics are checked again", err)
            return None
        if diff > self.tolerance:
            return None  # reused under a looser tolerance than this run's: check again
        store = self._usable(base / folder.name, key_meta)
        return (store, alias) if store is not None else None

    def pick(self, base: Path, key_meta: dict, stats, expert, hashes: dict, *, pooled: bool) -> FeatureStore:
        """The store of ``key_meta`` this run reads: its own (built under ``stats``), one an alias
        names, or another fold's that the upstream provably or measurably does not tell apart."""
        stats_id = f"stats-{json_key(list(stats))[:12]}"
        meta = {**key_meta, "wav_mean": stats[0], "wav_std": stats[1]}
        own = store_folder(base / stats_id)
        alias_file = base / "aliases" / f"{stats_id}.json"
        if os.path.lexists(own / "meta.json"):
            self.report.update(case="store built under these statistics")
            return FeatureStore.open(own, meta, repair=True)
        aliased = self._alias(alias_file, base, key_meta)
        if aliased is not None:
            target, alias = aliased
            logger.info(
                "waveform statistics mean %.6g std %.6g: reusing %s (checked before: max relative difference "
                "%.2e <= %.0e)",
                *stats,
                target.root,
                alias["max_rel_diff"],
                alias["tolerance"],
            )
            self.report.update(case="reused (checked before)", max_rel_diff=alias["max_rel_diff"])
            return target
        candidates = []
        for folder in sorted(base.glob("stats-*")):
            other = self._usable(folder, key_meta)
            if other is not None:
                candidates.append((sum(h in other for h in hashes.values()), folder.name, other))
        candidates = [c for c in candidates if c[0] > 0]
        if candidates:
            _, _, other = max(candidates, key=lambda c: (c[0], c[1]))
            reason = provably_invariant(self.upstream)
            if reason and min(durations(expert, hashes).values()) >= 0.1:
                logger.info(
                    "waveform statistics mean %.6g std %.6g: reusing %s, built under mean %.6g std %.6g: %s, "
                    "which removes any global shift and scale (no upstream call needed)",
                    *stats,
                    other.root,
                    other.meta["wav_mean"],
                    other.meta["wav_std"],
                    reason,
                )
                self.report.update(case=f"reused (provably invariant: {reason})", max_rel_diff=0.0)
                return other
            diff, sample = self._invariance(other, stats, expert, hashes, pooled)
            agree = diff <= self.tolerance
            alias_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(
                alias_file,
                json.dumps(
                    {
                        "target": other.root.name if agree else None,
                        "max_rel_diff": diff,
                        "tolerance": self.tolerance,
                        "files": sample,
                        "stats": list(stats),
                    },
                    indent=2,
                ),
            )
            logger.info(
                "waveform statistics mean %.6g std %.6g differ from %s's (mean %.6g std %.6g): on %d sampled files "
                "the upstream's features differ by at most %.2e (relative), %s the tolerance %.0e: %s",
                *stats,
                other.root,
                other.meta["wav_mean"],
                other.meta["wav_std"],
                len(sample),
                diff,
                "within" if agree else "above",
                self.tolerance,
                "reusing that store" if agree else "building a store for these statistics",
            )
            self.report.update(case="reused (invariant)" if agree else "built (not invariant)", max_rel_diff=diff)
            if agree:
                return other
        else:
            self.report.update(case="new store")
        return FeatureStore.open(own, meta, repair=True)

    def _invariance(self, other: FeatureStore, stats, expert, hashes, pooled) -> tuple[float, list[str]]:
        """Max relative difference, over a sample of files, between the features under ``stats``
        and under ``other``'s statistics: the shortest, the longest and seeded random files."""
        seconds = durations(expert, [n for n, h in hashes.items() if h in other])
        present = sorted(seconds, key=lambda n: (seconds[n], n))
        rng = np.random.default_rng(0)
        middle = present[1:-1]
        picked = rng.choice(len(middle), size=min(INVARIANCE_SAMPLE - 2, len(middle)), replace=False) if middle else []
        sample = sorted({present[0], present[-1], *(middle[i] for i in picked)})
        mine, theirs = Normalizer(*stats), Normalizer(other.meta["wav_mean"], other.meta["wav_std"])
        rate, worst = int(self.featurizer.downsample_rate), 0.0
        for name in sample:
            raw = expert.store.get(name)
            wav = torch.from_numpy(mine(raw)).to(self.device)
            (new,) = features_of(self.upstream, self.featurizer, [wav], rate, pooled)
            if other.dtype == np.float32:
                reference = other.get(hashes[name])
            else:  # the stored entry is rounded: compare two fresh passes instead
                ref_wav = torch.from_numpy(theirs(raw)).to(self.device)
                (reference,) = features_of(self.upstream, self.featurizer, [ref_wav], rate, pooled)
            worst = max(worst, max_relative_difference(new, reference))
        return worst, sample


def provably_invariant(upstream) -> str | None:
    """Why the train-split normalisation ``(x - mean) / std`` cannot change the upstream's
    features, or None. Either the upstream layer-norms each waveform (WavLM/HuBERT/wav2vec 2.0
    Large), or its first layer is a bias-free convolution over the waveform followed by a
    per-channel norm over time (the Base models' group norm): a shift adds a per-channel
    constant that the norm subtracts, a scale is divided out."""
    for owner, name in (("cfg", "normalize"), ("task_cfg", "normalize"), (None, "wav_normalize")):
        holder = getattr(upstream, owner, None) if owner else upstream
        if holder is not None and getattr(holder, name, False) is True:
            return "the upstream layer-norms each waveform"
    for block in upstream.modules():
        if not (isinstance(block, nn.Sequential) and len(block) and isinstance(block[0], nn.Conv1d)):
            continue
        conv = block[0]
        if conv.in_channels != 1:
            continue
        after = list(block)[1:]
        while after and isinstance(after[0], nn.Dropout):
            after.pop(0)
        norm = after[0] if after else None
        if conv.bias is None and isinstance(norm, nn.GroupNorm) and norm.num_groups == norm.num_channels:
            return "its first layer, a bias-free convolution over the waveform, is followed by a group norm over time"
        return None  # the waveform's first convolution does not cancel a shift and scale
    return None


def durations(expert, names) -> dict[str, float]:
    """Seconds of each file as the expert reads it (after the crop), from the file headers."""
    from ..data.audio import audio_info

    crop = float(expert.datarc["max_duration_s"])
    return {n: min(audio_info(expert.data.audio_dir / n).duration, crop) for n in names}
