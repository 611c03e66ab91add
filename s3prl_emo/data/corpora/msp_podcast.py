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

from ..labels import DEFAULT_SMOOTHING
from ..layout import Pathlike
from .podcast_release import (
    CLASSES_PRIMARY,
    CLASSES_SECONDARY,
    EXCLUDED_ALL_OTHER,
    EXCLUDED_NO_ANNOTATIONS,
    EXCLUDED_UNLABELLED_SET,
    PodcastRelease,
    prepare_podcast_release,
    read_podcast_release,
)
from .types import PreparedCorpus, Utterance

__all__ = ["CLASSES_PRIMARY", "CLASSES_SECONDARY", "EXCLUDED_ALL_OTHER", "EXCLUDED_NO_ANNOTATIONS",
           "EXCLUDED_UNLABELLED_SET", "NAME", "prepare_msp_podcast", "read_msp_podcast"]

CORPUS = "msp-podcast"
NAME = "PODCAST"
UNLABELLED_SETS = ("Test3",)  # no public labels (EMO-SUPERB supplementary A.5)
RELEASE = PodcastRelease(CORPUS, NAME, "MSP-Podcast v1.11", UNLABELLED_SETS)


def read_msp_podcast(corpus_dir: Pathlike) -> list[Utterance]:
    """Every worker's primary and secondary votes, mean attributes, set, speaker and gender."""
    return read_podcast_release(corpus_dir, RELEASE).utterances


def prepare_msp_podcast(corpus_dir: Pathlike, output_dir: Pathlike | None = None, *,
                        audio: str = "symlink", relabel: Pathlike | None = None,
                        smoothing: float = DEFAULT_SMOOTHING, overwrite: bool = False) -> PreparedCorpus:
    """Read MSP-PODCAST and build ``PODCAST/Primary`` and ``PODCAST/Secondary`` (written when
    ``output_dir`` is given)."""
    return prepare_podcast_release(corpus_dir, output_dir, RELEASE, audio=audio, relabel=relabel,
                                   smoothing=smoothing, overwrite=overwrite)
