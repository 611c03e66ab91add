"""Audio I/O: any file soundfile reads becomes mono 16 kHz float32, as EMO-SUPERB reads it.

EMO-SUPERB's released code reads every file with ``librosa.load(path, sr=16000)``: samples
as float32, channels averaged, resampled with soxr at "HQ" quality, the length fixed to
``ceil(frames * 16000 / rate)``, and only then cropped. This module gives the same samples,
bit for bit, without librosa: it streams the file through soxr and stops as soon as the
crop is filled, so a long file is never converted whole.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator

import numpy as np
import soundfile as sf
import soxr

from ..errors import CorpusLayoutError, InvalidInputError
from ..runtime.paths import Pathlike

SAMPLE_RATE = 16_000
RESAMPLING = "soxr-HQ"  # named in cache keys: a different resampler means different samples
_BLOCK_FRAMES = 1 << 16


def _mono(block: np.ndarray) -> np.ndarray:
    """(T, channels) -> (T,) as librosa.to_mono does it: float32 mean over channels."""
    return np.mean(block.T, axis=0) if block.shape[1] > 1 else block[:, 0]


def _resampled(blocks: Iterator[np.ndarray], rate: int, frames: int) -> Iterator[np.ndarray]:
    """Stream mono blocks at ``rate`` through soxr HQ; pad or trim the total to librosa's length."""
    if rate == SAMPLE_RATE:
        yield from blocks
        return
    stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    remaining = math.ceil(frames * SAMPLE_RATE / rate)  # librosa.util.fix_length's target
    for block in blocks:
        out = stream.resample_chunk(block)[:remaining]
        remaining -= len(out)
        yield out
    out = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)[:remaining]
    remaining -= len(out)
    yield out
    if remaining > 0:
        yield np.zeros(remaining, dtype=np.float32)


def audio_info(path: Pathlike) -> sf._SoundFileInfo:
    """``soundfile.info(path)``, read once while the file keeps its size and modification time.

    The folds of a batched group, and the runs of a sweep in one process, check the same
    files' headers; each is read once.

    Raises:
        OSError: the file cannot be stat'ed (e.g. it does not exist).
        soundfile.LibsndfileError: soundfile cannot read its header.

    Examples:
        >>> audio_info("a.wav").samplerate  # doctest: +SKIP
        16000
    """
    stat = os.stat(path)
    return _header(os.fspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 16)
def _header(path: str, size: int, mtime_ns: int) -> sf._SoundFileInfo:
    return sf.info(path)


def iter_mono_16k(path: Pathlike, max_samples: int | None = None) -> Iterator[np.ndarray]:
    """Blocks of ``path`` as mono 16 kHz float32, stopping after ``max_samples`` (None: all).

    Raises:
        CorpusLayoutError: the file does not exist.
        InvalidInputError: soundfile cannot read it, or a sample is NaN or inf.
    """
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        if not os.path.exists(path):
            raise CorpusLayoutError(f"{path}: audio file not found") from err
        raise InvalidInputError(f"{path}: unreadable audio ({err})") from err
    blocks = (
        _mono(require_finite(block, path, info.samplerate, offset=i * _BLOCK_FRAMES))
        for i, block in enumerate(sf.blocks(str(path), blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True))
    )
    produced = 0
    for block in _resampled(blocks, info.samplerate, info.frames):
        if max_samples is not None:
            block = block[: max_samples - produced]
        produced += len(block)
        yield block
        if max_samples is not None and produced >= max_samples:
            return


def load_audio(path: Pathlike, max_seconds: float | None = None) -> np.ndarray:
    """Read ``path`` as mono 16 kHz, keeping the first ``max_seconds`` (None keeps all).

    Equal, sample for sample, to ``librosa.load(path, sr=16000)[0][:crop]``.
    """
    max_samples = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
    blocks = list(iter_mono_16k(path, max_samples))
    wav = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    if len(wav) == 0:
        raise InvalidInputError(f"{path}: zero-length audio")
    return wav


def to_mono_16k(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """(T,) or (T, channels) at any rate -> (T',) float32 at 16 kHz, as files are read."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        wav = wav[:, None]
    if wav.ndim != 2:
        raise InvalidInputError(f"expected a waveform of shape (T,) or (T, channels), got {wav.shape}")
    blocks = list(_resampled(iter([_mono(wav)]), int(sample_rate), len(wav)))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def require_finite(wav: np.ndarray, source: object, sample_rate: int = SAMPLE_RATE, offset: int = 0) -> np.ndarray:
    """``wav`` unchanged if every sample is finite; otherwise an error naming ``source``.

    ``offset`` is the index of ``wav``'s first sample in ``source``, for the message.
    """
    bad = ~np.isfinite(wav)
    if bad.any():
        first = offset + int(np.flatnonzero(bad.reshape(len(wav), -1).any(axis=1))[0])
        raise InvalidInputError(
            f"{source}: non-finite samples (NaN or inf), the first at {first / sample_rate:.3f} s; "
            "repair or remove the audio"
        )
    return wav
