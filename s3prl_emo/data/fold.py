"""One fold of a prepared corpus: its label file, audio, and the waveform normalisation.

Everything a user can get wrong (label files, audio, folds, empty splits) is checked here,
when a fold is loaded, so a bad corpus fails before any training step. Torch-free: the
S3PRL dataset (``downstream.dataset``), the one-pass store, inference and trust read folds
through these functions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from ..errors import CorpusLayoutError, InvalidInputError
from ..runtime.atomic import write_text_atomically
from ..runtime.guards import open_new
from ..runtime.paths import file_fingerprints
from .audio import RESAMPLING, SAMPLE_RATE, audio_info, iter_mono_16k, load_audio
from .layout import (
    SPLIT_NAMES,
    attribute_columns,
    attribute_range,
    attribute_values,
    label_files,
    labels_path,
    parse_fold,
    read_config,
    read_labels,
)

__all__ = [
    "MIN_SAMPLES",
    "AudioStore",
    "FoldData",
    "Normalizer",
    "check_audio",
    "check_file_names",
    "file_name_problem",
    "fold_attributes",
    "load_fold",
    "normalisation_stats",
]

logger = logging.getLogger(__name__)

# Shorter audio is zero-padded to this length so every S3PRL upstream can frame it.
MIN_SAMPLES = SAMPLE_RATE // 10


@dataclass(frozen=True)
class FoldData:
    """One ``labels_consensus_<k>.csv`` with what is needed to read its audio."""

    label_file: Path
    audio_dir: Path
    classes: tuple[str, ...]
    frame: pd.DataFrame
    corpus: str | None
    dimensional: dict | None = None  # config.json's "dimensional" entry, where it has one

    def split(self, name: str) -> pd.DataFrame:
        """The rows of one split (``train``, ``dev`` or ``test``), renumbered from 0."""
        return self.frame[self.frame["Split_Set"] == SPLIT_NAMES[name]].reset_index(drop=True)


def load_fold(datarc: dict, fold: str) -> FoldData:
    """Locate, read and validate the label file of ``fold`` as ``datarc`` describes it.

    EMO-SUPERB's keys: ``root``, ``corpus``, ``p_or_s`` -> ``root/corpus/p_or_s/
    labels_consensus_<k>.csv`` with audio in ``root/corpus/Audios``. For a custom corpus,
    ``label_file`` names the CSV directly (its folder holds config.json) and
    ``audio_dir`` the audio folder. Everything is checked here (file names inside the audio
    folder, no empty split), so a bad corpus fails before a model is built.

    Args:
        datarc: The config's ``downstream_expert.datarc`` mapping.
        fold: ``fold1`` ... ``foldK`` (or ``1`` ... ``K``).

    Returns:
        The fold's label table, classes and folders.

    Raises:
        InvalidInputError: An unknown fold, a bad label file or an empty split.
        CorpusLayoutError: A missing root, corpus folder or audio folder.

    Examples:
        >>> fold = load_fold({"root": "corpora", "corpus": "SYNTH", "p_or_s": "P"}, "fold1")  # doctest: +SKIP
        >>> fold.split("dev").shape[0]  # doctest: +SKIP
        60
    """
    k = parse_fold(fold)
    if datarc.get("label_file"):
        label_file = Path(datarc["label_file"])
        label_dir = label_file.parent
        audio_dir = Path(datarc.get("audio_dir") or label_dir.parent / "Audios")
        corpus = datarc.get("corpus")
    else:
        for key in ("root", "corpus", "p_or_s"):
            if not datarc.get(key):
                raise InvalidInputError(
                    f"downstream_expert.datarc.{key} is missing; set root, corpus and p_or_s "
                    "(or label_file for a custom corpus)"
                )
        corpus = str(datarc["corpus"])
        root = Path(datarc["root"])
        if not root.is_dir():
            what = "is a file, not a folder" if root.exists() else "does not exist"
            raise CorpusLayoutError(f"downstream_expert.datarc.root: {root} {what}; expected the folder of <corpus>/")
        label_dir = root / corpus / str(datarc["p_or_s"])
        if not label_dir.is_dir():
            found = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise CorpusLayoutError(
                f"downstream_expert.datarc.corpus / p_or_s: {label_dir} is not a folder (folders in {root}: {found})"
            )
        label_file = labels_path(label_dir, k)
        audio_dir = Path(datarc.get("audio_dir") or Path(datarc["root"]) / corpus / "Audios")
    if not label_file.is_file():
        available = [path.name for path in label_files(label_dir).values()]
        raise InvalidInputError(
            f"unknown fold {fold!r}: {label_file} does not exist (found {available or 'no label files'} in {label_dir})"
        )
    config = read_config(label_dir)
    frame = read_labels(label_file, config.classes)
    check_file_names(frame["FileName"], label_file)
    for name, split_name in SPLIT_NAMES.items():
        if not (frame["Split_Set"] == split_name).any():
            raise InvalidInputError(f"{label_file}: the {name} split ({split_name}) is empty")
    if not audio_dir.is_dir():
        raise CorpusLayoutError(f"{audio_dir}: audio folder not found (datarc.audio_dir or <root>/<corpus>/Audios)")
    return FoldData(label_file, audio_dir, config.classes, frame, corpus, config.dimensional)


def fold_attributes(data: FoldData, attributes: Sequence[str] | None = None) -> tuple[tuple[str, ...], np.ndarray]:
    """The attribute columns a run regresses and their values over the whole label file.

    ``attributes`` None means every ``Emo*`` column of the file (``layout.attribute_columns``).
    Every row of every split is checked before any work (``layout.attribute_values``), against
    config.json's ``dimensional`` range where the corpus declares one.

    Returns:
        The attribute names and an (N, A) float64 array in the frame's row order.

    Raises:
        InvalidInputError: no such column, or a bad value, naming the file, line and column.

    Examples:
        >>> fold = load_fold({"root": "data", "corpus": "SYNTH", "p_or_s": "Primary"}, "fold1")  # doctest: +SKIP
        >>> fold_attributes(fold)[0]  # doctest: +SKIP
        ('EmoAct', 'EmoVal', 'EmoDom')
    """
    names = tuple(attributes) if attributes else attribute_columns(data.frame)
    value_range = attribute_range(data.dimensional, str(data.label_file.parent / "config.json"))
    return names, attribute_values(data.frame, data.label_file, names, value_range)


def file_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file inside the audio folder, or None when it can."""
    if name.strip() == "":
        return "is empty"
    if name != name.strip():
        return "has leading or trailing white space"
    if "\0" in name:
        return "contains a NUL character"
    pure = PurePosixPath(name)
    if pure.is_absolute() or PureWindowsPath(name).is_absolute():
        return "is an absolute path; names are relative to the audio folder"
    if ".." in pure.parts or ".." in PureWindowsPath(name).parts:
        return "contains '..'; names must stay inside the audio folder"
    return None


def check_file_names(names, label_file: Path) -> None:
    """Every FileName stays inside the audio folder: nothing is read (or cached) elsewhere."""
    for row, name in enumerate(names):
        problem = file_name_problem(str(name))
        if problem:
            raise InvalidInputError(f"{label_file}, line {row + 2}: FileName {name!r} {problem}")


def check_audio(fold: FoldData) -> None:
    """Every labelled file exists, is readable and is not empty."""
    for row, name in enumerate(tqdm(fold.frame["FileName"], desc="check audio", leave=False)):
        path = fold.audio_dir / name
        where = f"{fold.label_file}, line {row + 2}"
        if not path.is_file():
            raise CorpusLayoutError(f"{where}: audio file {path} not found")
        try:
            frames = audio_info(path).frames
        except (sf.LibsndfileError, RuntimeError) as err:
            raise InvalidInputError(f"{where}: unreadable audio {path} ({err})") from err
        if frames == 0:
            raise InvalidInputError(f"{where}: audio file {path} has zero length")


class AudioStore:
    """Cropped mono 16 kHz waveforms, resampled once per file.

    ``load_all`` keeps a split in memory (``pre_load``); other files that need conversion
    are written once to ``cache_dir`` as .npy and read from there in later epochs.
    """

    def __init__(self, audio_dir: Path, max_seconds: float, *, pre_load: bool, cache_dir: Path | None):
        """Read files below ``audio_dir``, cropped to ``max_seconds``."""
        self.audio_dir = audio_dir
        self.max_seconds = max_seconds
        self.pre_load = pre_load
        self.cache_dir = cache_dir
        self._memory: dict[str, np.ndarray] = {}

    def load_all(self, names: list[str], desc: str) -> None:
        """Read ``names`` into memory now when ``pre_load`` is set (``desc`` labels the progress bar)."""
        if self.pre_load:
            for name in tqdm(names, desc=f"load {desc}"):
                self._memory[name] = self._read(name)

    def get(self, name: str) -> np.ndarray:
        """The cropped mono 16 kHz waveform of ``name``."""
        wav = self._memory.get(name)
        return wav if wav is not None else self._read(name)

    def uncropped(self, name: str) -> Iterator[np.ndarray]:
        """The whole file as 16 kHz blocks (statistics need it); from memory when nothing was cut."""
        wav = self._memory.get(name)
        if wav is not None and len(wav) < int(self.max_seconds * SAMPLE_RATE):
            yield wav
        else:
            yield from iter_mono_16k(self.audio_dir / name)

    def _read(self, name: str) -> np.ndarray:
        path = self.audio_dir / name
        cached = self._cache_path(path) if self.cache_dir and not self.pre_load else None
        if cached is not None and cached.is_file() and not cached.is_symlink():
            try:
                wav = np.load(cached, allow_pickle=False)
                if wav.ndim == 1 and np.isfinite(wav).all():
                    return wav
            except (OSError, ValueError):
                pass  # unreadable cache entry: convert again below
        wav = load_audio(path, self.max_seconds)
        if cached is not None and _needs_conversion(path):
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp.npy")
            with open_new(tmp, "wb") as handle:  # a killed run's leftover, or a link: removed, never written through
                np.save(handle, wav)
            os.replace(tmp, cached)
        return wav

    def _cache_path(self, path: Path) -> Path:
        """Flat inside ``cache_dir``, keyed by what changes the converted audio."""
        key = json.dumps([*source_fingerprint(path), self.max_seconds, SAMPLE_RATE, RESAMPLING])
        return self.cache_dir / f"{path.stem[:40]}.{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"


def source_fingerprint(path: Path) -> list:
    """Resolved path, size and modification time: a cache key that changes with the file."""
    return file_fingerprints([path])[0]


def _needs_conversion(path: Path) -> bool:
    info = audio_info(path)
    return info.samplerate != SAMPLE_RATE or info.channels != 1


def normalisation_stats(store: AudioStore, names: list[str], cache_file: Path | None) -> tuple[float, float]:
    """Global mean and std of the train waveforms, as EMO-SUPERB computes them.

    Over the whole (uncropped) files, in one streaming pass with constant memory; a file
    already in memory and shorter than the crop is used as it is. Cached in ``cache_file``,
    keyed by each train file's path, size and modification time and by the resampler, so
    it is recomputed exactly when those change.
    """
    files = file_fingerprints([store.audio_dir / name for name in sorted(names)])
    key = hashlib.sha256(json.dumps([files, RESAMPLING, "uncropped"]).encode()).hexdigest()
    if cache_file is not None and cache_file.is_file():
        cached = _read_json(cache_file)
        if cached.get("key") == key and _finite_stats(cached.get("mean"), cached.get("std")):
            return cached["mean"], cached["std"]
    count, total, total_sq = 0, 0.0, 0.0
    for name in tqdm(names, desc="train mean/std"):
        for block in store.uncropped(name):
            block = block.astype(np.float64)
            count += block.size
            total += block.sum()
            total_sq += np.square(block).sum()
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean**2, 0.0))) or 1.0
    if not _finite_stats(mean, std):
        raise InvalidInputError(f"train mean/std of {len(names)} files is not finite (mean {mean}, std {std})")
    if cache_file is not None:
        write_text_atomically(cache_file, json.dumps({"key": key, "mean": mean, "std": std, "num_files": len(names)}))
    return float(mean), std


def _finite_stats(mean, std) -> bool:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (mean, std))
    return numbers and np.isfinite(mean) and np.isfinite(std) and std > 0


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class Normalizer:
    """``(wav - mean) / (std + 1e-6)``, as EMO-SUPERB; the expert restores it from a checkpoint."""

    EPS = 1e-6

    def __init__(self, mean: float, std: float):
        """Normalise with the train split's ``mean`` and ``std``."""
        self.mean, self.std = float(mean), float(std)

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """The normalised waveform as float32, zero-padded to ``MIN_SAMPLES``.

        Examples:
            >>> Normalizer(0.0, 2.0)(np.ones(3)).shape
            (1600,)
        """
        wav = (wav - self.mean) / (self.std + self.EPS)
        if len(wav) < MIN_SAMPLES:
            wav = np.pad(wav, (0, MIN_SAMPLES - len(wav)))
        return wav.astype(np.float32)
