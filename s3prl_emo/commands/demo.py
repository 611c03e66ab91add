"""``s3prl-emo demo``: the whole recipe on the built-in synthetic corpus."""

from __future__ import annotations

import argparse

from .parsing import add_command
from .run_demo import run_demo


def register(subparsers) -> None:
    parser = add_command(subparsers, "demo", run)
    parser.add_argument(
        "--workdir", default="demo", help="where data/ and exp/ go: a new or empty folder, or an earlier demo's"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic corpus")


def run(args: argparse.Namespace) -> int:
    """synthesise a corpus, train with S3PRL's runner (fbank upstream), evaluate dev-best.ckpt

    Writes W/data/SYNTH and W/exp; the last line printed is the test macro-F1 next to the prior
    baseline (the train split's mean soft label for every utterance).
    """
    if args.seed < 0:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"--seed {args.seed}: expected a whole number >= 0")
    run_demo(args.workdir, seed=args.seed)
    return 0
