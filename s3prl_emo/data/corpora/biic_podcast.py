"""BIIC-PODCAST v1.01: Mandarin-Chinese podcast speaking turns, built the MSP-PODCAST way.

Licensed: request it from the Behavioral Informatics and Interaction Computation Lab (BIIC),
National Tsing Hua University (academic or commercial licence).

The release's file layout is not publicly documented. The corpus is collected and annotated
like MSP-PODCAST (the same primary and secondary emotion questions and 1..7 attributes, at
least five annotators per turn, its own Train/Development/Test sets), so this recipe ASSUMES
the MSP-PODCAST layout and reads it with the same parser (``corpora.podcast_release``)::

    <corpus_dir>/Audios/BIIC-PODCAST_<podcast>_<turn>[_<part>].wav
    <corpus_dir>/Labels/labels_detailed.csv    # one row per annotator and turn
    <corpus_dir>/Labels/labels_consensus.csv   # Split_Set (Train/Development/Test), SpkrID, Gender
    <corpus_dir>/Partitions.txt                # else this: "Train; BIIC-PODCAST_0001_0016_0001.wav"
    <corpus_dir>/Speaker_ids.txt               # optional

Emotions are assumed to be written in English, as in MSP-PODCAST. If your copy differs,
convert it to this layout or prepare it with ``s3prl-emo prepare generic``. Speaker ids
that are missing or ``Unknown`` stay ``Unknown``.
"""

from __future__ import annotations

from ...runtime.paths import Pathlike
from ..labels import alias_table
from .podcast_release import (
    CLASSES_PRIMARY,
    CLASSES_SECONDARY,
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
    "NAME",
    "RECORD",
    "prepare_biic_podcast",
    "read_biic_podcast",
]

CORPUS = "biic-podcast"
NAME = "BIIC_PODCAST"
# CLASSES_PRIMARY and CLASSES_SECONDARY are MSP-PODCAST's (EMO-SUPERB's published config.json files: B-PODCAST (P/S)
# uses the PODCAST (P/S) class lists).
# Emotions spelled out in English, as MSP-PODCAST does (assumed; no one-letter codes).
ALIASES = alias_table(PODCAST_WORDS)
PUBLISHED = (PublishedCondition("BPODCAST_P", "Primary"), PublishedCondition("BPODCAST_S", "Secondary"))
RELEASE = PodcastRelease(CORPUS, NAME, "BIIC-Podcast v1.01", ALIASES)


def read_biic_podcast(corpus_dir: Pathlike) -> list[Utterance]:
    """Every annotator's primary and secondary votes, mean attributes, set, speaker and gender."""
    return read_podcast_release(corpus_dir, RELEASE).utterances


prepare_biic_podcast = podcast_preparer(__name__, RELEASE)
RECORD = recipe_record(
    podcast_recipe(RELEASE), __name__, read=read_biic_podcast, prepare=prepare_biic_podcast, published=PUBLISHED
)
