"""Bring your own corpus: a folder of audio files plus two small CSV files.

Expected input::

    <corpus_dir>/**/<FileName>          # audio (wav, flac, ...), in any sub-folder
    VOTES.csv   FileName,annotator,emotion
                a01.wav,rater1,happy
                a01.wav,rater2,happy;surprise     # a multi-choice answer: classes joined by ";"
                a01.wav,rater3,other              # an annotation outside the class list
    META.csv    FileName,SpkrID,Gender,Session
                a01.wav,spk1,Female,s1

Writes ``<output_dir>/<name>/Primary`` with ``labels_consensus_1..K.csv``. Soft labels follow
the EMO-SUPERB rule (:func:`s3prl_emo.data.labels.soft_labels`, shared aliases); utterances whose
annotators all answered "other" get no label and are excluded (and counted in the manifest).
Folds are session-level (:func:`s3prl_emo.data.partitions.balanced_session_folds`, balanced by
utterance count, deterministic for a seed): fold k tests one group of sessions, develops on
the next and trains on the rest. A speaker must keep one session, so no speaker is in two
splits of a fold.
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import CorpusLayoutError, InvalidInputError
from ...runtime.paths import Pathlike
from ..labels import DEFAULT_SMOOTHING, OTHER
from ..layout import check_class_names, plain_file_name_problem
from .builder import balanced_partition, prepare_corpus
from .raw import VOTE_COLUMNS, Row, annotator_rows, index_audio, read_csv_rows
from .record import Corpus
from .types import Condition, PreparedCorpus, Reading, Recipe, Utterance

logger = logging.getLogger(__name__)

CORPUS = "generic"
VOTES_COLUMNS = VOTE_COLUMNS
META_COLUMNS = ("FileName", "SpkrID", "Gender", "Session")
GENDERS = ("Male", "Female")
DEFAULT_FOLDS = 5
DEFAULT_NAME = "GENERIC"
DEFAULT_SEED = 0
ANNOTATION = "Primary"


def parse_classes(classes: str | Sequence[str]) -> tuple[str, ...]:
    """``"angry,sad"`` or ``["angry", "sad"]`` -> ``("angry", "sad")``, checked.

    Votes are matched without case, so two classes that differ only by case are refused; so
    are "other", a class holding ``,`` or ``;``, and the label file's own columns
    (``layout.check_class_names``: ``FileName``, ``Split_Set``, ``SpkrID``, ``Gender``, ...).

    Examples:
        >>> parse_classes(" angry, sad ")
        ('angry', 'sad')
    """
    if isinstance(classes, str):
        classes = classes.split(",")
    names = tuple(c.strip() if isinstance(c, str) else c for c in classes)
    shown = ",".join(map(str, names))
    if len(names) < 2 or any(not n for n in names):
        raise InvalidInputError(f"--classes {shown!r}: expected at least two non-empty class names")
    check_class_names(names, where=f"--classes {shown!r}")
    if any("," in n for n in names):
        raise InvalidInputError(f"--classes {shown!r}: class names cannot contain ','")
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered):
        same = sorted({n for n in names if lowered.count(n.lower()) > 1})
        raise InvalidInputError(f"--classes {shown!r}: class names must be distinct without case, got {same}")
    if OTHER in lowered:
        raise InvalidInputError(f"--classes {shown!r}: {OTHER!r} cannot be a class; it marks dropped votes")
    return names


def check_name(name: str) -> str:
    """``name`` if it is a plain folder name (the output goes to ``<output_dir>/<name>``).

    Raises:
        InvalidInputError: for a name with a folder part, surrounding space or control characters,
            which would write outside ``<output_dir>`` or into an odd folder.

    Examples:
        >>> check_name("MyCorpus")
        'MyCorpus'
    """
    if (
        not name
        or name in (".", "..")
        or any(c in name for c in "/\\")
        or name != name.strip()
        or not name.isprintable()
    ):
        raise InvalidInputError(f"--name {name!r}: expected a plain folder name such as {DEFAULT_NAME}")
    return name


def _normalise_gender(value: str, where: str) -> str:
    for gender in GENDERS:
        if value.strip().lower() == gender.lower():
            return gender
    raise InvalidInputError(f"{where}: Gender {value!r}; expected one of {list(GENDERS)}")


def _read_meta(meta: Path) -> dict[str, tuple[Row, str]]:
    """FileName -> (row, gender); duplicates, empty cells and speakers in two sessions are errors."""
    by_name: dict[str, tuple[Row, str]] = {}
    first_seen: dict[str, tuple[str, str, int]] = {}  # speaker -> (session, gender, line)
    for row in read_csv_rows(meta, META_COLUMNS, what="metadata"):
        where = f"{meta}, line {row.line}"
        name, speaker, session = row.cells["FileName"], row.cells["SpkrID"], row.cells["Session"]
        empty = [c for c in META_COLUMNS if not row.cells[c]]
        if empty:
            raise InvalidInputError(f"{where}: empty {empty}; each of {list(META_COLUMNS)} needs a value")
        if name in by_name:
            raise InvalidInputError(
                f"{where}: duplicate row for {name!r} (first on line {by_name[name][0].line}); "
                "keep one metadata row per file"
            )
        gender = _normalise_gender(row.cells["Gender"], where)
        first_session, first_gender, first_line = first_seen.setdefault(speaker, (session, gender, row.line))
        if first_session != session:
            raise InvalidInputError(
                f"{where}: speaker {speaker!r} in session {session!r}, but in {first_session!r} on line "
                f"{first_line}; folds keep sessions together, so each speaker needs one session"
            )
        if first_gender != gender:
            raise InvalidInputError(
                f"{where}: speaker {speaker!r} is {gender}, but {first_gender} on line {first_line}"
            )
        by_name[name] = (row, gender)
    return by_name


def read_generic(
    corpus_dir: Pathlike, *, votes: Pathlike, meta: Pathlike, classes: str | Sequence[str]
) -> list[Utterance]:
    """Parse the votes and metadata of a user corpus; no label policy, no exclusion.

    Every annotation must name classes of ``classes`` or "other"; every voted file must have
    audio under ``corpus_dir`` and one metadata row. Utterances come in votes-file order.
    """
    corpus_dir, votes, meta = Path(corpus_dir), Path(votes), Path(meta)
    names = parse_classes(classes)
    audio = index_audio(corpus_dir)
    meta_rows = _read_meta(meta)
    answers: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    first_line: dict[str, int] = {}
    for row, _, choices in annotator_rows(votes, names, what="votes"):
        name = row.cells["FileName"]
        first_line.setdefault(name, row.line)
        answers[name].append(choices)
    if not answers:
        raise InvalidInputError(f"{votes}: no votes; expected rows of {list(VOTES_COLUMNS)}")
    utterances = []
    for name, chosen in answers.items():
        where = f"{votes}, line {first_line[name]}"
        problem = plain_file_name_problem(name)
        if problem:
            raise InvalidInputError(f"{where}: FileName {name!r} {problem}")
        if name not in audio:
            raise CorpusLayoutError(f"{where}: no audio file {name!r} under {corpus_dir}")
        if name not in meta_rows:
            raise InvalidInputError(
                f"{where}: {name!r} has no row in {meta}; expected one row of {','.join(META_COLUMNS)} per file"
            )
        row, gender = meta_rows[name]
        utterances.append(
            Utterance(
                file_name=name,
                audio_path=audio[name],
                speaker=row.cells["SpkrID"],
                gender=gender,
                session=row.cells["Session"],
                votes={ANNOTATION: tuple(c[0] if len(c) == 1 else c for c in chosen)},
            )
        )
    unused = len(set(meta_rows) - set(answers))
    if unused:
        logger.info("%s: %d metadata row(s) have no votes and are ignored", meta, unused)
    return utterances


def prepare_generic(
    corpus_dir: Pathlike,
    output_dir: Pathlike | None = None,
    *,
    votes: Pathlike,
    meta: Pathlike,
    classes: str | Sequence[str],
    folds: int = DEFAULT_FOLDS,
    name: str = DEFAULT_NAME,
    seed: int = DEFAULT_SEED,
    audio: str = "symlink",
    relabel: Pathlike | None = None,
    smoothing: float = DEFAULT_SMOOTHING,
    overwrite: bool = False,
) -> PreparedCorpus:
    """Soft labels and ``folds`` session-level folds for a user corpus.

    Written when ``output_dir`` is given (``<output_dir>/<name>/Primary``); without it the
    prepared tables are only returned, so a layout can be checked before anything is written.
    """
    name = check_name(name)
    class_names = parse_classes(classes)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 3:
        raise InvalidInputError(f"--folds {folds!r}: expected an integer >= 3 (train, dev and test groups)")
    utterances = read_generic(corpus_dir, votes=votes, meta=meta, classes=class_names)
    recipe = Recipe(
        CORPUS,
        name,
        (Condition(ANNOTATION, class_names, f"{name} corpus - {len(class_names)} classes"),),
        {
            "classes": f"--classes {','.join(class_names)}",
            "votes": "one row per annotator; several classes joined by ';'; 'other' is dropped",
            "partition": f"balanced_session_folds: {folds} session-level folds, seed {seed}; fold k "
            "tests session group k, develops on group k+1 and trains on the rest",
        },
        partition=balanced_partition(folds, seed=seed),
    )
    reading = Reading(utterances, Path(corpus_dir), [Path(votes), Path(meta)])
    return prepare_corpus(
        reading, recipe, output_dir, audio=audio, relabel=relabel, smoothing=smoothing, overwrite=overwrite
    )


def add_options(parser: argparse.ArgumentParser) -> None:
    """The flags of ``s3prl-emo prepare generic``; their dest names are ``prepare_generic``'s arguments."""
    group = parser.add_argument_group("generic corpus")
    group.add_argument("--votes", metavar="VOTES.csv", required=True, help="FileName,annotator,emotion rows")
    group.add_argument("--meta", metavar="META.csv", required=True, help="FileName,SpkrID,Gender,Session rows")
    group.add_argument("--classes", metavar="a,b,c", required=True, help="class list, in column order")
    group.add_argument("--folds", type=int, metavar="K", default=DEFAULT_FOLDS, help="number of folds")
    group.add_argument("--name", default=DEFAULT_NAME, help="output folder name")
    group.add_argument("--seed", type=int, metavar="N", default=DEFAULT_SEED, help="fold seed")


def _folder(options: Mapping[str, Any]) -> str:
    return check_name(options.get("name", DEFAULT_NAME))


RECORD = Corpus(
    key=CORPUS,
    name=DEFAULT_NAME,
    module=__name__,
    read=read_generic,
    prepare=prepare_generic,
    aliases=None,
    description=__doc__,
    add_options=add_options,
    input_options=("votes", "meta"),
    folder=_folder,
)
