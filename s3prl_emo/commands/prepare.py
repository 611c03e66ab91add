"""``s3prl-emo prepare <corpus>``: a raw corpus release -> the EMO-SUPERB layout.

One subcommand per recipe of ``corpora.PREPARE``, each with its own flags; the help shows
the recipe's module docstring (licence and expected raw tree). The options are named as the
library's arguments (``--corpus-dir``/``--output-dir``); ``--raw``/``--out`` are kept as aliases.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import re
from collections.abc import Callable

from ..data.corpora import CORPORA, PREPARE
from ..data.corpora.generic import DEFAULT_FOLDS, DEFAULT_NAME, DEFAULT_SEED
from ..data.corpora.writer import AUDIO_MODES
from ..data.labels import DEFAULT_SMOOTHING

logger = logging.getLogger(__name__)


def _generic_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("generic corpus")
    group.add_argument("--votes", metavar="VOTES.csv", required=True, help="FileName,annotator,emotion rows")
    group.add_argument("--meta", metavar="META.csv", required=True, help="FileName,SpkrID,Gender,Session rows")
    group.add_argument("--classes", metavar="a,b,c", required=True, help="class list, in column order")
    group.add_argument("--folds", type=int, metavar="K", default=DEFAULT_FOLDS, help="number of folds")
    group.add_argument("--name", default=DEFAULT_NAME, help="output folder name")
    group.add_argument("--seed", type=int, metavar="N", default=DEFAULT_SEED, help="fold seed")


# corpus -> adds its own options; their dest names are keyword arguments of its prepare_<corpus>
EXTRA_OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {"generic": _generic_options}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="turn a raw corpus release into the EMO-SUPERB layout (soft labels, folds, manifest)",
        description=(
            "Reads the corpus's own release files under CORPUS_DIR and writes OUTPUT_DIR/<CORPUS>/Audios, "
            "OUTPUT_DIR/<CORPUS>/<Primary|Secondary>/{config.json,labels_consensus_<k>.csv} and "
            "OUTPUT_DIR/<CORPUS>/manifest.json. The output is staged and moved into place only when "
            "complete. `s3prl-emo prepare <corpus> --help` shows the corpus's expected raw tree."
        ),
    )
    recipes = parser.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    for corpus, prepare in PREPARE.items():
        doc = inspect.getdoc(CORPORA[corpus]) or corpus
        summary = re.split(r"(?<=\.)\s", " ".join(doc.split("\n\n")[0].split()))[0]
        sub = recipes.add_parser(corpus, help=summary, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("--corpus-dir", "--raw", dest="corpus_dir", required=True, metavar="CORPUS_DIR",
                         help="the corpus release folder (generic: the audio folder)")
        sub.add_argument("--output-dir", "--out", dest="output_dir", required=True, metavar="OUTPUT_DIR",
                         help="the corpus goes to OUTPUT_DIR/<CORPUS>")
        sub.add_argument("--audio", choices=AUDIO_MODES, default=AUDIO_MODES[0],
                         help="link the audio files into Audios/ or copy them (default: %(default)s)")
        sub.add_argument("--relabel", metavar="FILE.csv",
                         help="adjusted label distributions that replace the computed rows of the listed "
                              "utterances: FileName + one column per class, or EMO-SUPERB's released "
                              "chatGPT/output_*.csv as they are (see s3prl_emo.data.corpora.relabel)")
        sub.add_argument("--smoothing", type=float, default=DEFAULT_SMOOTHING,
                         help="label smoothing (default: %(default)s)")
        sub.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT_DIR/<CORPUS>")
        if corpus in EXTRA_OPTIONS:
            EXTRA_OPTIONS[corpus](sub)
        sub.set_defaults(run=run, prepare=prepare)


def run(args: argparse.Namespace) -> int:
    options = {k: v for k, v in vars(args).items() if k not in ("command", "corpus", "run", "prepare")}
    corpus_dir, output_dir = options.pop("corpus_dir"), options.pop("output_dir")
    prepared = args.prepare(corpus_dir, output_dir, **options)
    for annotation, condition in prepared.conditions.items():
        excluded = sum(len(names) for names in condition.excluded.values())
        rows = len(next(iter(condition.frames.values()))) if condition.frames else 0
        logger.info("%s/%s: %d utterances, %d folds, %d excluded", prepared.name, annotation, rows,
                    len(condition.frames), excluded)
    return 0
