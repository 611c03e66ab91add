"""One upstream pass per audio file: what S3PRL's Featurizer would weigh, per file.

For each waveform the upstream runs under ``torch.inference_mode()``; the Featurizer's own
``_select_feature`` picks the layers; the runner's valid frames are kept (the Featurizer's
``round(len / downsample_rate)``, capped by the frames the upstream returned); with
``--upstream_feature_normalize`` each frame is layer-normed first, as the Featurizer does
before its weighted sum. A pooled entry is the per-layer mean of those frames, shape
(1, layers, dim): since the weighted sum, the projector and mean pooling are linear, a head
that pools by a plain mean gets exactly the logits of the stock path. A sequence entry keeps
the frames, shape (frames, layers, dim).

Files are batched only with files of exactly the same length (no padding, so the batch
cannot change any file's features); every other file is one call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.audio import SAMPLE_RATE

MAX_BATCH = 8


def select_layers(featurizer, upstream_output: dict) -> torch.Tensor:
    """(layers, batch, frames, dim): the Featurizer's selection, layer-normed as it would be."""
    feature = featurizer._select_feature(upstream_output)
    if isinstance(feature, list | tuple):
        stacked = torch.stack(list(feature), dim=0)
        if featurizer.normalize:
            stacked = F.layer_norm(stacked, (stacked.shape[-1],))
        return stacked
    return feature.unsqueeze(0)


def valid_frames(num_samples: int, downsample_rate: int, available: int) -> int:
    """Frames the runner keeps for a waveform: ``Featurizer.tolist``'s slice ``f[:round(len / rate)]``."""
    return min(round(num_samples / downsample_rate), available)


def features_of(upstream, featurizer, wavs: list[torch.Tensor], downsample_rate: int, pooled: bool) -> list[np.ndarray]:
    """Entries for same-length ``wavs`` (one upstream call)."""
    with torch.inference_mode():
        layers = select_layers(featurizer, upstream(wavs))
    out = []
    for b, wav in enumerate(wavs):
        frames = valid_frames(len(wav), downsample_rate, layers.shape[2])
        sequence = layers[:, b, :frames].transpose(0, 1)  # (frames, layers, dim)
        if pooled:
            sequence = sequence.mean(dim=0, keepdim=True)
        out.append(sequence.float().cpu().numpy())
    return out


def extract(
    upstream,
    featurizer,
    items: list[tuple[str, Callable[[], np.ndarray]]],
    *,
    downsample_rate: int,
    pooled: bool,
    device: str,
    desc: str = "upstream",
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(key, entry)`` for ``items`` = ``(key, load_waveform)``, one call per length group.

    The progress bar counts audio seconds, so its rate reads as audio seconds per second.
    """
    waves = {key: load() for key, load in items}
    groups: dict[int, list[str]] = defaultdict(list)
    for key, wav in waves.items():
        groups[len(wav)].append(key)
    total = sum(len(w) for w in waves.values()) / SAMPLE_RATE
    with tqdm(total=round(total, 2), unit="audio s", desc=desc, dynamic_ncols=True) as bar:
        for length in sorted(groups):
            keys = groups[length]
            for start in range(0, len(keys), MAX_BATCH):
                chunk = keys[start : start + MAX_BATCH]
                wavs = [torch.from_numpy(np.asarray(waves[k], dtype=np.float32)).to(device) for k in chunk]
                for key, entry in zip(
                    chunk, features_of(upstream, featurizer, wavs, downsample_rate, pooled), strict=True
                ):
                    yield key, entry
                bar.update(round(length * len(chunk) / SAMPLE_RATE, 2))


def max_relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: how far ``a`` is from the reference ``b``, scale-free."""
    scale = float(np.abs(b).max()) or 1.0
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max() / scale)
