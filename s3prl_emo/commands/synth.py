"""``s3prl-emo synth``: write the built-in synthetic corpus, or another one for cross-corpus tests."""

from __future__ import annotations

import argparse

from ..data.synth import CLASSES, NAME, make_synthetic_corpus
from ..errors import InvalidInputError
from .parsing import add_command


def register(subparsers) -> None:
    parser = add_command(subparsers, "synth", run)
    parser.add_argument(
        "--out",
        required=True,
        help="root folder; the corpus goes to OUT/NAME, which is replaced only if it is empty or an earlier "
        "output of s3prl-emo synth",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same corpus)")
    parser.add_argument("--name", default=NAME, help="corpus name: its folder, and part of its speaker ids")
    parser.add_argument(
        "--classes",
        default=",".join(CLASSES),
        help="comma-separated emotions, in column order (angry, sad, neutral, happy, fear, surprise, disgust)",
    )
    parser.add_argument("--utterances-per-speaker", type=int, default=30, help="10 speakers in 5 sessions")


def run(args: argparse.Namespace) -> int:
    """write the built-in synthetic emotional-speech corpus (EMO-SUPERB layout)

    Writes OUT/NAME/Audios and OUT/NAME/Primary/{config.json,labels_consensus_1..5.csv}. Another
    --name gives a second corpus with other speakers; --classes picks the emotions (e.g.
    angry,happy,sad,neutral,surprise for a partly different class set).
    """
    if args.seed < 0:
        raise InvalidInputError(f"--seed {args.seed}: expected a whole number >= 0")
    if args.utterances_per_speaker < 1:
        raise InvalidInputError(f"--utterances-per-speaker {args.utterances_per_speaker}: expected at least 1")
    corpus = make_synthetic_corpus(
        args.out,
        seed=args.seed,
        name=args.name,
        classes=[c for c in args.classes.split(",") if c.strip()],
        utterances_per_speaker=args.utterances_per_speaker,
    )
    print(corpus)
    return 0
