"""``--relabel``: externally adjusted label distributions that replace computed rows.

Two forms are read, told apart by the first header cell:

* this package's form: ``FileName`` plus one column per class (any order). The file is
  written for one prepared corpus, so it is held to it: every row sums to 1 (within
  ``layout.SUM_TOLERANCE``) and every name is an utterance of the condition.
* EMO-SUPERB's released ChatGPT relabel files (``chatGPT/output_train.csv``,
  ``output_dev.csv``): an unnamed first column holding the file name, the eight MSP-PODCAST
  primary classes, and a free-text ``reason`` column (quoted, may hold commas), used as they
  are. About 1% of their rows sum to between 0.1 and 1.4; such a row is renormalised to
  sum 1 (counted in the manifest, with a warning naming the worst row), and names that are
  not utterances of the prepared condition (the files cover all of MSP-PODCAST's Train and
  Development sets) are counted and skipped.

Both forms refuse, naming the line: a non-numeric, negative or NaN value, an all-zero row,
an empty or repeated file name. Relabelled rows replace the computed row as given (after
renormalisation): the corpus's label smoothing is not applied to them, because the file
already is the distribution EMO-SUPERB trains on.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import CorpusLayoutError, InvalidInputError
from ...runtime.paths import Pathlike
from ..layout import SUM_TOLERANCE
from .raw import refuse_repeated_columns
from .types import Condition, Utterance

logger = logging.getLogger(__name__)

PLAIN = "FileName + classes"
EMO_SUPERB_CHATGPT = "EMO-SUPERB ChatGPT release (unnamed file-name column, classes, reason)"
REASON_COLUMN = "reason"  # free text in the EMO-SUPERB release; ignored


@dataclass(frozen=True)
class RelabelTable:
    """A read relabel file: file name -> distribution (in the condition's class order)."""

    path: Path
    form: str
    rows: dict[str, np.ndarray]
    lines: dict[str, int]
    renormalised: dict[str, float] = field(default_factory=dict)  # file name -> original sum


def _relabel_file(path: Pathlike) -> Path:
    path = Path(path)
    if path.exists() and not path.is_file():
        raise InvalidInputError(f"{path}: not a regular file (a folder, FIFO or device); expected the relabel file")
    if not path.is_file():
        raise CorpusLayoutError(f"{path}: no such relabel file")
    return path


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            raw = [cell.strip() for cell in next(csv.reader(handle), [])]
        header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (OSError, csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path}: not a readable CSV ({err})") from err
    refuse_repeated_columns(raw, path, "relabel")  # pandas would rename the second one "<name>.1"
    return header


def _form(header: Sequence[str]) -> str:
    first = header[0] if header else ""
    return EMO_SUPERB_CHATGPT if first == "" or first.startswith("Unnamed: 0") else PLAIN


def _class_columns(header: Sequence[str]) -> set[str]:
    columns = set(header[1:])
    return columns - {REASON_COLUMN} if _form(header) == EMO_SUPERB_CHATGPT else set(header) - {"FileName"}


def relabel_target(path: Pathlike, conditions: Sequence[Condition]) -> Condition:
    """The condition whose class set the relabel file's header lists."""
    path = _relabel_file(path)
    header = _class_columns(_header(path))
    for condition in conditions:
        if header == set(condition.classes):
            return condition
    expected = "; ".join(f"{c.annotation}: {list(c.classes)}" for c in conditions)
    raise InvalidInputError(
        f"{path}, line 1: class columns {sorted(header)} match no condition; expected FileName plus "
        f"the classes of one of {expected}"
    )


def read_relabel(path: Pathlike, classes: Sequence[str]) -> RelabelTable:
    """Read a relabel file in either form (see the module docstring) for ``classes``."""
    path = _relabel_file(path)
    _header(path)  # refuses a repeated column before pandas renames it
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path}: not a readable CSV ({err})") from err
    header = [str(c) for c in frame.columns]
    form = _form(header)
    name_column = header[0] if form == EMO_SUPERB_CHATGPT else "FileName"
    if (form == PLAIN and "FileName" not in header) or _class_columns(header) != set(classes):
        raise InvalidInputError(
            f"{path}, line 1: header {header}; expected FileName plus one column per class {list(classes)}"
        )
    table = RelabelTable(path, form, {}, {})
    for row, record in enumerate(frame.itertuples(index=False)):
        line = row + 2
        values = dict(zip(header, record, strict=True))
        name = values[name_column].strip()
        try:
            dist = np.array([float(values[c]) for c in classes])
        except ValueError as err:
            raise InvalidInputError(f"{path}, line {line} ({name}): non-numeric class value ({err})") from err
        if not name:
            raise InvalidInputError(f"{path}, line {line}: empty FileName")
        if name in table.rows:
            raise InvalidInputError(f"{path}, line {line}: duplicate FileName {name!r}")
        total = dist.sum()
        bad = not np.isfinite(dist).all() or (dist < 0).any() or total <= 0
        if bad or (form == PLAIN and abs(total - 1.0) > SUM_TOLERANCE):
            raise InvalidInputError(
                f"{path}, line {line} ({name}): values {dist.tolist()}; expected non-negative numbers "
                + (f"summing to 1 (within {SUM_TOLERANCE})" if form == PLAIN else "with a positive sum")
            )
        if abs(total - 1.0) > SUM_TOLERANCE:
            table.renormalised[name] = float(total)
            dist = dist / total
        table.rows[name], table.lines[name] = dist, line
    if table.renormalised:
        worst = max(table.renormalised, key=lambda n: abs(table.renormalised[n] - 1.0))
        logger.warning(
            "%s: renormalised %d row(s) whose values did not sum to 1; the worst, line %d (%s), summed to %.4g",
            path,
            len(table.renormalised),
            table.lines[worst],
            worst,
            table.renormalised[worst],
        )
    return table


def apply_relabel(
    table: RelabelTable,
    condition: Condition,
    kept: Sequence[Utterance],
    labels: np.ndarray,
    dropped: Mapping[str, Sequence[str]],
) -> tuple[np.ndarray, tuple[str, ...], int]:
    """Replace the rows of ``kept`` that ``table`` lists; returns the new labels, the relabelled
    names (file order) and how many names of the file are not in the condition (EMO-SUPERB form)."""
    row_of = {u.file_name: i for i, u in enumerate(kept)}
    excluded_reason = {n: r for r, names in dropped.items() for n in names}
    labels = labels.copy()
    relabelled, missing = [], 0
    for file_name, dist in table.rows.items():
        if file_name not in row_of:
            if table.form == EMO_SUPERB_CHATGPT:
                missing += 1
                continue
            why = (
                f"it was excluded ({excluded_reason[file_name]})"
                if file_name in excluded_reason
                else f"it is not an utterance of {condition.annotation}"
            )
            raise InvalidInputError(
                f"{table.path}, line {table.lines[file_name]}: unknown FileName {file_name!r}: {why}; "
                "expected a file name of the prepared label table"
            )
        labels[row_of[file_name]] = dist
        relabelled.append(file_name)
    if missing:
        logger.warning(
            "%s: %d of %d file name(s) are not utterances of %s and were skipped",
            table.path,
            missing,
            len(table.rows),
            condition.annotation,
        )
    logger.info("%s: replaced %d %s label row(s)", table.path, len(relabelled), condition.annotation)
    return labels, tuple(relabelled), missing
