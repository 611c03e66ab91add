"""Read a sweep back from its RESULTS folder alone (no scheduler needed): what is done, running,
failed or still to do.

Every file is checked before it is believed: a ``sweep.json`` entry, a run folder or a
``state.json``/``result.json`` that is out of place, behind a link or malformed is shown as
``unreadable`` with the reason, never followed and never a traceback.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError
from ..runtime.runlock import process_alive
from .plan import RESULT_FILE, RunSpec, plan_entries, read_json_object, run_folder
from .worker import STATE_FILE, read_state

DONE, RUNNING, FAILED, TODO, UNREADABLE = "done", "running", "failed", "to do", "unreadable"
ORDER = (DONE, RUNNING, FAILED, TODO)
INTERRUPTED = "interrupted: resumes from its newest checkpoint"


@dataclass(frozen=True)
class RunState:
    """A run (``spec`` None: a ``sweep.json`` entry that is no run), its folder (None: refused) and state."""

    spec: RunSpec | None
    folder: Path | None
    state: str
    detail: str = ""

    @property
    def name(self) -> str:
        return self.spec.key if self.spec is not None else "(plan entry)"


def run_state(spec: RunSpec, folder: Path) -> RunState:
    """``done`` once a readable result.json exists; else what the worker's state.json says."""
    result = folder / RESULT_FILE
    if os.path.lexists(result):
        try:
            read_json_object(result)
        except InvalidInputError as err:
            return RunState(spec, folder, UNREADABLE, f"{err}; the next sweep evaluates it again")
        return RunState(spec, folder, DONE)
    path = folder / STATE_FILE
    if not os.path.lexists(path):
        return RunState(spec, folder, TODO, INTERRUPTED if list(folder.glob("exp/states-*.ckpt")) else "")
    try:
        state = read_state(path)
    except InvalidInputError as err:
        return RunState(spec, folder, UNREADABLE, f"{err}; the next sweep runs it again")
    if state["state"] == "failed":
        return RunState(spec, folder, FAILED, state.get("error", ""))
    if state["host"] == socket.gethostname() and not process_alive(state["pid"]):
        return RunState(spec, folder, TODO, INTERRUPTED)
    return RunState(spec, folder, RUNNING, f"on {state['host']} (pid {state['pid']})")


def sweep_states(results: Path, runs: list[RunSpec] | None = None) -> list[RunState]:
    """The state of every run of the plan in RESULTS (or of ``runs``); bad entries and folders
    outside RESULTS or behind a link are ``unreadable`` with the reason (their folder None)."""
    results = Path(results)
    entries = plan_entries(results) if runs is None else runs
    states = []
    for entry in entries:
        if isinstance(entry, InvalidInputError):
            states.append(RunState(None, None, UNREADABLE, f"{entry}; skipped"))
            continue
        try:
            folder = run_folder(results, entry)
        except InvalidInputError as err:
            states.append(RunState(entry, None, UNREADABLE, f"{err}; skipped"))
            continue
        states.append(run_state(entry, folder))
    return states


def summary(states: list[RunState]) -> str:
    """``done 3 / running 2 / failed 0 / to do 5`` (and ``/ unreadable N`` when there are any)."""
    counts = Counter(s.state for s in states)
    shown = ORDER + ((UNREADABLE,) if counts.get(UNREADABLE) else ())
    return " / ".join(f"{name} {counts.get(name, 0)}" for name in shown)


def format_states(states: list[RunState]) -> str:
    """One line per run, then the summary."""
    width = max((len(s.name) for s in states), default=3)
    lines = [f"{s.name:<{width}}  {s.state:<7}  {s.detail}".rstrip() for s in states]
    lines.append(summary(states))
    return "\n".join(lines)
