"""``s3prl-emo trust``: fairness, privacy, safety, sustainability and calibration of a checkpoint."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "trust",
        help="trust profile of a checkpoint on its fold's test split (trust.json, profile.png)",
        description="Evaluates the checkpoint on the test split of the fold it was trained on: fairness between "
        "genders, gender leakage of the upstream, FGSM/PGD at target SNRs, cost, and calibration. Writes "
        "OUT/trust.json (every figure with its definition), OUT/profile.png and OUT/reliability.png.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("-e", "--expert", required=True, help="checkpoint, e.g. EXP/dev-best.ckpt")
    parser.add_argument(
        "-k", "--upstream-ckpt", default=None, help="upstream checkpoint (overrides the one trained with)"
    )
    parser.add_argument(
        "--axes", default="all", help="all, or a comma list of fairness,privacy,safety,sustainability,calibration"
    )
    parser.add_argument("--snr", default="45", help="target SNRs of the attacks in dB, comma-separated")
    parser.add_argument("--pgd-steps", type=int, default=10, help="PGD iterations per target SNR")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--root", default=None, help="corpus root, when the corpus has moved since training")
    parser.add_argument("--batch-size", type=int, default=8, help="utterances per forward pass")
    parser.add_argument(
        "--out",
        required=True,
        help="output folder: new, empty or an earlier trust output; never the checkpoint's folder or the corpus",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InvalidInputError
    from ..trust.evaluate import parse_axes, parse_snrs, run_trust

    for flag, value in (("--batch-size", args.batch_size), ("--pgd-steps", args.pgd_steps)):
        if value < 1:
            raise InvalidInputError(f"{flag} must be positive, got {value}")
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
    for axis, reason in report["failed"].items():
        print(f"FAILED {axis}: {reason}")
    print(f"wrote {args.out}/trust.json and {args.out}/profile.png")
    return 1 if report["failed"] else 0
