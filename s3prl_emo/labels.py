"""Annotator votes -> soft (distribution) labels, the EMO-SUPERB way.

Every selected class counts as one vote, votes outside the class list ("other") are
dropped, and the vote frequencies are smoothed so that a unanimous utterance gets
``1 - smoothing`` on its class (the rule the published EMO-SUPERB label files follow).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .errors import InvalidInputError

DEFAULT_SMOOTHING = 0.05

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
        "anger": "angry",
        "happiness": "happy",
        "sadness": "sad",
        "surprised": "surprise",
        "fearful": "fear",
        "disgusted": "disgust",
        "frustration": "frustrated",
        "amusement": "amused",
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
    "biic-podcast": {
        "anger": "angry",
        "happiness": "happy",
        "sadness": "sad",
        "surprised": "surprise",
        "fearful": "fear",
        "disgusted": "disgust",
        "frustration": "frustrated",
        "amusement": "amused",
    },
}


def _union_of_unambiguous(tables: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Aliases that every corpus table maps the same way (one-letter codes clash)."""
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


def soft_labels(
    votes: Sequence[str | Sequence[str]],
    classes: Sequence[str],
    smoothing: float = DEFAULT_SMOOTHING,
    *,
    aliases: str | Mapping[str, str] | None = None,
) -> np.ndarray:
    """Turn one utterance's annotations into a smoothed label distribution.

    ``votes`` has one entry per annotator: a class name, or several for a multi-choice
    annotation. Each selected class counts once; names outside ``classes`` are dropped.
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
        for name in [vote] if isinstance(vote, str) else vote:
            cls = canonical_class(name, classes, table)
            if cls is not None:
                counts[index[cls]] += 1
    if counts.sum() == 0:
        raise InvalidInputError(
            f"soft_labels: no vote in {list(classes)} (got {[v for v in votes]}); "
            "drop such utterances in the corpus recipe, as EMO-SUPERB does for 'other'."
        )
    q = counts / counts.sum()
    a = smoothing * k / (k - 1)
    return (1.0 - a) * q + a / k
