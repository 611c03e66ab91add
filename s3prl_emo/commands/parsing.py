"""What the subcommand parsers share: how a command is added, and the flags of a trained model.

Every command module adds its parser(s) with ``add_command``, which shows defaults (the house's
formatter) and takes the command's help from the docstring of the function that runs it. The
commands that run a trained checkpoint (``predict``, ``cross-eval``, ``trust``) take it with
the same ``-e``/``-k``/``--device``/``--batch-size`` flags (``add_model_options``), checked the
same way before anything is read (``check_model_options``). ``train`` is not one of them: its
``-e``/``-k``/``--device`` are S3PRL's ``run_downstream.py`` flags, forwarded as they are.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from pathlib import Path

HOUSE_FORMATTER = argparse.ArgumentDefaultsHelpFormatter
"""Shows each option's default after its help; commands whose defaults say nothing pass another."""


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    run: Callable[[argparse.Namespace], int],
    *,
    formatter_class: type[argparse.HelpFormatter] = HOUSE_FORMATTER,
    **kwargs,
) -> argparse.ArgumentParser:
    """Add the subcommand ``name``, which calls ``run(args)``, and return its parser.

    Unless given, its ``help`` (its line in ``s3prl-emo --help``) is the first paragraph of
    ``run``'s docstring and its ``description`` (atop ``s3prl-emo NAME --help``) the rest:
    what a command does is written once, on the function that does it. argparse refills both,
    so the docstring's line breaks do not show (except with ``RawDescriptionHelpFormatter``,
    whose callers pass their own description).

    Args:
        subparsers: what ``ArgumentParser.add_subparsers`` returned.
        name: the subcommand.
        run: called with the parsed arguments; its return value is the exit status.
        formatter_class: the house's ``ArgumentDefaultsHelpFormatter`` unless given.
        **kwargs: anything else ``add_parser`` takes (``help``, ``description``, ``epilog``).

    Examples:
        >>> parser = argparse.ArgumentParser(prog="s3prl-emo")
        >>> commands = parser.add_subparsers(dest="command")
        >>> def hello(args):
        ...     '''say hello
        ...
        ...     Prints a greeting
        ...     and exits.'''
        ...     return 0
        >>> sub = add_command(commands, "hello", hello)
        >>> sub.format_help().splitlines()[2], parser.parse_args(["hello"]).run is hello
        ('Prints a greeting and exits.', True)
    """
    summary, _, rest = (inspect.getdoc(run) or "").partition("\n\n")
    kwargs.setdefault("help", " ".join(summary.split()) or None)
    kwargs.setdefault("description", rest or None)
    parser = subparsers.add_parser(name, formatter_class=formatter_class, **kwargs)
    parser.set_defaults(run=run)
    return parser


def add_model_options(
    parser: argparse.ArgumentParser,
    *,
    checkpoint: str = "--ckpt",
    batch_size: int | None,
    batch_help: str,
) -> argparse._ArgumentGroup:
    """Add the flags of a command that runs a trained checkpoint, as one group ``model``.

    Args:
        parser: the command's parser.
        checkpoint: the long name of ``-e`` (``trust`` has always called it ``--expert``).
        batch_size: the default of ``--batch-size`` (``None``: the command picks one).
        batch_help: what one batch holds, for this command.

    Examples:
        >>> parser = argparse.ArgumentParser()
        >>> _ = add_model_options(parser, batch_size=8, batch_help="windows per upstream call")
        >>> args = parser.parse_args(["-e", "exp/dev-best.ckpt"])
        >>> args.ckpt.name, args.upstream_ckpt, args.device, args.batch_size
        ('dev-best.ckpt', None, 'cpu', 8)
    """
    group = parser.add_argument_group("model")
    group.add_argument(
        "-e",
        checkpoint,
        required=True,
        type=Path,
        help="checkpoint of an emotion_multilabel run, e.g. EXP/dev-best.ckpt",
    )
    group.add_argument(
        "-k", "--upstream-ckpt", help="the upstream's weights file, for runs of a local upstream (-u *_local -k)"
    )
    group.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    group.add_argument("--batch-size", type=int, default=batch_size, help=batch_help)
    return group


def check_model_options(args: argparse.Namespace, *, checkpoint: str = "--ckpt") -> None:
    """Refuse a bad ``add_model_options`` flag before the checkpoint is read or anything written.

    ``--batch-size`` (unless left to the command) is a whole number >= 1, ``--device`` a device
    this machine has, and the checkpoint and upstream weights regular files.

    Raises:
        InvalidInputError: naming the flag and its value.
        CorpusLayoutError: a file named by a flag does not exist.

    Examples:
        >>> args = argparse.Namespace(batch_size=0, device="cpu", ckpt=Path("x.ckpt"), upstream_ckpt=None)
        >>> check_model_options(args)
        Traceback (most recent call last):
        ...
        s3prl_emo.errors.InvalidInputError: --batch-size 0: expected a whole number >= 1
    """
    from ..inference.predict import check_batch_size

    if args.batch_size is not None:
        check_batch_size(args.batch_size)
    check_device(args.device)
    ckpt = getattr(args, checkpoint.lstrip("-").replace("-", "_"))
    for flag, path in ((checkpoint, ckpt), ("--upstream-ckpt", args.upstream_ckpt)):
        if path is not None:
            require_regular_file(Path(path), flag)


def require_regular_file(path: Path, flag: str) -> Path:
    """``path`` if it is a regular file; a FIFO or device would block the reader, a folder is no checkpoint.

    Examples:
        >>> require_regular_file(Path("."), "--ckpt")
        Traceback (most recent call last):
        ...
        s3prl_emo.errors.InvalidInputError: --ckpt .: a folder; expected a checkpoint file
    """
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
    """``--device`` names a device torch knows and this machine has (``cpu``, ``cuda``, ``cuda:1``).

    Examples:
        >>> check_device("cpu")
        >>> check_device("gpu")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        s3prl_emo.errors.InvalidInputError: --device 'gpu': not a torch device (...)
    """
    import torch

    from ..errors import InvalidInputError

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise InvalidInputError(f"--device {device!r}: not a torch device ({err})") from err
    if parsed.type == "cuda" and (not torch.cuda.is_available() or (parsed.index or 0) >= torch.cuda.device_count()):
        raise InvalidInputError(f"--device {device!r}: no such CUDA device on this machine")
