"""Local launcher: N workers at once, each pinned to a GPU of ``--gpus`` round-robin, one log per run."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from ..errors import InvalidInputError
from .state import FAILED, RunState, summary

logger = logging.getLogger(__name__)
LOG_FILE = "run.log"
POLL_S = 1.0


@contextmanager
def _stop_on_exit(running: dict):
    """Interrupted (Ctrl-C, SIGTERM): stop the workers too; their runs resume next time."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in running:
            process.terminate()
        for process in running:
            process.wait()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def worker_command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "s3prl_emo.sweep.worker", str(run_dir)]


def open_log(run_dir: Path):
    """``run_dir/run.log`` for appending; a symbolic link there is refused (``O_NOFOLLOW``), never followed."""
    path = run_dir / LOG_FILE
    try:
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        raise InvalidInputError(f"{path}: cannot be opened as the run's log ({err.strerror}); remove it") from err
    return os.fdopen(handle, "a", encoding="utf-8")


def run_local(pending: list[RunState], *, jobs: int = 1, gpus: list[str] | None = None) -> int:
    """Run the pending runs, ``jobs`` at a time; return how many failed.

    A run's worker writes ``run.log`` in its folder; its exit status decides failure, and one
    failure never stops the others. The bar's postfix is the live summary.
    """
    queue = list(pending)
    running: dict[subprocess.Popen, tuple[RunState, object]] = {}
    finished: list[RunState] = []
    free_slots = list(range(max(1, jobs)))
    busy_slots: dict[subprocess.Popen, int] = {}
    with tqdm(total=len(queue), desc="sweep", unit="run") as bar, _stop_on_exit(running):

        def refresh() -> None:
            shown = finished + [RunState(s.spec, s.folder, "running") for s, _ in running.values()]
            shown += [RunState(s.spec, s.folder, "to do") for s in queue]
            bar.set_postfix_str(summary(shown))

        while queue or running:
            while queue and free_slots:
                item = queue.pop(0)
                slot = free_slots.pop(0)
                env = dict(os.environ)
                if gpus:
                    env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
                # N CPU-bound workers share the cores rather than each taking them all
                env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, jobs))))
                try:
                    log = open_log(item.folder)  # closed when the worker ends
                except InvalidInputError as err:
                    finished.append(RunState(item.spec, item.folder, FAILED, str(err)))
                    free_slots.append(slot)
                    tqdm.write(f"FAILED {item.spec.key}: {err}")
                    bar.update(1)
                    continue
                process = subprocess.Popen(worker_command(item.folder), stdout=log, stderr=subprocess.STDOUT, env=env)
                running[process] = (item, log)
                busy_slots[process] = slot
                logger.info("started %s%s", item.spec.key, f" on GPU {env['CUDA_VISIBLE_DEVICES']}" if gpus else "")
            refresh()
            time.sleep(POLL_S)
            for process in [p for p in running if p.poll() is not None]:
                item, log = running.pop(process)
                log.close()
                free_slots.append(busy_slots.pop(process))
                if process.returncode == 0:
                    finished.append(RunState(item.spec, item.folder, "done"))
                else:
                    finished.append(RunState(item.spec, item.folder, FAILED))
                    tqdm.write(f"FAILED {item.spec.key} (exit {process.returncode}); see {item.folder / LOG_FILE}")
                bar.update(1)
            refresh()
    return sum(s.state == FAILED for s in finished)
