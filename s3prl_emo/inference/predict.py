"""Label audio files with a trained recogniser: windows, batches, and a table, CSV or JSON.

A file longer than the training crop is cut into consecutive windows of the crop length;
the file's probabilities are the mean of its windows' (a final piece shorter than
``MIN_TAIL_S`` is dropped unless it is the whole file). Windows of several files go
through the upstream together, ``batch_size`` at a time. A file that cannot be read is
reported with its error and the others are still labelled. Shared by ``s3prl-emo predict``
and the torch.hub model's ``predict_files``.

Inputs are checked before any work: anything that is not a regular file (a FIFO or a
device would block or never end) is refused by name, folders included. File names are
printed with control characters escaped (``guards.terminal_safe``), and the CSV's text
cells get OWASP's leading ``'`` when a spreadsheet would read them as a formula
(``guards.spreadsheet_safe``); the probabilities are written as numbers, unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..data.audio import SAMPLE_RATE, load_audio, require_finite
from ..data.fold import MIN_SAMPLES
from ..errors import CorpusLayoutError, InvalidInputError
from ..metrics import binarize
from ..runtime.atomic import write_text_atomically
from ..runtime.guards import spreadsheet_safe, terminal_safe
from ..runtime.paths import Pathlike

MIN_TAIL_S = 1.0
MIN_WINDOW_S = MIN_SAMPLES / SAMPLE_RATE  # a shorter window is zero-padded to this anyway
DEFAULT_BATCH_SIZE = 8
PROGRESS_ABOVE = 3  # files; fewer finish before a bar would say anything
OUTPUT_COLUMNS = ("file", "windows", "duration_s", "labels", "error")  # and one column per class


@dataclass
class FilePrediction:
    """One file's result: mean class probabilities over its windows, or the reason it failed."""

    path: str
    probabilities: dict[str, float] = field(default_factory=dict)
    attributes: dict[str, float] = field(default_factory=dict)  # mean attribute values, where the task has them
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


def refuse_special_file(path: Path, given: Path | None = None) -> None:
    """Refuse a path that exists but is not a regular file or folder (FIFO, socket, device).

    Reading such a path would block or never end. A missing path passes (it is reported when read).

    Raises:
        InvalidInputError: naming the path (and the folder ``given`` that held it).

    Examples:
        >>> refuse_special_file(Path("/no/such/file.wav"))
    """
    given = path if given is None else given
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing or unreachable: reported with the file's error like any unreadable file
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        where = "" if path == given else f" (in {terminal_safe(str(given))})"
        raise InvalidInputError(
            f"{terminal_safe(str(path))}{where}: not a regular file (a FIFO, socket or device); "
            "give audio files or folders of them"
        )


def expand_inputs(inputs: Iterable[Pathlike]) -> list[Path]:
    """Files as given; folders replaced by the audio files below them, sorted.

    A missing path is kept, so that it is reported like any unreadable file. Anything that is
    not a regular file (a FIFO, socket or device, given or found in a folder with an audio
    suffix) is refused before any file is opened: reading it would block or never end.

    Raises:
        InvalidInputError: naming the path that is not a regular file, or a folder without audio.
    """
    suffixes = audio_extensions()
    out: list[Path] = []
    for item in map(Path, inputs):
        refuse_special_file(item, item)
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in suffixes and not p.is_dir())
            for path in found:
                refuse_special_file(path, item)
            found = [p for p in found if p.is_file()]  # dangling links are skipped like other non-audio
            if not found:
                raise InvalidInputError(
                    f"{terminal_safe(str(item))}: folder holds no audio file ({', '.join(sorted(suffixes))})"
                )
            out += found
        else:
            out.append(item)
    return out


def check_window_s(window_s: float, flag: str = "--window-s") -> float:
    """``window_s`` as a float if it is a finite number of seconds of at least ``MIN_WINDOW_S``.

    Raises:
        InvalidInputError: naming ``flag`` and the value (NaN, inf, 0, negative, too short).

    Examples:
        >>> check_window_s(4)
        4.0
    """
    if isinstance(window_s, bool) or not isinstance(window_s, int | float | np.integer | np.floating):
        raise InvalidInputError(f"{flag} {window_s!r}: expected a number of seconds")
    value = float(window_s)
    if not math.isfinite(value) or value < MIN_WINDOW_S:
        raise InvalidInputError(
            f"{flag} {window_s!r}: expected a finite number of seconds >= {MIN_WINDOW_S:g} "
            "(shorter windows are padded to that length)"
        )
    return value


def check_batch_size(batch_size: int, flag: str = "--batch-size") -> int:
    """``batch_size`` if it is a whole number >= 1.

    Examples:
        >>> check_batch_size(8)
        8
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise InvalidInputError(f"{flag} {batch_size!r}: expected a whole number >= 1")
    return int(batch_size)


def split_windows(wav: np.ndarray, window_s: float) -> list[np.ndarray]:
    """Consecutive windows of ``window_s`` seconds (16 kHz); a short tail is dropped unless it is all.

    A tail shorter than ``MIN_TAIL_S`` would weigh as much as a full window in the file's mean
    while carrying little speech.

    Examples:
        >>> [len(w) for w in split_windows(np.zeros(16000 * 5), 2.0)]
        [32000, 32000, 16000]
        >>> [len(w) for w in split_windows(np.zeros(16000 * 4 + 100), 2.0)]
        [32000, 32000]
    """
    size = round(check_window_s(window_s) * SAMPLE_RATE)
    pieces = [wav[start : start + size] for start in range(0, len(wav), size)]
    if len(pieces) > 1 and len(pieces[-1]) < MIN_TAIL_S * SAMPLE_RATE:
        pieces.pop()
    return pieces


def _read_error(path: Path, err: Exception) -> str:
    """One line naming the file: why it cannot be labelled."""
    shown = terminal_safe(str(path))
    try:
        if path.is_file() and path.stat().st_size == 0:
            return f"{shown}: empty file (0 bytes)"
        if path.is_file() and not os.access(path, os.R_OK):
            return f"{shown}: not readable (permission denied)"
    except OSError:
        pass
    message = " ".join(terminal_safe(line) for line in str(err).splitlines())
    return message if shown in message or str(path) in str(err) else f"{shown}: {message}"


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
        recognizer (EmotionRecognizer): an ``EmotionRecognizer`` (``predict_batch`` of 16 kHz mono windows).
        paths: audio files or folders.
        window_s: window length in seconds; default the checkpoint's training crop.
        batch_size: windows per upstream call.
        progress: show a bar; default when more than a few files.

    Examples:
        >>> recognizer = EmotionRecognizer.from_checkpoint("exp/dev-best.ckpt")  # doctest: +SKIP
        >>> [p.probabilities for p in predict_files(recognizer, ["clips/"], window_s=4.0)]  # doctest: +SKIP
    """
    batch_size = check_batch_size(batch_size)
    classes, attributes = list(recognizer.output_classes), list(recognizer.attributes)
    clash = sorted(set(classes) & set(OUTPUT_COLUMNS))
    if clash:
        raise InvalidInputError(f"classes {clash} of the checkpoint are column names of the predict output")
    window_s = check_window_s(recognizer.max_duration_s if window_s is None else window_s)
    files = expand_inputs(paths)
    results = [FilePrediction(str(p)) for p in files]
    sums = [np.zeros(len(classes) + len(attributes)) for _ in files]
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        probs, values = recognizer.predict_outputs([w for _, w in pending])
        for (index, _), row in zip(pending, np.concatenate([probs, values], axis=1), strict=True):
            sums[index] += row
        pending.clear()

    show = len(files) > PROGRESS_ABOVE if progress is None else progress
    for index, path in enumerate(tqdm(files, desc="predict", unit="file", disable=not show)):
        try:
            wav = require_finite(load_audio(path), path)
        except (InvalidInputError, CorpusLayoutError, sf.LibsndfileError, RuntimeError, ValueError, OSError) as err:
            results[index].error = _read_error(path, err)
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
            result.probabilities = dict(zip(classes, (float(v) for v in mean[: len(classes)]), strict=True))
            result.attributes = dict(zip(attributes, (float(v) for v in mean[len(classes) :]), strict=True))
    return results


def as_rows(results: Sequence[FilePrediction], classes: Sequence[str], attributes: Sequence[str] = ()) -> list[dict]:
    """One flat row per file (file, windows, duration_s, each class, labels, error) for CSV or JSON.

    A file that failed keeps its row, with empty probabilities and its ``error``, so the
    output lists every input.

    Examples:
        >>> ok = FilePrediction("a.wav", {"angry": 0.7, "sad": 0.3}, windows=1, duration_s=2.0)
        >>> as_rows([ok], ["angry", "sad"])[0]["labels"]
        'angry'
    """
    rows = []
    for r in results:
        row: dict = {"file": r.path, "windows": r.windows, "duration_s": r.duration_s}
        row.update({c: r.probabilities.get(c) for c in classes})
        row.update({a: r.attributes.get(a) for a in attributes})
        row["labels"] = ";".join(r.labels())
        row["error"] = r.error or ""
        rows.append(row)
    return rows


def format_table(results: Sequence[FilePrediction], classes: Sequence[str], attributes: Sequence[str] = ()) -> str:
    """One line per file: windows, each class's probability (then each attribute's value), the classes above 1/C.

    Names are shown with control characters escaped, so that each file is one line.
    """
    names = [terminal_safe(r.path) for r in results]
    columns = [*classes, *attributes]
    shown_classes = [terminal_safe(c) for c in columns]
    name_width = max([len("file"), *(len(n) for n in names)])
    widths = [max(5, len(c)) for c in shown_classes]
    head = f"{'file':<{name_width}}  windows  " + "  ".join(
        f"{c:>{w}}" for c, w in zip(shown_classes, widths, strict=True)
    )
    lines = [head + "  labels"]
    for name, r in zip(names, results, strict=True):
        if r.error:
            lines.append(f"{name:<{name_width}}  ERROR: {terminal_safe(r.error)}")
            continue
        numbers = {**r.probabilities, **r.attributes}
        values = "  ".join(f"{numbers[c]:>{w}.3f}" for c, w in zip(columns, widths, strict=True))
        lines.append(f"{name:<{name_width}}  {r.windows:>7}  {values}  {terminal_safe(';'.join(r.labels()))}")
    return "\n".join(lines)


def write_output(
    results: Sequence[FilePrediction],
    classes: Sequence[str],
    path: Path,
    fmt: str = "csv",
    attributes: Sequence[str] = (),
) -> None:
    """CSV (one row per file) or JSON (a list of objects), written atomically.

    The CSV is for people to open in a spreadsheet: every text cell (file, labels, error and
    the class names in the header) goes through ``guards.spreadsheet_safe``, which prefixes
    ``'`` to a cell starting with ``= + - @``, tab or carriage return; the csv module quotes
    commas, quotes and newlines. Numbers are written as they are. JSON keeps every string as is.
    """
    rows = as_rows(results, classes, attributes)
    if fmt == "json":
        for row in rows:
            row["probabilities"] = {c: row.pop(c) for c in classes}
            if attributes:
                row["attributes"] = {a: row.pop(a) for a in attributes}
        text = json.dumps(rows, indent=2) + "\n"
    elif fmt == "csv":
        buffer = io.StringIO()
        fields = list(rows[0]) if rows else [*OUTPUT_COLUMNS[:3], *classes, *attributes, *OUTPUT_COLUMNS[3:]]
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([spreadsheet_safe(str(f)) for f in fields])
        for row in rows:
            writer.writerow([_csv_cell(k, row[k], [*classes, *attributes]) for k in fields])
        text = buffer.getvalue()
    else:
        raise InvalidInputError(f"--format {fmt!r}: expected csv or json")
    write_text_atomically(path, text)


def _csv_cell(key: str, value, classes: Sequence[str]):
    if value is None:
        return ""
    if isinstance(value, float) and key in classes:
        return f"{value:.6f}"
    return spreadsheet_safe(value) if isinstance(value, str) else value
