"""Cost of a recognizer: parameters, FLOPs of a fixed-length input, speed and peak memory.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (matmul, convolution and
attention counted as 2 x multiply-accumulates); MACs = FLOPs / 2 is the unit TrustSER's
"GFLOPs" actually are.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

SAMPLE_RATE = 16_000
LogitsFn = Callable[[list[torch.Tensor]], torch.Tensor]


def count_parameters(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


@torch.no_grad()
def count_flops(
    logits_fn: LogitsFn,
    seconds: float,
    device: str | torch.device = "cpu",
    parts: dict[str, torch.nn.Module] | None = None,
    seed: int = 0,
) -> dict:
    """Total FLOPs of one forward pass on ``seconds`` of noise, and those of each of ``parts``
    (label -> module called at the top level, e.g. the upstream and the head)."""
    generator = torch.Generator().manual_seed(seed)
    wav = (0.1 * torch.randn(round(seconds * SAMPLE_RATE), generator=generator)).to(device)
    with FlopCounterMode(display=False) as counter:
        logits_fn([wav])
    counts = counter.get_flop_counts()
    per_part = {
        label: int(sum(counts.get(type(module).__name__, {}).values())) for label, module in (parts or {}).items()
    }
    return {"flops": int(counter.get_total_flops()), "per_part": per_part}


def _peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "torch.cuda.max_memory_allocated during the timed passes"
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "peak resident set size of the process (CPU)"


@torch.no_grad()
def sustainability(
    model: torch.nn.Module,
    logits_fn: LogitsFn,
    wavs: Sequence[np.ndarray] | None = None,
    seconds: float = 6.0,
    device: str | torch.device = "cpu",
) -> dict:
    """Parameter counts, FLOPs/MACs of a ``seconds`` input, wall time per audio second and peak memory.

    ``model`` has ``upstream``, ``featurizer`` and ``head``; ``wavs`` (16 kHz) are timed one
    at a time as at inference, or three ``seconds``-long noise clips when absent.
    """
    device = torch.device(device)
    parts = {"upstream": model.upstream, "featurizer": model.featurizer, "head": model.head}
    flops = count_flops(logits_fn, seconds, device, parts)
    if not wavs:
        wavs = [0.1 * np.random.default_rng(i).standard_normal(int(seconds * SAMPLE_RATE)) for i in range(3)]
    tensors = [torch.as_tensor(np.asarray(w, dtype=np.float32), device=device) for w in wavs]
    logits_fn(tensors[:1])  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for wav in tensors:
        logits_fn([wav])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    audio_seconds = sum(len(w) for w in tensors) / SAMPLE_RATE
    peak, peak_definition = _peak_memory(device)
    return {
        "upstream_params": count_parameters(model.upstream),
        "featurizer_params": count_parameters(model.featurizer),
        "head_params": count_parameters(model.head),
        f"flops_{seconds:g}s": flops["flops"],
        f"macs_{seconds:g}s": flops["flops"] // 2,
        f"flops_{seconds:g}s_per_part": flops["per_part"],
        "seconds_per_audio_second": elapsed / audio_seconds,
        "peak_memory_bytes": peak,
        "device": str(device),
        "n_timed_items": len(tensors),
        "timed_audio_seconds": audio_seconds,
        "definitions": {
            "flops": f"torch.utils.flop_counter.FlopCounterMode total for one {seconds:g} s input "
            f"({round(seconds * SAMPLE_RATE)} samples): upstream, featurizer and head",
            "macs": "FLOPs / 2 (multiply-accumulates, the unit of TrustSER's GFLOPs)",
            "seconds_per_audio_second": "wall time of no-grad forward passes, one utterance at a time, divided by "
            "the audio duration",
            "peak_memory_bytes": peak_definition,
            "head_params": "the trained head; the Featurizer's layer weights are counted apart",
        },
    }
