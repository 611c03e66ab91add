"""Audio I/O: any file soundfile reads becomes mono 16 kHz float32, resampled by its own rate."""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .errors import CorpusLayoutError, InvalidInputError
from .layout import Pathlike

SAMPLE_RATE = 16_000


def to_mono_16k(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """(T,) or (T, channels) at any rate -> (T',) float32 at 16 kHz (channels averaged)."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.mean(axis=1)
    if wav.ndim != 1:
        raise InvalidInputError(f"expected a waveform of shape (T,) or (T, channels), got {wav.shape}")
    if sample_rate != SAMPLE_RATE:
        wav = AF.resample(torch.from_numpy(wav), sample_rate, SAMPLE_RATE).numpy()
    return wav


def load_audio(path: Pathlike, max_seconds: float | None = None) -> np.ndarray:
    """Read ``path`` as mono 16 kHz, keeping the first ``max_seconds`` (None keeps all)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        if not os.path.exists(path):
            raise CorpusLayoutError(f"{path}: audio file not found") from err
        raise InvalidInputError(f"{path}: unreadable audio ({err})") from err
    frames = info.frames
    if max_seconds is not None:
        frames = min(frames, int(round(max_seconds * info.samplerate)))
    wav, rate = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    if len(wav) == 0:
        raise InvalidInputError(f"{path}: zero-length audio")
    return to_mono_16k(wav, rate)


def require_finite(wav: np.ndarray, source: object, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``wav`` unchanged if every sample is finite; otherwise an error naming ``source``."""
    bad = ~np.isfinite(wav)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(len(wav), -1).any(axis=1))[0])
        raise InvalidInputError(
            f"{source}: non-finite samples (NaN or inf), the first at {first / sample_rate:.3f} s; "
            "repair or remove the audio"
        )
    return wav
