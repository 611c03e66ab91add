"""The on-disk audit of a prepared corpus: leakage across splits, coverage, sizes and hours.

Reads ``<root>/<CORPUS>/Primary|Secondary`` (every ``labels_consensus_<k>.csv``) and the audio
in ``<root>/<CORPUS>/Audios``; the rules it applies are ``partitions``' (``fold_violations``).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import soundfile
from tqdm import tqdm

from ..errors import CorpusLayoutError
from ..runtime.paths import Pathlike
from .layout import SPLIT_SETS, TEST, label_files, read_config, read_labels
from .partitions import corpus_key, fold_violations, is_cross_validated, quote_examples

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitStats:
    """One row of the check-splits table."""

    fold: int
    split: str
    utterances: int
    speakers: int | None  # None: the label file has no SpkrID column
    hours: float  # NaN: some audio of the split is missing or unreadable


@dataclass(frozen=True)
class SplitReport:
    """What ``check_splits`` found: per fold and split counts, and every violation."""

    corpus_dir: Path
    corpus: str | None
    rows: list[SplitStats] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when no violation was found: the partition is speaker-independent and complete."""
        return not self.violations

    def table(self) -> str:
        """The rows as a fixed-width text table; unknown hours and speakers show as "?"."""
        lines = [f"{'fold':>4}  {'split':<11}  {'utterances':>10}  {'speakers':>8}  {'hours':>7}"]
        for r in self.rows:
            speakers = "?" if r.speakers is None else str(r.speakers)
            hours = "?" if math.isnan(r.hours) else f"{r.hours:.2f}"
            lines.append(f"{r.fold:>4}  {r.split:<11}  {r.utterances:>10}  {speakers:>8}  {hours:>7}")
        return "\n".join(lines)


def read_folds(corpus_dir: Pathlike) -> dict[int, pd.DataFrame]:
    """Every ``labels_consensus_<k>.csv`` of a Primary/Secondary folder, validated, by fold."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusLayoutError(f"{corpus_dir}: no such folder; expected <root>/<CORPUS>/Primary|Secondary")
    config = read_config(corpus_dir)
    files = label_files(corpus_dir)
    if not files:
        raise CorpusLayoutError(f"{corpus_dir}: no labels_consensus_<k>.csv file")
    return {k: read_labels(path, config.classes) for k, path in files.items()}


def audio_durations(audio_dir: Pathlike, file_names: Sequence[str]) -> dict[str, float]:
    """Seconds per file under ``audio_dir``; NaN where the file is missing or unreadable."""
    audio_dir = Path(audio_dir)
    durations: dict[str, float] = {}
    for name in tqdm(file_names, desc="audio durations", unit="file", disable=None):
        try:
            durations[name] = soundfile.info(str(audio_dir / name)).duration
        except (RuntimeError, OSError):  # soundfile raises LibsndfileError (a RuntimeError)
            durations[name] = math.nan
    missing = sum(math.isnan(d) for d in durations.values())
    if missing:
        logger.warning(
            "%d of %d audio file(s) missing or unreadable under %s; their hours show as ?",
            missing,
            len(durations),
            audio_dir,
        )
    return durations


def check_splits(corpus_dir: Pathlike) -> SplitReport:
    """Check every fold of ``<root>/<CORPUS>/Primary|Secondary`` for leakage.

    Per fold: each utterance is in exactly one split and every fold lists the same
    utterances; no speaker and (for a known corpus) no session is in two splits. For a
    cross-validated corpus (all but the podcast ones; a custom corpus when it has more than
    one fold) the test sets of the folds together hold every utterance exactly once.
    Hours come from the audio in ``<root>/<CORPUS>/Audios``.

    Examples:
        >>> report = check_splits("corpora/SYNTH")  # doctest: +SKIP
        >>> report.clean  # doctest: +SKIP
        True
    """
    corpus_dir = Path(corpus_dir)
    frames = read_folds(corpus_dir)
    key = corpus_key(corpus_dir.parent.name)
    cross_validated = is_cross_validated(key) if key else len(frames) > 1
    durations = audio_durations(
        corpus_dir.parent / "Audios", sorted(set().union(*(set(f["FileName"]) for f in frames.values())))
    )
    rows: list[SplitStats] = []
    violations: list[str] = []
    everyone = set(durations)
    tested: dict[str, list[int]] = defaultdict(list)
    for k, frame in frames.items():
        violations += [f"fold {k}: {v}" for v in fold_violations(frame, corpus=key)]
        absent = sorted(everyone - set(frame["FileName"]))
        if absent:
            violations.append(
                f"fold {k}: {len(absent)} utterance(s) of other folds are in no split: {quote_examples(absent)}"
            )
        for split in SPLIT_SETS:
            part = frame[frame["Split_Set"] == split]
            speakers = part["SpkrID"].dropna().nunique() if "SpkrID" in part.columns else None
            hours = sum(durations[n] for n in part["FileName"]) / 3600.0
            rows.append(SplitStats(k, split, len(part), speakers, hours))
        for name in frame.loc[frame["Split_Set"] == TEST, "FileName"]:
            tested[name].append(k)
    if cross_validated:
        never = sorted(everyone - set(tested))
        if never:
            violations.append(f"{len(never)} utterance(s) are in no fold's Test split: {quote_examples(never)}")
        repeated = {n: ks for n, ks in tested.items() if len(ks) > 1}
        if repeated:
            first = min(repeated)
            violations.append(
                f"{len(repeated)} utterance(s) are in the Test split of several folds, e.g. {first!r} "
                f"in folds {repeated[first]}; each belongs in exactly one fold's Test split"
            )
    return SplitReport(corpus_dir, key, rows, violations)
