"""Corpus recipes, one module each, and the one registry of them (no star imports, no import-time work).

Every recipe module has ``read_<corpus>(corpus_dir)`` (raw votes, no label policy) and
``prepare_<corpus>(corpus_dir, output_dir=None, *, ...)``; ``corpora.builder`` turns what
they read and declare into the prepared layout. The podcast-release reader shared by
MSP-PODCAST and BIIC-PODCAST is ``corpora.podcast_release``.
"""

from collections.abc import Callable
from types import ModuleType

from . import biic_podcast, crema_d, generic, iemocap, msp_improv, msp_podcast, nnime

# CLI corpus name -> recipe module
CORPORA: dict[str, ModuleType] = {
    "iemocap": iemocap,
    "crema-d": crema_d,
    "msp-improv": msp_improv,
    "msp-podcast": msp_podcast,
    "biic-podcast": biic_podcast,
    "nnime": nnime,
    "generic": generic,
}

# CLI corpus name -> its prepare_<corpus> function
PREPARE: dict[str, Callable] = {
    "iemocap": iemocap.prepare_iemocap,
    "crema-d": crema_d.prepare_crema_d,
    "msp-improv": msp_improv.prepare_msp_improv,
    "msp-podcast": msp_podcast.prepare_msp_podcast,
    "biic-podcast": biic_podcast.prepare_biic_podcast,
    "nnime": nnime.prepare_nnime,
    "generic": generic.prepare_generic,
}
