"""``s3prl-emo link`` / ``unlink``: register the downstream inside an S3PRL fork."""

from __future__ import annotations

import argparse

from ..runtime.link import link, unlink
from .parsing import add_command


def register(subparsers) -> None:
    for name, func, help_text in (
        ("link", run_link, "write downstream/emotion_multilabel/ (forwarding files) into an S3PRL fork"),
        ("unlink", run_unlink, "remove what `s3prl-emo link` wrote"),
    ):
        parser = add_command(
            subparsers, name, func, help=help_text, description=help_text, formatter_class=argparse.HelpFormatter
        )
        parser.add_argument("--s3prl-root", required=True, help="the fork's s3prl/ package directory")


def run_link(args: argparse.Namespace) -> int:
    print(link(args.s3prl_root))
    return 0


def run_unlink(args: argparse.Namespace) -> int:
    print("removed" if unlink(args.s3prl_root) else "nothing to remove")
    return 0
