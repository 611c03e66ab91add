"""Reading raw release files: folders, line-numbered CSV rows, the audio index, choices.

Shared by the corpus recipes, so that every recipe reports a missing folder, a broken line,
an unknown emotion or a duplicate audio file the same way (file and line).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ...errors import CorpusLayoutError, InvalidInputError
from ...runtime.paths import Pathlike
from ..labels import canonical_class, is_other

MULTI_CHOICE_SEPARATOR = ";"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au")


def require_dir(path: Pathlike, what: str) -> Path:
    """``path`` as a Path, or CorpusLayoutError naming what was expected there."""
    path = Path(path)
    if not path.is_dir():
        raise CorpusLayoutError(f"{path}: no such directory; expected {what}")
    return path


def sha256_file(path: Pathlike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Row:
    """One CSV record: its 1-based line number and its cells by column name."""

    line: int
    cells: dict[str, str]


def read_csv_rows(path: Pathlike, required: Sequence[str], *, what: str) -> list[Row]:
    """Read a CSV file whose header has ``required`` columns; every record must be complete.

    A record with fewer or more fields than the header (a truncated or broken line) is an
    error that names the file and line. Blank lines are skipped; cells are stripped.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise InvalidInputError(f"{path}: not a regular file (a folder, FIFO or device); expected the {what} file")
    if not path.is_file():
        raise CorpusLayoutError(f"{path}: no such {what} file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [cell.strip() for cell in next(reader, [])]
            refuse_repeated_columns(header, path, what)
            missing = [c for c in required if c not in header]
            if missing:
                raise InvalidInputError(
                    f"{path}, line 1: {what} header {header} lacks column(s) {missing}; "
                    f"expected a header with {list(required)}"
                )
            rows = []
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue
                if len(record) != len(header):
                    raise InvalidInputError(
                        f"{path}, line {reader.line_num}: {len(record)} field(s) where the header has "
                        f"{len(header)} ({','.join(header)}); is the line truncated?"
                    )
                cells = {h: c.strip() for h, c in zip(header, record, strict=True)}
                rows.append(Row(reader.line_num, cells))
    except UnicodeDecodeError as err:
        raise InvalidInputError(f"{path}: not UTF-8 text ({err}); save the {what} file as UTF-8") from err
    except csv.Error as err:
        raise InvalidInputError(f"{path}: not a readable CSV file ({err})") from err
    return rows


def refuse_repeated_columns(header: Sequence[str], path: Pathlike, what: str) -> None:
    """Refuse a header that names a column twice: one of the two would be silently lost
    (or, read by pandas, renamed ``emotion.1`` and never read).

    Raises:
        InvalidInputError: naming the file, line 1 and the column.

    Examples:
        >>> refuse_repeated_columns(["FileName", "annotator", "emotion"], "votes.csv", "votes")
    """
    seen: set[str] = set()
    for column in header:
        if column and column in seen:
            raise InvalidInputError(
                f"{path}, line 1: the {what} header names column {column!r} twice ({','.join(header)}); "
                "keep one column of each name"
            )
        seen.add(column)


def index_audio(folder: Pathlike, *, suffixes: Iterable[str] = AUDIO_SUFFIXES) -> dict[str, Path]:
    """Every audio file under ``folder`` by file name; two files with one name are an error."""
    folder = require_dir(folder, "a folder of audio files")
    wanted = {s.lower() for s in suffixes}
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in wanted or not path.is_file():
            continue
        if path.name in found:
            raise InvalidInputError(
                f"{path}: duplicate audio file name (also {found[path.name]}); file names must be "
                "unique because the prepared corpus keeps one flat Audios/ folder"
            )
        found[path.name] = path
    return found


def split_choices(text: str) -> tuple[str, ...]:
    """One multi-choice answer as its options (empty parts dropped; "other" is ``labels.OTHER``).

    Examples:
        >>> split_choices("happy; surprise;")
        ('happy', 'surprise')
    """
    return tuple(t.strip() for t in text.split(MULTI_CHOICE_SEPARATOR) if t.strip())


def check_choices(
    choices: Sequence[str], classes: Sequence[str], where: str, aliases: str | Mapping[str, str] | None = None
) -> None:
    """Raise unless there is a choice and each names a class (via ``aliases``) or is "other"."""
    if not choices:
        raise InvalidInputError(f"{where}: annotation has no emotion; expected one of {list(classes)} or 'other'")
    for token in choices:
        if not is_other(token) and canonical_class(token, classes, aliases) is None:
            raise InvalidInputError(
                f"{where}: unknown emotion {token!r}; expected one of {list(classes)} or 'other' "
                f"(several joined by {MULTI_CHOICE_SEPARATOR!r})"
            )


VOTE_COLUMNS = ("FileName", "annotator", "emotion")


def annotator_rows(
    path: Pathlike, classes: Sequence[str], *, what: str, aliases: str | Mapping[str, str] | None = None
) -> Iterator[tuple[Row, str, tuple[str, ...]]]:
    """The rows of a ``FileName,annotator,emotion[,...]`` file (generic votes, NNIME annotations),
    each with its location and its checked choices; one row per annotator and file."""
    path = Path(path)
    seen: dict[tuple[str, str], int] = {}
    for row in tqdm(read_csv_rows(path, VOTE_COLUMNS, what=what), desc=what, unit="row"):
        where = f"{path}, line {row.line}"
        name, annotator = row.cells["FileName"], row.cells["annotator"]
        if not name or not annotator:
            raise InvalidInputError(f"{where}: empty FileName or annotator")
        choices = split_choices(row.cells["emotion"])
        check_choices(choices, classes, where, aliases)
        if (name, annotator) in seen:
            raise InvalidInputError(
                f"{where}: annotator {annotator!r} labels {name!r} twice (also line {seen[name, annotator]}); "
                f"keep one row per annotator, with several emotions joined by {MULTI_CHOICE_SEPARATOR!r}"
            )
        seen[name, annotator] = row.line
        yield row, where, choices


def mean_scores(scores: Sequence[Mapping[str, float]], columns: Iterable[str]) -> dict[str, float]:
    """Per column, the mean over the raters who gave a score (a column nobody scored is left out).

    Examples:
        >>> mean_scores([{"EmoAct": 2.0}, {"EmoAct": 3.0, "EmoVal": 4.0}], ["EmoAct", "EmoVal", "EmoDom"])
        {'EmoAct': 2.5, 'EmoVal': 4.0}
    """
    return {
        column: float(np.mean(values)) for column in columns if (values := [s[column] for s in scores if column in s])
    }
