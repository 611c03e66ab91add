"""The registry's record of one corpus: what its recipe module declares, in one place.

Every recipe module ``corpora/<corpus>.py`` ends with a ``RECORD`` (``Corpus``, most of it read
from the module's ``Recipe`` by ``recipe_record``) that names its CLI key, prepared folder,
reader and preparer, alias table, conditions and the EMO-SUPERB conditions it feeds;
``corpora.CORPORA`` collects them. Whatever else in the package needs a per-corpus fact (the
``prepare`` subcommands, the alias tables of ``labels``, the condition list of
``report.published``) reads it from there, so a new corpus is one new module plus its line in
the registry (and its partition file, ``data_splits/<key>.toml``).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...runtime.paths import Pathlike
from ..labels import DEFAULT_SMOOTHING
from .builder import check_smoothing
from .types import Condition, PreparedCorpus, Recipe, Utterance
from .writer import claim_corpus_dir


@dataclass(frozen=True)
class PublishedCondition:
    """A condition of the EMO-SUPERB leaderboard that a corpus provides.

    ``name`` is its config ``downstream_configs/<name>.yaml`` (and ``SOTA_<name>.yaml``) and
    its column in the paper's Table 3; ``annotation`` is the prepared folder it trains on,
    ``<corpus name>/<annotation>`` (the config's ``p_or_s``).
    """

    name: str
    annotation: str


@dataclass(frozen=True)
class Corpus:
    """One corpus of ``corpora.CORPORA``, declared by its recipe module as ``RECORD``.

    Attributes:
        key: the CLI name (``s3prl-emo prepare <key>``), the key of ``data_splits/<key>.toml``
            and of ``soft_labels(..., aliases=<key>)``.
        name: the prepared folder ``<output_dir>/<name>`` (generic: the default of ``--name``).
        module: the recipe module's dotted name.
        read: ``read_<corpus>(corpus_dir, ...)``: raw votes, no label policy.
        prepare: ``prepare_<corpus>(corpus_dir, output_dir=None, *, ...)``.
        aliases: the release's spellings, lower-cased -> class name; None: only the spellings
            every corpus agrees on (``labels.COMMON_ALIASES``).
        conditions: the declared annotation types and class lists (empty where the user gives
            the classes: generic).
        published: the EMO-SUPERB conditions built from it (Primary before Secondary).
        description: licence, source and expected raw tree (the module docstring; the CLI's help).
        add_options: adds the corpus's own ``prepare`` flags; their dest names are keyword
            arguments of ``prepare``.
        input_options: keyword arguments of ``prepare`` that name files it reads (the output
            folder may hold none of them).
        folder: the output folder's name from ``prepare``'s keyword arguments, checked (generic:
            ``--name``); None: ``name``.
    """

    key: str
    name: str
    module: str
    read: Callable[..., list[Utterance]]
    prepare: Callable[..., PreparedCorpus]
    aliases: Mapping[str, str] | None
    conditions: tuple[Condition, ...] = ()
    published: tuple[PublishedCondition, ...] = ()
    description: str | None = None
    add_options: Callable[[argparse.ArgumentParser], None] | None = None
    input_options: tuple[str, ...] = ()
    folder: Callable[[Mapping[str, Any]], str] | None = None

    def __post_init__(self) -> None:
        """Refuse a recipe whose published condition trains on an annotation it does not build.

        Raises:
            ValueError: naming the recipe, the condition and the annotations it has.
        """
        annotations = {c.annotation for c in self.conditions}
        for published in self.published:
            if published.annotation not in annotations:
                raise ValueError(
                    f"{self.key}: published condition {published.name} trains on "
                    f"{published.annotation!r}, which is not one of {sorted(annotations)}"
                )

    @property
    def doc(self) -> str:
        """The description as help text (the key where docstrings are stripped)."""
        return inspect.cleandoc(self.description) if self.description else self.key

    @property
    def summary(self) -> str:
        """The description's first sentence, on one line."""
        return re.split(r"(?<=\.)\s", " ".join(self.doc.split("\n\n")[0].split()))[0]

    def output_name(self, options: Mapping[str, Any]) -> str:
        """The folder that ``prepare(..., **options)`` writes under its output folder."""
        return self.name if self.folder is None else self.folder(options)

    def claim(
        self,
        corpus_dir: Pathlike,
        output_dir: Pathlike,
        *,
        smoothing: float = DEFAULT_SMOOTHING,
        relabel: Pathlike | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> Path:
        """Check ``prepare``'s options and its output folder before the release is read.

        What ``prepare`` checks once the release is read, checked first, so that a bad flag or
        an output folder it may not write (``writer.claim_corpus_dir``) fails before any work.
        Returns ``<output_dir>/<output_name(options)>``.

        Examples:
            >>> import tempfile
            >>> from s3prl_emo.data.corpora import CORPORA
            >>> root = Path(tempfile.mkdtemp())
            >>> CORPORA["generic"].claim(root / "wavs", root / "out", name="MINE").name
            'MINE'
        """
        check_smoothing(smoothing)
        name = self.output_name(options)
        inputs = [
            corpus_dir,
            *(options[k] for k in self.input_options if options.get(k)),
            *([relabel] if relabel else []),
        ]
        return claim_corpus_dir(output_dir, name, inputs=inputs, overwrite=overwrite)


def recipe_record(
    recipe: Recipe,
    module: str,
    *,
    read: Callable[..., list[Utterance]],
    prepare: Callable[..., PreparedCorpus],
    published: tuple[PublishedCondition, ...],
) -> Corpus:
    """The ``RECORD`` of a recipe module, from what its ``recipe`` declares.

    Key, folder, aliases and conditions are the recipe's; the description is the module's
    docstring (its licence, source and raw tree).

    Examples:
        >>> from s3prl_emo.data.corpora import crema_d
        >>> record = recipe_record(crema_d.RECIPE, crema_d.__name__, read=crema_d.read_crema_d,
        ...                        prepare=crema_d.prepare_crema_d, published=crema_d.PUBLISHED)
        >>> record == crema_d.RECORD, record.key, record.name
        (True, 'crema-d', 'CREMA-D')
    """
    return Corpus(
        key=recipe.corpus,
        name=recipe.name,
        module=module,
        read=read,
        prepare=prepare,
        aliases=recipe.aliases,
        conditions=recipe.conditions,
        published=published,
        description=sys.modules[module].__doc__,
    )
