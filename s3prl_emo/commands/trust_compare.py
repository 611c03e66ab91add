"""``s3prl-emo trust-compare``: overlay several trust profiles in one radar chart."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "trust-compare",
        help="overlay trust profiles (radar with a shared scaling) and write a side-by-side table",
        description="Reads DIR/trust.json of each `s3prl-emo trust` output; writes OUT/compare.png, "
        "OUT/compare.csv and OUT/compare.md.",
    )
    parser.add_argument("dirs", nargs="+", help="output folders of `s3prl-emo trust`")
    parser.add_argument(
        "--out", required=True, help="output folder: new, empty or an earlier comparison; never one of the DIRs"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..trust.compare import compare

    compare(args.dirs, args.out)
    print(f"wrote {args.out}/compare.png, compare.csv and compare.md")
    return 0
