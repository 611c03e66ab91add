"""What a recipe reads and what the shared builder produces (plain frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..labels import Vote


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
class Reading:
    """What a recipe's reader found: the utterances, what it left out while reading (reason ->
    file names), the annotation files it read (hashed in the manifest), and reading facts for
    the manifest's rules (e.g. how many repeated rater lines were dropped)."""

    utterances: list[Utterance]
    raw_dir: Path
    sources: list[Path]
    excluded: dict[str, list[str]] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)


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


# (fold, utterances) -> one split name ("Train", "Development", "Test") per utterance.
Splitter = Callable[[int, Sequence[Utterance]], Sequence[str]]


@dataclass(frozen=True)
class Partition:
    """The folds a corpus is written with and the split of each utterance in each fold."""

    folds: tuple[int, ...]
    split: Splitter


@dataclass(frozen=True)
class Recipe:
    """What a corpus recipe declares; ``builder.build_corpus`` does the rest.

    ``corpus`` keys ``labels.ALIASES`` and ``data_splits/<corpus>.toml``; ``name`` is the
    prepared folder. ``all_other_primary`` (the manifest's wording of the reason), when set,
    leaves an utterance out of every condition when none of its "Primary" votes names a
    Primary class (``labels.all_other``; MSP-IMPROV, MSP-PODCAST). ``rules`` go into the
    manifest as they are; a key whose value the reader measures is filled from
    ``Reading.facts``. ``partition`` None: the published one (``builder.published_partition``).
    """

    corpus: str
    name: str
    conditions: tuple[Condition, ...]
    rules: Mapping[str, object]
    all_other_primary: str | None = None
    partition: Partition | None = None


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
