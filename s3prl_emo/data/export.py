"""Write the folds of a prepared corpus in the formats other toolkits read.

Input is ``<root>/<CORPUS>/Primary|Secondary`` (config.json + labels_consensus_<k>.csv);
the audio is in ``<root>/<CORPUS>/Audios``. Every exporter checks its output folder first
(new, empty, or an earlier output of ``export-splits``; never the corpus or a folder holding
it), checks every name it will write, and stages its output in a temporary folder that
replaces ``out_dir`` only when complete, so nothing half-written remains.

Names are checked once for every format: a FileName, SpkrID or Gender with a line break or
another control character, and a FileName that is absolute or climbs out of ``Audios`` with
``..``, are refused with the utterance named.

- csv: ``fold<k>.csv`` with FileName, SpkrID, Split_Set. Names are written as they are,
  even those a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``): the file is
  data to join on FileName, and a quoted name would no longer match (a warning says so).
- kaldi: ``fold<k>/<train|dev|test>/{wav.scp,utt2spk,spk2utt}``; utterance ids are
  ``<speaker>-<file stem>`` so that sorting by utterance and by speaker agree. Every id and
  path must be a plain Kaldi token (``guards.kaldi_safe``): no whitespace, no leading or
  trailing ``|``, not ``-``, no ``:offset`` ending.
- s3prl-emotion: ``Session<k>/{train,test}_meta_data.json`` for S3PRL's built-in
  ``emotion`` downstream (4 classes, excited merged into happy); pass the corpus's
  ``Audios`` folder as that downstream's ``root``. That downstream reads audio with
  ``torchaudio.load``, which on torchaudio >= 2.9 needs torchcodec and FFmpeg's shared
  libraries (:func:`s3prl_emotion_audio_problem` says whether they are there).
- lhotse and audiofolder carry each utterance's soft label, the classes above 1/C, speaker,
  gender and attributes with its audio: see ``export_formats``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..runtime.guards import claim_output_dir, kaldi_safe, spreadsheet_safe, staged_output
from ..runtime.paths import Pathlike
from .audit import read_folds
from .export_formats import (
    AUDIO_MODES,
    SPLIT_FOLDERS,
    audiofolder_columns,
    by_split,
    check_audiofolder_names,
    plan_lhotse,
    require_audio,
    require_lhotse,
    utterances,
    write_audiofolder_split,
    write_lhotse,
)
from .layout import DEVELOPMENT, TEST, TRAIN, fold_name, labels_path, read_config
from .partitions import corpus_key, fold_violations

logger = logging.getLogger(__name__)

KALDI_SPLITS = SPLIT_FOLDERS
# S3PRL's emotion downstream (IEMOCAP_preprocess.py): four classes, "exc" merged into "hap".
S3PRL_EMOTION_LABELS = {"neu": 0, "hap": 1, "ang": 2, "sad": 3}
S3PRL_EMOTION_CLASS_MAP = {"neutral": "neu", "happy": "hap", "excited": "hap", "angry": "ang", "sad": "sad"}
COMMAND = "export-splits"
TEXT_COLUMNS = ("FileName", "SpkrID", "Gender")
# Line breaks and other control characters (C0, DEL, C1, Unicode line/paragraph separators).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class ExportSummary:
    """What an exporter wrote: where, which folds, and how many utterances it left out."""

    out_dir: Path
    format: str
    folds: tuple[int, ...]
    # fold -> split (csv, kaldi) or meta-data file (s3prl-emotion: train, test) -> utterances
    written: dict[int, dict[str, int]] = field(default_factory=dict)
    left_out: dict[int, int] = field(default_factory=dict)  # fold -> utterances not written


def audio_dir_of(corpus_dir: Pathlike) -> Path:
    """``<root>/<CORPUS>/Audios`` for ``<root>/<CORPUS>/Primary|Secondary``, absolute (links kept)."""
    return Path(os.path.abspath(Path(corpus_dir).parent / "Audios"))


def claim_output(corpus_dir: Pathlike, out_dir: Pathlike, *, overwrite: bool) -> list[Path]:
    """Check ``out_dir`` before any work; returns the inputs it must never replace.

    An existing folder is refused without ``overwrite``; with it, only an empty folder or an
    earlier output of ``export-splits`` (``guards.claim_output_dir``) is replaced, never the
    corpus, its audio, or a folder holding them.
    """
    inputs = [Path(corpus_dir), audio_dir_of(corpus_dir)]
    out = claim_output_dir(out_dir, command=COMMAND, inputs=inputs)
    if os.path.lexists(out) and not overwrite:
        raise InvalidInputError(
            f"--out {out}: already exists; pass --overwrite to replace an earlier output of `s3prl-emo {COMMAND}`"
        )
    return inputs


def check_names(frame: pd.DataFrame, where: str) -> None:
    """Refuse names no export format can carry, naming the utterance.

    A line break or control character in FileName, SpkrID or Gender would split a line of a
    Kaldi table or a CSV row for most readers; a FileName that is absolute or contains ``..``
    names a file outside the corpus's ``Audios`` folder (and outside an audiofolder export).

    Raises:
        InvalidInputError: naming ``where``, the utterance and the column.

    Examples:
        >>> check_names(pd.DataFrame({"FileName": ["a.wav", "s1/b.wav"], "SpkrID": ["1", "2"]}), "labels.csv")
        >>> check_names(pd.DataFrame({"FileName": ["../b.wav"]}), "labels.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        s3prl_emo.errors.InvalidInputError: labels.csv: utterance '../b.wav': FileName must be a relative path ...
    """
    names = frame["FileName"].astype(str)
    for column in TEXT_COLUMNS:
        if column not in frame.columns:
            continue
        for name, value in zip(names, frame[column], strict=True):
            if isinstance(value, str) and _CONTROL.search(value):
                raise InvalidInputError(
                    f"{where}: utterance {name!r}: {column} {value!r} holds a line break or control character; "
                    "rename it"
                )
    for name in names:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise InvalidInputError(
                f"{where}: utterance {name!r}: FileName must be a relative path inside the Audios folder "
                "(not absolute, no '..')"
            )


def load_folds(corpus_dir: Pathlike) -> dict[int, pd.DataFrame]:
    """Validated folds with checked names; leakage is logged, not fatal (``check-splits`` is the place for that)."""
    corpus_dir = Path(corpus_dir)
    frames = read_folds(corpus_dir)
    key = corpus_key(corpus_dir.parent.name)
    for k, frame in frames.items():
        check_names(frame, str(labels_path(corpus_dir, k)))
        problems = fold_violations(frame, corpus=key)
        if problems:
            logger.warning(
                "%s fold %d: %d leakage problem(s), e.g. %s; run check-splits",
                corpus_dir,
                k,
                len(problems),
                problems[0],
            )
    return frames


def _speakers(frame: pd.DataFrame) -> pd.Series:
    """SpkrID as text, "" where the file has no speaker."""
    if "SpkrID" not in frame.columns:
        return pd.Series([""] * len(frame), index=frame.index, dtype=object)
    return frame["SpkrID"].astype(object).where(frame["SpkrID"].notna(), "").astype(str).str.strip()


def _split_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {split: int((frame["Split_Set"] == split).sum()) for split in KALDI_SPLITS}


def export_csv(corpus_dir: Pathlike, out_dir: Pathlike, *, overwrite: bool = False) -> ExportSummary:
    """One ``fold<k>.csv`` per fold with columns FileName, SpkrID, Split_Set.

    Names are written as they are (they are keys to join on); a warning counts those a
    spreadsheet would read as a formula (``guards.spreadsheet_safe`` would change them).

    Examples:
        >>> summary = export_csv("corpora/IEMOCAP/Primary", "splits/")  # doctest: +SKIP
        >>> summary.folds  # doctest: +SKIP
        (1, 2, 3, 4, 5)
    """
    inputs = claim_output(corpus_dir, out_dir, overwrite=overwrite)
    frames = load_folds(corpus_dir)
    tables = {
        k: pd.DataFrame({"FileName": frame["FileName"], "SpkrID": _speakers(frame), "Split_Set": frame["Split_Set"]})
        for k, frame in frames.items()
    }
    values = {str(v) for table in tables.values() for v in (*table["FileName"], *table["SpkrID"])}
    formulas = sum(spreadsheet_safe(v) != v for v in values)
    if formulas:
        logger.warning(
            "%d FileName/SpkrID value(s) start with = + - or @ and are written as they are; a spreadsheet "
            "may read them as formulas: import the CSV as text",
            formulas,
        )
    with staged_output(out_dir, command=COMMAND, inputs=inputs) as stage:
        for k, table in tables.items():
            table.to_csv(stage / f"{fold_name(k)}.csv", index=False)
    return ExportSummary(Path(out_dir), "csv", tuple(frames), {k: _split_counts(f) for k, f in frames.items()})


def _kaldi_ids(frame: pd.DataFrame, where: str) -> list[tuple[str, str]]:
    """(utterance id, speaker id) per row; a row without speaker is its own speaker."""
    pairs = []
    for name, speaker in zip(frame["FileName"], _speakers(frame), strict=True):
        stem = os.path.splitext(str(name))[0].replace("/", "_").replace("\\", "_")
        utt, spk = (f"{speaker}-{stem}", speaker) if speaker else (stem, stem)
        kaldi_safe(spk, what=f"{where}: utterance {name!r}: speaker id")
        kaldi_safe(utt, what=f"{where}: utterance {name!r}: utterance id")
        pairs.append((utt, spk))
    seen = Counter(utt for utt, _ in pairs)
    twice = [utt for utt, n in seen.items() if n > 1]
    if twice:
        raise InvalidInputError(
            f"{where}: Kaldi utterance id {twice[0]!r} occurs twice (two files with the same stem?); ids must be unique"
        )
    return pairs


def _check_kaldi_order(pairs: list[tuple[str, str]], where: str) -> None:
    """Kaldi needs utt2spk sorted by utterance to also be sorted by speaker."""
    speakers = [spk for _, spk in sorted(pairs)]
    for before, after in itertools.pairwise(speakers):
        if after < before:
            raise InvalidInputError(
                f"{where}: speaker ids {before!r} and {after!r} sort differently once used as "
                "utterance-id prefixes; use speaker ids without characters that sort before '-'"
            )


def _kaldi_tables(part: pd.DataFrame, audio_dir: Path, where: str) -> dict[str, list[str]]:
    """wav.scp, utt2spk and spk2utt lines of one split, every token checked, C-sorted."""
    pairs = _kaldi_ids(part, where)
    _check_kaldi_order(pairs, where)
    paths = {}
    for (utt, _), name in zip(pairs, part["FileName"], strict=True):
        paths[utt] = kaldi_safe(str(audio_dir / name), what=f"{where}: utterance {name!r}: wav.scp path")
    by_speaker: dict[str, list[str]] = {}
    for utt, spk in sorted(pairs):
        by_speaker.setdefault(spk, []).append(utt)
    return {
        "wav.scp": [f"{utt} {paths[utt]}" for utt in sorted(paths)],
        "utt2spk": [f"{utt} {spk}" for utt, spk in sorted(pairs)],
        "spk2utt": [f"{spk} {' '.join(utts)}" for spk, utts in sorted(by_speaker.items())],
    }


def export_kaldi(corpus_dir: Pathlike, out_dir: Pathlike, *, overwrite: bool = False) -> ExportSummary:
    """Kaldi data folders ``fold<k>/<train|dev|test>/`` with wav.scp, utt2spk and spk2utt.

    wav.scp points at absolute paths under ``<root>/<CORPUS>/Audios``. All files are
    sorted in C (code point) order, as Kaldi's ``validate_data_dir.sh`` expects. Every table
    is built and checked before anything is written.

    Examples:
        >>> summary = export_kaldi("corpora/IEMOCAP/Primary", "kaldi/")  # doctest: +SKIP
    """
    corpus_dir = Path(corpus_dir)
    inputs = claim_output(corpus_dir, out_dir, overwrite=overwrite)
    frames = load_folds(corpus_dir)
    audio_dir = audio_dir_of(corpus_dir)
    tables: dict[tuple[int, str], dict[str, list[str]]] = {}
    for k, frame in frames.items():
        for split, folder in KALDI_SPLITS.items():
            where = f"{corpus_dir} fold {k} {split}"
            tables[k, folder] = _kaldi_tables(frame[frame["Split_Set"] == split], audio_dir, where)
            if not tables[k, folder]["wav.scp"]:
                logger.warning("%s: no utterances; its Kaldi files are empty", where)
    names = {name for frame in frames.values() for name in frame["FileName"]}
    missing = sum(not (audio_dir / name).is_file() for name in names)
    with staged_output(out_dir, command=COMMAND, inputs=inputs) as stage:
        for (k, folder), files in tables.items():
            target = stage / fold_name(k) / folder
            target.mkdir(parents=True)
            for file, lines in files.items():
                _write_lines(target / file, lines)
    if missing:
        logger.warning("wav.scp lists %d file(s) that do not exist under %s", missing, audio_dir)
    return ExportSummary(Path(out_dir), "kaldi", tuple(frames), {k: _split_counts(f) for k, f in frames.items()})


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="")


def emotion_label(soft_label: np.ndarray, classes: tuple[str, ...]) -> str | None:
    """S3PRL emotion class (neu/hap/ang/sad) of one soft label, or None to leave it out.

    The highest class wins; excited counts as happy. Left out: a top class outside the four
    (fear, frustrated, ...) and a tie between classes that map to different labels.

    Examples:
        >>> emotion_label(np.array([0.1, 0.6, 0.3]), ("neutral", "excited", "angry"))
        'hap'
        >>> emotion_label(np.array([0.5, 0.5, 0.0]), ("angry", "sad", "neutral")) is None
        True
    """
    values = np.asarray(soft_label, dtype=float)
    top = {classes[j].lower() for j in np.flatnonzero(np.isclose(values, values.max(), rtol=0, atol=1e-9))}
    mapped = {S3PRL_EMOTION_CLASS_MAP.get(c) for c in top}
    return mapped.pop() if len(mapped) == 1 and None not in mapped else None


def export_s3prl_emotion(corpus_dir: Pathlike, out_dir: Pathlike, *, overwrite: bool = False) -> ExportSummary:
    """Meta-data JSON for S3PRL's ``emotion`` downstream, one ``Session<k>/`` per fold.

    ``train_meta_data.json`` holds Train and Development (that downstream splits its own
    dev set off it, by ``valid_ratio``), ``test_meta_data.json`` holds Test. Each entry is
    ``{"path": FileName, "label": "neu"|"hap"|"ang"|"sad", "speaker": SpkrID}`` with the path
    relative to ``<root>/<CORPUS>/Audios``, which is the ``root`` to give the downstream.
    Utterances whose label is outside those four classes are left out and counted.

    Examples:
        >>> summary = export_s3prl_emotion("corpora/IEMOCAP/Primary", "s3prl-emotion/")  # doctest: +SKIP
    """
    corpus_dir = Path(corpus_dir)
    inputs = claim_output(corpus_dir, out_dir, overwrite=overwrite)
    classes = read_config(corpus_dir).classes
    if not {c.lower() for c in classes} & set(S3PRL_EMOTION_CLASS_MAP):
        raise InvalidInputError(
            f"{corpus_dir}: none of the classes {list(classes)} maps to S3PRL's emotion labels "
            f"(expected some of {sorted(S3PRL_EMOTION_CLASS_MAP)})"
        )
    frames = load_folds(corpus_dir)
    written: dict[int, dict[str, int]] = {}
    left_out: dict[int, int] = {}
    with staged_output(out_dir, command=COMMAND, inputs=inputs) as stage:
        for k, frame in frames.items():
            labels = [emotion_label(row, classes) for row in frame[list(classes)].to_numpy(dtype=float)]
            entries = [
                {"path": str(name), "label": label, "speaker": speaker}
                for name, label, speaker in zip(frame["FileName"], labels, _speakers(frame), strict=True)
            ]
            keep = pd.Series([label is not None for label in labels], index=frame.index)
            left_out[k] = int((~keep).sum())
            target = stage / f"Session{k}"
            target.mkdir()
            written[k] = {}
            for file, splits in (("train", (TRAIN, DEVELOPMENT)), ("test", (TEST,))):
                chosen = keep & frame["Split_Set"].isin(splits)
                meta = [e for e, c in zip(entries, chosen, strict=True) if c]
                if not meta:
                    raise InvalidInputError(
                        f"{corpus_dir} fold {k}: no {'/'.join(splits)} utterance has a label in "
                        f"{list(S3PRL_EMOTION_LABELS)}; S3PRL's emotion downstream cannot load an empty set"
                    )
                payload = {"labels": dict(S3PRL_EMOTION_LABELS), "meta_data": meta}
                (target / f"{file}_meta_data.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
                written[k][file] = len(meta)
            logger.info(
                "fold %d: %d train+dev and %d test utterances; %d left out (not neu/hap/ang/sad)",
                k,
                written[k]["train"],
                written[k]["test"],
                left_out[k],
            )
    return ExportSummary(Path(out_dir), "s3prl-emotion", tuple(frames), written, left_out)


def s3prl_emotion_audio_problem() -> str | None:
    """Why S3PRL's ``emotion`` downstream could not read audio here, or None if it can.

    That downstream reads with ``torchaudio.load``; torchaudio 2.9 moved decoding to
    torchcodec, which loads FFmpeg's shared libraries (neither is a dependency of this
    package, whose own audio reading uses soundfile).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        torchaudio_version = version("torchaudio")
    except PackageNotFoundError:
        return "torchaudio is not installed"
    if tuple(int(n) for n in re.findall(r"\d+", torchaudio_version)[:2]) < (2, 9):
        return None
    needs = (
        f"S3PRL's emotion downstream reads audio with torchaudio.load, which on torchaudio "
        f"{torchaudio_version} needs torchcodec and FFmpeg's shared libraries"
    )
    try:
        import torchcodec.decoders  # noqa: F401 - loads FFmpeg's libraries or fails
    except ModuleNotFoundError:
        return f"{needs}: torchcodec is not installed (pip install torchcodec)"
    except (ImportError, OSError, RuntimeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"{needs}: torchcodec cannot load FFmpeg ({first_line})"
    return None


def export_lhotse(corpus_dir: Pathlike, out_dir: Pathlike, *, overwrite: bool = False) -> ExportSummary:
    """Lhotse manifests ``fold<k>/{recordings,supervisions}_{train,dev,test}.jsonl.gz``.

    Recordings point at absolute paths under ``<root>/<CORPUS>/Audios`` and record each file's
    real sampling rate, channels and duration; each supervision spans its recording and holds
    the soft label, the classes above 1/C and the attributes in ``custom``. Every recording
    is read and every pair of manifests validated by lhotse before anything is written.

    Raises:
        InvalidInputError: lhotse is not installed (the message says how to install it), an
            audio file is missing or unreadable, or a name is refused (``check_names``).

    Examples:
        >>> summary = export_lhotse("corpora/IEMOCAP/Primary", "lhotse/")  # doctest: +SKIP
    """
    require_lhotse()
    corpus_dir = Path(corpus_dir)
    inputs = claim_output(corpus_dir, out_dir, overwrite=overwrite)
    classes = read_config(corpus_dir).classes
    frames = load_folds(corpus_dir)
    folds = {k: utterances(frame, classes) for k, frame in frames.items()}
    plan = plan_lhotse(folds, audio_dir_of(corpus_dir), str(corpus_dir))
    with staged_output(out_dir, command=COMMAND, inputs=inputs) as stage:
        write_lhotse(plan, stage, {k: fold_name(k) for k in plan})
    return ExportSummary(Path(out_dir), "lhotse", tuple(frames), {k: _split_counts(f) for k, f in frames.items()})


def export_audiofolder(
    corpus_dir: Pathlike, out_dir: Pathlike, *, overwrite: bool = False, audio: str = "link"
) -> ExportSummary:
    """Hugging Face audiofolder data: ``fold<k>/<train|dev|test>/metadata.csv`` and the audio.

    Each split folder holds its utterances' audio under their ``Audios``-relative path, as
    symbolic links to the corpus's files (``audio="link"``) or as copies (``"copy"``: every
    fold gets its own copy). ``datasets.load_dataset("audiofolder", data_dir=<fold folder>)``
    reads a fold as train, validation and test splits.

    Raises:
        InvalidInputError: ``audio`` is not link or copy, an audio file is missing, or a name
            is refused (``check_names``, ``export_formats.check_audiofolder_names``).

    Examples:
        >>> summary = export_audiofolder("corpora/IEMOCAP/Primary", "audiofolder/")  # doctest: +SKIP
    """
    if audio not in AUDIO_MODES:
        raise InvalidInputError(f"--audio {audio!r}: expected one of {', '.join(AUDIO_MODES)}")
    corpus_dir = Path(corpus_dir)
    inputs = claim_output(corpus_dir, out_dir, overwrite=overwrite)
    classes = read_config(corpus_dir).classes
    frames = load_folds(corpus_dir)
    audio_dir = audio_dir_of(corpus_dir)
    require_audio(audio_dir, list(dict.fromkeys(n for f in frames.values() for n in f["FileName"])), str(corpus_dir))
    plan = {}
    for k, frame in frames.items():
        splits = by_split(utterances(frame, classes))
        for folder, part in splits.items():
            check_audiofolder_names(part, f"{labels_path(corpus_dir, k)} ({folder})")
            if not part:
                logger.warning("%s fold %d: no %s utterances; no %s folder written", corpus_dir, k, folder, folder)
        plan[k] = (audiofolder_columns(classes, frame.columns), splits)
    with staged_output(out_dir, command=COMMAND, inputs=inputs) as stage:
        for k, (columns, splits) in plan.items():
            for folder, part in splits.items():
                if part:
                    write_audiofolder_split(part, columns, audio_dir, stage / fold_name(k) / folder, audio=audio)
    return ExportSummary(Path(out_dir), "audiofolder", tuple(frames), {k: _split_counts(f) for k, f in frames.items()})


EXPORTERS: Mapping[str, Callable[..., ExportSummary]] = {
    "csv": export_csv,
    "kaldi": export_kaldi,
    "s3prl-emotion": export_s3prl_emotion,
    "lhotse": export_lhotse,
    "audiofolder": export_audiofolder,
}
"""Format name -> exporter ``(corpus_dir, out_dir, *, overwrite, ...)``; audiofolder also takes ``audio``."""
