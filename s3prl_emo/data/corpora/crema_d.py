"""CREMA-D: 7,442 clips of 91 actors, each rated by crowd raters in three modalities.

Open Database License; the release is https://github.com/CheyneyComputerScience/CREMA-D
(audio through git-lfs). Pass the repository folder::

    <corpus_dir>/finishedResponses.csv     # one row per rating
    <corpus_dir>/VideoDemographics.csv     # ActorID,Age,Sex,Race,Ethnicity
    <corpus_dir>/AudioWAV/<clipName>.wav

``finishedResponses.csv`` (the release's README and R scripts; first column unnamed)::

    "","localid","pos","ans","ttr","queryType","numTries","clipNum","questNum","subType",
    "clipName","sessionNums","respEmo","respLevel","dispEmo","dispVal","dispLevel"

EMO-SUPERB uses the voice-only ratings (``queryType`` 1): every voice-only row is one vote
(``respEmo`` A/D/F/H/N/S). The release's own tabulation also drops answers given after
more than 10 s; the published EMO-SUPERB soft labels do not (e.g. 1001_IEO_FEA_LO has 11
votes there, 10 in processedResults/tabulatedVotes.csv), so neither does this recipe.

Written to ``CREMA-D/Primary`` (6 classes, 5 folds); the speaker id is the actor id, the
gender the actor's ``Sex`` in VideoDemographics.csv.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from ...errors import CorpusLayoutError, InvalidInputError
from ...runtime.paths import Pathlike
from ..labels import alias_table, canonical_class
from .builder import recipe_preparer
from .raw import read_csv_rows, require_dir
from .record import PublishedCondition, recipe_record
from .types import Condition, Reading, Recipe, Utterance

logger = logging.getLogger(__name__)

NAME = "CREMA-D"
CORPUS = "crema-d"
# Source: the published CREMA-D/Primary/config.json (emo_type, in column order).
CLASSES_PRIMARY = ("angry", "sad", "disgust", "fear", "neutral", "happy")
# config.json's "dimensional" entry as published (the label files carry no dimensional column:
# CREMA-D raters give an intensity, not activation/valence/dominance).
CONFIG_DIMENSIONAL = {"max_score": 5, "min_score": 1}
CONDITIONS = (Condition("Primary", CLASSES_PRIMARY, "CREMA-D corpus - 6 classes", CONFIG_DIMENSIONAL),)
PUBLISHED = (PublishedCondition("CREMA-D", "Primary"),)
# Folds: the published labels_consensus_1..5.csv; actor ranges and folds in data_splits/crema-d.toml.

RESPONSES_FILE = "finishedResponses.csv"
DEMOGRAPHICS_FILE = "VideoDemographics.csv"
AUDIO_DIR = "AudioWAV"
RESPONSE_COLUMNS = ("queryType", "clipName", "respEmo")
DEMOGRAPHIC_COLUMNS = ("ActorID", "Sex")
VOICE_ONLY = 1  # queryType: 1 voice only, 2 face only, 3 audio-visual (release README)
# respEmo codes (release README); the raters had no "other" answer, so any other code is an error.
RESPONSE_CODES = ("A", "D", "F", "H", "N", "S")
OTHER_STRINGS: tuple[str, ...] = ()
# The release's spellings, lower-cased -> class name: finishedResponses.csv uses one-letter codes,
# the file names three-letter codes.
ALIASES = alias_table(
    {
        "a": "angry",
        "d": "disgust",
        "f": "fear",
        "h": "happy",
        "n": "neutral",
        "s": "sad",
        "ang": "angry",
        "dis": "disgust",
        "fea": "fear",
        "hap": "happy",
        "neu": "neutral",
        "anger": "angry",
        "happiness": "happy",
        "sadness": "sad",
        "disgusted": "disgust",
    }
)
GENDERS = ("Male", "Female")
_CLIP = re.compile(r"^(\d{4})_[A-Z]{3}_[A-Z]{3}_[A-Z]{2}$")


def _read_demographics(path: Path) -> dict[str, str]:
    """ActorID -> "Male" / "Female"."""
    genders: dict[str, str] = {}
    for row in read_csv_rows(path, DEMOGRAPHIC_COLUMNS, what="demographics"):
        where = f"{path}, line {row.line}"
        actor, sex = row.cells["ActorID"], row.cells["Sex"]
        if sex not in GENDERS:
            raise InvalidInputError(f"{where}: Sex {sex!r}; expected one of {list(GENDERS)}")
        if actor in genders:
            raise InvalidInputError(f"{where}: ActorID {actor} is listed twice")
        genders[actor] = sex
    return genders


def read_crema_d(corpus_dir: Pathlike) -> list[Utterance]:
    """Every voice-only rating of every clip, with the actor and their gender; no label policy."""
    corpus_dir = require_dir(corpus_dir, "the CREMA-D release folder (finishedResponses.csv, AudioWAV/)")
    responses = corpus_dir / RESPONSES_FILE
    genders = _read_demographics(corpus_dir / DEMOGRAPHICS_FILE)
    votes: dict[str, list[str]] = defaultdict(list)
    first_line: dict[str, int] = {}
    rows = read_csv_rows(responses, RESPONSE_COLUMNS, what="responses")
    for row in tqdm(rows, desc=f"{NAME}: responses", unit="row"):
        where = f"{responses}, line {row.line}"
        try:
            query_type = int(row.cells["queryType"])
        except ValueError as err:
            raise InvalidInputError(f"{where}: queryType {row.cells['queryType']!r}; expected 1, 2 or 3") from err
        if query_type != VOICE_ONLY:
            continue
        clip, answer = row.cells["clipName"], row.cells["respEmo"]
        if _CLIP.match(clip) is None:
            raise InvalidInputError(f"{where}: clipName {clip!r}; expected e.g. 1001_DFA_ANG_XX")
        if not answer:
            raise InvalidInputError(f"{where}: empty respEmo; expected one of {list(RESPONSE_CODES)}")
        if answer not in RESPONSE_CODES or canonical_class(answer, CLASSES_PRIMARY, ALIASES) is None:
            raise InvalidInputError(f"{where}: respEmo {answer!r}; expected one of {list(RESPONSE_CODES)}")
        votes[clip].append(answer)
        first_line.setdefault(clip, row.line)
    if not votes:
        raise InvalidInputError(f"{responses}: no voice-only (queryType {VOICE_ONLY}) rating")
    utterances = []
    for clip, answers in votes.items():
        where = f"{responses}, line {first_line[clip]}"
        actor = clip[:4]
        audio = corpus_dir / AUDIO_DIR / f"{clip}.wav"
        if not audio.is_file():
            raise CorpusLayoutError(f"{where}: no audio for {clip}; expected {audio}")
        if actor not in genders:
            raise InvalidInputError(f"{where}: actor {actor} of {clip} is not in {corpus_dir / DEMOGRAPHICS_FILE}")
        utterances.append(
            Utterance(
                file_name=f"{clip}.wav",
                audio_path=audio,
                speaker=actor,
                gender=genders[actor],
                session=actor,
                votes={"Primary": tuple(answers)},
            )
        )
    logger.info("%s: %d clips with voice-only ratings", NAME, len(utterances))
    return utterances


RULES: dict[str, object] = {
    "class_list_source": "published EMO-SUPERB CREMA-D/Primary/config.json",
    "votes": f"every {RESPONSES_FILE} row with queryType {VOICE_ONLY} (voice only) is one vote (respEmo)",
    "response_time_filter": "none (the release's 10-s filter is not applied, as in the published labels)",
    "other_strings": list(OTHER_STRINGS),
    "exclusions": ["clips with no voice-only rating are not listed (none in the release)"],
    "partition_source": "data_splits/crema-d.toml (actor ranges of the published labels_consensus_1..5.csv)",
    "speaker_id": "actor id (first 4 digits of the clip name)",
}
RECIPE = Recipe(CORPUS, NAME, CONDITIONS, RULES, aliases=ALIASES)


def _reading(corpus_dir: Pathlike) -> Reading:
    corpus_dir = Path(corpus_dir)
    return Reading(read_crema_d(corpus_dir), corpus_dir, [corpus_dir / RESPONSES_FILE, corpus_dir / DEMOGRAPHICS_FILE])


prepare_crema_d = recipe_preparer(__name__, _reading, RECIPE)
RECORD = recipe_record(RECIPE, __name__, read=read_crema_d, prepare=prepare_crema_d, published=PUBLISHED)
