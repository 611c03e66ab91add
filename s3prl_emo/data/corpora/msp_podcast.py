"""MSP-PODCAST v1.11: podcast speaking turns, each rated by at least five crowd workers.

Licensed: request it from the MSP Lab, The University of Texas at Dallas (academic or
commercial licence). Expected layout, the release's own::

    <corpus_dir>/Audios/<FileName>.wav
    <corpus_dir>/Labels/labels_detailed.csv    # one row per worker and speaking turn
    <corpus_dir>/Labels/labels_consensus.csv   # Split_Set, SpkrID, Gender per turn (preferred)
    <corpus_dir>/Partitions.txt                # else this: "Train; MSP-PODCAST_0001_0008.wav"
    <corpus_dir>/Speaker_ids.txt               # optional: "MSP-PODCAST_0001_0008.wav; 0001"
                                               #           and "Speaker_0001; Female"

The files, the votes (Primary: each worker's primary emotion; Secondary: primary plus
secondary emotions, a class once per worker) and the exclusions are those of the shared
reader, ``corpora.podcast_release``.

EMO-SUPERB uses the corpus's own sets: Train, Development, and Test1 plus Test2 as Test
(``data_splits/msp-podcast.toml``); Test3 has no public labels and is left out (counted in
the manifest).
"""

from __future__ import annotations

from ...runtime.paths import Pathlike
from ..labels import alias_table
from .podcast_release import (
    CLASSES_PRIMARY,
    CLASSES_SECONDARY,
    EXCLUDED_ALL_OTHER,
    EXCLUDED_NO_ANNOTATIONS,
    EXCLUDED_UNLABELLED_SET,
    PODCAST_WORDS,
    PodcastRelease,
    podcast_preparer,
    podcast_recipe,
    read_podcast_release,
)
from .record import PublishedCondition, recipe_record
from .types import Utterance

__all__ = [
    "ALIASES",
    "CLASSES_PRIMARY",
    "CLASSES_SECONDARY",
    "EXCLUDED_ALL_OTHER",
    "EXCLUDED_NO_ANNOTATIONS",
    "EXCLUDED_UNLABELLED_SET",
    "NAME",
    "RECORD",
    "prepare_msp_podcast",
    "read_msp_podcast",
]

CORPUS = "msp-podcast"
NAME = "PODCAST"
UNLABELLED_SETS = ("Test3",)  # no public labels (EMO-SUPERB supplementary A.5)
# The release's spellings, lower-cased -> class name: words in labels_detailed.csv, one-letter
# codes in labels_consensus.csv.
ALIASES = alias_table(
    {
        "a": "angry",
        "s": "sad",
        "h": "happy",
        "u": "surprise",
        "f": "fear",
        "d": "disgust",
        "c": "contempt",
        "n": "neutral",
        **PODCAST_WORDS,
    }
)
PUBLISHED = (PublishedCondition("PODCAST_P", "Primary"), PublishedCondition("PODCAST_S", "Secondary"))
RELEASE = PodcastRelease(CORPUS, NAME, "MSP-Podcast v1.11", ALIASES, UNLABELLED_SETS)


def read_msp_podcast(corpus_dir: Pathlike) -> list[Utterance]:
    """Every worker's primary and secondary votes, mean attributes, set, speaker and gender."""
    return read_podcast_release(corpus_dir, RELEASE).utterances


prepare_msp_podcast = podcast_preparer(__name__, RELEASE)
RECORD = recipe_record(
    podcast_recipe(RELEASE), __name__, read=read_msp_podcast, prepare=prepare_msp_podcast, published=PUBLISHED
)
