"""Export formats that carry the soft labels along with the audio: lhotse and Hugging Face audiofolder.

Both describe one utterance the same way (:func:`utterances`): its soft label as a class ->
probability mapping, the classes above 1/C (``metrics.binarize``, the package's one rule),
its speaker and gender, and the attribute columns the label file has (EmoAct, EmoVal,
EmoDom). The functions here build and check everything in memory; ``export.py`` reads the
corpus, claims the output folder and calls them inside a staged output, so a refused name
leaves nothing behind.

- lhotse: ``fold<k>/{recordings,supervisions}_{train,dev,test}.jsonl.gz`` written with
  lhotse's own classes. Each recording (id: the FileName) is read by ``Recording.from_file``,
  which records the file's real sampling rate, channels and duration; its one supervision
  (same id) spans the whole recording and holds ``custom = {"soft_label": {...},
  "labels": [...], <attributes>}``. lhotse is an optional dependency, imported here only.
- audiofolder: ``fold<k>/<train|dev|test>/metadata.csv`` plus the audio under the same
  relative path as in ``Audios`` (a symbolic link or a copy), so that file names stay unique
  within a split folder however many subfolders share a base name. Columns: ``file_name``,
  one per class probability, ``labels`` (the classes above 1/C joined by ``;``, empty when
  none is), then ``speaker``, ``gender`` and the attribute columns the label file has. The
  values are written as they are (``datasets`` reads them as data; no spreadsheet quoting).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import soundfile
from tqdm import tqdm

from ..errors import InvalidInputError
from ..metrics import binarize
from .layout import DEVELOPMENT, DIMENSIONAL_COLUMNS, TEST, TRAIN

logger = logging.getLogger(__name__)

SPLIT_FOLDERS = {TRAIN: "train", DEVELOPMENT: "dev", TEST: "test"}
"""Split_Set -> the folder or file suffix every export uses (Kaldi's and lhotse's usual names)."""
LHOTSE_INSTALL = "pip install 's3prl-emo[lhotse]'"
AUDIO_MODES = ("link", "copy")
AUDIOFOLDER_COLUMNS = ("file_name", "labels", "speaker", "gender")
# Files Hugging Face's folder builders read as metadata wherever they lie in the data folder.
_METADATA_NAMES = {"metadata.csv", "metadata.jsonl", "metadata.parquet"}


@dataclass(frozen=True)
class Utterance:
    """One row of a label file, as the label-carrying formats write it."""

    name: str
    split: str
    soft_label: dict[str, float]
    labels: tuple[str, ...]
    speaker: str | None = None
    gender: str | None = None
    attributes: dict[str, float | str | None] = field(default_factory=dict)


def _text(value: object) -> str | None:
    """A text cell, None where it is empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _attribute(value: object) -> float | str | None:
    """A number as float, an empty cell as None, anything else as its text."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return float(value) if np.isfinite(value) else None
    return _text(value)


def utterances(frame: pd.DataFrame, classes: Sequence[str]) -> list[Utterance]:
    """The rows of a validated label table (``layout.read_labels``) as :class:`Utterance`.

    Args:
        frame: FileName, one float column per class, Split_Set, and optionally SpkrID,
            Gender and the attribute columns (``layout.DIMENSIONAL_COLUMNS``).
        classes: the class columns, in config.json's order.

    Returns:
        One per row, in the table's order; ``labels`` lists the classes above 1/C.

    Examples:
        >>> frame = pd.DataFrame({"FileName": ["a.wav"], "ang": [0.6], "hap": [0.3], "sad": [0.1],
        ...                       "EmoAct": [4.5], "SpkrID": ["7"], "Split_Set": ["Test"]})
        >>> u = utterances(frame, ("ang", "hap", "sad"))[0]
        >>> u.labels, u.speaker, u.gender, u.attributes, u.soft_label["hap"]
        (('ang',), '7', None, {'EmoAct': 4.5}, 0.3)
    """
    values = frame[list(classes)].to_numpy(dtype=float)
    above = binarize(values)
    attributes = [c for c in DIMENSIONAL_COLUMNS if c in frame.columns]
    column = {c: frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in ("SpkrID", "Gender")}
    out = []
    for i, name in enumerate(frame["FileName"].astype(str)):
        out.append(
            Utterance(
                name=name,
                split=str(frame["Split_Set"].iat[i]),
                soft_label={c: float(v) for c, v in zip(classes, values[i], strict=True)},
                labels=tuple(c for c, on in zip(classes, above[i], strict=True) if on),
                speaker=_text(column["SpkrID"][i]),
                gender=_text(column["Gender"][i]),
                attributes={c: _attribute(frame[c].iat[i]) for c in attributes},
            )
        )
    return out


def by_split(items: Iterable[Utterance]) -> dict[str, list[Utterance]]:
    """Split folder name (train, dev, test) -> its utterances, in order; every split present."""
    grouped: dict[str, list[Utterance]] = {folder: [] for folder in SPLIT_FOLDERS.values()}
    for u in items:
        grouped[SPLIT_FOLDERS[u.split]].append(u)
    return grouped


def require_audio(audio_dir: Path, names: Iterable[str], where: str) -> None:
    """Refuse a listed utterance whose audio file is missing (these formats read or link every file)."""
    missing = [n for n in names if not (audio_dir / n).is_file()]
    if missing:
        raise InvalidInputError(
            f"{where}: utterance {missing[0]!r}: no audio file {audio_dir / missing[0]}"
            + (f" ({len(missing) - 1} more missing)" if len(missing) > 1 else "")
        )


# -- lhotse ------------------------------------------------------------------------------------


def require_lhotse() -> Any:
    """The ``lhotse`` module, or a one-line error saying how to install it."""
    try:
        import lhotse
    except ModuleNotFoundError as err:
        raise InvalidInputError(f"--format lhotse needs lhotse, which is not installed: {LHOTSE_INSTALL}") from err
    return lhotse


@contextlib.contextmanager
def _one_rate_warning() -> Iterator[set[int]]:
    """Collect the sampling rates lhotse's validation warns about once per manifest, to say it once."""

    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "different sampling rates" not in record.getMessage()

    rates: set[int] = set()
    drop = Drop()
    logging.getLogger().addFilter(drop)
    try:
        yield rates
    finally:
        logging.getLogger().removeFilter(drop)
    if len(rates) > 1:
        logger.warning(
            "the recordings have sampling rates %s Hz; resample the cuts for training, e.g. cuts.resample(16000)",
            sorted(rates),
        )


def lhotse_recordings(audio_dir: Path, names: Sequence[str], where: str) -> dict[str, Any]:
    """FileName -> ``lhotse.Recording`` read from ``audio_dir`` (real rate, channels, duration)."""
    lhotse = require_lhotse()
    from lhotse.audio.utils import AudioLoadingError

    require_audio(audio_dir, names, where)
    recordings = {}
    for name in tqdm(names, desc="lhotse recordings", unit="file", disable=None):
        try:
            recordings[name] = lhotse.Recording.from_file(audio_dir / name, recording_id=name)
        except (AudioLoadingError, OSError, RuntimeError) as err:
            why = _why_unreadable(audio_dir / name, err)
            raise InvalidInputError(f"{where}: utterance {name!r}: cannot read {audio_dir / name} ({why})") from err
    return recordings


def _why_unreadable(path: Path, err: Exception) -> str:
    """One line: libsndfile's reason when it too fails (lhotse's own message spans every backend it tried)."""
    try:
        soundfile.info(str(path))
    except (RuntimeError, OSError) as sf_err:  # soundfile raises LibsndfileError (a RuntimeError)
        return str(sf_err).strip().splitlines()[0]
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def lhotse_manifests(items: Sequence[Utterance], recordings: dict[str, Any], where: str) -> tuple[Any, Any]:
    """A validated ``(RecordingSet, SupervisionSet)`` pair: one whole-recording supervision per utterance."""
    lhotse = require_lhotse()
    segments = []
    for u in items:
        rec = recordings[u.name]
        segments.append(
            lhotse.SupervisionSegment(
                id=u.name,
                recording_id=rec.id,
                start=0.0,
                duration=rec.duration,
                channel=rec.channel_ids[0] if len(rec.channel_ids) == 1 else list(rec.channel_ids),
                speaker=u.speaker,
                gender=u.gender,
                custom={"soft_label": dict(u.soft_label), "labels": list(u.labels), **u.attributes},
            )
        )
    pair = (
        lhotse.RecordingSet.from_recordings(recordings[u.name] for u in items),
        lhotse.SupervisionSet.from_segments(segments),
    )
    try:
        lhotse.validate_recordings_and_supervisions(*pair)
    except AssertionError as err:
        raise InvalidInputError(f"{where}: lhotse refuses the manifests ({err})") from err
    return pair


def plan_lhotse(
    folds: dict[int, list[Utterance]], audio_dir: Path, where: str
) -> dict[int, dict[str, tuple[Any, Any]]]:
    """Fold -> split folder -> validated manifests; empty splits are left out (and logged)."""
    names = list(dict.fromkeys(u.name for items in folds.values() for u in items))
    recordings = lhotse_recordings(audio_dir, names, where)
    plan: dict[int, dict[str, tuple[Any, Any]]] = {}
    with _one_rate_warning() as rates:
        rates.update(r.sampling_rate for r in recordings.values())
        for k, items in folds.items():
            plan[k] = {}
            for folder, part in by_split(items).items():
                if not part:
                    logger.warning("%s fold %d: no %s utterances; no %s manifests written", where, k, folder, folder)
                    continue
                plan[k][folder] = lhotse_manifests(part, recordings, f"{where} fold {k} {folder}")
    return plan


def write_lhotse(plan: dict[int, dict[str, tuple[Any, Any]]], out: Path, fold_dir: dict[int, str]) -> None:
    """Write ``<fold_dir>/{recordings,supervisions}_<split>.jsonl.gz`` under ``out``."""
    for k, splits in plan.items():
        target = out / fold_dir[k]
        target.mkdir(parents=True)
        for folder, (recordings, supervisions) in splits.items():
            recordings.to_file(target / f"recordings_{folder}.jsonl.gz")
            supervisions.to_file(target / f"supervisions_{folder}.jsonl.gz")


# -- Hugging Face audiofolder ------------------------------------------------------------------


def audiofolder_columns(classes: Sequence[str], frame_columns: Iterable[str]) -> list[str]:
    """metadata.csv's header: file_name, the classes, labels, then speaker, gender, attributes if present.

    Raises:
        InvalidInputError: a class is named like one of the other columns.

    Examples:
        >>> audiofolder_columns(("ang", "sad"), ["FileName", "ang", "sad", "SpkrID", "EmoVal", "Split_Set"])
        ['file_name', 'ang', 'sad', 'labels', 'speaker', 'EmoVal']
    """
    frame_columns = set(frame_columns)
    fixed = {*AUDIOFOLDER_COLUMNS, *DIMENSIONAL_COLUMNS}
    clash = [c for c in classes if c in fixed]
    if clash:
        raise InvalidInputError(
            f"config.json: class {clash[0]!r} has the name of an audiofolder column ({sorted(fixed)}); rename the class"
        )
    optional = [("speaker", "SpkrID"), ("gender", "Gender")] + [(c, c) for c in DIMENSIONAL_COLUMNS]
    return ["file_name", *classes, "labels", *(out for out, source in optional if source in frame_columns)]


def audiofolder_metadata(items: Sequence[Utterance], columns: Sequence[str]) -> str:
    """metadata.csv text: one row per utterance, numbers in full precision (``repr``).

    Examples:
        >>> u = Utterance("s1/a.wav", "Test", {"ang": 0.6, "sad": 0.4}, ("ang",), speaker="7")
        >>> print(audiofolder_metadata([u], ["file_name", "ang", "sad", "labels", "speaker"]), end="")
        file_name,ang,sad,labels,speaker
        s1/a.wav,0.6,0.4,ang,7
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for u in items:
        cells = {"file_name": u.name, "labels": ";".join(u.labels), "speaker": u.speaker, "gender": u.gender}
        cells.update({c: repr(v) for c, v in u.soft_label.items()})
        cells.update({c: (repr(v) if isinstance(v, float) else v) for c, v in u.attributes.items()})
        writer.writerow(["" if cells.get(c) is None else cells[c] for c in columns])
    return buffer.getvalue()


def check_audiofolder_names(items: Sequence[Utterance], where: str) -> None:
    """Refuse names a split folder cannot hold side by side, naming the utterances.

    Two names that differ only in case would be one file on a case-insensitive file system;
    a file called ``metadata.csv`` (or ``.jsonl``, ``.parquet``) would be read as metadata.
    Names are already relative and free of ``..`` (``export.check_names``).

    Examples:
        >>> check_audiofolder_names([Utterance("s1/a.wav", "Test", {}, ()), Utterance("s2/a.wav", "Test", {}, ())], "f")
    """
    seen: dict[str, str] = {}
    for u in items:
        if PurePosixPath(u.name).name.lower() in _METADATA_NAMES:
            raise InvalidInputError(f"{where}: utterance {u.name!r}: an audiofolder reads this file name as metadata")
        key = u.name.casefold()
        if key in seen:
            raise InvalidInputError(
                f"{where}: utterances {seen[key]!r} and {u.name!r} differ only in case; an audiofolder split "
                "holds both files in one folder"
            )
        seen[key] = u.name


def write_audiofolder_split(
    items: Sequence[Utterance], columns: Sequence[str], audio_dir: Path, target: Path, *, audio: str
) -> None:
    """``target/metadata.csv`` and each utterance's audio at ``target/<FileName>`` (link or copy)."""
    if audio not in AUDIO_MODES:
        raise InvalidInputError(f"--audio {audio!r}: expected one of {', '.join(AUDIO_MODES)}")
    target.mkdir(parents=True)
    for u in items:
        destination = target / u.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        source = audio_dir / u.name
        if audio == "link":
            os.symlink(source, destination)
        else:
            shutil.copyfile(source, destination)
    (target / "metadata.csv").write_text(audiofolder_metadata(items, columns), encoding="utf-8", newline="")
