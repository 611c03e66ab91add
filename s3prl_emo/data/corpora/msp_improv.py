"""MSP-IMPROV (UT Dallas MSP lab): six sessions, each one dyad of a female and a male actor.

Licensed for research; request it from the MSP lab (https://ecs.utdallas.edu/research/
researchlabs/msp-lab/MSP-Improv.html). Pass the release folder::

    <corpus_dir>/Evalution.txt      # spelled so in the release; Evaluation.txt is accepted too
    <corpus_dir>/**/MSP-IMPROV-S01A-F01-P-FM01.wav    # e.g. session1/S01A/P/, any depth

``Evalution.txt`` holds one block per clip: a header with the clip (named ``UTD-IMPROV-...
.avi``; its audio is ``MSP-IMPROV-....wav``), the consensus code and mean scores, then one
line per rater with the primary emotion, the secondary emotions and the rater's scores::

    UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:3.000000; V:2.500000; D:3.000000 ; N:4.000000;
    rater-p101; Angry; Frustrated,Disgusted; A:3.000000; V:2.000000; D:3.000000; N:4.000000;

The header and the field order of the rater lines follow public loaders of the release; the
separator inside the secondary field could not be confirmed from public material, so commas
are assumed (the most common form) and the field is split on ",".

Votes: Primary = each rater's primary emotion; Secondary = each rater's primary emotion plus
the secondary ones (a class once per rater). This reproduces the published files (e.g.
MSP-IMPROV-S01A-F03-R-FF01: 6 x angry + 1 x sad in Primary, the same plus 10 secondary votes
in Secondary). Clips whose primary emotions are all "Other" (53 in the release) are left out
of both conditions, as in the published files, which list the same 8,385 clips in both.
EmoAct/EmoVal/EmoDom are the means of the raters' A/V/D scores. Speaker ids are the session
number plus the gender letter of the speaker part (``F02`` -> ``02F``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from ...errors import CorpusLayoutError, InvalidInputError
from ...runtime.paths import Pathlike
from ..labels import alias_table, canonical_class, is_other, primary_plus_secondary
from .builder import recipe_preparer
from .raw import mean_scores, require_dir
from .record import PublishedCondition, recipe_record
from .types import Condition, Reading, Recipe, Utterance

logger = logging.getLogger(__name__)

NAME = "IMPROV"
CORPUS = "msp-improv"
# Source: the published IMPROV/Primary/config.json and IMPROV/Secondary/config.json.
CLASSES_PRIMARY = ("angry", "sad", "neutral", "happy")
CLASSES_SECONDARY = (
    "depressed",
    "frustrated",
    "angry",
    "sad",
    "disgust",
    "excited",
    "fear",
    "neutral",
    "surprise",
    "happy",
)
CONFIG_DIMENSIONAL = {"max_score": 5, "min_score": 1, "flip_aro": "True"}  # as published
CONDITIONS = (
    Condition("Primary", CLASSES_PRIMARY, "IMPROV corpus - 4 classes", CONFIG_DIMENSIONAL),
    Condition("Secondary", CLASSES_SECONDARY, "IMPROV corpus - 10 classes", CONFIG_DIMENSIONAL),
)
PUBLISHED = (PublishedCondition("IMPROV_P", "Primary"), PublishedCondition("IMPROV_S", "Secondary"))
# Folds: the published labels_consensus_1..6.csv, as data_splits/msp-improv.toml holds them.

EVALUATION_FILES = ("Evalution.txt", "Evaluation.txt")
# "Other" (and annotated forms such as "Other-bored") means none of the offered emotions.
OTHER_STRINGS = ("Other", "Other-<description>")
# A clip whose primary emotions are all outside CLASSES_PRIMARY is left out of both conditions
# (labels.all_other, applied by the builder: Recipe.all_other_primary).
EXCLUDED_ALL_OTHER = "every primary emotion is 'Other' (left out of Primary and Secondary)"
# A rater listed twice for one clip: the first line counts, later ones are dropped and counted.
DUPLICATE_RATER_POLICY = "first line counts"
DIMENSIONS = {"A": "EmoAct", "V": "EmoVal", "D": "EmoDom"}  # N (naturalness) is not used
GENDERS = {"F": "Female", "M": "Male"}
SECONDARY_SEPARATOR = ","
# The release's spellings, lower-cased -> class name: Evaluation.txt gives A/H/S/N/O codes for the
# primary emotion and words for the secondary ones.
ALIASES = alias_table(
    {
        "a": "angry",
        "h": "happy",
        "s": "sad",
        "n": "neutral",
        "anger": "angry",
        "happiness": "happy",
        "sadness": "sad",
        "frustration": "frustrated",
        "depression": "depressed",
        "excitement": "excited",
        "surprised": "surprise",
        "fearful": "fear",
        "disgusted": "disgust",
    }
)

_CLIP = re.compile(r"^(?:UTD|MSP)-IMPROV-([A-Z0-9]+-([FM])(\d{2})-[A-Z0-9-]+)\.(?:avi|wav)$", re.IGNORECASE)
_HEADER_PREFIXES = ("UTD-IMPROV-", "MSP-IMPROV-")
_SCORE = re.compile(r"^([A-Z])\s*:\s*(\S*)$")


class _Block:
    def __init__(self, clip_id: str, letter: str, session: str, where: str) -> None:
        self.clip_id, self.letter, self.session, self.where = clip_id, letter.upper(), session, where
        self.raters: dict[str, str] = {}  # rater -> location of its line
        self.primary: list[str] = []
        self.secondary: list[str | tuple[str, ...]] = []
        self.scores: list[dict[str, float]] = []


def _scores(fields: Sequence[str], where: str) -> dict[str, float]:
    scores: dict[str, float] = {}
    for field in fields:
        match = _SCORE.match(field)
        if match is None:
            raise InvalidInputError(f"{where}: cannot read score {field!r}; expected 'A:<n>', 'V:<n>', ...")
        key, value = match.group(1).upper(), match.group(2)
        if key not in DIMENSIONS or value in ("", "NaN", "nan"):
            continue
        try:
            scores[DIMENSIONS[key]] = float(value)
        except ValueError as err:
            raise InvalidInputError(f"{where}: {key} score {value!r} is not a number") from err
    return scores


def _check(token: str, classes: Sequence[str], where: str, what: str) -> None:
    if not is_other(token) and canonical_class(token, classes, ALIASES) is None:
        raise InvalidInputError(f"{where}: unknown {what} emotion {token!r}; expected one of {list(classes)} or Other")


def _add_rater(block: _Block, fields: list[str], where: str) -> bool:
    """Record one rater line; False when the rater was already read for this clip."""
    if len(fields) < 2 or not fields[0]:
        raise InvalidInputError(
            f"{where}: truncated rater line; expected "
            "'<rater>; <primary>; <secondary,...>; A:<n>; V:<n>; D:<n>; N:<n>;'"
        )
    rater, primary = fields[0], fields[1]
    if not primary:
        raise InvalidInputError(f"{where}: rater {rater} gives no primary emotion")
    if rater in block.raters:
        logger.warning(
            "%s: rater %s listed again for %s (first at %s); dropped", where, rater, block.clip_id, block.raters[rater]
        )
        return False
    block.raters[rater] = where
    first_score = next((i for i, f in enumerate(fields) if i >= 2 and _SCORE.match(f)), len(fields))
    secondary = [t.strip() for f in fields[2:first_score] for t in f.split(SECONDARY_SEPARATOR) if t.strip()]
    _check(primary, CLASSES_PRIMARY, where, "primary")
    for token in secondary:
        _check(token, CLASSES_SECONDARY, where, "secondary")
    block.primary.append(primary)
    block.secondary.append(primary_plus_secondary(primary, secondary, CLASSES_SECONDARY, ALIASES))
    block.scores.append(_scores(fields[first_score:], where))
    return True


def _utterance(block: _Block, audio: dict[str, Path]) -> Utterance:
    if not block.primary:
        raise InvalidInputError(f"{block.where}: clip {block.clip_id} has no rater line")
    file_name = f"MSP-IMPROV-{block.clip_id}.wav"
    if file_name not in audio:
        raise CorpusLayoutError(f"{block.where}: no audio file {file_name} under the corpus folder")
    means = mean_scores(block.scores, DIMENSIONS.values())
    return Utterance(
        file_name=file_name,
        audio_path=audio[file_name],
        speaker=f"{block.session}{block.letter}",
        gender=GENDERS[block.letter],
        session=block.session,
        votes={"Primary": tuple(block.primary), "Secondary": tuple(block.secondary)},
        dimensional=means,
    )


def _audio_files(corpus_dir: Path) -> dict[str, Path]:
    """``MSP-IMPROV-*.wav`` anywhere under the release folder, by file name (unique)."""
    found: dict[str, Path] = {}
    for path in sorted(corpus_dir.rglob("MSP-IMPROV-*.wav")):
        if path.name in found:
            raise InvalidInputError(f"{path}: duplicate audio file name (also {found[path.name]})")
        found[path.name] = path
    return found


def _evaluation_file(corpus_dir: Path) -> Path:
    for name in EVALUATION_FILES:
        if (corpus_dir / name).is_file():
            return corpus_dir / name
    raise CorpusLayoutError(f"{NAME}: no {' or '.join(EVALUATION_FILES)} in {corpus_dir}; pass the release folder")


def _clip_header(fields: list[str], where: str, first_at: dict[str, str]) -> _Block | None:
    """The block a clip header line opens (recorded in ``first_at``), or None for a rater line."""
    clip = _CLIP.match(fields[0])
    if clip is None:
        if fields[0].upper().startswith(_HEADER_PREFIXES):
            raise InvalidInputError(f"{where}: cannot read clip {fields[0]!r}; expected UTD-IMPROV-<id>.avi")
        return None
    if len(fields) < 2 or not fields[1]:
        raise InvalidInputError(f"{where}: truncated clip header; expected '<clip>.avi; <code>; A:<n>; ...'")
    clip_id = clip.group(1)
    if clip_id in first_at:
        raise InvalidInputError(f"{where}: clip {clip_id} is listed a second time (first at {first_at[clip_id]})")
    first_at[clip_id] = where
    return _Block(clip_id, clip.group(2), clip.group(3), where)


def _read(corpus_dir: Path) -> tuple[list[Utterance], int]:
    """The utterances, and how many duplicate rater lines were dropped."""
    path = _evaluation_file(corpus_dir)
    audio = _audio_files(corpus_dir)
    utterances: list[Utterance] = []
    first_at: dict[str, str] = {}
    block: _Block | None = None
    dropped = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.readlines()
    for number, raw in enumerate(tqdm(lines, desc=f"{NAME}: {path.name}", unit="line"), start=1):
        line, where = raw.strip(), f"{path}, line {number}"
        if not line:
            continue
        fields = [f.strip() for f in line.split(";")]
        while fields and not fields[-1]:
            fields.pop()
        header = _clip_header(fields, where, first_at)
        if header is not None:
            if block is not None:
                utterances.append(_utterance(block, audio))
            block = header
        elif block is None:
            raise InvalidInputError(f"{where}: {line[:60]!r} before the first clip header 'UTD-IMPROV-...avi; ...'")
        elif not _add_rater(block, fields, where):
            dropped += 1
    if block is not None:
        utterances.append(_utterance(block, audio))
    if not utterances:
        raise InvalidInputError(f"{path}: no clip header 'UTD-IMPROV-<id>.avi; <code>; ...'")
    if dropped:
        logger.warning("%s: dropped %d repeated rater line(s) (%s)", path, dropped, DUPLICATE_RATER_POLICY)
    return utterances, dropped


def read_msp_improv(corpus_dir: Pathlike) -> list[Utterance]:
    """Every rater's primary and secondary emotions and the mean scores per clip; no label policy."""
    corpus_dir = require_dir(corpus_dir, f"the MSP-IMPROV release folder ({EVALUATION_FILES[0]}, session*/)")
    return _read(corpus_dir)[0]


RULES: dict[str, object] = {
    "class_list_source": "published EMO-SUPERB IMPROV/Primary and IMPROV/Secondary config.json",
    "votes": {
        "Primary": "each rater's primary emotion",
        "Secondary": "each rater's primary emotion plus the secondary emotions (a class once per rater)",
    },
    "other_strings": list(OTHER_STRINGS),
    "exclusions": [EXCLUDED_ALL_OTHER],
    "duplicate_rater_policy": DUPLICATE_RATER_POLICY,
    "dimensional": "EmoAct/EmoVal/EmoDom = mean of the raters' A/V/D scores (NaN scores skipped)",
    "partition_source": "data_splits/msp-improv.toml (published labels_consensus_1..6.csv)",
    "speaker_id": "session number + gender letter of the speaker part, e.g. F02 -> 02F",
}
RECIPE = Recipe(CORPUS, NAME, CONDITIONS, RULES, all_other_primary=EXCLUDED_ALL_OTHER, aliases=ALIASES)


def _reading(corpus_dir: Pathlike) -> Reading:
    corpus_dir = require_dir(corpus_dir, f"the MSP-IMPROV release folder ({EVALUATION_FILES[0]}, session*/)")
    utterances, dropped = _read(corpus_dir)
    facts = {"duplicate_rater_lines_dropped": dropped}
    return Reading(utterances, corpus_dir, [_evaluation_file(corpus_dir)], facts=facts)


prepare_msp_improv = recipe_preparer(__name__, _reading, RECIPE)
RECORD = recipe_record(RECIPE, __name__, read=read_msp_improv, prepare=prepare_msp_improv, published=PUBLISHED)
