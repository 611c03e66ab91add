"""``s3prl-emo synth``: write the built-in synthetic corpus."""

from __future__ import annotations

import argparse

from ..data.synth import make_synthetic_corpus


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write the built-in synthetic emotional-speech corpus (EMO-SUPERB layout)",
        description="Writes OUT/SYNTH/Audios and OUT/SYNTH/Primary/{config.json,labels_consensus_1..5.csv}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="root folder; the corpus goes to OUT/SYNTH")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same corpus)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    corpus = make_synthetic_corpus(args.out, seed=args.seed)
    print(corpus)
    return 0
