"""Corpus recipes, one module each, and the one registry of them (no star imports, no import-time work).

Every recipe module ``corpora/<corpus>.py`` reads its release (``read_<corpus>(corpus_dir)``:
raw votes, no label policy), prepares it (``prepare_<corpus>(corpus_dir, output_dir=None, *,
...)``, through the shared ``builder``) and declares its facts once, in its ``RECORD``
(``record.Corpus``): CLI key, prepared folder, alias table, conditions and class lists, the
EMO-SUPERB conditions it feeds, and its licence and raw tree. ``CORPORA`` collects the records;
the ``prepare`` command, the alias tables of ``labels`` and the condition list of
``report.published`` are read from it. The podcast-release reader shared by MSP-PODCAST and
BIIC-PODCAST is ``podcast_release``; ``builder``, ``raw``, ``relabel``, ``types`` and ``writer``
are the recipes' own helpers.

Examples:
    >>> CORPORA["iemocap"].name, [c.name for c in CORPORA["msp-improv"].published]
    ('IEMOCAP', ['IMPROV_P', 'IMPROV_S'])
"""

from collections.abc import Mapping

from . import biic_podcast, crema_d, generic, iemocap, msp_improv, msp_podcast, nnime
from .record import Corpus, PublishedCondition
from .writer import AUDIO_MODES

__all__ = ["AUDIO_MODES", "CORPORA", "Corpus", "PublishedCondition", "alias_tables", "published_conditions"]

# CLI corpus name -> its record, in the order ``s3prl-emo prepare --help`` lists them
CORPORA: dict[str, Corpus] = {
    record.key: record
    for record in (
        iemocap.RECORD,
        crema_d.RECORD,
        msp_improv.RECORD,
        msp_podcast.RECORD,
        biic_podcast.RECORD,
        nnime.RECORD,
        generic.RECORD,
    )
}


def alias_tables() -> dict[str, Mapping[str, str]]:
    """Corpus key -> the alias table its recipe declares (corpora without one left out).

    Examples:
        >>> alias_tables()["iemocap"]["neutral state"]
        'neutral'
    """
    return {key: record.aliases for key, record in CORPORA.items() if record.aliases is not None}


def published_conditions() -> dict[str, tuple[Corpus, PublishedCondition]]:
    """EMO-SUPERB condition name -> (its corpus, the condition), in registry order.

    Examples:
        >>> corpus, condition = published_conditions()["BPODCAST_S"]
        >>> corpus.name, condition.annotation
        ('BIIC_PODCAST', 'Secondary')
    """
    return {p.name: (record, p) for record in CORPORA.values() for p in record.published}
