"""Slurm launcher through submitit: one job array, per-run resources, requeue on preemption.

Resources come from a small YAML file (``--slurm-config``) and flags, flags winning:

    partition: gpu
    gpus_per_run: 1
    cpus_per_run: 8
    mem_gb: 32
    time_min: 720
    array_parallelism: 16      # runs at once (--jobs)
    additional: {}             # anything else submitit passes to sbatch (slurm_additional_parameters)
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from pathlib import Path

import yaml

from ..errors import InvalidInputError
from ..runtime.guards import finite_number
from .local import LOG_FILE, open_log, worker_command
from .state import DONE, FAILED, RunState, run_state, summary

logger = logging.getLogger(__name__)
SLURM_KEYS = ("partition", "gpus_per_run", "cpus_per_run", "mem_gb", "time_min", "array_parallelism", "additional")
DEFAULTS = {"gpus_per_run": 0, "cpus_per_run": 2, "mem_gb": 8, "time_min": 60}


def read_slurm_config(path: Path | None, flags: dict) -> dict:
    """The YAML file's keys, then the flags that were given; unknown keys are refused by name."""
    settings = dict(DEFAULTS)
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise InvalidInputError(f"--slurm-config {path}: unreadable ({err})") from err
        if not isinstance(loaded, dict):
            raise InvalidInputError(f"--slurm-config {path}: expected a mapping of {', '.join(SLURM_KEYS)}")
        unknown = sorted(set(loaded) - set(SLURM_KEYS))
        if unknown:
            raise InvalidInputError(f"--slurm-config {path}: unknown key(s) {unknown}; known: {', '.join(SLURM_KEYS)}")
        settings.update(loaded)
    settings.update({k: v for k, v in flags.items() if v is not None})
    return check_slurm_settings(settings, source=str(path) if path is not None else "flags")


_NAME = re.compile(r"[A-Za-z0-9_.,-]+")
_COUNTS = {"gpus_per_run": 0, "cpus_per_run": 1, "time_min": 1, "array_parallelism": 1}  # key -> smallest value


def check_slurm_settings(settings: dict, *, source: str) -> dict:
    """Refuse a setting of the wrong type or range, and text that would end an ``#SBATCH`` line.

    submitit writes each setting as a line of the job script; a value with a line break would
    add a line of shell to it.

    Raises:
        InvalidInputError: naming ``source`` (the file or the flags), the key and the value.

    Examples:
        >>> check_slurm_settings({**DEFAULTS, "partition": "gpu", "gpus_per_run": 1}, source="flags")["partition"]
        'gpu'
    """
    for key, low in _COUNTS.items():
        value = settings.get(key)
        if value is None and key == "array_parallelism":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInputError(f"--slurm-config {source}: {key} {value!r} is not a whole number >= {low}")
    finite_number(settings.get("mem_gb"), where=f"--slurm-config {source}: mem_gb", low=1e-3)
    partition = settings.get("partition")
    if partition is not None and not (isinstance(partition, str) and _NAME.fullmatch(partition)):
        raise InvalidInputError(f"--slurm-config {source}: partition {partition!r} is not a Slurm partition name")
    additional = settings.get("additional") or {}
    if not isinstance(additional, dict):
        raise InvalidInputError(f"--slurm-config {source}: additional must be a mapping of sbatch options")
    for key, value in additional.items():
        plain = isinstance(value, int | float | str) and not any(ch in str(value) for ch in "\n\r\0")
        if not (isinstance(key, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key)) or not plain:
            raise InvalidInputError(
                f"--slurm-config {source}: additional {key!r}: {value!r} is not an sbatch option and one-line value"
            )
    return settings


class SlurmRun:
    """What each array task runs: the worker, in a subprocess. On preemption or timeout submitit
    calls ``checkpoint``, which requeues the same run; the worker then resumes from its newest
    ``states-*.ckpt``."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir

    def __call__(self) -> str:
        with open_log(Path(self.run_dir)) as log:
            subprocess.run(worker_command(Path(self.run_dir)), stdout=log, stderr=subprocess.STDOUT, check=True)
        return self.run_dir

    def checkpoint(self):
        import submitit

        return submitit.helpers.DelayedSubmission(SlurmRun(self.run_dir))


class SlurmGroup:
    """What an array task runs for ``--trainer batched``: a group of runs trained together
    (``python -m s3prl_emo.sweep.batched``), logged in its first run's folder. Requeued on
    preemption like ``SlurmRun``; each run resumes from its newest ``states-*.ckpt``."""

    def __init__(self, run_dirs: list[str]):
        self.run_dirs = list(run_dirs)

    def __call__(self) -> list[str]:
        import sys

        command = [sys.executable, "-m", "s3prl_emo.sweep.batched", *self.run_dirs]
        with open_log(Path(self.run_dirs[0])) as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
        return self.run_dirs  # each run's outcome is in its folder (result.json or state.json)

    def checkpoint(self):
        import submitit

        return submitit.helpers.DelayedSubmission(SlurmGroup(self.run_dirs))


def slurm_units(pending: list[RunState], *, batched: bool = False, max_runs: int | None = None) -> list[list[RunState]]:
    """What each array task runs: one run, or with ``batched`` a group of ``sweep.batched.groups``.

    Examples:
        >>> slurm_units([])
        []
    """
    if not batched:
        return [[item] for item in pending]
    from .batched import MAX_RUNS, groups

    return groups(pending, max_runs or MAX_RUNS)


def submit_slurm(
    pending: list[RunState],
    results: Path,
    settings: dict,
    *,
    jobs: int | None = None,
    batched: bool = False,
    max_runs: int | None = None,
):
    """Submit one array job: a task per pending run, or with ``batched`` a task per group of runs
    (``slurm_units``); return the submitit jobs and the runs of each."""
    import submitit

    units = slurm_units(pending, batched=batched, max_runs=max_runs)
    executor = submitit.AutoExecutor(folder=str(results / ".slurm" / "%j"), cluster="slurm")
    parameters = {
        "timeout_min": int(settings["time_min"]),
        "cpus_per_task": int(settings["cpus_per_run"]),
        "mem_gb": float(settings["mem_gb"]),
        "name": "s3prl-emo-sweep",
        "slurm_array_parallelism": int(jobs or settings.get("array_parallelism") or len(units)),
    }
    if int(settings["gpus_per_run"]):
        parameters["gpus_per_node"] = int(settings["gpus_per_run"])
    if settings.get("partition"):
        parameters["slurm_partition"] = settings["partition"]
    if settings.get("additional"):
        parameters["slurm_additional_parameters"] = dict(settings["additional"])
    executor.update_parameters(**parameters)
    with executor.batch():
        jobs_out = [
            executor.submit(
                SlurmGroup([str(item.folder) for item in unit]) if batched else SlurmRun(str(unit[0].folder))
            )
            for unit in units
        ]
    logger.info(
        "submitted %d run(s) in %d task(s) as Slurm job %s", len(pending), len(units), jobs_out[0].job_id.split("_")[0]
    )
    return jobs_out, units


def wait_slurm(jobs, units: list[list[RunState]], poll_s: float = 5.0) -> int:
    """Wait until every job has its result (submitit's pickle) or every run of its unit its
    result.json or failure; the bar's postfix is the summary read from RESULTS. Return how many
    runs failed.

    Needs no accounting database (``sacct``): only the files that submitit and the workers write."""
    from tqdm import tqdm

    pairs = [(job, item) for job, unit in zip(jobs, units, strict=True) for item in unit]
    with tqdm(total=len(pairs), desc="sweep (slurm)", unit="run") as bar:
        while True:
            states = [run_state(item.spec, item.folder, item.cross) for _, item in pairs]
            finished = sum(
                job.done() or state.state in (DONE, FAILED) for (job, _), state in zip(pairs, states, strict=True)
            )
            bar.n = finished
            bar.set_postfix_str(summary(states))
            if finished == len(pairs):
                break
            time.sleep(poll_s)
    failed = 0
    for job, item in pairs:
        if run_state(item.spec, item.folder, item.cross).state == DONE:
            continue
        failed += 1
        try:
            reason = repr(job.exception())
        except Exception as err:  # submitit could not read the job's outcome either
            reason = f"no outcome from Slurm ({err})"
        tqdm.write(f"FAILED {item.spec.key} (Slurm job {job.job_id}: {reason[:300]}); see {item.folder / LOG_FILE}")
    return failed
