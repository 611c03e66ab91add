"""NNIME (NTHU-NTUA Chinese Interactive Multimodal Emotion corpus).

22 acted Mandarin dyadic dialogs of 43 actors, cut into speaking turns that observers labelled with one or more of
12 options (anger, frustration, disappointment, sadness, fear, surprise, excitement,
happiness, relaxation, joy, neutral state, other).

Licensed: request it from the BIIC Lab, National Tsing Hua University (academic use).

The per-rater annotation files of the release are not publicly documented, so this recipe
reads a documented CSV form that you fill from your copy (one row per rater and turn)::

    <corpus_dir>/Audios/**/<scene>_<dialog>_<A|B>_<turn>.wav     # e.g. neutral_11_B_034.wav
    <corpus_dir>/annotations.csv
        FileName,annotator,emotion[,EmoAct,EmoVal]
        neutral_11_B_034.wav,rater1,neutral
        neutral_11_B_034.wav,rater2,neutral;relax        # several options: joined by ";"
        neutral_11_B_034.wav,rater3,other                # also "other:<free text>"

``emotion`` uses the class names of ``CLASSES`` ("neutral state" is written ``neutral``) or the
spellings of ``corpora.nnime.ALIASES`` (anger, frustration, relaxation, ...); a Chinese
free-text answer is written as ``other:<text>``. Any other word is an error that names the
line. EmoAct and EmoVal (1..5), when given, are averaged over raters.

The speaker comes from the file name as the published EMO-SUPERB files number it (dialog d,
role A -> 2d - 1, role B -> 2d; dialog 22 re-uses actor 8), the gender from those files.
EMO-SUPERB rules: turns that every rater labelled "other", or that fewer than three raters
labelled, are excluded and counted; five folds by dialog (``data_splits/nnime.toml``).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from ...errors import CorpusLayoutError, InvalidInputError
from ...runtime.paths import Pathlike
from ..labels import alias_table
from ..partitions import session_of
from .builder import recipe_preparer
from .raw import VOTE_COLUMNS, annotator_rows, index_audio, require_dir
from .record import PublishedCondition, recipe_record
from .types import Condition, Reading, Recipe, Utterance

logger = logging.getLogger(__name__)

CORPUS = "nnime"
NAME = "NNIME"
ANNOTATION = "Secondary"
# Published column order (EMO-SUPERB's NNIME/Secondary/config.json).
CLASSES = (
    "angry",
    "frustrated",
    "disappointed",
    "sad",
    "fear",
    "neutral",
    "surprise",
    "excited",
    "happy",
    "relax",
    "joy",
)
DIMENSIONAL_RANGE = {"max_score": 5, "min_score": 1}  # published NNIME/Secondary/config.json
DIMENSION_COLUMNS = ("EmoAct", "EmoVal")
MIN_ANNOTATORS = 3  # EMO-SUPERB supplementary A.6 (labels.EXCLUDED_FEW_ANNOTATORS)
CONDITIONS = (
    Condition(
        ANNOTATION,
        CLASSES,
        f"NTHU-NNIME corpus - {len(CLASSES)} classes",
        DIMENSIONAL_RANGE,
        min_annotators=MIN_ANNOTATORS,
    ),
)
PUBLISHED = (PublishedCondition("NNIME", ANNOTATION),)
# Spellings of the 12 options, lower-cased -> class name ("neutral state" is written neutral).
ALIASES = alias_table(
    {
        "anger": "angry",
        "happiness": "happy",
        "sadness": "sad",
        "frustration": "frustrated",
        "disappointment": "disappointed",
        "surprised": "surprise",
        "excitement": "excited",
        "relaxed": "relax",
        "relaxation": "relax",
        "fearful": "fear",
    }
)
ANNOTATIONS_FILE = "annotations.csv"
COLUMNS = VOTE_COLUMNS
# Source of the speaker facts: SpkrID and Gender of the published EMO-SUPERB files
# NNIME/Secondary/labels_consensus_<k>.csv (every row agrees with 2d - 1 / 2d but dialog 22).
SPEAKER_EXCEPTIONS = {(22, "A"): "8", (22, "B"): "43"}
FEMALE_SPEAKERS = frozenset(
    {1, 3, 9, 11, 13, 15, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30, 32, 35, 36, 41, 42, 43}
)
SPEAKERS = frozenset(range(1, 44))

_FILE_NAME = re.compile(r"^(?P<scene>[A-Za-z]+)_(?P<dialog>\d+)_(?P<role>[AB])_(?P<turn>\d+)\.wav$")


def speaker_of(file_name: str) -> str:
    """SpkrID as the published files give it.

    Examples:
        >>> [speaker_of(n) for n in ("neutral_11_B_034.wav", "sad_14_A_015.wav", "angry_22_A_047.wav")]
        ['22', '27', '8']
    """
    match = _FILE_NAME.match(file_name)
    if match is None:
        raise InvalidInputError(
            f"{file_name!r} is not an NNIME turn name <scene>_<dialog>_<A|B>_<turn>.wav (e.g. neutral_11_B_034.wav)"
        )
    dialog, role = int(match["dialog"]), match["role"]
    return SPEAKER_EXCEPTIONS.get((dialog, role), str(2 * dialog - (role == "A")))


def gender_of(speaker: str) -> str:
    """Gender of an NNIME actor, as the published files give it.

    Raises:
        InvalidInputError: for a speaker number outside the 43 actors.

    Examples:
        >>> gender_of("1"), gender_of("2")
        ('Female', 'Male')
    """
    if int(speaker) not in SPEAKERS:
        raise InvalidInputError(f"NNIME speaker {speaker} is not one of the 43 actors (1..43)")
    return "Female" if int(speaker) in FEMALE_SPEAKERS else "Male"


def _turn_facts(name: str) -> tuple[str, str, str]:
    """(SpkrID, Gender, session) of a turn, from its file name."""
    speaker = speaker_of(name)  # checks the name's shape
    session = str(session_of(CORPUS, name))  # checks the dialog number
    return speaker, gender_of(speaker), session


def read_nnime(corpus_dir: Pathlike) -> list[Utterance]:
    """Every rater's choices, mean EmoAct/EmoVal, speaker, gender and dialog session.

    No label policy: turns labelled "other" by all raters, or by fewer than three, are kept
    here (``prepare_nnime`` excludes them).
    """
    corpus_dir = require_dir(corpus_dir, "the NNIME folder with Audios/ and annotations.csv")
    path = corpus_dir / ANNOTATIONS_FILE
    audio = index_audio(corpus_dir / "Audios", suffixes=(".wav",))
    choices: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    dims: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    first_line: dict[str, int] = {}
    facts: dict[str, tuple[str, str, str]] = {}
    for row, where, chosen in annotator_rows(path, CLASSES, what="NNIME annotation", aliases=ALIASES):
        name = row.cells["FileName"]
        if name not in facts:
            try:
                facts[name] = _turn_facts(name)
            except InvalidInputError as err:
                raise InvalidInputError(f"{where}: {err}") from None
        first_line.setdefault(name, row.line)
        choices[name].append(chosen)
        for column in DIMENSION_COLUMNS:
            text = row.cells.get(column, "")
            if text:
                try:
                    dims[name][column].append(float(text))
                except ValueError:
                    raise InvalidInputError(f"{where}: {column} {text!r} is not a number") from None
    if not choices:
        raise InvalidInputError(f"{path}: no annotation rows; expected {','.join(COLUMNS)}")
    utterances = []
    for name, answers in choices.items():
        if name not in audio:
            raise CorpusLayoutError(f"{path}, line {first_line[name]}: no audio {name!r} under {corpus_dir / 'Audios'}")
        speaker, gender, session = facts[name]
        utterances.append(
            Utterance(
                file_name=name,
                audio_path=audio[name],
                speaker=speaker,
                gender=gender,
                session=session,
                votes={ANNOTATION: tuple(a[0] if len(a) == 1 else a for a in answers)},
                dimensional={c: float(np.mean(v)) for c, v in dims[name].items()},
            )
        )
    return utterances


RECIPE = Recipe(
    CORPUS,
    NAME,
    CONDITIONS,
    {
        "classes": "EMO-SUPERB published NNIME/Secondary/config.json (11 classes)",
        "raw_format": f"documented CSV {ANNOTATIONS_FILE} ({','.join(COLUMNS)}[,EmoAct,EmoVal]); "
        "the release's own per-rater files are not public",
        "exclusion": f"all raters 'other', or fewer than {MIN_ANNOTATORS} raters",
        "partition": "5 folds by dialog number (data_splits/nnime.toml)",
        "speakers": "SpkrID and Gender as in the published EMO-SUPERB NNIME label files",
    },
    aliases=ALIASES,
)


def _reading(corpus_dir: Pathlike) -> Reading:
    return Reading(read_nnime(corpus_dir), Path(corpus_dir), [Path(corpus_dir) / ANNOTATIONS_FILE])


prepare_nnime = recipe_preparer(__name__, _reading, RECIPE)
RECORD = recipe_record(RECIPE, __name__, read=read_nnime, prepare=prepare_nnime, published=PUBLISHED)
