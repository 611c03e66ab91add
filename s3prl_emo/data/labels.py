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

Class names match case-insensitively and through an alias table of the release's own
spellings ("Neutral state", "A", "Frustration"). Each recipe declares its table (``ALIASES``
in ``corpora/<corpus>.py``, ``Corpus.aliases`` in the registry ``corpora.CORPORA``);
``aliases="iemocap"`` looks it up there on first use. ``COMMON_ALIASES``, the spellings every
table maps the same way, is the default.

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

import functools
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import numpy as np

from ..errors import InvalidInputError

DEFAULT_SMOOTHING = 0.05

Vote = str | Sequence[str]  # one annotator: a class name, or several for a multi-choice answer

OTHER = "other"
# Exclusion reasons, as they appear in manifest.json and the log summary.
EXCLUDED_OTHER = "no vote inside the class list (all 'other')"
EXCLUDED_FEW_ANNOTATORS = "fewer annotators than required"


class _Lowered(dict):
    """An alias table whose keys are lower case already (``alias_table``'s result, used as it is)."""


def _union_of_unambiguous(tables: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """Aliases that every corpus table maps the same way.

    A spelling two tables map to different classes would be dropped (none does today: "s" is
    sad wherever it is listed).
    """
    merged: dict[str, str] = {}
    clashing: set[str] = set()
    for table in tables:
        for raw, name in table.items():
            if merged.setdefault(raw, name) != name:
                clashing.add(raw)
    return {raw: name for raw, name in merged.items() if raw not in clashing}


@functools.cache
def _corpus_tables() -> dict[str, Mapping[str, str]]:
    """Corpus key -> its recipe's alias table (``corpora.CORPORA``).

    The recipes import this module, so the registry is looked up on first use, never at import.
    """
    from .corpora import alias_tables

    return {key: alias_table(table) for key, table in alias_tables().items()}


@functools.cache
def _common_aliases() -> _Lowered:
    return _Lowered(_union_of_unambiguous(_corpus_tables().values()))


def __getattr__(name: str) -> object:
    # COMMON_ALIASES is derived from the recipes' tables on first use (PEP 562), read-only.
    if name == "COMMON_ALIASES":
        return MappingProxyType(_common_aliases())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def alias_table(aliases: str | Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The table that names are read through, its keys lower-cased.

    ``aliases`` is a corpus key of ``corpora.CORPORA`` (its recipe's table), a mapping of
    spellings to class names, or None for ``COMMON_ALIASES``. The result is used as it is when
    handed back to the functions here, so a loop over many votes normalises it once; the
    recipes declare their ``ALIASES`` through it.

    Raises:
        InvalidInputError: an unknown corpus key.

    Examples:
        >>> alias_table({"Neutral State": "neutral"})
        {'neutral state': 'neutral'}
        >>> alias_table("crema-d")["a"]
        'angry'
    """
    if aliases is None:
        return _common_aliases()
    if isinstance(aliases, _Lowered):
        return aliases
    if isinstance(aliases, str):
        tables = _corpus_tables()
        if aliases not in tables:
            raise InvalidInputError(f"soft_labels: unknown alias table {aliases!r}; expected one of {sorted(tables)}")
        return tables[aliases]
    return _Lowered((raw.lower(), name) for raw, name in aliases.items())


def canonical_class(name: str, classes: Sequence[str], aliases: str | Mapping[str, str] | None = None) -> str | None:
    """The class in ``classes`` that ``name`` spells, or None ("other", unknown).

    Corpora spell one class many ways ("Anger", "ang", "angry"); votes are counted only after
    each spelling is mapped, case-insensitively, to the condition's class name.

    Args:
        name: A raw label as an annotation file has it.
        classes: The condition's class names.
        aliases: A corpus key or an alias table (spelling -> class); None for the shared aliases.

    Examples:
        >>> canonical_class("Anger", ["angry", "sad"], "iemocap"), canonical_class(" SAD ", ["angry", "sad"])
        ('angry', 'sad')
        >>> canonical_class("Other", ["angry", "sad"]) is None
        True
    """
    by_lower = {c.lower(): c for c in classes}
    key = name.strip().lower()
    if key in by_lower:
        return by_lower[key]
    return by_lower.get(alias_table(aliases).get(key, "").lower())


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


def annotator_classes(
    vote: Vote, classes: Sequence[str], aliases: str | Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The classes one annotation selects, each once, in first-mention order.

    "other" and names outside ``classes`` are dropped: they carry no vote for a scored class.

    Examples:
        >>> annotator_classes(["Angry", "Frustrated", "angry", "Other-bored"], ["angry", "frustrated"])
        ('angry', 'frustrated')
    """
    table = alias_table(aliases)
    found = (canonical_class(name, classes, table) for name in _names(vote))
    return tuple(dict.fromkeys(c for c in found if c is not None))


def all_other(votes: Iterable[Vote], classes: Sequence[str], aliases: str | Mapping[str, str] | None = None) -> bool:
    """True when no annotation names a class of ``classes`` (every vote "other" or unknown).

    Such an utterance has no soft label over the classes, so the recipes exclude it.

    Examples:
        >>> all_other([["Other"], ["bored"]], ["angry", "sad"]), all_other([["Other"], ["Sad"]], ["angry", "sad"])
        (True, False)
    """
    table = alias_table(aliases)
    return not any(annotator_classes(vote, classes, table) for vote in votes)


def primary_plus_secondary(
    primary: str, secondary: Sequence[str], classes: Sequence[str], aliases: str | Mapping[str, str] | None = None
) -> Vote:
    """One rater's Secondary vote in the MSP protocol: the primary emotion plus the secondary ones.

    Each class counts once (raw spellings kept; the first spelling of a class wins), so a rater
    who repeats the primary emotion among the secondary ones does not vote for it twice.

    Examples:
        >>> primary_plus_secondary("Angry", ["Frustrated", "Angry"], ["angry", "frustrated"])
        ('Angry', 'Frustrated')
        >>> primary_plus_secondary("Sad", [], ["sad", "happy"])
        'Sad'
    """
    table = alias_table(aliases)
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
    Names match case-insensitively, through ``aliases`` (a corpus key of ``corpora.CORPORA``,
    whose recipe declares the table, a mapping, or None for the aliases all corpora agree on,
    ``COMMON_ALIASES``). With q the vote frequencies
    and K = len(classes): p = (1 - a) q + a / K, a = smoothing K / (K - 1), so a unanimous
    utterance gets 1 - smoothing on its class. Smoothing stays below (K - 1) / K, where that
    class would fall to the others' share: the label would no longer favour the votes.

    Returns:
        float array of shape (K,), summing to 1.

    Raises:
        InvalidInputError: no vote inside ``classes``, K < 2, or smoothing outside [0, (K - 1) / K).

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
    if not 0.0 <= smoothing < (k - 1) / k:
        raise InvalidInputError(
            f"soft_labels: smoothing must be in [0, (K - 1) / K) = [0, {(k - 1) / k:.4g}) for K = {k} classes, "
            f"got {smoothing}; at or above it the voted classes no longer get the most mass"
        )
    table = alias_table(aliases)
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
