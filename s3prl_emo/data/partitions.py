"""Speaker-independent partitions as pure rules: which split an utterance falls in.

Session of a file name, split of a fold, the corpus's own sets, fold generation for a
custom corpus, and the leakage rule of one label table (``fold_violations``). Nothing here
reads a prepared folder or audio: the on-disk audit of a prepared corpus is ``audit``.

The corpus facts are data, not code: ``data_splits/<corpus>.toml`` holds, per corpus, the
rule that maps a file name to its session (dyad) and the fold -> train/dev/test session
table of the published EMO-SUPERB ``labels_consensus_<k>.csv`` files, or, for the podcast
corpora, how the corpus's own sets map to Train/Development/Test. An installed package
carries the folder as ``s3prl_emo/data_splits``; a source checkout has it next to the
package folder.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import random
import re
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from ..errors import CorpusLayoutError, InvalidInputError
from ..runtime.paths import resource_dir
from .layout import DEVELOPMENT, SPLIT_SETS, TEST, TRAIN, parse_fold

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 3  # how many offending names a message quotes


@dataclass(frozen=True)
class Fold:
    """Sessions of each split of one fold.

    Examples:
        >>> Fold(train=(1, 2, 3), dev=(4,), test=(5,)).split_of()[4]
        'Development'
    """

    train: tuple[int, ...]
    dev: tuple[int, ...]
    test: tuple[int, ...]

    def split_of(self) -> dict[int, str]:
        """Session -> "Train" / "Development" / "Test"."""
        return {
            **{s: TRAIN for s in self.train},
            **{s: DEVELOPMENT for s in self.dev},
            **{s: TEST for s in self.test},
        }


@dataclass(frozen=True)
class _SessionRule:
    pattern: re.Pattern
    example: str
    group: str  # what the regex group is, for messages: "actor id", "dialog number", ...
    table: Mapping[int, int] | None  # group value -> session; None: the value is the session

    def session(self, file_name: str) -> int | str:
        """The session, or the reason there is none (a str)."""
        base = re.split(r"[\\/]", str(file_name).strip())[-1]
        match = self.pattern.search(base)
        if match is None:
            return f"matches no session rule (pattern {self.pattern.pattern!r}, e.g. {self.example!r})"
        value = int(match.group(1))
        if self.table is None:
            return value
        if value not in self.table:
            return f"{self.group} {value} is in no session of the table (known: {_ranges(self.table)})"
        return self.table[value]


@dataclass(frozen=True)
class _CorpusSpec:
    key: str
    name: str
    folders: tuple[str, ...]
    source: Path
    rule: _SessionRule | None
    folds: Mapping[int, Fold]
    corpus_sets: tuple[tuple[str, str], ...]  # (set name or glob, split), in lookup order

    @property
    def cross_validated(self) -> bool:
        return bool(self.folds)


def data_splits_dir() -> Path:
    """The folder of partition files."""
    return resource_dir("data_splits")


@functools.cache
def partitioned_corpora() -> tuple[str, ...]:
    """Corpus keys with a partition file ``data_splits/<key>.toml``, sorted.

    These are the recipes' corpora and the built-in ``synth``.
    """
    return tuple(sorted(p.stem for p in data_splits_dir().glob("*.toml")))


def _check_corpus(corpus: str) -> str:
    if corpus not in partitioned_corpora():
        raise InvalidInputError(f"unknown corpus {corpus!r}; expected one of {list(partitioned_corpora())}")
    return corpus


@functools.cache
def _spec(corpus: str) -> _CorpusSpec:
    """Parse and validate ``data_splits/<corpus>.toml`` (read once; the result is immutable)."""
    path = data_splits_dir() / f"{_check_corpus(corpus)}.toml"
    if not path.is_file():
        raise CorpusLayoutError(f"{path}: no such partition file for corpus {corpus!r}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise InvalidInputError(f"{path}: not valid TOML ({err})") from err
    try:
        partition = raw["partition"]
        if partition == "sessions":
            rule, folds, sets = _parse_rule(raw["session"]), _parse_folds(raw["folds"]), ()
        elif partition == "corpus-sets":
            rule, folds = None, MappingProxyType({})
            sets = tuple((str(k), str(v)) for k, v in raw["corpus_sets"].items())
        else:
            raise InvalidInputError(f"partition {partition!r}; expected 'sessions' or 'corpus-sets'")
        spec = _CorpusSpec(corpus, raw["name"], tuple(raw.get("folders", [])), path, rule, folds, sets)
    except (KeyError, TypeError, ValueError, re.error) as err:
        raise InvalidInputError(f"{path}: malformed partition file ({err!r})") from err
    _validate_spec(spec)
    return spec


def _parse_rule(raw: dict) -> _SessionRule:
    pattern = re.compile(raw["pattern"])
    if pattern.groups != 1:
        raise ValueError(f"session pattern {pattern.pattern!r} must have exactly one group")
    table: dict[int, int] | None = None
    if "ranges" in raw or "groups" in raw:
        table = {}
        for entry in raw.get("ranges", []):
            table.update({v: int(entry["session"]) for v in range(entry["first"], entry["last"] + 1)})
        for entry in raw.get("groups", []):
            table.update({int(v): int(entry["session"]) for v in entry["values"]})
    frozen = None if table is None else MappingProxyType(table)
    return _SessionRule(pattern, raw["example"], raw.get("group", "session number"), frozen)


def _parse_folds(raw: dict) -> Mapping[int, Fold]:
    return MappingProxyType(
        {
            int(k): Fold(tuple(v["train"]), tuple(v["dev"]), tuple(v["test"]))
            for k, v in sorted(raw.items(), key=lambda item: int(item[0]))
        }
    )


def _validate_spec(spec: _CorpusSpec) -> None:
    """The fold table must be a rotation: disjoint splits, same sessions, each tested once."""
    if not spec.cross_validated:
        if not spec.corpus_sets or any(split not in SPLIT_SETS for _, split in spec.corpus_sets):
            raise InvalidInputError(f"{spec.source}: corpus_sets must map set names to one of {SPLIT_SETS}")
        return
    if list(spec.folds) != list(range(1, len(spec.folds) + 1)):
        raise InvalidInputError(f"{spec.source}: folds are {list(spec.folds)}; expected 1..n")
    sessions = set(spec.folds[1].train + spec.folds[1].dev + spec.folds[1].test)
    for k, fold in spec.folds.items():
        members = fold.train + fold.dev + fold.test
        if len(set(members)) != len(members) or set(members) != sessions or not all((fold.train, fold.dev, fold.test)):
            raise InvalidInputError(
                f"{spec.source}: fold {k} {fold} must split sessions {sorted(sessions)} into three "
                "disjoint, non-empty sets"
            )
    tested = Counter(s for fold in spec.folds.values() for s in fold.test)
    if set(tested) != sessions or set(tested.values()) != {1}:
        raise InvalidInputError(
            f"{spec.source}: every session must be the test set of exactly one fold; got {dict(tested)}"
        )
    if spec.rule is not None and spec.rule.table is not None:
        unknown = set(spec.rule.table.values()) - sessions
        if unknown:
            raise InvalidInputError(
                f"{spec.source}: session table names sessions {sorted(unknown)} "
                f"that no fold uses (folds use {sorted(sessions)})"
            )


def _ranges(table: Mapping[int, int]) -> str:
    """``{1001: .., 1002: .., 1005: ..}`` -> ``"1001-1002, 1005"``."""
    values = sorted(table)
    parts: list[str] = []
    start = prev = values[0]
    for v in [*values[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts)


def is_cross_validated(corpus: str) -> bool:
    """True for corpora partitioned by session folds, False for those that keep their own sets.

    Examples:
        >>> is_cross_validated("iemocap"), is_cross_validated("msp-podcast")
        (True, False)
    """
    return _spec(corpus).cross_validated


def fold_table(corpus: str) -> dict[int, Fold]:
    """Fold number (1-based) -> sessions of each split, as the published files have them.

    Raises:
        InvalidInputError: unknown corpus, or one that keeps its own sets (msp-podcast,
            biic-podcast: use ``split_of_corpus_set``).

    Examples:
        >>> folds = fold_table("iemocap")
        >>> sorted(folds), folds[1]
        ([1, 2, 3, 4, 5], Fold(train=(1, 2, 3), dev=(5,), test=(4,)))
    """
    spec = _spec(corpus)
    if not spec.cross_validated:
        raise InvalidInputError(f"{corpus}: no fold table; the corpus keeps its own sets (use split_of_corpus_set)")
    return dict(spec.folds)


def session_of(corpus: str, file_name: str) -> int:
    """The session (dyad) a file belongs to, by the corpus's file-name rule.

    Raises:
        InvalidInputError: the name matches no rule (the message quotes it), or the corpus
            has no session rule.

    Examples:
        >>> session_of("iemocap", "Ses01F_impro01_F000.wav"), session_of("nnime", "neutral_11_B_034.wav")
        (1, 3)
    """
    spec = _spec(corpus)
    if spec.rule is None:
        raise InvalidInputError(f"{corpus}: no session rule; the corpus keeps its own sets (use split_of_corpus_set)")
    session = spec.rule.session(file_name)
    if isinstance(session, str):
        raise InvalidInputError(f"{corpus}: file name {file_name!r} {session}")
    return session


def assign_splits(corpus: str, fold: int, file_names: Sequence[str]) -> list[str]:
    """The split ("Train", "Development" or "Test") of each file name, in order, for one published fold.

    Raises:
        InvalidInputError: unknown fold (the message gives the valid range), or a name that
            matches no session rule (the message quotes it and counts the others).

    Examples:
        >>> assign_splits("iemocap", 1, ["Ses01F_impro01_F000.wav", "Ses05M_script01_1_M012.wav"])
        ['Train', 'Development']
    """
    folds = fold_table(corpus)
    split_of = folds[parse_fold(fold, list(folds), owner=corpus)].split_of()
    rule = _spec(corpus).rule
    splits: list[str] = []
    problems: list[str] = []
    for name in file_names:
        session = rule.session(name)
        if isinstance(session, int) and session not in split_of:
            session = f"is in session {session}, which fold {fold} does not use ({sorted(split_of)})"
        if isinstance(session, str):
            problems.append(f"{name!r} {session}")
        else:
            splits.append(split_of[session])
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidInputError(f"{corpus}: file name {problems[0]}{more}")
    return splits


def split_of_corpus_set(corpus: str, corpus_set: str) -> str:
    """EMO-SUPERB split of one of the corpus's own sets (msp-podcast, biic-podcast).

    Examples:
        >>> split_of_corpus_set("msp-podcast", "Test2")
        'Test'
    """
    spec = _spec(corpus)
    if spec.cross_validated:
        raise InvalidInputError(f"{corpus}: partitioned by session folds; use assign_splits")
    wanted = str(corpus_set).strip().lower()
    for name, split in spec.corpus_sets:
        if name.lower() == wanted:
            return split
    for name, split in spec.corpus_sets:
        if any(c in name for c in "*?[") and fnmatch.fnmatchcase(wanted, name.lower()):
            return split
    raise InvalidInputError(
        f"{corpus}: unknown corpus set {corpus_set!r}; expected one of {[n for n, _ in spec.corpus_sets]}"
    )


def corpus_key(folder_name: str) -> str | None:
    """The corpus key of an EMO-SUPERB folder name (``IMPROV`` -> ``msp-improv``), else None.

    Prepared folders carry the released names, so the partition of a folder can be found
    (and checked) from its path alone.

    Examples:
        >>> corpus_key("IMPROV"), corpus_key("/data/IEMOCAP"), corpus_key("Unknown")
        ('msp-improv', 'iemocap', None)
    """
    wanted = Path(str(folder_name)).name.strip().upper()
    for key in partitioned_corpora():
        if wanted == key.upper() or wanted in {f.upper() for f in _spec(key).folders}:
            return key
    return None


def balanced_session_folds(sessions: Sequence[str], n_folds: int, *, seed: int = 0) -> dict[int, list[str]]:
    """Session-level folds for a custom corpus, balanced by utterance count.

    ``sessions`` has one entry per utterance. Sessions are dealt largest first (equal sizes
    in an order shuffled by ``seed``) to the group with the fewest utterances so far; fold k
    tests group k, develops on group k + 1 (mod n) and trains on the rest, so every session
    is tested exactly once and never shares a fold's splits.

    Returns:
        fold (1..n_folds) -> split name per utterance, in the order of ``sessions``.

    Raises:
        InvalidInputError: n_folds < 3, or fewer distinct sessions than folds.

    Examples:
        >>> balanced_session_folds(["a", "a", "b", "c"], 3)[1]
        ['Test', 'Test', 'Train', 'Development']
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 3:
        raise InvalidInputError(
            f"balanced_session_folds: n_folds must be an integer >= 3 (train, dev and test each "
            f"need a group), got {n_folds!r}"
        )
    sizes = Counter(sessions)
    if len(sizes) < n_folds:
        raise InvalidInputError(
            f"balanced_session_folds: {len(sizes)} distinct session(s) {sorted(map(str, sizes))[:10]} "
            f"for {n_folds} folds; need at least one session per fold. Use fewer folds."
        )
    order = sorted(sizes, key=str)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda s: -sizes[s])  # stable: equal sizes keep the seeded order
    load = [0] * n_folds
    group_of: dict[str, int] = {}
    for session in order:
        group = min(range(n_folds), key=lambda g: (load[g], g))
        group_of[session] = group
        load[group] += sizes[session]
    logger.debug("balanced_session_folds: utterances per group %s", load)
    folds: dict[int, list[str]] = {}
    for k in range(1, n_folds + 1):
        test, dev = k - 1, k % n_folds
        name = {test: TEST, dev: DEVELOPMENT}
        folds[k] = [name.get(group_of[s], TRAIN) for s in sessions]
    return folds


def _split_summary(groups: pd.Series) -> str:
    """``Train (12), Test (3)`` from the Split_Set values of one speaker or session."""
    counts = groups.value_counts()
    return ", ".join(f"{s} ({counts[s]})" for s in sorted(counts.index, key=_split_rank))


def _split_rank(split: str) -> int:
    return SPLIT_SETS.index(split) if split in SPLIT_SETS else len(SPLIT_SETS)


def quote_examples(names: Sequence[str]) -> str:
    """The first few ``names``, quoted, for an error message that must stay one readable line.

    Examples:
        >>> quote_examples(["a.wav", "b.wav"])
        "'a.wav', 'b.wav'"
        >>> quote_examples(["a", "b", "c", "d", "e"])
        "'a', 'b', 'c', ..."
    """
    shown = ", ".join(repr(n) for n in list(names)[:MAX_EXAMPLES])
    return shown + (", ..." if len(names) > MAX_EXAMPLES else "")


def _as_labels_frame(frame: pd.DataFrame) -> pd.DataFrame:
    first = str(frame.columns[0]) if len(frame.columns) else ""
    if "FileName" not in frame.columns and (first == "" or first.startswith("Unnamed: 0")):
        frame = frame.rename(columns={frame.columns[0]: "FileName"})
    missing = [c for c in ("FileName", "Split_Set") if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"fold_violations: frame lacks column(s) {missing}; header is {list(frame.columns)}, "
            "expected a labels_consensus_<k>.csv table (FileName, ..., SpkrID, Split_Set)"
        )
    return frame


# SpkrID values that name no speaker (MSP-PODCAST's "Unknown"): they cannot leak.
UNKNOWN_SPEAKERS = ("", "Unknown", "unknown")


def fold_violations(frame: pd.DataFrame, *, corpus: str | None = None) -> list[str]:
    """Leakage in one ``labels_consensus_<k>.csv`` table, as readable lines (empty: clean).

    Checks: a FileName listed twice; a SpkrID (when the column exists; not one of
    ``UNKNOWN_SPEAKERS``) in two splits; and,
    when ``corpus`` is a corpus key (or an EMO-SUPERB folder name) with a session rule, a
    session in two splits or a file name that matches no session rule.

    Examples:
        >>> import pandas as pd
        >>> frame = pd.DataFrame(
        ...     {"FileName": ["a.wav", "b.wav"], "SpkrID": ["s1", "s1"], "Split_Set": ["Train", "Test"]}
        ... )
        >>> len(fold_violations(frame))
        1
    """
    frame = _as_labels_frame(frame)
    names = frame["FileName"].astype(str)
    splits = frame["Split_Set"].astype(str)
    problems: list[str] = []
    counts = names.value_counts()
    for name, n in counts[counts > 1].items():
        problems.append(f"FileName {name!r} is listed {n} times; each utterance belongs in one row")
    if "SpkrID" in frame.columns:
        known = frame["SpkrID"].notna() & ~frame["SpkrID"].astype(str).isin(UNKNOWN_SPEAKERS)
        speakers = frame.loc[known, "SpkrID"].astype(str)
        for speaker, group in splits[known].groupby(speakers, sort=True):
            if group.nunique() > 1:
                problems.append(f"speaker {speaker!r} is in several splits: {_split_summary(group)}")
    key = corpus if corpus in partitioned_corpora() else (corpus_key(corpus) if corpus else None)
    rule = _spec(key).rule if key else None
    if rule is not None:
        sessions = [rule.session(n) for n in names]
        unmatched = [n for n, s in zip(names, sessions, strict=True) if isinstance(s, str)]
        if unmatched:
            problems.append(
                f"{len(unmatched)} file name(s) match no {key} session rule: {quote_examples(unmatched)} "
                f"(expected names like {rule.example!r})"
            )
        matched = pd.Series([s if isinstance(s, int) else None for s in sessions], index=frame.index)
        ok = matched.notna()
        for session, group in splits[ok].groupby(matched[ok].astype(int), sort=True):
            if group.nunique() > 1:
                problems.append(f"{key} session {session} is in several splits: {_split_summary(group)}")
    return problems
