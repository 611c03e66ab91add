"""``sweep --trainer batched``: the pending runs of one upstream trained in one process.

``python -m s3prl_emo.sweep.batched RUN_DIR...`` (what the local launcher starts, one process
per upstream group, pinned to a GPU of ``--gpus`` round-robin): every run folder is checked
and claimed as the per-run worker does, the runs are trained together by
``training.batched`` (reading the sweep's shared ``RESULTS/feature_cache``), a run whose
settings the batched path cannot honour is trained as ``--trainer fast`` trains it (the log
says why), and then each run is evaluated and recorded by the worker's ``run_one`` (its
``result.json``, with ``trainer: batched``) and cross-evaluated when the sweep asks for it.
Each run's failure is its own: recorded in its ``state.json`` (``sweep --status`` names it),
while the other runs of the group go on. Training resumes as ``-a`` does: each run from its
newest ``states-*.ckpt``, at the sampler position and random state saved there.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from ..errors import CorpusLayoutError, InvalidInputError
from ..runtime.atomic import write_json_atomically
from ..runtime.guards import create_exclusive
from .cross import evaluate_pending, run_targets
from .plan import read_run
from .state import RunState
from .worker import STATE_FILE, TRAIN_DONE, _claim, _device, _train, finished, run_one, train_argv

logger = logging.getLogger(__name__)
LOG_FILE = "batched.log"


def _record_failure(run_dir: Path, err: BaseException | str) -> None:
    message = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    print(f"FAILED {run_dir}: {message}", file=sys.stderr)
    write_json_atomically(
        run_dir / STATE_FILE, {"state": "failed", "error": message, "host": socket.gethostname(), "at": time.time()}
    )


def _mark_trained(run_dir: Path, seconds: float) -> None:
    if not os.path.lexists(run_dir / TRAIN_DONE):
        with os.fdopen(create_exclusive(run_dir / TRAIN_DONE), "w", encoding="utf-8") as f:
            f.write(f"{seconds:.1f}\n")


def _claimed(run_dirs: list[Path]) -> tuple[list[tuple], int]:
    """The runs of ``run_dirs`` left to do, claimed (state.json), and how many could not be."""
    claimed, failed = [], 0
    for run_dir in run_dirs:
        try:
            spec = read_run(run_dir)
            targets, _ = run_targets(run_dir, spec)
            if finished(run_dir) and not targets:
                print(f"{run_dir}: already done")
                continue
            _claim(run_dir)
            claimed.append((run_dir, spec, targets))
        except (InvalidInputError, CorpusLayoutError) as err:
            print(f"s3prl-emo sweep batched: {err}", file=sys.stderr)
            failed += 1
    return claimed, failed


def run_group(run_dirs: list[Path]) -> int:
    """Train the runs of ``run_dirs`` together, then evaluate and record each; return how many failed."""
    from ..training.batched import train_batched
    from ..training.feature_store import StoreOptions

    device = _device()
    claimed, failed = _claimed(run_dirs)
    to_train = [(d, s) for d, s, _ in claimed if not os.path.lexists(d / TRAIN_DONE) and not finished(d)]
    started = time.time()
    outcomes = {}
    if to_train:
        store = to_train[0][0].parents[3] / "feature_cache"  # RESULTS/<upstream>/<condition>/<grid>/fold<k>
        argvs = [train_argv(spec, run_dir, device) for run_dir, spec in to_train]
        for outcome in train_batched(argvs, StoreOptions(cache_dir=str(store))):
            outcomes[str(Path(outcome.expdir).parent)] = outcome
        report = getattr(train_batched, "last_report", None)
        if report:
            print(
                f"batched: {report['runs']} runs trained together, peak RSS {report['peak_rss_mb']:.0f} MB", flush=True
            )
    seconds = time.time() - started
    for run_dir, spec, targets in claimed:
        outcome = outcomes.get(str(run_dir))
        try:
            if outcome is not None and outcome.status == "failed":
                raise InvalidInputError(f"batched training failed: {outcome.detail}")
            if outcome is not None and outcome.status == "fallback":
                print(f"{run_dir}: trained as --trainer fast trains it: {outcome.detail}")
                fallback_started = time.time()
                _train(spec, run_dir, device, trainer="fast")
                _mark_trained(run_dir, time.time() - fallback_started)
            elif outcome is not None:
                _mark_trained(run_dir, seconds / max(1, len(to_train)))
            if not finished(run_dir):
                run_one(run_dir, spec)
            evaluate_pending(run_dir, spec, targets, device)
            (run_dir / STATE_FILE).unlink(missing_ok=True)
        except KeyboardInterrupt:
            (run_dir / STATE_FILE).unlink(missing_ok=True)
            raise
        except Exception as err:  # this run's failure, recorded; the others go on
            _record_failure(run_dir, err)
            failed += 1
    return failed


MAX_RUNS = 64  # runs per batched process: stacked heads, optimizer state and records stay bounded


def groups(pending: list[RunState], max_runs: int = MAX_RUNS, at_least: int = 1) -> list[list[RunState]]:
    """The pending runs by upstream (and its checkpoint), in groups of at most ``max_runs``: one
    batched process (or Slurm job) each. With ``at_least`` (devices to fill), the groups are split
    further, evenly, until there are that many or every group is a single run.

    Examples:
        >>> groups([])
        []
    """
    if max_runs < 1:
        raise InvalidInputError(f"--batched-max-runs {max_runs}: expected at least 1")
    by_upstream: dict[tuple, list[RunState]] = defaultdict(list)
    for state in pending:
        by_upstream[(state.spec.upstream, state.spec.upstream_ckpt)].append(state)
    chunks = {key: max(1, -(-len(runs) // max_runs)) for key, runs in by_upstream.items()}
    while by_upstream and sum(chunks.values()) < at_least:
        key = max(by_upstream, key=lambda k: len(by_upstream[k]) / chunks[k])
        if len(by_upstream[key]) <= chunks[key]:
            break  # single runs everywhere
        chunks[key] += 1
    out = []
    for key, runs in by_upstream.items():
        size = -(-len(runs) // chunks[key])
        out += [runs[i : i + size] for i in range(0, len(runs), size)]
    return out


def least_busy(gpus: list[str], busy: list[str]) -> str:
    """The GPU of ``gpus`` with the fewest running groups (the first of them on a tie).

    Examples:
        >>> least_busy(["0", "1"], ["0"])
        '1'
        >>> least_busy(["0", "1"], ["0", "1", "1"])
        '0'
    """
    return min(gpus, key=lambda gpu: (busy.count(gpu), gpus.index(gpu)))


def group_command(group: list[RunState]) -> list[str]:
    """The command that trains and records one group of runs (``python -m s3prl_emo.sweep.batched``)."""
    return [sys.executable, "-m", "s3prl_emo.sweep.batched", *(str(s.folder) for s in group)]


def run_local_batched(
    pending: list[RunState], *, jobs: int = 1, gpus: list[str] | None = None, max_runs: int = MAX_RUNS
) -> int:
    """One process per group (``groups``), ``jobs`` at a time, each pinned to the least busy GPU of
    ``gpus``; return how many runs are not done (read back from their folders)."""
    from .local import open_log
    from .state import run_state

    parallel = max(1, jobs)
    queue = groups(pending, max_runs, at_least=min(parallel, len(gpus)) if gpus else 1)
    running: dict[subprocess.Popen, tuple[object, str | None]] = {}
    try:
        while queue or running:
            while queue and len(running) < parallel:
                group = queue.pop(0)
                env = dict(os.environ)
                gpu = least_busy(gpus, [g for _, g in running.values()]) if gpus else None
                if gpu is not None:
                    env["CUDA_VISIBLE_DEVICES"] = gpu
                env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // parallel)))
                log = open_log(group[0].folder)  # the group's log, in its first run's folder
                process = subprocess.Popen(group_command(group), stdout=log, stderr=subprocess.STDOUT, env=env)
                running[process] = (log, gpu)
                logger.info(
                    "batched: %d runs of %s%s (log: %s)",
                    len(group),
                    group[0].spec.upstream,
                    f" on GPU {gpu}" if gpu is not None else "",
                    group[0].folder,
                )
            time.sleep(0.5)
            for process in [p for p in running if p.poll() is not None]:
                log, _ = running.pop(process)
                log.close()
    finally:
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            process.wait()
    states = [run_state(s.spec, s.folder, s.cross) for s in pending]
    return sum(s.state != "done" for s in states)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s3prl_emo.sweep.batched", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders of one sweep and upstream")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return min(run_group(args.run_dirs), 100)


if __name__ == "__main__":
    sys.exit(main())
