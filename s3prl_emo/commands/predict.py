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
    from ..inference.predict import (
        check_batch_size,
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
    check_batch_size(args.batch_size)
    check_device(args.device)
    for flag, path in (("--ckpt", args.ckpt), ("--upstream-ckpt", args.upstream_ckpt)):
        if path is not None:
            require_regular_file(Path(path), flag)
    files = expand_inputs(args.audio)
    if args.out:
        inputs = [*files, args.ckpt, *([args.upstream_ckpt] if args.upstream_ckpt else [])]
        claim_output_file(args.out, inputs=inputs)
    recognizer = EmotionRecognizer.from_checkpoint(args.ckpt, upstream_ckpt=args.upstream_ckpt, device=args.device)
    results = predict_files(recognizer, files, window_s=args.window_s, batch_size=args.batch_size)
    print(format_table(results, recognizer.classes))
    if args.out:
        write_output(results, recognizer.classes, args.out, args.format)
        print(f"wrote {terminal_safe(str(args.out))}")
    failed = [r for r in results if r.error]
    for r in failed:
        logger.error("%s", terminal_safe(r.error))
    if failed:
        logger.error("%d of %d file(s) could not be labelled", len(failed), len(results))
    return 1 if failed else 0


def require_regular_file(path: Path, flag: str) -> Path:
    """``path`` if it is a regular file; a FIFO or device would block the reader, a folder is no checkpoint."""
    from ..errors import CorpusLayoutError, InvalidInputError
    from ..runtime.guards import terminal_safe

    shown = terminal_safe(str(path))
    if not path.exists():
        raise CorpusLayoutError(f"{flag} {shown}: no such file")
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a FIFO, socket or device)"
        raise InvalidInputError(f"{flag} {shown}: {kind}; expected a checkpoint file")
    return path


def check_device(device: str) -> None:
    """``--device`` names a device torch knows and this machine has (``cpu``, ``cuda``, ``cuda:1``)."""
    import torch

    from ..errors import InvalidInputError

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise InvalidInputError(f"--device {device!r}: not a torch device ({err})") from err
    if parsed.type == "cuda" and (not torch.cuda.is_available() or (parsed.index or 0) >= torch.cuda.device_count()):
        raise InvalidInputError(f"--device {device!r}: no such CUDA device on this machine")
