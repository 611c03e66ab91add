"""``s3prl-emo report``: a sweep's RESULTS -> leaderboard tables, charts and index.html."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvalidInputError
from ..report.significance import N_RESAMPLES
from .parsing import add_command


def register(subparsers) -> None:
    parser = add_command(subparsers, "report", run)
    parser.add_argument("results", type=Path, help="the sweep's RESULTS folder")
    parser.add_argument(
        "--out",
        type=Path,
        help="report folder (default: RESULTS/report): new, empty or an earlier report; never RESULTS or a folder "
        "holding it",
    )
    parser.add_argument(
        "--with-published", action="store_true", help="add the paper's Table 3 rows (and FBANK) with the difference"
    )
    parser.add_argument(
        "--resamples",
        type=int,
        default=N_RESAMPLES,
        help="bootstrap resamples per interval and random swaps per paired test",
    )


def run(args: argparse.Namespace) -> int:
    """leaderboard (Table 3 layout, md/csv/html), charts and index.html of a sweep

    Reads RESULTS (written by s3prl-emo sweep) and writes OUT/leaderboard.{md,csv,html},
    OUT/significance.csv, OUT/charts/*.png and OUT/index.html (readable offline). Per (upstream,
    condition) the grid point with the best mean dev macro-F1 is reported, with a bootstrap interval
    on the pooled test utterances; per condition, paired tests against the best upstream mark the ones
    tied with it. A sweep run with --cross-eval also gets OUT/cross_matrix.{md,csv} and a heatmap per
    upstream: train x test condition, macro-F1 over the classes each pair shares, the diagonal the
    in-corpus figure over the classes its row shares with every column. Incomplete sweeps are marked,
    never averaged over missing folds. A plan entry,
    result.json or prediction file that leads outside RESULTS or holds anything but valid figures is
    named in a warning and in index.html, and skipped.
    """
    from ..report.build import write_report

    if args.resamples < 1:
        raise InvalidInputError(f"--resamples {args.resamples}: expected at least 1")
    index = write_report(
        args.results,
        args.out or args.results / "report",
        with_published=args.with_published,
        n_resamples=args.resamples,
    )
    print((index.parent / "leaderboard.md").read_text(encoding="utf-8"))
    charts = len(list((index.parent / "charts").glob("*.png")))
    matrix = ", cross_matrix.{md,csv}" if (index.parent / "cross_matrix.csv").is_file() else ""
    print(f"{charts} chart(s), leaderboard.{{md,csv,html}}, significance.csv{matrix}; open {index}")
    return 0
