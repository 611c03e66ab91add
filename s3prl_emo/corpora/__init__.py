"""Corpus recipes, one module each, listed explicitly (no star imports, no import-time work).

Every module has ``read_<corpus>(corpus_dir)`` (raw votes, no label policy) and
``prepare_<corpus>(corpus_dir, output_dir=None, *, ...)``; see ``corpora.common``.
"""

from . import biic_podcast, crema_d, generic, iemocap, msp_improv, msp_podcast, nnime

# CLI corpus name -> recipe module
CORPORA = {
    "iemocap": iemocap,
    "crema-d": crema_d,
    "msp-improv": msp_improv,
    "msp-podcast": msp_podcast,
    "biic-podcast": biic_podcast,
    "nnime": nnime,
    "generic": generic,
}
