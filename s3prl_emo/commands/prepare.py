"""``s3prl-emo prepare <corpus>``: a raw corpus release -> the EMO-SUPERB layout.

One subcommand per record of the registry ``corpora.CORPORA``, each with the shared flags
plus the corpus's own (``Corpus.add_options``); the help shows the recipe's description
(licence and expected raw tree) and the EMO-SUPERB conditions the corpus feeds. The options
are named as the library's arguments (``--corpus-dir``/``--output-dir``); ``--raw``/``--out``
are kept as aliases.
"""

from __future__ import annotations

import argparse
import logging
import textwrap

from ..data.corpora import AUDIO_MODES, CORPORA, Corpus
from ..data.labels import DEFAULT_SMOOTHING
from .parsing import add_command

logger = logging.getLogger(__name__)


def _epilog(corpus: Corpus) -> str | None:
    """Where the output goes and which EMO-SUPERB conditions (downstream_configs/) train on it."""
    if not corpus.published:
        return None
    conditions = ", ".join(f"{p.name} ({corpus.name}/{p.annotation})" for p in corpus.published)
    return textwrap.fill(f"EMO-SUPERB conditions (downstream_configs/<condition>.yaml): {conditions}.", 79)


def register(subparsers) -> None:
    parser = add_command(subparsers, "prepare", run)
    recipes = parser.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    for corpus in CORPORA.values():
        sub = add_command(
            recipes,
            corpus.key,
            run,
            help=corpus.summary,
            description=corpus.doc,
            epilog=_epilog(corpus),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "--corpus-dir",
            "--raw",
            dest="corpus_dir",
            required=True,
            metavar="CORPUS_DIR",
            help="the corpus release folder (generic: the audio folder)",
        )
        sub.add_argument(
            "--output-dir",
            "--out",
            dest="output_dir",
            required=True,
            metavar="OUTPUT_DIR",
            help="the corpus goes to OUTPUT_DIR/<CORPUS>",
        )
        sub.add_argument(
            "--audio",
            choices=AUDIO_MODES,
            default=AUDIO_MODES[0],
            help="link the audio files into Audios/ or copy them (default: %(default)s)",
        )
        sub.add_argument(
            "--relabel",
            metavar="FILE.csv",
            help="adjusted label distributions that replace the computed rows of the listed "
            "utterances: FileName + one column per class, or EMO-SUPERB's released "
            "chatGPT/output_*.csv as they are (see s3prl_emo.data.corpora.relabel)",
        )
        sub.add_argument(
            "--smoothing", type=float, default=DEFAULT_SMOOTHING, help="label smoothing (default: %(default)s)"
        )
        sub.add_argument(
            "--overwrite",
            action="store_true",
            help="replace OUTPUT_DIR/<CORPUS> if it is an earlier output of s3prl-emo prepare "
            "(never a folder of other content, nor one that holds the inputs)",
        )
        if corpus.add_options is not None:
            corpus.add_options(sub)


def run(args: argparse.Namespace) -> int:
    """turn a raw corpus release into the EMO-SUPERB layout (soft labels, folds, manifest)

    Reads the corpus's own release files under CORPUS_DIR and writes OUTPUT_DIR/<CORPUS>/Audios,
    OUTPUT_DIR/<CORPUS>/<Primary|Secondary>/{config.json,labels_consensus_<k>.csv} and
    OUTPUT_DIR/<CORPUS>/manifest.json. The output is staged and moved into place only when
    complete. `s3prl-emo prepare <corpus> --help` shows the corpus's expected raw tree.
    """
    corpus = CORPORA[args.corpus]
    options = {k: v for k, v in vars(args).items() if k not in ("command", "corpus", "run")}
    corpus_dir, output_dir = options.pop("corpus_dir"), options.pop("output_dir")
    # The flags and the output folder are checked before the release is read.
    corpus.claim(corpus_dir, output_dir, **options)
    prepared = corpus.prepare(corpus_dir, output_dir, **options)
    for annotation, condition in prepared.conditions.items():
        excluded = sum(len(names) for names in condition.excluded.values())
        rows = len(next(iter(condition.frames.values()))) if condition.frames else 0
        logger.info(
            "%s/%s: %d utterances, %d folds, %d excluded",
            prepared.name,
            annotation,
            rows,
            len(condition.frames),
            excluded,
        )
    return 0
