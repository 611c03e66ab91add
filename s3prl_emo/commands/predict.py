"""``s3prl-emo predict``: label audio files with a trained checkpoint (table, CSV or JSON)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="label audio files or folders with a trained checkpoint (e.g. EXP/dev-best.ckpt)",
        description=(
            "Any format soundfile reads, any rate, mono or multi-channel; folders are expanded. Files longer "
            "than the training crop are cut into windows of the crop length whose probabilities are averaged. "
            "Prints one row per file: the windows, each class's probability and the classes above 1/C. "
            "An unreadable file is reported by name, the others are still labelled, and the exit status is 1."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("-e", "--ckpt", required=True, type=Path, help="checkpoint of an emotion_multilabel run")
    parser.add_argument(
        "-k", "--upstream-ckpt", help="the upstream's weights file, for runs of a local upstream (-u *_local -k)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("audio", nargs="+", type=Path, help="audio files or folders")
    parser.add_argument("--out", type=Path, help="also write the results to this file")
    parser.add_argument("--format", choices=("csv", "json"), default="csv", help="of --out")
    parser.add_argument("--window-s", type=float, help="window length in seconds (default: the training crop)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per upstream call")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.predict import format_table, predict_files, write_output
    from ..inference.recognizer import EmotionRecognizer

    if args.window_s is not None and args.window_s <= 0:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"--window-s {args.window_s}: expected a positive number of seconds")
    recognizer = EmotionRecognizer.from_checkpoint(args.ckpt, upstream_ckpt=args.upstream_ckpt, device=args.device)
    results = predict_files(recognizer, args.audio, window_s=args.window_s, batch_size=args.batch_size)
    print(format_table(results, recognizer.classes))
    if args.out:
        write_output(results, recognizer.classes, args.out, args.format)
        print(f"wrote {args.out}")
    failed = [r for r in results if r.error]
    for r in failed:
        logger.error("%s", r.error)
    if failed:
        logger.error("%d of %d file(s) could not be labelled", len(failed), len(results))
    return 1 if failed else 0
