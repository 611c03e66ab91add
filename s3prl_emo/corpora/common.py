"""What every corpus recipe produces, and the one writer that turns it into the EMO-SUPERB layout.

A recipe module ``corpora/<corpus>.py`` has two public functions:

* ``read_<corpus>(corpus_dir) -> list[Utterance]`` parses the raw release (per-annotator votes
  in the corpus's own spelling, speaker, gender, session, averaged dimensional scores) and
  applies no label policy.
* ``prepare_<corpus>(corpus_dir, output_dir=None, *, audio="symlink", relabel=None,
  smoothing=DEFAULT_SMOOTHING, overwrite=False) -> PreparedCorpus`` composes the shared parts
  below: ``build_corpus`` (label policy, exclusions, splits, manifest; no disk writes) and, when
  ``output_dir`` is given, ``write_corpus`` (staged write of ``<output_dir>/<name>/``).

Shared API (kept stable; other recipes build on it)::

    Condition(annotation, classes, description, dimensional_range=None, min_annotators=1)
    build_corpus(utterances, *, corpus, name, conditions, folds, splitter, raw_dir, sources,
                 rules, smoothing=DEFAULT_SMOOTHING, relabel=None, excluded=None) -> PreparedCorpus
    write_corpus(prepared, output_dir, *, audio="symlink", overwrite=False) -> Path
    session_splitter(corpus) -> Splitter        # partitions.assign_splits on file names
    corpus_set_splitter(corpus) -> Splitter     # partitions.split_of_corpus_set on corpus_set
    read_relabel(path, classes) -> dict[str, np.ndarray]
    sha256_file(path) -> str
    require_dir(path, what) -> Path
    AUDIO_MODES, EXCLUDED_OTHER, EXCLUDED_FEW_ANNOTATORS, UNKNOWN_SPEAKERS

``Splitter`` is ``(fold, kept_utterances) -> one split name per utterance``; ``PreparedCorpus``
holds ``corpus``, ``name``, the kept ``utterances``, ``conditions`` (annotation ->
``PreparedCondition(condition, frames={fold: DataFrame}, excluded={reason: names},
relabelled)``) and the ``manifest`` dict. The manifest hashes the annotation/metadata files
passed as ``sources`` (not the audio, which may be hundreds of hours).

Output, per corpus: ``<output_dir>/<name>/Audios/<FileName>`` (symlink or copy),
``<name>/<annotation>/config.json`` and ``labels_consensus_<k>.csv`` per condition and fold,
and ``<name>/manifest.json`` (sources with sha256, package version, rules, exclusions).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .. import __version__, partitions
from ..errors import CorpusLayoutError, InvalidInputError
from ..labels import ALIASES, DEFAULT_SMOOTHING, canonical_class, soft_labels
from ..layout import (
    DIMENSIONAL_COLUMNS,
    SUM_TOLERANCE,
    CorpusConfig,
    Pathlike,
    label_frame,
    labels_path,
    staged_dir,
    write_config,
    write_labels,
)

logger = logging.getLogger(__name__)

Vote = str | Sequence[str]  # one annotator: a class name, or several for a multi-choice answer

AUDIO_MODES = ("symlink", "copy")
# Exclusion reasons, as they appear in manifest.json and the log summary.
EXCLUDED_OTHER = "no vote inside the class list (all 'other')"
EXCLUDED_FEW_ANNOTATORS = "fewer annotators than required"
UNKNOWN_SPEAKERS = partitions.UNKNOWN_SPEAKERS


@dataclass(frozen=True)
class Utterance:
    """One labelled utterance of a raw release, before any label policy is applied.

    ``votes`` maps an annotation type ("Primary", "Secondary") to one entry per annotator,
    in the corpus's own spelling; ``corpus_set`` is the corpus's own partition name where
    the release defines one (MSP-PODCAST "Train", "Test1", ...).
    """

    file_name: str
    audio_path: Path
    speaker: str
    gender: str | None
    session: str
    votes: dict[str, tuple[Vote, ...]]
    dimensional: dict[str, float] = field(default_factory=dict)
    corpus_set: str | None = None


@dataclass(frozen=True)
class Condition:
    """One annotation type of a corpus, written to ``<name>/<annotation>/``.

    ``annotation`` is both the key into ``Utterance.votes`` and the folder name;
    ``dimensional_range`` becomes config.json's "dimensional" entry (None: no entry);
    utterances with fewer than ``min_annotators`` votes are excluded (NNIME: 3).
    """

    annotation: str
    classes: tuple[str, ...]
    description: str
    dimensional_range: dict[str, object] | None = None
    min_annotators: int = 1


@dataclass(frozen=True)
class PreparedCondition:
    """The label tables of one condition: ``frames[k]`` is ``labels_consensus_<k>.csv``."""

    condition: Condition
    frames: dict[int, pd.DataFrame]
    excluded: dict[str, tuple[str, ...]]  # reason -> file names
    relabelled: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedCorpus:
    """A corpus ready to write: ``utterances`` are those kept by at least one condition."""

    corpus: str
    name: str
    utterances: tuple[Utterance, ...]
    conditions: dict[str, PreparedCondition]
    manifest: dict


# (fold, utterances) -> one split name ("Train", "Development", "Test") per utterance.
Splitter = Callable[[int, Sequence[Utterance]], Sequence[str]]


def session_splitter(corpus: str) -> Splitter:
    """Splits from the published fold table, looked up by file name (IEMOCAP, CREMA-D, ...)."""
    def split(fold: int, utterances: Sequence[Utterance]) -> Sequence[str]:
        return partitions.assign_splits(corpus, fold, [u.file_name for u in utterances])

    return split


def corpus_set_splitter(corpus: str) -> Splitter:
    """Splits from the release's own partition (``Utterance.corpus_set``; podcast corpora)."""
    def split(fold: int, utterances: Sequence[Utterance]) -> Sequence[str]:
        return [partitions.split_of_corpus_set(corpus, u.corpus_set) for u in utterances]

    return split


def sha256_file(path: Pathlike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_dir(path: Pathlike, what: str) -> Path:
    """``path`` as a Path, or CorpusLayoutError naming what was expected there."""
    path = Path(path)
    if not path.is_dir():
        raise CorpusLayoutError(f"{path}: no such directory; expected {what}")
    return path


def read_relabel(path: Pathlike, classes: Sequence[str]) -> dict[str, np.ndarray]:
    """Read an externally adjusted label file: ``FileName`` plus one column per class.

    Columns may come in any order; each row must be numeric, non-negative and sum to 1.
    Returns file name -> distribution in ``classes`` order.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusLayoutError(f"{path}: no such relabel file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{path}: not a readable CSV ({err})") from err
    header = [str(c) for c in frame.columns]
    if "FileName" not in header or set(header) - {"FileName"} != set(classes):
        raise InvalidInputError(
            f"{path}, line 1: header {header}; expected FileName plus one column per class {list(classes)}"
        )
    out: dict[str, np.ndarray] = {}
    for row, record in enumerate(frame.itertuples(index=False)):
        line = row + 2
        values = dict(zip(header, record, strict=True))
        name = values["FileName"].strip()
        try:
            dist = np.array([float(values[c]) for c in classes])
        except ValueError as err:
            raise InvalidInputError(f"{path}, line {line} ({name}): non-numeric class value ({err})") from err
        if not name:
            raise InvalidInputError(f"{path}, line {line}: empty FileName")
        if name in out:
            raise InvalidInputError(f"{path}, line {line}: duplicate FileName {name!r}")
        if not np.isfinite(dist).all() or (dist < 0).any() or abs(dist.sum() - 1.0) > SUM_TOLERANCE:
            raise InvalidInputError(
                f"{path}, line {line} ({name}): values {dist.tolist()}; expected non-negative numbers "
                f"summing to 1 (within {SUM_TOLERANCE})"
            )
        out[name] = dist
    return out


def _relabel_target(path: Path, conditions: Sequence[Condition]) -> Condition:
    """The condition whose class set the relabel file's header lists."""
    try:
        header = set(pd.read_csv(path, nrows=0).columns) - {"FileName"}
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InvalidInputError(f"{path}: not a readable CSV ({err})") from err
    for condition in conditions:
        if header == set(condition.classes):
            return condition
    expected = "; ".join(f"{c.annotation}: {list(c.classes)}" for c in conditions)
    raise InvalidInputError(
        f"{path}, line 1: class columns {sorted(header)} match no condition; expected FileName plus "
        f"the classes of one of {expected}"
    )


def _label_condition(
    utterances: Sequence[Utterance], condition: Condition, alias_key: str, smoothing: float
) -> tuple[list[Utterance], np.ndarray, dict[str, list[str]]]:
    kept: list[Utterance] = []
    rows: list[np.ndarray] = []
    excluded: dict[str, list[str]] = {}
    for utt in utterances:
        votes = utt.votes.get(condition.annotation, ())
        if len(votes) < condition.min_annotators:
            excluded.setdefault(EXCLUDED_FEW_ANNOTATORS, []).append(utt.file_name)
            continue
        names = [n for vote in votes for n in ([vote] if isinstance(vote, str) else vote)]
        if not any(canonical_class(n, condition.classes, alias_key) for n in names):
            excluded.setdefault(EXCLUDED_OTHER, []).append(utt.file_name)
            continue
        kept.append(utt)
        rows.append(soft_labels(votes, condition.classes, smoothing, aliases=alias_key))
    labels = np.stack(rows) if rows else np.zeros((0, len(condition.classes)))
    return kept, labels, excluded


def _dimensional_columns(utterances: Sequence[Utterance]) -> dict[str, list[float]] | None:
    present = [c for c in DIMENSIONAL_COLUMNS if any(c in u.dimensional for u in utterances)]
    if not present:
        return None
    return {c: [u.dimensional.get(c, float("nan")) for u in utterances] for c in present}


def _check_splits(corpus: str, condition: Condition, fold: int, frame: pd.DataFrame) -> None:
    """Refuse a fold that puts a speaker or session in two splits (unknown speakers are not checked)."""
    problems = partitions.fold_violations(frame, corpus=corpus)
    if problems:
        raise InvalidInputError(
            f"{corpus} {condition.annotation} fold {fold}: the partition leaks across splits: "
            + "; ".join(problems[:5])
        )


def build_corpus(
    utterances: Sequence[Utterance],
    *,
    corpus: str,
    name: str,
    conditions: Sequence[Condition],
    folds: Sequence[int],
    splitter: Splitter,
    raw_dir: Pathlike,
    sources: Iterable[Pathlike],
    rules: Mapping[str, object],
    smoothing: float = DEFAULT_SMOOTHING,
    relabel: Pathlike | None = None,
    excluded: Mapping[str, Sequence[str]] | None = None,
) -> PreparedCorpus:
    """Apply the EMO-SUPERB label policy and the partition; build every table and the manifest.

    Per condition: utterances with fewer than ``min_annotators`` votes or with no vote in the
    class list are excluded and counted; the rest get ``labels.soft_labels`` (alias table
    ``corpus``) and, per fold, the split ``splitter`` gives. ``relabel`` replaces the rows of
    the condition whose classes its header lists. ``excluded`` (reason -> file names) records
    what the recipe itself dropped while reading. ``rules`` (corpus-specific: class-list source,
    exclusion rules, partition source, ...) goes into the manifest as is. Nothing is written.
    """
    if len({u.file_name for u in utterances}) != len(utterances):
        dup = Counter(u.file_name for u in utterances).most_common(1)[0][0]
        raise InvalidInputError(f"{corpus}: file name {dup!r} occurs more than once in the release")
    alias_key = corpus if corpus in ALIASES else None
    raw_dir = Path(raw_dir)
    relabel_path = Path(relabel) if relabel is not None else None
    if relabel_path is not None and not relabel_path.is_file():
        raise CorpusLayoutError(f"{relabel_path}: no such relabel file")
    relabel_target = _relabel_target(relabel_path, conditions) if relabel_path is not None else None

    prepared: dict[str, PreparedCondition] = {}
    kept_names: set[str] = set()
    for condition in conditions:
        kept, labels, dropped = _label_condition(utterances, condition, alias_key, smoothing)
        for reason, names in (excluded or {}).items():
            dropped.setdefault(reason, []).extend(names)
        relabelled: tuple[str, ...] = ()
        if condition is relabel_target:
            labels, relabelled = _apply_relabel(relabel_path, condition, kept, labels, dropped)
        frames = {}
        for fold in folds:
            splits = list(splitter(fold, kept))
            frame = label_frame(
                [u.file_name for u in kept], labels, condition.classes, splits,
                speakers=[u.speaker for u in kept] if any(u.speaker for u in kept) else None,
                genders=[u.gender or "" for u in kept] if any(u.gender for u in kept) else None,
                dimensional=_dimensional_columns(kept),
            )
            _check_splits(corpus, condition, fold, frame)
            frames[fold] = frame
        prepared[condition.annotation] = PreparedCondition(
            condition, frames, {r: tuple(n) for r, n in dropped.items()}, relabelled
        )
        kept_names.update(u.file_name for u in kept)
        for reason, names in dropped.items():
            logger.info("%s %s: excluded %d utterance(s): %s", name, condition.annotation, len(names), reason)
        logger.info("%s %s: %d utterances, %d folds", name, condition.annotation, len(kept), len(folds))

    pre_excluded = {n for names in (excluded or {}).values() for n in names}
    n_read = len(utterances) + len(pre_excluded - {u.file_name for u in utterances})
    manifest = _manifest(
        corpus, name, prepared, raw_dir, sources, rules, smoothing, alias_key, relabel_path, n_read
    )
    kept_utts = tuple(u for u in utterances if u.file_name in kept_names)
    return PreparedCorpus(corpus, name, kept_utts, prepared, manifest)


def _apply_relabel(
    path: Path, condition: Condition, kept: Sequence[Utterance], labels: np.ndarray,
    dropped: Mapping[str, Sequence[str]],
) -> tuple[np.ndarray, tuple[str, ...]]:
    table = read_relabel(path, condition.classes)
    row_of = {u.file_name: i for i, u in enumerate(kept)}
    excluded_reason = {n: r for r, names in dropped.items() for n in names}
    labels = labels.copy()
    for line, (file_name, dist) in enumerate(table.items(), start=2):
        if file_name not in row_of:
            why = (f"it was excluded ({excluded_reason[file_name]})" if file_name in excluded_reason
                   else f"it is not an utterance of {condition.annotation}")
            raise InvalidInputError(
                f"{path}, line {line}: unknown FileName {file_name!r}: {why}; expected a file name "
                "of the prepared label table"
            )
        labels[row_of[file_name]] = dist
    logger.info("%s: replaced %d %s label row(s)", path, len(table), condition.annotation)
    return labels, tuple(table)


def _manifest(
    corpus: str, name: str, prepared: Mapping[str, PreparedCondition], raw_dir: Path,
    sources: Iterable[Pathlike], rules: Mapping[str, object], smoothing: float,
    alias_key: str | None, relabel: Path | None, n_read: int,
) -> dict:
    files = []
    for source in sorted({Path(s) for s in sources}):
        try:
            shown = source.relative_to(raw_dir).as_posix()
        except ValueError:
            shown = str(source)
        files.append({"path": shown, "sha256": sha256_file(source)})
    return {
        "corpus": corpus,
        "name": name,
        "package": "s3prl-emo",
        "version": __version__,
        "raw_dir": str(raw_dir.resolve()),
        "source_files": files,
        "utterances_read": n_read,
        "rules": {
            "soft_labels": "every selected class is one vote; votes outside the class list are dropped",
            "smoothing": smoothing,
            "smoothing_formula": "p = (1 - a) q + a / K, a = smoothing K / (K - 1)",
            "alias_table": dict(ALIASES[alias_key]) if alias_key else {},
            **dict(rules),
        },
        "conditions": {
            annotation: {
                "classes": list(p.condition.classes),
                "min_annotators": p.condition.min_annotators,
                "utterances": len(next(iter(p.frames.values()))) if p.frames else 0,
                "folds": sorted(p.frames),
                "excluded_counts": {r: len(n) for r, n in p.excluded.items()},
                "excluded": {r: sorted(n) for r, n in p.excluded.items()},
                "relabelled": list(p.relabelled),
            }
            for annotation, p in prepared.items()
        },
        "relabel": None if relabel is None else {
            "path": str(relabel.resolve()), "sha256": sha256_file(relabel),
            "condition": next((a for a, p in prepared.items() if p.relabelled), None),
        },
    }


def write_corpus(
    prepared: PreparedCorpus, output_dir: Pathlike, *, audio: str = "symlink", overwrite: bool = False
) -> Path:
    """Write ``<output_dir>/<name>/`` in the EMO-SUPERB layout; returns that folder.

    Staged in a temporary sibling and moved into place only when complete, so a failed run
    leaves nothing at the destination. ``audio``: "symlink" (absolute links) or "copy".
    """
    if audio not in AUDIO_MODES:
        raise InvalidInputError(f"write_corpus: audio={audio!r}; expected one of {list(AUDIO_MODES)}")
    final = Path(output_dir) / prepared.name
    with staged_dir(final, overwrite=overwrite) as stage:
        audios = stage / "Audios"
        audios.mkdir()
        for utt in tqdm(prepared.utterances, desc=f"{prepared.name} audio ({audio})", unit="file"):
            if not utt.audio_path.is_file():
                raise CorpusLayoutError(f"{utt.audio_path}: audio of {utt.file_name} is missing")
            target = audios / utt.file_name
            if audio == "copy":
                shutil.copy2(utt.audio_path, target)
            else:
                target.symlink_to(utt.audio_path.resolve())
        for annotation, cond in prepared.conditions.items():
            folder = stage / annotation
            folder.mkdir()
            write_config(
                CorpusConfig(
                    classes=cond.condition.classes,
                    description=cond.condition.description,
                    dimensional=cond.condition.dimensional_range,
                ),
                folder,
            )
            for fold, frame in cond.frames.items():
                write_labels(frame, labels_path(folder, fold))
        manifest = dict(prepared.manifest, audio=audio)
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    logger.info("%s: wrote %s", prepared.name, final)
    return final
