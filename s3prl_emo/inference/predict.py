"""Label audio files with a trained recogniser: windows, batches, and a table, CSV or JSON.

A file longer than the training crop is cut into consecutive windows of the crop length;
the file's probabilities are the mean of its windows' (a final piece shorter than
``MIN_TAIL_S`` is dropped unless it is the whole file). Windows of several files go
through the upstream together, ``batch_size`` at a time. A file that cannot be read is
reported with its error and the others are still labelled. Shared by ``s3prl-emo predict``
and the torch.hub model's ``predict_files``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..data.audio import SAMPLE_RATE, load_audio, require_finite
from ..data.layout import Pathlike
from ..errors import CorpusLayoutError, InvalidInputError
from ..metrics import binarize
from ..runtime.atomic import write_text_atomically

MIN_TAIL_S = 1.0
DEFAULT_BATCH_SIZE = 8
PROGRESS_ABOVE = 3  # files; fewer finish before a bar would say anything


@dataclass
class FilePrediction:
    """One file's result: mean class probabilities over its windows, or the reason it failed."""

    path: str
    probabilities: dict[str, float] = field(default_factory=dict)
    windows: int = 0
    duration_s: float = 0.0
    error: str | None = None

    def labels(self) -> list[str]:
        """The classes above 1/C (the most probable one when none is), as the predict files list them."""
        if not self.probabilities:
            return []
        names = list(self.probabilities)
        values = np.array([list(self.probabilities.values())])
        on = [n for n, flag in zip(names, binarize(values)[0], strict=True) if flag]
        return on or [names[int(np.argmax(values))]]


def audio_extensions() -> set[str]:
    """File suffixes of the formats the installed libsndfile reads (``.wav``, ``.flac``, ...)."""
    suffixes = {f".{name.lower()}" for name in sf.available_formats()}
    return suffixes | {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus"}


def expand_inputs(inputs: Iterable[Pathlike]) -> list[Path]:
    """Files as given; folders replaced by the audio files below them, sorted. A missing path
    is kept, so that it is reported like any unreadable file."""
    suffixes = audio_extensions()
    out: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise InvalidInputError(f"{item}: folder holds no audio file ({', '.join(sorted(suffixes))})")
            out += found
        else:
            out.append(item)
    return out


def split_windows(wav: np.ndarray, window_s: float) -> list[np.ndarray]:
    """Consecutive windows of ``window_s`` seconds (16 kHz); a short tail is dropped unless it is all."""
    size = int(round(window_s * SAMPLE_RATE))
    if size <= 0:
        raise InvalidInputError(f"--window-s {window_s}: expected a positive number of seconds")
    pieces = [wav[start : start + size] for start in range(0, len(wav), size)]
    if len(pieces) > 1 and len(pieces[-1]) < MIN_TAIL_S * SAMPLE_RATE:
        pieces.pop()
    return pieces


def predict_files(
    recognizer,
    paths: Sequence[Pathlike],
    *,
    window_s: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
) -> list[FilePrediction]:
    """Label every file (folders expanded); failures carry ``error`` instead of probabilities.

    Args:
        recognizer: an ``EmotionRecognizer`` (``predict_batch`` of 16 kHz mono windows).
        paths: audio files or folders.
        window_s: window length in seconds; default the checkpoint's training crop.
        batch_size: windows per upstream call.
        progress: show a bar; default when more than a few files.
    """
    if batch_size < 1:
        raise InvalidInputError(f"--batch-size {batch_size}: expected at least 1")
    window_s = float(window_s or recognizer.max_duration_s)
    files = expand_inputs(paths)
    results = [FilePrediction(str(p)) for p in files]
    sums = [np.zeros(len(recognizer.classes)) for _ in files]
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        probs = recognizer.predict_batch([w for _, w in pending])
        for (index, _), row in zip(pending, probs, strict=True):
            sums[index] += row
        pending.clear()

    show = len(files) > PROGRESS_ABOVE if progress is None else progress
    for index, path in enumerate(tqdm(files, desc="predict", unit="file", disable=not show)):
        try:
            wav = require_finite(load_audio(path), path)
        except (InvalidInputError, CorpusLayoutError, sf.LibsndfileError, RuntimeError, ValueError) as err:
            message = str(err)
            results[index].error = message if str(path) in message else f"{path}: {message}"
            continue
        windows = split_windows(wav, window_s)
        results[index].windows = len(windows)
        results[index].duration_s = round(len(wav) / SAMPLE_RATE, 3)
        for window in windows:
            pending.append((index, window))
            if len(pending) >= batch_size:
                flush()
    if pending:
        flush()
    for result, total in zip(results, sums, strict=True):
        if result.error is None:
            mean = total / result.windows
            result.probabilities = dict(zip(recognizer.classes, (float(v) for v in mean), strict=True))
    return results


def as_rows(results: Sequence[FilePrediction], classes: Sequence[str]) -> list[dict]:
    rows = []
    for r in results:
        row: dict = {"file": r.path, "windows": r.windows, "duration_s": r.duration_s}
        row.update({c: r.probabilities.get(c) for c in classes})
        row["labels"] = ";".join(r.labels())
        row["error"] = r.error or ""
        rows.append(row)
    return rows


def format_table(results: Sequence[FilePrediction], classes: Sequence[str]) -> str:
    """One line per file: windows, each class's probability, the classes above 1/C."""
    name_width = max([len("file"), *(len(r.path) for r in results)])
    widths = [max(5, len(c)) for c in classes]
    head = f"{'file':<{name_width}}  windows  " + "  ".join(f"{c:>{w}}" for c, w in zip(classes, widths, strict=True))
    lines = [head + "  labels"]
    for r in results:
        if r.error:
            lines.append(f"{r.path:<{name_width}}  ERROR: {r.error}")
            continue
        values = "  ".join(f"{r.probabilities[c]:>{w}.3f}" for c, w in zip(classes, widths, strict=True))
        lines.append(f"{r.path:<{name_width}}  {r.windows:>7}  {values}  {';'.join(r.labels())}")
    return "\n".join(lines)


def write_output(results: Sequence[FilePrediction], classes: Sequence[str], path: Path, fmt: str = "csv") -> None:
    """CSV (one row per file) or JSON (a list of objects), written atomically."""
    rows = as_rows(results, classes)
    if fmt == "json":
        for row in rows:
            row["probabilities"] = {c: row.pop(c) for c in classes}
        text = json.dumps(rows, indent=2) + "\n"
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["file"], lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) and k in classes else v) for k, v in row.items()})
        text = buffer.getvalue()
    else:
        raise InvalidInputError(f"--format {fmt!r}: expected csv or json")
    write_text_atomically(path, text)
