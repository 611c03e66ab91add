"""``s3prl-emo sweep``: upstreams x conditions x folds x grid points, resumable, local or on Slurm;
with ``--cross-eval``, each run's dev-best is also evaluated on the other conditions of its upstream."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import InvalidInputError
from .parsing import add_command

logger = logging.getLogger(__name__)
MAX_EXIT = 100  # the exit status counts failed runs, capped


def register(subparsers) -> None:
    parser = add_command(subparsers, "sweep", run)
    parser.add_argument("--upstreams", help="comma-separated S3PRL upstream names, e.g. fbank,wavlm_large")
    parser.add_argument(
        "--upstream-ckpt", action="append", default=[], metavar="U=PATH", help="-k of an upstream (repeatable)"
    )
    parser.add_argument(
        "--conditions", help="comma-separated configs of downstream_configs/ by name (IEMOCAP,CREMA-D) or YAML paths"
    )
    parser.add_argument("--folds", default="all", help="'all' (each condition's own folds) or e.g. 1,2")
    parser.add_argument(
        "--seeds",
        help="training seeds, e.g. 1,2,3: one run per seed (passed as --seed), in <grid>+seed=<s>/fold<k>; "
        "default: one run, the trainer's seed",
    )
    parser.add_argument("--root", help="the data root holding <CORPUS>/<Primary|Secondary>/ (datarc.root)")
    parser.add_argument(
        "--out", required=True, type=Path, help="the RESULTS folder: new, empty, or an earlier sweep's (resumed)"
    )
    parser.add_argument(
        "-o",
        "--override",
        default="",
        help="run_downstream.py's -o for every run (KEY=VALUE,,...); values are read as Python literals or text, "
        "never run; what the sweep sets itself (args.expdir, datarc.root, datarc.test_fold, ...) is refused",
    )
    parser.add_argument(
        "--grid", action="append", default=[], metavar="KEY=V1,V2", help="e.g. optimizer.lr=1e-3,1e-4 (repeatable)"
    )
    parser.add_argument("--launcher", choices=("local", "slurm"), default="local")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (Slurm: array parallelism)")
    parser.add_argument("--gpus", default="", help="local: GPUs to pin runs to, round-robin, e.g. 0,1")
    parser.add_argument(
        "--trainer",
        choices=("runner", "fast", "batched"),
        default="runner",
        help="runner: S3PRL's run_downstream; fast: s3prl-emo train (one upstream pass per audio file); batched: "
        "the pending runs of each upstream trained together in one process (one per group of at most "
        "--batched-max-runs; locally each on the least busy GPU of --gpus, on Slurm one array task per group)",
    )
    parser.add_argument(
        "--batched-max-runs",
        type=int,
        default=64,
        help="--trainer batched: at most this many runs per process (bounds its memory; more runs are split)",
    )
    parser.add_argument(
        "--cross-eval",
        action="store_true",
        help="after training, evaluate each run's dev-best on every other condition of its upstream, over the "
        "classes they share (OUT/.../fold<k>/cross/<condition>.json; the report's train x test matrix); kept by "
        "later invocations on OUT",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would run and what is done")
    parser.add_argument("--status", action="store_true", help="read the state of OUT back (no Slurm needed)")
    slurm = parser.add_argument_group("Slurm (with --launcher slurm)")
    slurm.add_argument("--slurm-config", type=Path, help="YAML: partition, gpus_per_run, cpus_per_run, mem_gb, ...")
    slurm.add_argument("--partition")
    slurm.add_argument("--gpus-per-run", type=int)
    slurm.add_argument("--cpus-per-run", type=int)
    slurm.add_argument("--mem-gb", type=float)
    slurm.add_argument("--time-min", type=int)
    slurm.add_argument("--no-wait", action="store_true", help="submit and return; read back with --status")


def _split(text: str | None, flag: str) -> list[str]:
    items = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not items:
        raise InvalidInputError(f"{flag} is required (comma-separated)")
    return items


def _merged(out: Path, runs: list) -> list:
    """The runs of OUT's plan (if any) and this invocation's, as ``write_plan`` will merge them."""
    import os

    from ..sweep import plan

    previous = plan.read_plan(out) if os.path.lexists(Path(out) / plan.PLAN_FILE) else []
    merged = {r.key: r for r in previous}
    merged.update({r.key: r for r in runs})
    return list(merged.values())


def _cross_eval_classes(args: argparse.Namespace, runs: list) -> dict | None:
    """Each condition's classes when cross-evaluation is on (``--cross-eval``, or an earlier invocation's
    plan on OUT); a pair of conditions sharing fewer than two classes is a warning, and is skipped."""
    from ..sweep import plan

    if not args.cross_eval and plan.read_cross_eval(args.out) is None:
        return None
    everything = _merged(args.out, runs)
    classes = plan.condition_classes(everything)
    for gap in plan.cross_gaps(everything, classes):
        logger.warning("--cross-eval: %s", gap)
    return classes


def _plan(args: argparse.Namespace) -> tuple[list, dict | None, dict | None]:
    """The runs, the cross-evaluation classes and the Slurm settings, every flag checked."""
    from ..runtime.guards import refuse_override_keys
    from ..sweep import plan

    if args.jobs < 1:
        raise InvalidInputError(f"--jobs {args.jobs}: expected at least 1")
    if args.batched_max_runs < 1:
        raise InvalidInputError(f"--batched-max-runs {args.batched_max_runs}: expected at least 1")
    if args.root is None:
        raise InvalidInputError("--root is required")
    upstreams = _split(args.upstreams, "--upstreams")
    upstream_ckpts = plan.parse_upstream_ckpts(args.upstream_ckpt, upstreams)
    plan.claim_results(args.out, args.root)
    seeds = plan.parse_seeds(args.seeds)
    if args.seeds is not None:  # S3PRL applies -o after the flags: args.seed there would give every run one seed
        refuse_override_keys(args.override, ["args.seed"], flag="-o (with --seeds)")
    runs = plan.build_plan(
        upstreams,
        _split(args.conditions, "--conditions"),
        args.root,
        folds=plan.parse_folds(args.folds),
        grid=plan.parse_grid(args.grid),
        upstream_ckpts=upstream_ckpts,
        overrides=args.override,
        trainer=args.trainer,
        seeds=seeds,
    )
    cross_eval = _cross_eval_classes(args, runs)
    plan.check_upstreams(upstreams, upstream_ckpts)  # imports S3PRL's hub: after the cheaper checks
    settings = None
    if args.launcher == "slurm":
        from ..sweep.slurm import read_slurm_config

        flags = {
            "partition": args.partition,
            "gpus_per_run": args.gpus_per_run,
            "cpus_per_run": args.cpus_per_run,
            "mem_gb": args.mem_gb,
            "time_min": args.time_min,
        }
        settings = read_slurm_config(args.slurm_config, flags)
    return runs, cross_eval, settings


def _dry_run(args: argparse.Namespace, runs: list, cross_eval: dict | None) -> int:
    """What a sweep would do, run by run, without doing it."""
    from ..sweep import plan
    from ..sweep.state import DONE, run_state, summary

    everything = _merged(args.out, runs)
    states = [
        run_state(
            spec,
            plan.run_folder(args.out, spec),
            tuple(t.condition for t in plan.cross_targets(spec, everything, cross_eval)[0]) if cross_eval else (),
        )
        for spec in runs
    ]
    for state in states:
        verb = (
            "done" if state.state == DONE else f"would run ({state.state}{': ' + state.detail if state.detail else ''})"
        )
        print(f"{state.name}  {verb}")
    print(summary(states))
    return 0


def run(args: argparse.Namespace) -> int:
    """train and evaluate every (upstream, condition, fold, grid point[, seed]); resumable; local or Slurm

    One run per (upstream, condition, fold, grid point[, seed]): train with S3PRL's run_downstream,
    evaluate dev-best on dev and test, write OUT/<upstream>/<condition>/<grid>/fold<k>/result.json.
    Finished runs are skipped, interrupted ones resume from their newest states checkpoint. The exit
    status is the number of failed runs (capped at 100).
    """
    from ..sweep import plan
    from ..sweep.state import DONE, RUNNING, UNREADABLE, format_states, summary, sweep_states

    if args.status:
        print(format_states(sweep_states(args.out)))
        return 0
    runs, cross_eval, settings = _plan(args)
    if args.dry_run:
        return _dry_run(args, runs, cross_eval)
    plan.write_plan(args.out, runs, cross_eval=cross_eval)
    states = sweep_states(args.out, runs)
    busy = [s for s in states if s.state == RUNNING]
    for state in busy:
        logger.warning("%s is running %s; left alone", state.spec.key, state.detail)
    for state in states:
        if state.state == UNREADABLE:
            logger.warning("%s: %s", state.name, state.detail)
    pending = [s for s in states if s.state not in (DONE, RUNNING) and s.folder is not None]
    if not pending:
        print(f"nothing to do: {sum(s.state == DONE for s in states)} of {len(states)} runs are done ({args.out})")
        return 0
    logger.info("%d of %d runs to do (%s)", len(pending), len(states), summary(states))
    if args.launcher == "local":
        from ..sweep.local import run_local

        gpus = [g.strip() for g in args.gpus.split(",") if g.strip()]
        if args.trainer == "batched":
            from ..sweep.batched import run_local_batched

            failed = run_local_batched(pending, jobs=args.jobs, gpus=gpus, max_runs=args.batched_max_runs)
        else:
            failed = run_local(pending, jobs=args.jobs, gpus=gpus)
    else:
        from ..sweep.slurm import submit_slurm, wait_slurm

        jobs, units = submit_slurm(
            pending,
            args.out,
            settings,
            jobs=args.jobs if args.jobs > 1 else None,
            batched=args.trainer == "batched",
            max_runs=args.batched_max_runs,
        )
        if args.no_wait:
            print(
                f"submitted {len(pending)} run(s) in {len(jobs)} job(s); "
                f"follow with: s3prl-emo sweep --status --out {args.out}"
            )
            return 0
        failed = wait_slurm(jobs, units)
    print(summary(sweep_states(args.out, runs)))
    if failed:
        print(f"{failed} run(s) failed; their logs are run.log in each run folder")
    return min(failed, MAX_EXIT)
