"""``s3prl-emo`` / ``python -m s3prl_emo``: one thin subcommand per job.

Each command module in ``s3prl_emo.commands`` adds its parser(s) in ``register`` and sets
``run``; this is the only place that configures logging.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .commands import COMMAND_MODULES
from .errors import CorpusLayoutError, InvalidInputError

logger = logging.getLogger("s3prl_emo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3prl-emo",
        description="EMO-SUPERB speech emotion recognition on top of S3PRL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except (CorpusLayoutError, InvalidInputError) as err:
        logger.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
