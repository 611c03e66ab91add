"""``s3prl-emo trust-compare``: overlay several trust profiles in one radar chart."""

from __future__ import annotations

import argparse

from .parsing import add_command


def register(subparsers) -> None:
    parser = add_command(subparsers, "trust-compare", run, formatter_class=argparse.HelpFormatter)
    parser.add_argument("dirs", nargs="+", help="output folders of `s3prl-emo trust`")
    parser.add_argument(
        "--out", required=True, help="output folder: new, empty or an earlier comparison; never one of the DIRs"
    )


def run(args: argparse.Namespace) -> int:
    """overlay trust profiles (radar with a shared scaling) and write a side-by-side table

    Reads DIR/trust.json of each `s3prl-emo trust` output; writes OUT/compare.png, OUT/compare.csv
    and OUT/compare.md.
    """
    from ..trust.compare import compare

    compare(args.dirs, args.out)
    print(f"wrote {args.out}/compare.png, compare.csv and compare.md")
    return 0
