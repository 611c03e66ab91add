"""``s3prl-emo demo``: the whole recipe on the built-in synthetic corpus."""

from __future__ import annotations

import argparse

from .run_demo import run_demo


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="synthesise a corpus, train with S3PRL's runner (fbank upstream), evaluate dev-best.ckpt",
        description="Writes W/data/SYNTH and W/exp; the last line printed is the test macro-F1 "
        "next to the prior baseline (the train split's mean soft label for every utterance).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--workdir", default="demo", help="where data/ and exp/ go")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic corpus")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_demo(args.workdir, seed=args.seed)
    return 0
