"""Write the folds of a prepared corpus in the formats other toolkits read.

Input is ``<root>/<CORPUS>/Primary|Secondary`` (config.json + labels_consensus_<k>.csv);
the audio is in ``<root>/<CORPUS>/Audios``. Every exporter stages its output in a temporary
folder that replaces ``out_dir`` only when complete, so nothing half-written remains.

- csv: ``fold<k>.csv`` with FileName, SpkrID, Split_Set.
- kaldi: ``fold<k>/<train|dev|test>/{wav.scp,utt2spk,spk2utt}``; utterance ids are
  ``<speaker>-<file stem>`` so that sorting by utterance and by speaker agree.
- s3prl-emotion: ``Session<k>/{train,test}_meta_data.json`` for S3PRL's built-in
  ``emotion`` downstream (4 classes, excited merged into happy); pass the corpus's
  ``Audios`` folder as that downstream's ``root``. That downstream reads audio with
  ``torchaudio.load``, which on torchaudio >= 2.9 needs torchcodec and FFmpeg's shared
  libraries (:func:`s3prl_emotion_audio_problem` says whether they are there).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..runtime.atomic import staged_dir
from .audit import read_folds
from .layout import DEVELOPMENT, TEST, TRAIN, Pathlike, fold_name, read_config
from .partitions import corpus_key, fold_violations

logger = logging.getLogger(__name__)

KALDI_SPLITS = {TRAIN: "train", DEVELOPMENT: "dev", TEST: "test"}
# S3PRL's emotion downstream (IEMOCAP_preprocess.py): four classes, "exc" merged into "hap".
S3PRL_EMOTION_LABELS = {"neu": 0, "hap": 1, "ang": 2, "sad": 3}
S3PRL_EMOTION_CLASS_MAP = {"neutral": "neu", "happy": "hap", "excited": "hap", "angry": "ang", "sad": "sad"}


@dataclass(frozen=True)
class ExportSummary:
    """What an exporter wrote: where, which folds, and how many utterances it left out."""

    out_dir: Path
    format: str
    folds: tuple[int, ...]
    # fold -> split (csv, kaldi) or meta-data file (s3prl-emotion: train, test) -> utterances
    written: dict[int, dict[str, int]] = field(default_factory=dict)
    left_out: dict[int, int] = field(default_factory=dict)  # fold -> utterances not written


def _load(corpus_dir: Pathlike) -> dict[int, pd.DataFrame]:
    """Validated folds; leakage is logged, not fatal (``check-splits`` is the place for that)."""
    corpus_dir = Path(corpus_dir)
    frames = read_folds(corpus_dir)
    key = corpus_key(corpus_dir.parent.name)
    for k, frame in frames.items():
        problems = fold_violations(frame, corpus=key)
        if problems:
            logger.warning("%s fold %d: %d leakage problem(s), e.g. %s; run check-splits",
                           corpus_dir, k, len(problems), problems[0])
    return frames


def _speakers(frame: pd.DataFrame) -> pd.Series:
    """SpkrID as text, "" where the file has no speaker."""
    if "SpkrID" not in frame.columns:
        return pd.Series([""] * len(frame), index=frame.index, dtype=object)
    return frame["SpkrID"].astype(object).where(frame["SpkrID"].notna(), "").astype(str).str.strip()


def _split_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {split: int((frame["Split_Set"] == split).sum()) for split in KALDI_SPLITS}


def export_csv(corpus_dir: Pathlike, out_dir: Pathlike, *, overwrite: bool = False) -> ExportSummary:
    """One ``fold<k>.csv`` per fold with columns FileName, SpkrID, Split_Set."""
    frames = _load(corpus_dir)
    with staged_dir(out_dir, overwrite=overwrite) as stage:
        for k, frame in frames.items():
            table = pd.DataFrame({"FileName": frame["FileName"], "SpkrID": _speakers(frame),
                                  "Split_Set": frame["Split_Set"]})
            table.to_csv(stage / f"{fold_name(k)}.csv", index=False)
    return ExportSummary(Path(out_dir), "csv", tuple(frames),
                         {k: _split_counts(f) for k, f in frames.items()})


def _kaldi_ids(frame: pd.DataFrame, where: str) -> list[tuple[str, str]]:
    """(utterance id, speaker id) per row; a row without speaker is its own speaker."""
    pairs = []
    for name, speaker in zip(frame["FileName"], _speakers(frame), strict=True):
        stem = os.path.splitext(str(name))[0].replace("/", "_").replace("\\", "_")
        for what, value in (("FileName", stem), ("SpkrID", speaker)):
            if any(c.isspace() for c in value):
                raise InvalidInputError(
                    f"{where}: {what} {value!r} contains whitespace; Kaldi ids cannot. Rename it."
                )
        pairs.append((f"{speaker}-{stem}", speaker) if speaker else (stem, stem))
    seen = Counter(utt for utt, _ in pairs)
    twice = [utt for utt, n in seen.items() if n > 1]
    if twice:
        raise InvalidInputError(f"{where}: Kaldi utterance id {twice[0]!r} occurs twice "
                                "(two files with the same stem?); ids must be unique")
    return pairs


def _check_kaldi_order(pairs: list[tuple[str, str]], where: str) -> None:
    """Kaldi needs utt2spk sorted by utterance to also be sorted by speaker."""
    speakers = [spk for _, spk in sorted(pairs)]
    for before, after in zip(speakers, speakers[1:], strict=False):
        if after < before:
            raise InvalidInputError(
                f"{where}: speaker ids {before!r} and {after!r} sort differently once used as "
                "utterance-id prefixes; use speaker ids without characters that sort before '-'"
            )


def export_kaldi(corpus_dir: Pathlike, out_dir: Pathlike, *, overwrite: bool = False) -> ExportSummary:
    """Kaldi data folders ``fold<k>/<train|dev|test>/`` with wav.scp, utt2spk and spk2utt.

    wav.scp points at absolute paths under ``<root>/<CORPUS>/Audios``. All files are
    sorted in C (code point) order, as Kaldi's ``validate_data_dir.sh`` expects.
    """
    corpus_dir = Path(corpus_dir)
    frames = _load(corpus_dir)
    audio_dir = Path(os.path.abspath(corpus_dir.parent / "Audios"))
    missing = 0
    with staged_dir(out_dir, overwrite=overwrite) as stage:
        for k, frame in frames.items():
            for split, folder in KALDI_SPLITS.items():
                part = frame[frame["Split_Set"] == split]
                where = f"{corpus_dir} fold {k} {split}"
                pairs = _kaldi_ids(part, where)
                _check_kaldi_order(pairs, where)
                names = part["FileName"]
                paths = {utt: audio_dir / name for (utt, _), name in zip(pairs, names, strict=True)}
                missing += sum(not p.is_file() for p in paths.values())
                by_speaker: dict[str, list[str]] = {}
                for utt, spk in sorted(pairs):
                    by_speaker.setdefault(spk, []).append(utt)
                target = stage / fold_name(k) / folder
                target.mkdir(parents=True)
                _write_lines(target / "wav.scp", [f"{utt} {paths[utt]}" for utt in sorted(paths)])
                _write_lines(target / "utt2spk", [f"{utt} {spk}" for utt, spk in sorted(pairs)])
                _write_lines(target / "spk2utt",
                             [f"{spk} {' '.join(utts)}" for spk, utts in sorted(by_speaker.items())])
                if not pairs:
                    logger.warning("%s: no utterances; its Kaldi files are empty", where)
    if missing:
        logger.warning("wav.scp lists %d file(s) that do not exist under %s", missing, audio_dir)
    return ExportSummary(Path(out_dir), "kaldi", tuple(frames),
                         {k: _split_counts(f) for k, f in frames.items()})


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def emotion_label(soft_label: np.ndarray, classes: tuple[str, ...]) -> str | None:
    """S3PRL emotion class (neu/hap/ang/sad) of one soft label, or None to leave it out.

    The highest class wins; excited counts as happy. Left out: a top class outside the four
    (fear, frustrated, ...) and a tie between classes that map to different labels.
    """
    values = np.asarray(soft_label, dtype=float)
    top = {classes[j].lower() for j in np.flatnonzero(np.isclose(values, values.max(), rtol=0, atol=1e-9))}
    mapped = {S3PRL_EMOTION_CLASS_MAP.get(c) for c in top}
    return mapped.pop() if len(mapped) == 1 and None not in mapped else None


def export_s3prl_emotion(
    corpus_dir: Pathlike, out_dir: Pathlike, *, overwrite: bool = False
) -> ExportSummary:
    """Meta-data JSON for S3PRL's ``emotion`` downstream, one ``Session<k>/`` per fold.

    ``train_meta_data.json`` holds Train and Development (that downstream splits its own
    dev set off it, by ``valid_ratio``), ``test_meta_data.json`` holds Test. Each entry is
    ``{"path": FileName, "label": "neu"|"hap"|"ang"|"sad", "speaker": SpkrID}`` with the path
    relative to ``<root>/<CORPUS>/Audios``, which is the ``root`` to give the downstream.
    Utterances whose label is outside those four classes are left out and counted.
    """
    corpus_dir = Path(corpus_dir)
    classes = read_config(corpus_dir).classes
    if not {c.lower() for c in classes} & set(S3PRL_EMOTION_CLASS_MAP):
        raise InvalidInputError(
            f"{corpus_dir}: none of the classes {list(classes)} maps to S3PRL's emotion labels "
            f"(expected some of {sorted(S3PRL_EMOTION_CLASS_MAP)})"
        )
    frames = _load(corpus_dir)
    written: dict[int, dict[str, int]] = {}
    left_out: dict[int, int] = {}
    with staged_dir(out_dir, overwrite=overwrite) as stage:
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
                (target / f"{file}_meta_data.json").write_text(json.dumps(payload, indent=1) + "\n")
                written[k][file] = len(meta)
            logger.info("fold %d: %d train+dev and %d test utterances; %d left out (not neu/hap/ang/sad)",
                        k, written[k]["train"], written[k]["test"], left_out[k])
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
    needs = (f"S3PRL's emotion downstream reads audio with torchaudio.load, which on torchaudio "
             f"{torchaudio_version} needs torchcodec and FFmpeg's shared libraries")
    try:
        import torchcodec.decoders  # noqa: F401 - loads FFmpeg's libraries or fails
    except ModuleNotFoundError:
        return f"{needs}: torchcodec is not installed (pip install torchcodec)"
    except (ImportError, OSError, RuntimeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"{needs}: torchcodec cannot load FFmpeg ({first_line})"
    return None


EXPORTERS: Mapping[str, Callable[..., ExportSummary]] = {
    "csv": export_csv,
    "kaldi": export_kaldi,
    "s3prl-emotion": export_s3prl_emotion,
}
