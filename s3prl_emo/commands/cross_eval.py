"""``s3prl-emo cross-eval``: score a trained model on another condition's test utterances."""

from __future__ import annotations

import argparse
from pathlib import Path

from .parsing import add_command, add_model_options, check_model_options


def register(subparsers) -> None:
    parser = add_command(subparsers, "cross-eval", run)
    add_model_options(
        parser, batch_size=None, batch_help="utterances per upstream call (default: the run's eval_batch_size)"
    )
    parser.add_argument("--root", required=True, type=Path, help="folder of the prepared corpora (ROOT/<corpus>/...)")
    parser.add_argument(
        "--condition", required=True, help="a name of downstream_configs/ (e.g. CREMA-D) or a condition YAML"
    )
    parser.add_argument(
        "--map",
        type=Path,
        help='TOML of target class = "model class" lines (e.g. excited = "happy"), overriding name matching',
    )
    parser.add_argument(
        "--classes",
        help="comma-separated: score only these of the shared classes (e.g. a row's common classes on the diagonal)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: EXP/cross/<condition>/)")
    parser.add_argument(
        "--no-feature-store",
        action="store_true",
        help="run the upstream even when the run trained on a feature store (s3prl-emo train)",
    )


def run(args: argparse.Namespace) -> int:
    """evaluate a trained model on another condition, over the classes both share

    Scores EXP/dev-best.ckpt on the test utterances of --condition under --root (pooled over its folds,
    each utterance once; on the model's own corpus, the test set of the model's fold). Classes are
    matched by name through the label aliases, or as --map says; probabilities and soft labels are
    restricted to the shared classes, renormalised, and binarised at 1/C'. Writes metrics.json,
    probs.csv, labels.csv, predict.txt and truth.txt to --out (default EXP/cross/<condition>/).
    """
    from ..inference.cross_eval import METRICS_FILE, cross_evaluate, default_out
    from ..metrics import format_table
    from ..sweep.plan import resolve_condition

    check_model_options(args)
    result = cross_evaluate(
        args.ckpt,
        args.root,
        args.condition,
        out=args.out,
        map_file=args.map,
        only=[c for c in args.classes.split(",") if c.strip()] if args.classes else None,
        upstream_ckpt=args.upstream_ckpt,
        device=args.device,
        batch_size=args.batch_size,
        use_store=not args.no_feature_store,
    )
    out = args.out or default_out(args.ckpt, resolve_condition(args.condition).name)
    print(f"{result.target.condition}: {result.target.protocol}; {len(result.target.names)} utterances")
    print(f"shared classes: {', '.join(result.match.shared)} (binarised at 1/{len(result.match.shared)})")
    print(format_table(result.scores, result.match.shared))
    print(f"wrote {out / METRICS_FILE}")
    return 0
