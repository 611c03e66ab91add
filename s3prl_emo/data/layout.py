"""Read and write the EMO-SUPERB on-disk layout of a prepared corpus.

    <root>/<CORPUS>/Audios/<FileName>
    <root>/<CORPUS>/<Primary|Secondary>/config.json
    <root>/<CORPUS>/<Primary|Secondary>/labels_consensus_<k>.csv

Readers validate everything a user can get wrong (missing columns, NaN, rows that do not
sum to 1, unknown split names, duplicate files) and name the file and line at fault.
Writers stage into a temporary folder that is moved into place only when complete
(``atomic.staged_dir``). This module is the one home of the split names and fold names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CorpusLayoutError, InvalidInputError
from ..runtime.paths import Pathlike

# The three splits, as ``Split_Set`` and config.json's data_split_type spell them.
TRAIN, DEVELOPMENT, TEST = "Train", "Development", "Test"
SPLIT_SETS: tuple[str, ...] = (TRAIN, DEVELOPMENT, TEST)  # the values of a label file's Split_Set
SPLITS: tuple[str, ...] = ("train", "dev", "test")  # the downstream's split names, in that order
SPLIT_NAMES = dict(zip(SPLITS, SPLIT_SETS, strict=True))
DIMENSIONAL_COLUMNS = ("EmoAct", "EmoVal", "EmoDom")
SUM_TOLERANCE = 1e-3
# Every column of a label file that is not a class, as ``label_frame`` writes them.
RESERVED_COLUMNS: tuple[str, ...] = ("FileName", *DIMENSIONAL_COLUMNS, "SpkrID", "Gender", "Split_Set")
# pandas names an empty header cell ``Unnamed: <i>``; ``read_labels`` reads the first one as FileName.
UNNAMED_PREFIX = "Unnamed"
# Separates the classes of one line of ``<split>_<fold>_{predict,truth}.txt`` (``FileName emo1;emo2``).
CLASS_SEPARATOR = ";"


def check_class_names(classes: Sequence[str], *, where: str) -> tuple[str, ...]:
    """``classes`` if each can be a class column of a label file, else an error naming the class.

    A class must be a non-empty name without surrounding spaces, control characters or
    ``;`` (the separator of the ``FileName emo1;emo2`` files), distinct from the others, and
    not one of ``RESERVED_COLUMNS`` (compared without case) or an ``Unnamed...`` header: a
    class called ``Split_Set`` would overwrite the split column when the table is built.

    Raises:
        InvalidInputError: naming ``where`` and the class.

    Examples:
        >>> check_class_names(["angry", "sad"], where="--classes")
        ('angry', 'sad')
    """
    names = tuple(classes)
    reserved = {c.lower() for c in RESERVED_COLUMNS}
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"{where}: class name {name!r} is empty or not text")
        if name != name.strip() or not name.isprintable():
            raise InvalidInputError(f"{where}: class name {name!r} has surrounding spaces or control characters")
        if CLASS_SEPARATOR in name:
            raise InvalidInputError(f"{where}: class name {name!r} contains {CLASS_SEPARATOR!r} (the class separator)")
        if name.lower() in reserved or name.startswith(UNNAMED_PREFIX):
            raise InvalidInputError(
                f"{where}: class name {name!r} is a reserved column of the label file {list(RESERVED_COLUMNS)} "
                f"(or pandas's {UNNAMED_PREFIX}...); rename the class"
            )
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInputError(f"{where}: class name(s) {repeated} appear more than once")
    return names


def plain_file_name_problem(name: str) -> str | None:
    r"""Why ``name`` cannot be a file of a prepared corpus's flat ``Audios/`` folder, or None.

    The name becomes a link or file ``Audios/<name>``, a ``FileName`` cell and the first
    word of a ``FileName emo1;emo2`` line, so it is one plain file name: no folder part
    (``/``, ``\``, ``..``), no white space and no control characters.

    Examples:
        >>> plain_file_name_problem("Ses01F_001.wav") is None, plain_file_name_problem("../../x.wav")
        (True, 'contains a folder separator; expected a plain file name (Audios/ is one flat folder)')
    """
    if not name or name in (".", ".."):
        return "is empty, '.' or '..'; expected a file name"
    if "/" in name or "\\" in name:
        return "contains a folder separator; expected a plain file name (Audios/ is one flat folder)"
    if any(ch.isspace() for ch in name):
        return "contains white space, which ends the name in FileName emo1;emo2 lines; rename the file"
    if not name.isprintable():
        return "contains control characters; rename the file"
    return None


@dataclass(frozen=True)
class CorpusConfig:
    """The content of ``config.json``."""

    classes: tuple[str, ...]
    split_names: dict[str, str] = field(default_factory=lambda: dict(SPLIT_NAMES))
    description: str = ""
    dimensional: dict | None = None

    def to_json(self) -> dict:
        """The ``config.json`` mapping, keys in the order EMO-SUPERB's released configs have them.

        Examples:
            >>> CorpusConfig(classes=("angry", "sad"), description="toy").to_json()["categorical"]
            {'emo_type': ['angry', 'sad']}
        """
        out: dict = {
            "data_split_type": dict(self.split_names),
            "categorical": {"emo_type": list(self.classes)},
        }
        if self.dimensional is not None:
            out["dimensional"] = dict(self.dimensional)
        out["description"] = self.description
        return out


def labels_path(corpus_dir: Pathlike, fold: int) -> Path:
    """``<corpus_dir>/labels_consensus_<fold>.csv`` (folds are 1-based).

    Examples:
        >>> labels_path("IEMOCAP/Secondary", 2).as_posix()
        'IEMOCAP/Secondary/labels_consensus_2.csv'
    """
    return Path(corpus_dir) / f"labels_consensus_{fold}.csv"


def label_files(corpus_dir: Pathlike) -> dict[int, Path]:
    """Fold -> ``labels_consensus_<fold>.csv`` for every such file in ``corpus_dir`` (empty if none).

    Examples:
        >>> sorted(label_files("corpora/SYNTH/Primary"))  # doctest: +SKIP
        [1, 2, 3, 4, 5]
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        return {}
    found = {}
    for path in corpus_dir.glob("labels_consensus_*.csv"):
        number = path.stem.removeprefix("labels_consensus_")
        if number.isdigit():
            found[int(number)] = path
    return dict(sorted(found.items()))


def parse_fold(fold: str | int, folds: Sequence[int] | None = None, *, owner: str | None = None) -> int:
    """``"fold3"``, ``"3"`` or ``3`` -> 3; with ``folds``, also checked to be one of them.

    ``owner`` (a corpus key) prefixes the message. Examples:
        >>> parse_fold("fold3"), parse_fold(" 2 "), parse_fold(5, [1, 2, 3, 4, 5])
        (3, 2, 5)
    """
    text = str(fold).strip().lower().removeprefix("fold")
    valid = text.isdigit() and int(text) >= 1 and not isinstance(fold, bool)
    if folds is not None and (not valid or int(text) not in folds):
        raise InvalidInputError(f"{owner + ': ' if owner else ''}unknown fold {fold!r}; expected 1..{max(folds)}")
    if not valid:
        raise InvalidInputError(f"unknown fold {fold!r}; expected fold1, fold2, ... (1-based)")
    return int(text)


def fold_name(fold: int) -> str:
    """3 -> ``"fold3"`` (the spelling of S3PRL's ``test_fold`` / ``-v``).

    Examples:
        >>> fold_name(3)
        'fold3'
    """
    return f"fold{fold}"


def read_config(path: Pathlike) -> CorpusConfig:
    """Read a ``config.json`` (or the one inside a folder).

    Examples:
        >>> read_config("corpora/SYNTH/Primary").classes  # doctest: +SKIP
        ('angry', 'sad', 'neutral', 'happy', 'fear')
    """
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise CorpusLayoutError(f"{path}: no such file; every Primary/Secondary folder needs one")
    try:
        raw = json.loads(path.read_text())
        emo_type = raw["categorical"]["emo_type"]
        if not isinstance(emo_type, list) or not all(isinstance(c, str) for c in emo_type):
            raise TypeError(f"categorical.emo_type must be a list of class names, got {emo_type!r}")
        classes = tuple(emo_type)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InvalidInputError(
            f"{path}: not an EMO-SUPERB config.json ({err}); expected "
            '{"categorical": {"emo_type": [...]}, "data_split_type": {...}}'
        ) from err
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise InvalidInputError(f"{path}: emo_type must list at least 2 distinct classes, got {list(classes)}")
    check_class_names(classes, where=f"{path}: emo_type")
    return CorpusConfig(
        classes=classes,
        split_names=dict(raw.get("data_split_type", SPLIT_NAMES)),
        description=raw.get("description", ""),
        dimensional=raw.get("dimensional"),
    )


def read_labels(path: Pathlike, classes: Sequence[str]) -> pd.DataFrame:
    """Read and validate one ``labels_consensus_<k>.csv``.

    Returns a frame with a ``FileName`` column, one float column per class (in ``classes``
    order), ``Split_Set`` and whatever else the file has (SpkrID, Gender, EmoAct, ...).
    The published NNIME files' empty first header cell is read as ``FileName``.

    Examples:
        >>> config = read_config("SYNTH/Primary")  # doctest: +SKIP
        >>> frame = read_labels("SYNTH/Primary/labels_consensus_1.csv", config.classes)  # doctest: +SKIP
        >>> frame["Split_Set"].unique().tolist()  # doctest: +SKIP
        ['Train', 'Development', 'Test']
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusLayoutError(f"{path}: no such label file")
    try:
        frame = pd.read_csv(path, dtype={"FileName": str, "SpkrID": str, "Split_Set": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path}: not a readable CSV ({err})") from err
    first = frame.columns[0]
    if first != "FileName" and (first == "" or first.startswith("Unnamed: 0")):
        frame = frame.rename(columns={first: "FileName"})
    missing = [c for c in ("FileName", "Split_Set") if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"{path}: missing column(s) {missing}; header is {list(frame.columns)}, expected "
            "FileName, one column per class, ..., Split_Set"
        )
    missing_classes = [c for c in classes if c not in frame.columns]
    unexpected = _unexpected_class_columns(frame.columns, classes)
    if missing_classes or unexpected:
        raise InvalidInputError(
            f"{path}: classes differ from config.json's emo_type {list(classes)}: missing column(s) "
            f"{missing_classes}, unexpected column(s) {unexpected}; config.json and the label file must "
            "list the same classes"
        )
    empty = frame["FileName"].isna().to_numpy()
    if empty.any():
        raise InvalidInputError(f"{path}, line {int(np.flatnonzero(empty)[0]) + 2}: empty FileName")
    frame["FileName"] = frame["FileName"].astype(str)
    frame[list(classes)] = _class_values(frame, classes, path)
    bad_split = ~frame["Split_Set"].isin(SPLIT_NAMES.values())
    if bad_split.any():
        row = int(np.flatnonzero(bad_split.to_numpy())[0])
        raise InvalidInputError(
            f"{path}, line {row + 2}: Split_Set {frame['Split_Set'].iat[row]!r}; expected one of "
            f"{list(SPLIT_NAMES.values())}"
        )
    duplicated = frame["FileName"].duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise InvalidInputError(f"{path}, line {row + 2}: duplicate FileName {frame['FileName'].iat[row]!r}")
    return frame


def _class_values(frame: pd.DataFrame, classes: Sequence[str], path: Path) -> np.ndarray:
    """The class columns as floats, each row a distribution (numbers >= 0 summing to 1).

    Raises:
        InvalidInputError: naming the first line that is not.
    """
    values = frame[list(classes)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    missing = np.isnan(values).any(axis=1)
    sums = values.sum(axis=1)
    bad = missing | (np.abs(sums - 1.0) > SUM_TOLERANCE) | (values < 0).any(axis=1)
    if not bad.any():
        return values
    row = int(np.flatnonzero(bad)[0])
    where = f"{path}, line {row + 2} ({frame['FileName'].iat[row]})"  # 1-based, after the header
    if missing[row]:
        raise InvalidInputError(f"{where}: empty or non-numeric class value")
    if abs(sums[row] - 1.0) > SUM_TOLERANCE:
        raise InvalidInputError(f"{where}: class values sum to {sums[row]:.4f}, expected 1 (within {SUM_TOLERANCE})")
    raise InvalidInputError(f"{where}: negative class value")


def attribute_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """The attribute columns of a label table: every ``Emo*`` column, in file order.

    Examples:
        >>> attribute_columns(pd.DataFrame(columns=["FileName", "angry", "sad", "EmoAct", "EmoVal", "Split_Set"]))
        ('EmoAct', 'EmoVal')
    """
    return tuple(str(c) for c in frame.columns if str(c).startswith("Emo"))


def attribute_range(dimensional: object, where: str) -> tuple[float, float] | None:
    """config.json's ``dimensional`` entry as (min_score, max_score), or None where there is none.

    Raises:
        InvalidInputError: an entry that is not two finite numbers with min < max, naming ``where``.

    Examples:
        >>> attribute_range({"max_score": 5, "min_score": 1}, "config.json")
        (1.0, 5.0)
    """
    if dimensional is None:
        return None
    low = dimensional.get("min_score") if isinstance(dimensional, dict) else None
    high = dimensional.get("max_score") if isinstance(dimensional, dict) else None
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in (low, high))
    if not numbers or not low < high:
        raise InvalidInputError(
            f'{where}: dimensional {dimensional!r}; expected {{"min_score": number, "max_score": number}} '
            "with min_score < max_score"
        )
    return float(low), float(high)


def attribute_values(
    frame: pd.DataFrame,
    path: Pathlike,
    attributes: Sequence[str],
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """The attribute columns of a label table as an (N, A) float64 array, read as the file has them.

    Every value must be a finite number, and within config.json's ``dimensional`` range where
    the corpus declares one (the published IEMOCAP files declare none and hold 1-5).

    Args:
        frame: a table from ``read_labels``.
        path: the label file, named in errors.
        attributes: the columns to read (``EmoAct``, ...).
        value_range: (min_score, max_score), or None.

    Raises:
        InvalidInputError: a missing column, or the first empty, non-numeric, infinite or
            out-of-range value, naming the file, line and column.

    Examples:
        >>> table = pd.DataFrame({"FileName": ["a.wav"], "EmoAct": ["2.5"]})
        >>> attribute_values(table, "labels.csv", ["EmoAct"], (1.0, 5.0)).tolist()
        [[2.5]]
    """
    missing = [a for a in attributes if a not in frame.columns]
    if missing or not attributes:
        raise InvalidInputError(
            f"{path}: no attribute column(s) {missing or list(attributes)}; the file has "
            f"{list(attribute_columns(frame)) or 'no Emo* column'} (downstream_expert.attributes names them)"
        )
    raw = frame[list(attributes)]
    values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if value_range is not None:
        bad |= (values < value_range[0]) | (values > value_range[1])
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        cell = raw.iat[row, col]
        if value_range is not None and np.isfinite(values[row, col]):
            why = f"is outside config.json's dimensional range [{value_range[0]:g}, {value_range[1]:g}]"
        else:
            why = "is empty, not a number, or infinite"
        raise InvalidInputError(
            f"{path}, line {row + 2} ({frame['FileName'].iat[row]}), column {attributes[col]}: {str(cell)!r} {why}"
        )
    return values


def _unexpected_class_columns(columns: Sequence[str], classes: Sequence[str]) -> list[str]:
    known = {"FileName", "SpkrID", "Gender", "Split_Set", *DIMENSIONAL_COLUMNS, *classes}
    return [c for c in columns if c not in known and not str(c).startswith("Unnamed")]


def label_frame(
    file_names: Sequence[str],
    labels: np.ndarray,
    classes: Sequence[str],
    split: Sequence[str],
    *,
    speakers: Sequence[str] | None = None,
    genders: Sequence[str] | None = None,
    dimensional: dict[str, Sequence[float]] | None = None,
) -> pd.DataFrame:
    """Assemble a label table in the published column order.

    Raises:
        InvalidInputError: a class name is a reserved column or repeated (``check_class_names``),
            or the labels do not have one row per file and one column per class.
    """
    check_class_names(classes, where="label table")
    labels = np.asarray(labels, dtype=float)
    if labels.shape != (len(file_names), len(classes)):
        raise InvalidInputError(
            f"label_frame: labels have shape {labels.shape}, expected {(len(file_names), len(classes))}"
        )
    columns: dict[str, object] = {"FileName": list(file_names)}
    columns.update({c: labels[:, j] for j, c in enumerate(classes)})
    for name, values in (dimensional or {}).items():
        columns[name] = list(values)
    if speakers is not None:
        columns["SpkrID"] = list(speakers)
    if genders is not None:
        columns["Gender"] = list(genders)
    columns["Split_Set"] = list(split)
    return pd.DataFrame(columns)


def write_labels(frame: pd.DataFrame, path: Pathlike, *, decimals: int = 6) -> None:
    """Write a label table; values are rounded (rows keep summing to 1 within 1e-3)."""
    frame.to_csv(path, index=False, float_format=f"%.{decimals}g")


def write_config(config: CorpusConfig, folder: Pathlike) -> None:
    """Write ``<folder>/config.json``, the file that tells the downstream a corpus's classes and splits.

    Args:
        config: What the file says.
        folder: A prepared corpus folder (``.../Primary`` or ``.../Secondary``).
    """
    Path(folder, "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
