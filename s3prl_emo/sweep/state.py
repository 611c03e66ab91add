"""Read a sweep back from its RESULTS folder alone (no scheduler needed): what is done, running,
failed or still to do."""

from __future__ import annotations

import json
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..runtime.runlock import process_alive
from .plan import RESULT_FILE, RunSpec, read_plan
from .worker import STATE_FILE

DONE, RUNNING, FAILED, TODO = "done", "running", "failed", "to do"
ORDER = (DONE, RUNNING, FAILED, TODO)


@dataclass(frozen=True)
class RunState:
    spec: RunSpec
    folder: Path
    state: str
    detail: str = ""


def run_state(spec: RunSpec, folder: Path) -> RunState:
    """``done`` once result.json exists; else what the worker's state.json says."""
    if (folder / RESULT_FILE).is_file():
        return RunState(spec, folder, DONE)
    path = folder / STATE_FILE
    if not path.is_file():
        detail = "interrupted: resumes from its newest checkpoint" if list(folder.glob("exp/states-*.ckpt")) else ""
        return RunState(spec, folder, TODO, detail)
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError:
        return RunState(spec, folder, TODO, f"unreadable {STATE_FILE}")
    if state.get("state") == "failed":
        return RunState(spec, folder, FAILED, state.get("error", ""))
    if state.get("host") == socket.gethostname() and not process_alive(int(state.get("pid", 0))):
        return RunState(spec, folder, TODO, "interrupted: resumes from its newest checkpoint")
    return RunState(spec, folder, RUNNING, f"on {state.get('host')} (pid {state.get('pid')})")


def sweep_states(results: Path, runs: list[RunSpec] | None = None) -> list[RunState]:
    """The state of every run of the plan in RESULTS (or of ``runs``)."""
    results = Path(results)
    runs = read_plan(results) if runs is None else runs
    return [run_state(spec, results / spec.key) for spec in runs]


def summary(states: list[RunState]) -> str:
    """``done 3 / running 2 / failed 0 / to do 5``"""
    counts = Counter(s.state for s in states)
    return " / ".join(f"{name} {counts.get(name, 0)}" for name in ORDER)


def format_states(states: list[RunState]) -> str:
    """One line per run, then the summary."""
    width = max((len(s.spec.key) for s in states), default=3)
    lines = [f"{s.spec.key:<{width}}  {s.state:<7}  {s.detail}".rstrip() for s in states]
    lines.append(summary(states))
    return "\n".join(lines)
