"""The one builder: a recipe's ``Reading`` plus its declared ``Recipe`` -> the prepared corpus.

A recipe module ``corpora/<corpus>.py`` has two public functions, and its ``RECORD``
(``record.Corpus``) for the registry ``corpora.CORPORA``:

* ``read_<corpus>(corpus_dir) -> list[Utterance]`` parses the raw release into per-annotator
  votes in the corpus's own spelling, speaker, gender, session and averaged dimensional
  scores; any vote combination the release's protocol defines (MSP's Secondary = primary plus
  secondary emotions) is built with the ``labels`` functions, nothing else is decided there.
* ``prepare_<corpus>(corpus_dir, output_dir=None, *, audio="symlink", relabel=None,
  smoothing=DEFAULT_SMOOTHING, overwrite=False) -> PreparedCorpus`` hands its ``Reading`` and
  ``Recipe`` to ``prepare_corpus`` here; ``recipe_preparer`` makes it from the two.

``build_corpus`` applies the label policy of ``labels`` (exclusions, soft labels), the
partition of ``partitions`` and the relabel file, and assembles the manifest; nothing is
written. ``prepare_corpus`` adds ``writer.write_corpus`` when ``output_dir`` is given.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ... import __version__
from ...errors import InvalidInputError
from ...runtime.paths import Pathlike
from .. import partitions
from ..labels import DEFAULT_SMOOTHING, EXCLUDED_FEW_ANNOTATORS, EXCLUDED_OTHER, all_other, soft_labels
from ..layout import DIMENSIONAL_COLUMNS, label_frame, plain_file_name_problem
from .raw import sha256_file
from .relabel import RelabelTable, apply_relabel, read_relabel, relabel_target
from .types import Condition, Partition, PreparedCondition, PreparedCorpus, Reading, Recipe, Utterance
from .writer import claim_corpus_dir, write_corpus

logger = logging.getLogger(__name__)


def published_partition(corpus: str) -> Partition:
    """The folds EMO-SUPERB published for ``corpus`` (``data_splits/<corpus>.toml``): session
    folds looked up by file name, or the release's own sets (``Utterance.corpus_set``) as one fold."""
    if partitions.is_cross_validated(corpus):

        def by_session(fold: int, utterances: Sequence[Utterance]) -> Sequence[str]:
            return partitions.assign_splits(corpus, fold, [u.file_name for u in utterances])

        return Partition(tuple(partitions.fold_table(corpus)), by_session)

    def by_corpus_set(fold: int, utterances: Sequence[Utterance]) -> Sequence[str]:
        return [partitions.split_of_corpus_set(corpus, u.corpus_set) for u in utterances]

    return Partition((1,), by_corpus_set)


def balanced_partition(n_folds: int, *, seed: int) -> Partition:
    """``n_folds`` session-level folds of a custom corpus (``partitions.balanced_session_folds``)."""

    def split(fold: int, utterances: Sequence[Utterance]) -> Sequence[str]:
        return partitions.balanced_session_folds([u.session for u in utterances], n_folds, seed=seed)[fold]

    return Partition(tuple(range(1, n_folds + 1)), split)


def _label_condition(
    utterances: Sequence[Utterance], condition: Condition, aliases: Mapping[str, str] | None, smoothing: float
) -> tuple[list[Utterance], np.ndarray, dict[str, list[str]]]:
    kept: list[Utterance] = []
    rows: list[np.ndarray] = []
    excluded: dict[str, list[str]] = {}
    for utt in utterances:
        votes = utt.votes.get(condition.annotation, ())
        if len(votes) < condition.min_annotators:
            excluded.setdefault(EXCLUDED_FEW_ANNOTATORS, []).append(utt.file_name)
            continue
        if all_other(votes, condition.classes, aliases):
            excluded.setdefault(EXCLUDED_OTHER, []).append(utt.file_name)
            continue
        kept.append(utt)
        rows.append(soft_labels(votes, condition.classes, smoothing, aliases=aliases))
    labels = np.stack(rows) if rows else np.zeros((0, len(condition.classes)))
    return kept, labels, excluded


def _dimensional_columns(utterances: Sequence[Utterance]) -> dict[str, list[float]] | None:
    present = [c for c in DIMENSIONAL_COLUMNS if any(c in u.dimensional for u in utterances)]
    if not present:
        return None
    return {c: [u.dimensional.get(c, float("nan")) for u in utterances] for c in present}


def _check_splits(corpus: str, condition: Condition, fold: int, frame: pd.DataFrame) -> None:
    """Refuse a fold that puts a speaker or session in two splits (unknown speakers are not checked)."""
    problems = partitions.fold_violations(frame, corpus=corpus)
    if problems:
        raise InvalidInputError(
            f"{corpus} {condition.annotation} fold {fold}: the partition leaks across splits: "
            + "; ".join(problems[:5])
        )


def _primary_gate(reading: Reading, recipe: Recipe) -> dict[str, list[str]]:
    """The reader's exclusions plus the recipe's all-"Other"-primary one (labels.all_other)."""
    excluded = {reason: list(names) for reason, names in reading.excluded.items()}
    if recipe.all_other_primary is None:
        return excluded
    primary = next(c for c in recipe.conditions if c.annotation == "Primary")
    gated = sorted(
        u.file_name for u in reading.utterances if all_other(u.votes["Primary"], primary.classes, recipe.aliases)
    )
    if gated:
        excluded[recipe.all_other_primary] = gated
    return excluded


def build_corpus(
    reading: Reading, recipe: Recipe, *, smoothing: float = DEFAULT_SMOOTHING, relabel: Pathlike | None = None
) -> PreparedCorpus:
    """Apply the label policy and the partition; build every table and the manifest.

    Per condition: utterances with fewer than ``min_annotators`` votes or with no vote in the
    class list are excluded and counted; the rest get ``labels.soft_labels`` (alias table
    ``recipe.aliases``) and, per fold, the split of ``recipe.partition``. ``relabel`` replaces
    the rows of the condition whose classes its header lists (``corpora.relabel``). Nothing
    is written.
    """
    utterances = reading.utterances
    corpus, name = recipe.corpus, recipe.name
    check_smoothing(smoothing)
    if len({u.file_name for u in utterances}) != len(utterances):
        dup = Counter(u.file_name for u in utterances).most_common(1)[0][0]
        raise InvalidInputError(f"{corpus}: file name {dup!r} occurs more than once in the release")
    for utt in utterances:
        problem = plain_file_name_problem(utt.file_name)
        if problem:
            raise InvalidInputError(f"{corpus}: FileName {utt.file_name!r} (audio {utt.audio_path}) {problem}")
    partition = recipe.partition or published_partition(corpus)
    relabel_path = Path(relabel) if relabel is not None else None
    target = relabel_target(relabel_path, recipe.conditions) if relabel_path is not None else None
    pre_excluded = _primary_gate(reading, recipe)
    gated = set(pre_excluded.get(recipe.all_other_primary, ())) if recipe.all_other_primary else set()
    candidates = [u for u in utterances if u.file_name not in gated]

    prepared: dict[str, PreparedCondition] = {}
    kept_names: set[str] = set()
    relabel_table, missing = None, 0
    for condition in recipe.conditions:
        kept, labels, dropped = _label_condition(candidates, condition, recipe.aliases, smoothing)
        for reason, names in pre_excluded.items():
            dropped.setdefault(reason, []).extend(names)
        relabelled: tuple[str, ...] = ()
        if condition is target:
            relabel_table = read_relabel(relabel_path, condition.classes)
            labels, relabelled, missing = apply_relabel(relabel_table, condition, kept, labels, dropped)
        frames = {}
        for fold in partition.folds:
            splits = list(partition.split(fold, kept))
            frame = label_frame(
                [u.file_name for u in kept],
                labels,
                condition.classes,
                splits,
                speakers=[u.speaker for u in kept] if any(u.speaker for u in kept) else None,
                genders=[u.gender or "" for u in kept] if any(u.gender for u in kept) else None,
                dimensional=_dimensional_columns(kept),
            )
            _check_splits(corpus, condition, fold, frame)
            frames[fold] = frame
        prepared[condition.annotation] = PreparedCondition(
            condition, frames, {r: tuple(n) for r, n in dropped.items()}, relabelled
        )
        kept_names.update(u.file_name for u in kept)
        for reason, names in dropped.items():
            logger.info("%s %s: excluded %d utterance(s): %s", name, condition.annotation, len(names), reason)
        logger.info("%s %s: %d utterances, %d folds", name, condition.annotation, len(kept), len(partition.folds))

    excluded_names = {n for names in pre_excluded.values() for n in names}
    n_read = len(utterances) + len(excluded_names - {u.file_name for u in utterances})
    rules = dict(recipe.rules)
    rules.update(reading.facts)
    manifest = _manifest(recipe, prepared, reading, rules, smoothing, relabel_table, missing, n_read)
    kept_utts = tuple(u for u in utterances if u.file_name in kept_names)
    return PreparedCorpus(corpus, name, kept_utts, prepared, manifest)


def _manifest(
    recipe: Recipe,
    prepared: Mapping[str, PreparedCondition],
    reading: Reading,
    rules: Mapping[str, object],
    smoothing: float,
    relabel: RelabelTable | None,
    missing: int,
    n_read: int,
) -> dict:
    raw_dir = Path(reading.raw_dir)
    files = []
    for source in sorted({Path(s) for s in reading.sources}):
        try:
            shown = source.relative_to(raw_dir).as_posix()
        except ValueError:
            shown = str(source)
        files.append({"path": shown, "sha256": sha256_file(source)})
    return {
        "corpus": recipe.corpus,
        "name": recipe.name,
        "package": "s3prl-emo",
        "version": __version__,
        "raw_dir": str(raw_dir.resolve()),
        "source_files": files,
        "utterances_read": n_read,
        "rules": {
            "soft_labels": "every selected class is one vote; votes outside the class list are dropped",
            "smoothing": smoothing,
            "smoothing_formula": "p = (1 - a) q + a / K, a = smoothing K / (K - 1)",
            "alias_table": dict(recipe.aliases or {}),
            **dict(rules),
        },
        "conditions": {
            annotation: {
                "classes": list(p.condition.classes),
                "min_annotators": p.condition.min_annotators,
                "utterances": len(next(iter(p.frames.values()))) if p.frames else 0,
                "folds": sorted(p.frames),
                "excluded_counts": {r: len(n) for r, n in p.excluded.items()},
                "excluded": {r: sorted(n) for r, n in p.excluded.items()},
                "relabelled": list(p.relabelled),
            }
            for annotation, p in prepared.items()
        },
        "relabel": None
        if relabel is None
        else {
            "path": str(relabel.path.resolve()),
            "sha256": sha256_file(relabel.path),
            "condition": next((a for a, p in prepared.items() if p.relabelled), None),
            "form": relabel.form,
            "rows": len(relabel.rows),
            "renormalised": len(relabel.renormalised),
            "not_in_corpus": missing,
        },
    }


def check_smoothing(smoothing: float, flag: str = "--smoothing") -> float:
    """``smoothing`` if it is a finite number in [0, 1), else an error naming ``flag``.

    Examples:
        >>> check_smoothing(0.05)
        0.05
    """
    if isinstance(smoothing, bool) or not isinstance(smoothing, int | float | np.integer | np.floating):
        raise InvalidInputError(f"{flag} {smoothing!r}: expected a number in [0, 1)")
    if not math.isfinite(smoothing) or not 0.0 <= smoothing < 1.0:
        raise InvalidInputError(f"{flag} {smoothing!r}: expected a finite number in [0, 1)")
    return float(smoothing)


def reading_inputs(reading: Reading, relabel: Pathlike | None = None) -> list[Path]:
    """What a prepare run reads: the raw folder, its source files and the relabel file; the
    output folder may hold none of them."""
    return [Path(reading.raw_dir), *map(Path, reading.sources), *([Path(relabel)] if relabel is not None else [])]


def prepare_corpus(
    reading: Reading,
    recipe: Recipe,
    output_dir: Pathlike | None = None,
    *,
    audio: str = "symlink",
    relabel: Pathlike | None = None,
    smoothing: float = DEFAULT_SMOOTHING,
    overwrite: bool = False,
) -> PreparedCorpus:
    """``build_corpus``, then ``write_corpus`` to ``<output_dir>/<recipe.name>`` when given.

    The output folder is checked before the labels are built (``writer.claim_corpus_dir``).
    """
    inputs = reading_inputs(reading, relabel)
    if output_dir is not None:
        claim_corpus_dir(output_dir, recipe.name, inputs=inputs, overwrite=overwrite)
    prepared = build_corpus(reading, recipe, smoothing=smoothing, relabel=relabel)
    if output_dir is not None:
        write_corpus(prepared, output_dir, audio=audio, overwrite=overwrite, inputs=inputs)
    return prepared


def recipe_preparer(
    module: str, read: Callable[..., Reading], recipe: Recipe, note: str = ""
) -> Callable[..., PreparedCorpus]:
    """A recipe module's ``prepare_<corpus>``: ``read(corpus_dir)``, then ``prepare_corpus`` with ``recipe``.

    Every recipe takes the same options with the same defaults, so they are declared once, by
    ``prepare_corpus``: the function's signature is ``corpus_dir``, then ``prepare_corpus``'s
    ``output_dir`` and options, with the keyword-only options of ``read`` (IEMOCAP's
    ``self_evaluations``) before them. Its arguments are checked before the release is read.

    Args:
        module: the recipe module's ``__name__``; the function is ``prepare_<last part>`` there.
        read: ``corpus_dir`` (and its own keyword-only options) -> the release's ``Reading``.
        recipe: what the recipe declares (``types.Recipe``).
        note: a last paragraph for the function's docstring (what the recipe adds).

    Examples:
        >>> from s3prl_emo.data.corpora import crema_d
        >>> crema_d.prepare_crema_d.__name__, crema_d.prepare_crema_d.__module__
        ('prepare_crema_d', 's3prl_emo.data.corpora.crema_d')
        >>> list(inspect.signature(crema_d.prepare_crema_d).parameters)
        ['corpus_dir', 'output_dir', 'audio', 'relabel', 'smoothing', 'overwrite']
    """
    name = "prepare_" + module.rpartition(".")[2]
    own = [p for p in inspect.signature(read).parameters.values() if p.kind is p.KEYWORD_ONLY]
    _, _, output_dir, *shared = inspect.signature(prepare_corpus).parameters.values()
    corpus_dir = inspect.Parameter("corpus_dir", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Pathlike")
    signature = inspect.Signature([corpus_dir, output_dir, *own, *shared], return_annotation="PreparedCorpus")

    def prepare(*args: Any, **kwargs: Any) -> PreparedCorpus:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{name}() {err}") from None
        bound.apply_defaults()
        options = dict(bound.arguments)
        reading = read(options.pop("corpus_dir"), **{p.name: options.pop(p.name) for p in own})
        return prepare_corpus(reading, recipe, **options)

    folders = " and ".join(f"``{recipe.name}/{c.annotation}``" for c in recipe.conditions)
    prepare.__doc__ = "\n\n".join(
        [
            f"Read the release and build {folders}: soft labels, folds and the manifest.",
            f"Written to ``<output_dir>/{recipe.name}`` when ``output_dir`` is given; without it the prepared "
            "tables are only returned (a dry run).",
            *([note] if note else []),
            f'Examples:\n    >>> prepared = {name}("raw/{recipe.name}", "corpora")  # doctest: +SKIP\n'
            f"    >>> sorted(prepared.conditions)  # doctest: +SKIP\n"
            f"    {sorted(c.annotation for c in recipe.conditions)!r}",
        ]
    )
    prepare.__name__ = prepare.__qualname__ = name
    prepare.__module__ = module
    prepare.__signature__ = signature  # type: ignore[attr-defined]
    return prepare
