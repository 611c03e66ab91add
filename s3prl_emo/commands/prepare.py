"""``s3prl-emo prepare``: a raw corpus release -> the EMO-SUPERB layout, one recipe per corpus."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from ..corpora import CORPORA
from ..corpora.common import AUDIO_MODES
from ..corpora.generic import DEFAULT_FOLDS, DEFAULT_NAME, DEFAULT_SEED
from ..errors import InvalidInputError
from ..labels import DEFAULT_SMOOTHING

logger = logging.getLogger(__name__)

GENERIC = "generic"
GENERIC_OPTIONS = ("votes", "meta", "classes")  # required for the generic recipe, refused otherwise
# optional for the generic recipe; None on the parser so that other corpora can refuse them
GENERIC_DEFAULTS = {"folds": DEFAULT_FOLDS, "name": DEFAULT_NAME, "seed": DEFAULT_SEED}


def _recipe(corpus: str) -> Callable:
    """``prepare_<module>`` of a registered corpus module (``crema-d`` -> ``prepare_crema_d``)."""
    module = CORPORA[corpus]
    return getattr(module, f"prepare_{module.__name__.rsplit('.', 1)[-1]}")


def _generic_options(args: argparse.Namespace) -> dict[str, object]:
    missing = [f"--{o}" for o in GENERIC_OPTIONS if getattr(args, o) is None]
    if missing:
        raise InvalidInputError(f"prepare {GENERIC}: {', '.join(missing)} required (see --help)")
    options = {o: getattr(args, o) for o in GENERIC_OPTIONS}
    options.update({o: getattr(args, o) for o in GENERIC_DEFAULTS if getattr(args, o) is not None})
    return options


def _no_options(args: argparse.Namespace) -> dict[str, object]:
    given = [f"--{o}" for o in (*GENERIC_OPTIONS, *GENERIC_DEFAULTS) if getattr(args, o) is not None]
    if given:
        raise InvalidInputError(f"prepare {args.corpus}: {', '.join(given)} only apply to '{GENERIC}'")
    return {}


# corpus -> its extra keyword arguments, from the parsed options
EXTRA_OPTIONS: dict[str, Callable[[argparse.Namespace], dict[str, object]]] = {GENERIC: _generic_options}


def register(subparsers) -> None:
    corpora = sorted(CORPORA)
    parser = subparsers.add_parser(
        "prepare",
        help="turn a raw corpus release into the EMO-SUPERB layout (soft labels, folds, manifest)",
        description=(
            "Reads the corpus's own release files under RAW and writes ROOT/<CORPUS>/Audios, "
            "ROOT/<CORPUS>/<Primary|Secondary>/{config.json,labels_consensus_<k>.csv} and "
            "ROOT/<CORPUS>/manifest.json. The output is staged and moved into place only when complete."
        ),
        epilog="Expected release layouts: " + "; ".join(
            f"{c}: see s3prl_emo.corpora.{CORPORA[c].__name__.rsplit('.', 1)[-1]}" for c in corpora
        ),
    )
    parser.add_argument("corpus", choices=corpora, help="which recipe")
    parser.add_argument("--raw", required=True, help="the corpus release folder (generic: the audio folder)")
    parser.add_argument("--out", required=True, metavar="ROOT", help="the corpus goes to ROOT/<CORPUS>")
    parser.add_argument("--audio", choices=AUDIO_MODES, default=AUDIO_MODES[0],
                        help="link the audio files into Audios/ or copy them (default: %(default)s)")
    parser.add_argument("--relabel", metavar="FILE.csv",
                        help="adjusted label distributions (FileName + one column per class) that replace "
                             "the computed rows of the listed utterances")
    parser.add_argument("--smoothing", type=float, default=DEFAULT_SMOOTHING,
                        help="label smoothing (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing ROOT/<CORPUS>")
    generic = parser.add_argument_group(f"{GENERIC} corpus only")
    generic.add_argument("--votes", metavar="VOTES.csv", help="FileName,annotator,emotion rows")
    generic.add_argument("--meta", metavar="META.csv", help="FileName,SpkrID,Gender,Session rows")
    generic.add_argument("--classes", metavar="a,b,c", help="class list, in column order")
    generic.add_argument("--folds", type=int, metavar="K", help=f"number of folds (default: {DEFAULT_FOLDS})")
    generic.add_argument("--name", help=f"output folder name (default: {DEFAULT_NAME})")
    generic.add_argument("--seed", type=int, metavar="N", help=f"fold seed (default: {DEFAULT_SEED})")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    extra = EXTRA_OPTIONS.get(args.corpus, _no_options)(args)
    prepared = _recipe(args.corpus)(
        args.raw, args.out, audio=args.audio, relabel=args.relabel, smoothing=args.smoothing,
        overwrite=args.overwrite, **extra,
    )
    for annotation, condition in prepared.conditions.items():
        excluded = sum(len(names) for names in condition.excluded.values())
        rows = len(next(iter(condition.frames.values()))) if condition.frames else 0
        logger.info("%s/%s: %d utterances, %d folds, %d excluded", prepared.name, annotation, rows,
                    len(condition.frames), excluded)
    return 0
