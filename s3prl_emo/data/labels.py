"""The label policy: which annotations count for an utterance, and how they become soft labels.

Every recipe reads its raw release into per-annotator votes (``Vote``: one class name, or
several for a multi-choice answer, in the corpus's own spelling) and declares which of the
rules below apply; nothing else in the package decides what a vote is worth.

1. Which annotations count: every annotator's answer, the actors' self-evaluations included
   where a corpus has them (IEMOCAP's ``C-F1``/``C-M1`` lines, ``corpora.iemocap``).
2. A multi-choice answer counts one vote for each selected class (``annotator_classes``).
3. A class one annotator selects twice counts once for that annotator (``annotator_classes``:
   an annotation is a *set* of classes). MSP-IMPROV and MSP-PODCAST build their Secondary
   votes from the primary emotion plus the secondary ones (``primary_plus_secondary``), so a
   class named in both counts once.
4. "Other" (``is_other``: "Other", "other: bored", "Other-calm", ...) and any name outside the
   class list give no vote; an annotation made only of them still counts as an annotation.
5. Exclusions (the utterance gets no label row; recipes count them in the manifest):
   ``EXCLUDED_OTHER`` no vote inside the class list; ``EXCLUDED_FEW_ANNOTATORS`` fewer
   annotators than a condition requires (NNIME: 3); and MSP-IMPROV, MSP-PODCAST and
   BIIC-PODCAST leave an utterance out of Primary *and* Secondary when every primary emotion
   is "Other" (``all_other`` on the Primary votes; the recipe declares it as
   ``Recipe.all_other_primary``), as the published files do (both list the same utterances).
6. Soft labels: q = vote counts / total votes, smoothed so that a unanimous utterance gets
   ``1 - smoothing`` on its class (``soft_labels``; the rule of the published EMO-SUPERB files).

Read per corpus:
- IEMOCAP (Secondary, 9 classes): every ``C-`` line of every evaluator (self-evaluations too),
  rules 2-4 and 6; no utterance is excluded in the release.
- MSP-IMPROV: Primary = each rater's primary emotion; Secondary = primary plus secondary
  emotions, a class once per rater; rule 5's all-"Other"-primary exclusion for both.
- NNIME (Secondary, 11 classes): each rater's options (rules 2-4); excluded when every rater
  answered "other" or fewer than three raters labelled the turn.
- CREMA-D (Primary, 6 classes): each voice-only rating is one vote (raters had no "other").
- MSP-PODCAST, BIIC-PODCAST: as MSP-IMPROV, with each worker in place of each rater.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..errors import InvalidInputError

DEFAULT_SMOOTHING = 0.05

Vote = str | Sequence[str]  # one annotator: a class name, or several for a multi-choice answer

OTHER = "other"
# Exclusion reasons, as they appear in manifest.json and the log summary.
EXCLUDED_OTHER = "no vote inside the class list (all 'other')"
EXCLUDED_FEW_ANNOTATORS = "fewer annotators than required"

# Words of the MSP-PODCAST protocol (labels_detailed.csv), shared by the two podcast releases.
_PODCAST_WORDS = {
    "anger": "angry",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "fearful": "fear",
    "disgusted": "disgust",
    "frustration": "frustrated",
    "amusement": "amused",
}

# Spellings each corpus's raw release uses for a class, lower-cased -> EMO-SUPERB class name.
# Names that already equal a class name (case-insensitively) need no entry.
ALIASES: dict[str, dict[str, str]] = {
    # EmoEvaluation/*.txt: "Neutral state", "Frustration", ...; summary lines use 3-letter codes.
    "iemocap": {
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
    },
    # finishedResponses.csv: one-letter codes; file names: three-letter codes.
    "crema-d": {
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
    },
    # Evaluation.txt: A/H/S/N/O codes for the primary emotion, words for the secondary.
    "msp-improv": {
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
    },
    # labels_detailed.csv: "Angry", "Sad", ...; one-letter codes in labels_consensus.csv.
    "msp-podcast": {
        "a": "angry",
        "s": "sad",
        "h": "happy",
        "u": "surprise",
        "f": "fear",
        "d": "disgust",
        "c": "contempt",
        "n": "neutral",
        **_PODCAST_WORDS,
    },
    "nnime": {
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
    },
    # Emotions spelled out in English, as MSP-PODCAST does (assumed; no one-letter codes).
    "biic-podcast": dict(_PODCAST_WORDS),
}


def _union_of_unambiguous(tables: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Aliases that every corpus table maps the same way; a spelling two tables map to
    different classes would be dropped (none does today: "s" is sad wherever it is listed)."""
    merged: dict[str, str] = {}
    clashing: set[str] = set()
    for table in tables.values():
        for raw, name in table.items():
            if merged.setdefault(raw, name) != name:
                clashing.add(raw)
    return {raw: name for raw, name in merged.items() if raw not in clashing}


COMMON_ALIASES = _union_of_unambiguous(ALIASES)


def _alias_table(aliases: str | Mapping[str, str] | None) -> Mapping[str, str]:
    if aliases is None:
        return COMMON_ALIASES
    if isinstance(aliases, str):
        if aliases not in ALIASES:
            raise InvalidInputError(f"soft_labels: unknown alias table {aliases!r}; expected one of {sorted(ALIASES)}")
        return ALIASES[aliases]
    return {raw.lower(): name for raw, name in aliases.items()}


def canonical_class(name: str, classes: Sequence[str], aliases: str | Mapping[str, str] | None = None) -> str | None:
    """The class in ``classes`` that ``name`` spells, or None ("other", unknown)."""
    by_lower = {c.lower(): c for c in classes}
    key = name.strip().lower()
    if key in by_lower:
        return by_lower[key]
    return by_lower.get(_alias_table(aliases).get(key, "").lower())



def is_other(token: str) -> bool:
    """True for "other" and its annotated forms ("Other", "Other-bored", "other: bored").

    Examples:
        >>> [is_other(t) for t in ("Other", "other: bored", "Other-calm", "others", "angry")]
        [True, True, True, False, False]
    """
    low = token.strip().lower()
    return low == OTHER or (low.startswith(OTHER) and not low[len(OTHER)].isalpha())


def _names(vote: Vote) -> list[str]:
    return [vote] if isinstance(vote, str) else list(vote)


def annotator_classes(vote: Vote, classes: Sequence[str], aliases: str | Mapping[str, str] | None = None
                      ) -> tuple[str, ...]:
    """The classes one annotation selects, each once, in first-mention order ("other" and
    names outside ``classes`` dropped).

    Examples:
        >>> annotator_classes(["Angry", "Frustrated", "angry", "Other-bored"], ["angry", "frustrated"])
        ('angry', 'frustrated')
    """
    table = _alias_table(aliases)
    found = (canonical_class(name, classes, table) for name in _names(vote))
    return tuple(dict.fromkeys(c for c in found if c is not None))


def all_other(votes: Iterable[Vote], classes: Sequence[str], aliases: str | Mapping[str, str] | None = None
              ) -> bool:
    """True when no annotation names a class of ``classes`` (every vote "other" or unknown)."""
    return not any(annotator_classes(vote, classes, aliases) for vote in votes)


def primary_plus_secondary(primary: str, secondary: Sequence[str], classes: Sequence[str],
                           aliases: str | Mapping[str, str] | None = None) -> Vote:
    """One rater's Secondary vote in the MSP protocol: the primary emotion plus the secondary
    ones, a class once (raw spellings kept; the first spelling of a class wins).

    Examples:
        >>> primary_plus_secondary("Angry", ["Frustrated", "Angry"], ["angry", "frustrated"])
        ('Angry', 'Frustrated')
        >>> primary_plus_secondary("Sad", [], ["sad", "happy"])
        'Sad'
    """
    table = _alias_table(aliases)
    once: dict[str, str] = {}
    for token in [primary, *secondary]:
        once.setdefault(canonical_class(token, classes, table) or token, token)
    tokens = tuple(once.values())
    return tokens[0] if len(tokens) == 1 else tokens


def soft_labels(
    votes: Sequence[str | Sequence[str]],
    classes: Sequence[str],
    smoothing: float = DEFAULT_SMOOTHING,
    *,
    aliases: str | Mapping[str, str] | None = None,
) -> np.ndarray:
    """Turn one utterance's annotations into a smoothed label distribution.

    ``votes`` has one entry per annotator: a class name, or several for a multi-choice
    annotation. Each class an annotator selects counts once for that annotator
    (``annotator_classes``); names outside ``classes`` are dropped.
    Names match case-insensitively, through ``aliases`` (a corpus key of ``ALIASES``, a
    mapping, or None for the aliases all corpora agree on). With q the vote frequencies
    and K = len(classes): p = (1 - a) q + a / K, a = smoothing K / (K - 1), so a unanimous
    utterance gets 1 - smoothing on its class.

    Returns:
        float array of shape (K,), summing to 1.
    Raises:
        InvalidInputError: no vote inside ``classes``, K < 2, or smoothing outside [0, 1).
    Examples:
        >>> soft_labels(["sad", ["sad", "happy"]], ["sad", "happy"], smoothing=0.0)
        array([0.66666667, 0.33333333])
        >>> soft_labels([["sad", "Sadness"], "happy"], ["sad", "happy"], smoothing=0.0)
        array([0.5, 0.5])
        >>> soft_labels(["Anger"] * 4 + ["happy"] * 6, ["angry", "sad", "disgust", "fear",
        ...             "neutral", "happy"]).round(3).tolist()
        [0.386, 0.01, 0.01, 0.01, 0.01, 0.574]
    """
    k = len(classes)
    if k < 2:
        raise InvalidInputError(f"soft_labels: need at least 2 classes, got {list(classes)}")
    if not 0.0 <= smoothing < 1.0:
        raise InvalidInputError(f"soft_labels: smoothing must be in [0, 1), got {smoothing}")
    table = _alias_table(aliases)
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros(k)
    for vote in votes:
        for cls in annotator_classes(vote, classes, table):
            counts[index[cls]] += 1
    if counts.sum() == 0:
        raise InvalidInputError(
            f"soft_labels: no vote in {list(classes)} (got {[v for v in votes]}); "
            "drop such utterances in the corpus recipe, as EMO-SUPERB does for 'other'."
        )
    q = counts / counts.sum()
    a = smoothing * k / (k - 1)
    return (1.0 - a) * q + a / k
