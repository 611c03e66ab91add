"""IEMOCAP (USC SAIL): five sessions, each one dyad of a female and a male actor.

Licensed for research; request the release at https://sail.usc.edu/iemocap/ (no download
here). Pass the folder that holds ``Session1`` .. ``Session5`` (``IEMOCAP_full_release``)::

    <corpus_dir>/Session<N>/dialog/EmoEvaluation/<dialog>.txt     # per-evaluator annotations
    <corpus_dir>/Session<N>/sentences/wav/<dialog>/<utterance>.wav

An ``EmoEvaluation/<dialog>.txt`` file holds one tab-separated block per utterance::

    [6.2901 - 8.2357]	Ses01F_impro01_F000	neu	[2.5000, 2.5000, 2.5000]
    C-E2:	Neutral;	()
    C-F1:	Neutral; Anger;	(curious)
    A-E3:	val 3; act 2; dom  2;	()
    A-F1:	val 3; act 2; dom  1;	()

``C-`` lines are categorical (several classes may be chosen), ``A-`` lines dimensional
(1..5); ``E<n>`` are external evaluators, ``F<n>``/``M<n>`` the actors' self-evaluations.
The summary line's code and [V, A, D] are the release's own consensus and are not used.

Written to ``IEMOCAP/Secondary`` (9 classes, 5 folds). The last part of an utterance name
(``F000``/``M000``) is its speaker's gender; the speaker id is the session number plus that
letter (``01F``). Whether self-evaluations count is ``COUNT_SELF_EVALUATIONS``; see there.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from tqdm import tqdm

from ...errors import CorpusLayoutError, InvalidInputError
from ...runtime.paths import Pathlike
from ..labels import alias_table
from .builder import recipe_preparer
from .raw import check_choices, mean_scores, require_dir, split_choices
from .record import PublishedCondition, recipe_record
from .types import Condition, Reading, Recipe, Utterance

logger = logging.getLogger(__name__)

NAME = "IEMOCAP"
CORPUS = "iemocap"
# Source: the published IEMOCAP/Secondary/config.json (emo_type, in column order).
CLASSES_SECONDARY = ("frustrated", "angry", "sad", "disgust", "excited", "fear", "neutral", "surprise", "happy")
CONDITIONS = (Condition("Secondary", CLASSES_SECONDARY, "IEMOCAP corpus - 9 class"),)
PUBLISHED = (PublishedCondition("IEMOCAP", "Secondary"),)
# The release's spellings, lower-cased -> class name: EmoEvaluation/*.txt writes "Neutral state",
# "Frustration", ...; summary lines use 3-letter codes.
ALIASES = alias_table(
    {
        "neutral state": "neutral",
        "anger": "angry",
        "happiness": "happy",
        "frustration": "frustrated",
        "excitement": "excited",
        "sadness": "sad",
        "surprised": "surprise",
        "fearful": "fear",
        "disgusted": "disgust",
        "neu": "neutral",
        "ang": "angry",
        "hap": "happy",
        "fru": "frustrated",
        "exc": "excited",
        "sad": "sad",
        "sur": "surprise",
        "fea": "fear",
        "dis": "disgust",
    }
)
# Folds: the published labels_consensus_1..5.csv, as data_splits/iemocap.toml holds them.
# Self-evaluations (C-F1:, C-M1:, A-F1:, ...) count like external ones. Checked against the
# published files: Ses01F_impro01_F001 (C-E2..E4 "Neutral", C-F1 "Neutral; Anger") is
# 0.76125 neutral / 0.195 angry there, i.e. 4 x neutral + 1 x angry, and the EmoAct/EmoVal/
# EmoDom of Ses01F_impro01_F000 (2.333, 2.667, 2.0) are the means of A-E3, A-E4 and A-F1.
COUNT_SELF_EVALUATIONS = True
# Categorical answers that mean "none of the classes": "Other" and annotated forms
# ("Other:sarcastic"); they count as an annotation but give no vote.
OTHER_STRINGS = ("Other", "Other:<description>")
DIMENSIONS = {"act": "EmoAct", "val": "EmoVal", "dom": "EmoDom"}  # A- line keys -> columns
GENDERS = {"F": "Female", "M": "Male"}

_SUMMARY = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(\S+)\s+(\S+)\s+\[[^\]]*\]\s*$")
_EVALUATOR = re.compile(r"^([CA])-([EFM])(\d*)\s*:(.*)$")
_TURN = re.compile(r"^Ses(\d{2})[FM]_.+_([FM])\d+$")


def _label_text(rest: str) -> str:
    r"""``"\tNeutral; Anger;\t(curious)"`` -> ``"Neutral; Anger;"`` (the comment dropped)."""
    rest = rest.strip()
    if "\t" in rest:
        return rest.split("\t")[0]
    return re.sub(r"\s*\(.*\)\s*$", "", rest)


def _categorical(rest: str, where: str) -> tuple[str, ...]:
    choices = split_choices(_label_text(rest))
    check_choices(choices, CLASSES_SECONDARY, where, ALIASES)
    return choices


def _dimensional(rest: str, where: str) -> dict[str, float]:
    """``"val 3; act 2; dom  2;"`` -> scores by column; a key with no number is skipped."""
    scores: dict[str, float] = {}
    for item in _label_text(rest).split(";"):
        parts = item.split()
        if not parts:
            continue
        if parts[0] not in DIMENSIONS or len(parts) > 2:
            raise InvalidInputError(f"{where}: cannot read {item.strip()!r}; expected 'val <n>; act <n>; dom <n>;'")
        if len(parts) == 2:
            try:
                scores[DIMENSIONS[parts[0]]] = float(parts[1])
            except ValueError as err:
                raise InvalidInputError(f"{where}: {parts[0]} {parts[1]!r} is not a number") from err
    return scores


class _Block:
    """The lines of one utterance while it is being read."""

    def __init__(self, turn: str, where: str) -> None:
        self.turn, self.where = turn, where
        self.votes: list[str | tuple[str, ...]] = []
        self.scores: list[dict[str, float]] = []


def _finish(block: _Block, corpus_dir: Path) -> Utterance:
    match = _TURN.match(block.turn)
    if match is None:
        raise InvalidInputError(
            f"{block.where}: utterance name {block.turn!r}; expected Ses<NN><F|M>_<dialog>_<F|M><nnn>"
        )
    if not block.votes:
        raise InvalidInputError(f"{block.where}: utterance {block.turn} has no categorical (C-) line")
    session, letter = match.group(1), match.group(2)
    dialog = block.turn.rsplit("_", 1)[0]
    audio = corpus_dir / f"Session{int(session)}" / "sentences" / "wav" / dialog / f"{block.turn}.wav"
    if not audio.is_file():
        raise CorpusLayoutError(f"{block.where}: no audio for {block.turn}; expected {audio}")
    means = mean_scores(block.scores, DIMENSIONS.values())
    return Utterance(
        file_name=f"{block.turn}.wav",
        audio_path=audio,
        speaker=f"{session}{letter}",
        gender=GENDERS[letter],
        session=session,
        votes={"Secondary": tuple(block.votes)},
        dimensional=means,
    )


def _read_file(path: Path, corpus_dir: Path, self_evaluations: bool) -> list[tuple[Utterance, str]]:
    """The utterances of one EmoEvaluation file, each with the location of its summary line."""
    utterances: list[tuple[Utterance, str]] = []
    block: _Block | None = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            line, where = raw.strip(), f"{path}, line {number}"
            if not line or line.startswith("%"):
                continue
            if line.startswith("["):
                summary = _SUMMARY.match(line)
                if summary is None:
                    raise InvalidInputError(
                        f"{where}: cannot read the summary line {line!r}; expected "
                        "'[start - end]<TAB>TURN_NAME<TAB>EMOTION<TAB>[V, A, D]'"
                    )
                if block is not None:
                    utterances.append((_finish(block, corpus_dir), block.where))
                block = _Block(summary.group(1), where)
                continue
            evaluator = _EVALUATOR.match(line)
            if evaluator is None or block is None:
                raise InvalidInputError(
                    f"{where}: unexpected line {line[:60]!r}; expected a '[start - end] ...' summary line "
                    "or an evaluator line such as 'C-E1:' / 'A-E1:'"
                )
            kind, who, rest = evaluator.group(1), evaluator.group(2), evaluator.group(4)
            if who != "E" and not self_evaluations:
                continue
            if kind == "C":
                choices = _categorical(rest, where)
                block.votes.append(choices[0] if len(choices) == 1 else choices)
            else:
                block.scores.append(_dimensional(rest, where))
    if block is not None:
        utterances.append((_finish(block, corpus_dir), block.where))
    return utterances


def _evaluation_files(corpus_dir: Path) -> list[Path]:
    files = sorted(corpus_dir.glob("Session*/dialog/EmoEvaluation/Ses*.txt"))
    if not files:
        raise CorpusLayoutError(
            f"{NAME}: no Session<N>/dialog/EmoEvaluation/Ses*.txt under {corpus_dir}; pass the folder "
            "that contains Session1 .. Session5 (IEMOCAP_full_release)"
        )
    return files


def read_iemocap(corpus_dir: Pathlike, *, self_evaluations: bool = COUNT_SELF_EVALUATIONS) -> list[Utterance]:
    """Parse every evaluator's categorical votes and the mean dimensional scores; no label policy.

    ``self_evaluations``: also read the actors' own ``C-F1``/``C-M1``/``A-F1``... lines.
    """
    corpus_dir = require_dir(corpus_dir, "the IEMOCAP release folder with Session1 .. Session5")
    utterances: list[Utterance] = []
    seen: dict[str, str] = {}
    files = _evaluation_files(corpus_dir)
    for path in tqdm(files, desc=f"{NAME}: EmoEvaluation", unit="file"):
        for utt, where in _read_file(path, corpus_dir, self_evaluations):
            if utt.file_name in seen:
                raise InvalidInputError(
                    f"{where}: utterance {utt.file_name[:-4]} is annotated a second time "
                    f"(first at {seen[utt.file_name]}); expected each utterance once"
                )
            seen[utt.file_name] = where
            utterances.append(utt)
    logger.info("%s: read %d utterances from %d files", NAME, len(utterances), len(files))
    return utterances


RULES: dict[str, object] = {
    "class_list_source": "published EMO-SUPERB IEMOCAP/Secondary/config.json",
    "votes": "every categorical (C-) line, one vote per chosen category",
    "self_evaluations_counted": None,  # the reader's self_evaluations
    "other_strings": list(OTHER_STRINGS),
    "dimensional": "EmoAct/EmoVal/EmoDom = mean of the A- lines (act/val/dom) of the same evaluators",
    "exclusions": ["utterances with no categorical vote inside the class list (none in the release)"],
    "partition_source": "data_splits/iemocap.toml (published labels_consensus_1..5.csv)",
    "speaker_id": "session number + gender letter of the utterance's speaker, e.g. 01F",
}
RECIPE = Recipe(CORPUS, NAME, CONDITIONS, RULES, aliases=ALIASES)


def _reading(corpus_dir: Pathlike, *, self_evaluations: bool = COUNT_SELF_EVALUATIONS) -> Reading:
    """``read_iemocap``'s utterances, the files it read, and whether self-evaluations counted."""
    corpus_dir = Path(corpus_dir)
    utterances = read_iemocap(corpus_dir, self_evaluations=self_evaluations)
    facts = {"self_evaluations_counted": self_evaluations}
    return Reading(utterances, corpus_dir, _evaluation_files(corpus_dir), facts=facts)


prepare_iemocap = recipe_preparer(
    __name__, _reading, RECIPE, "``self_evaluations``: also count the actors' own evaluations (``read_iemocap``)."
)
RECORD = recipe_record(RECIPE, __name__, read=read_iemocap, prepare=prepare_iemocap, published=PUBLISHED)
