"""``s3prl-emo predict``: label audio files with a trained checkpoint (table, CSV or JSON)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .parsing import add_command, add_model_options, check_model_options

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = add_command(subparsers, "predict", run)
    add_model_options(parser, batch_size=8, batch_help="windows per upstream call")
    parser.add_argument("audio", nargs="+", type=Path, help="audio files or folders")
    parser.add_argument("--out", type=Path, help="also write the results to this file")
    parser.add_argument("--format", choices=("csv", "json"), default="csv", help="of --out")
    parser.add_argument("--window-s", type=float, help="window length in seconds (default: the training crop)")


def run(args: argparse.Namespace) -> int:
    """label audio files or folders with a trained checkpoint (e.g. EXP/dev-best.ckpt)

    Any format soundfile reads, any rate, mono or multi-channel; folders are expanded. Files longer
    than the training crop are cut into windows of the crop length whose probabilities are averaged.
    Prints one row per file: the windows, each class's probability and the classes above 1/C (a
    checkpoint trained on attributes adds each attribute's value, e.g. EmoAct, on the corpus's scale).
    An unreadable file is reported by name, the others are still labelled, and the exit status is 1.
    """
    from ..inference.predict import (
        check_window_s,
        expand_inputs,
        format_table,
        predict_files,
        write_output,
    )
    from ..inference.recognizer import EmotionRecognizer
    from ..runtime.guards import claim_output_file, terminal_safe

    # Everything the user named is checked before the checkpoint is read or any audio is decoded.
    if args.window_s is not None:
        check_window_s(args.window_s)
    check_model_options(args)
    files = expand_inputs(args.audio)
    if args.out:
        inputs = [*files, args.ckpt, *([args.upstream_ckpt] if args.upstream_ckpt else [])]
        claim_output_file(args.out, inputs=inputs)
    recognizer = EmotionRecognizer.from_checkpoint(args.ckpt, upstream_ckpt=args.upstream_ckpt, device=args.device)
    results = predict_files(recognizer, files, window_s=args.window_s, batch_size=args.batch_size)
    print(format_table(results, recognizer.output_classes, recognizer.attributes))
    if args.out:
        write_output(results, recognizer.output_classes, args.out, args.format, recognizer.attributes)
        print(f"wrote {terminal_safe(str(args.out))}")
    failed = [r for r in results if r.error]
    for r in failed:
        logger.error("%s", terminal_safe(r.error))
    if failed:
        logger.error("%d of %d file(s) could not be labelled", len(failed), len(results))
    return 1 if failed else 0
