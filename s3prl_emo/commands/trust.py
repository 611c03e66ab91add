"""``s3prl-emo trust``: fairness, privacy, safety, sustainability and calibration of a checkpoint."""

from __future__ import annotations

import argparse

from .parsing import add_command, add_model_options, check_model_options


def register(subparsers) -> None:
    parser = add_command(subparsers, "trust", run)
    add_model_options(parser, checkpoint="--expert", batch_size=8, batch_help="utterances per forward pass")
    parser.add_argument(
        "--axes", default="all", help="all, or a comma list of fairness,privacy,safety,sustainability,calibration"
    )
    parser.add_argument("--snr", default="45", help="target SNRs of the attacks in dB, comma-separated")
    parser.add_argument("--pgd-steps", type=int, default=10, help="PGD iterations per target SNR")
    parser.add_argument("--root", default=None, help="corpus root, when the corpus has moved since training")
    parser.add_argument(
        "--out",
        required=True,
        help="output folder: new, empty or an earlier trust output; never the checkpoint's folder or the corpus",
    )


def run(args: argparse.Namespace) -> int:
    """trust profile of a checkpoint on its fold's test split (trust.json, profile.png)

    Evaluates the checkpoint on the test split of the fold it was trained on: fairness between
    genders, gender leakage of the upstream, FGSM/PGD at target SNRs, cost, and calibration. Writes
    OUT/trust.json (every figure with its definition), OUT/profile.png and OUT/reliability.png.
    An attribute checkpoint adds the CCC of each gender group; for an attributes-only one, safety
    and calibration do not apply (no attribute counterpart) and performance is the test mean CCC.
    """
    from ..errors import InvalidInputError
    from ..trust.evaluate import parse_axes, parse_snrs, run_trust

    check_model_options(args, checkpoint="--expert")
    if args.pgd_steps < 1:
        raise InvalidInputError(f"--pgd-steps must be positive, got {args.pgd_steps}")
    report = run_trust(
        args.expert,
        args.out,
        upstream_ckpt=args.upstream_ckpt,
        axes=parse_axes(args.axes),
        snrs_db=parse_snrs(args.snr),
        device=args.device,
        root=args.root,
        batch_size=args.batch_size,
        pgd_steps=args.pgd_steps,
    )
    for axis, reason in report["skipped"].items():
        print(f"skipped {axis}: {reason}")
    for axis, reason in report.get("not_applicable", {}).items():
        print(f"n/a {axis}: {reason}")
    for axis, reason in report["failed"].items():
        print(f"FAILED {axis}: {reason}")
    print(f"wrote {args.out}/trust.json and {args.out}/profile.png")
    return 1 if report["failed"] else 0
