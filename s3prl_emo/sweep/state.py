"""Read a sweep back from its RESULTS folder alone (no scheduler needed): what is done, running,
failed or still to do.

Every file is checked before it is believed: a ``sweep.json`` entry, a run folder or a
``state.json``/``result.json`` that is out of place, behind a link or malformed is shown as
``unreadable`` with the reason, never followed and never a traceback.

With cross-corpus evaluation (``sweep --cross-eval``) a run is done once its ``result.json``
and every ``cross/<condition>.json`` it is planned to write are there; until then it is to do
(or running, or failed) with its cross-eval progress in the detail.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError
from ..runtime.runlock import process_alive
from .cross import cross_finished
from .plan import (
    PLAN_FILE,
    RESULT_FILE,
    RunSpec,
    cross_targets,
    plan_entries,
    read_cross_eval,
    read_json_object,
    run_folder,
)
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
    cross: tuple[str, ...] = ()  # conditions its dev-best is evaluated on (sweep --cross-eval)
    cross_done: int = 0  # of those, how many are finished

    @property
    def name(self) -> str:
        return self.spec.key if self.spec is not None else "(plan entry)"


def run_state(spec: RunSpec, folder: Path, cross: tuple[str, ...] = ()) -> RunState:
    """``done`` once a readable result.json exists (and the ``cross`` evaluations are finished);
    else what the worker's state.json says."""
    result = folder / RESULT_FILE
    trained = os.path.lexists(result)
    if trained:
        try:
            read_json_object(result)
        except InvalidInputError as err:
            return RunState(spec, folder, UNREADABLE, f"{err}; the next sweep evaluates it again", cross)
    finished = sum(cross_finished(folder, c) for c in cross) if trained else 0
    progress = f"cross-eval {finished} of {len(cross)} condition(s)" if cross else ""

    def state_of(name: str, detail: str = "") -> RunState:
        shown = "; ".join(part for part in (detail, progress) if part)
        return RunState(spec, folder, name, shown, cross, finished)

    if trained and finished == len(cross):
        shown = "; ".join(part for part in (progress, f"trainer {spec.trainer}") if part)
        return RunState(spec, folder, DONE, shown, cross, finished)
    path = folder / STATE_FILE
    if not os.path.lexists(path):
        interrupted = not trained and list(folder.glob("exp/states-*.ckpt"))
        return state_of(TODO, INTERRUPTED if interrupted else "")
    try:
        state = read_state(path)
    except InvalidInputError as err:
        return state_of(UNREADABLE, f"{err}; the next sweep runs it again")
    if state["state"] == "failed":
        return state_of(FAILED, state.get("error", ""))
    if state["host"] == socket.gethostname() and not process_alive(state["pid"]):
        return state_of(TODO, INTERRUPTED)
    return state_of(RUNNING, f"on {state['host']} (pid {state['pid']})")


def sweep_states(results: Path, runs: list[RunSpec] | None = None) -> list[RunState]:
    """The state of every run of the plan in RESULTS (or of ``runs``); bad entries and folders
    outside RESULTS or behind a link are ``unreadable`` with the reason (their folder None)."""
    results = Path(results)
    plan = plan_entries(results) if runs is None or os.path.lexists(results / PLAN_FILE) else list(runs)
    entries = plan if runs is None else runs
    classes = read_cross_eval(results)
    planned = [e for e in plan if isinstance(e, RunSpec)]
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
        try:
            cross = tuple(t.condition for t in cross_targets(entry, planned, classes)[0]) if classes else ()
        except InvalidInputError as err:
            states.append(RunState(entry, folder, UNREADABLE, f"{err}; skipped"))
            continue
        states.append(run_state(entry, folder, cross))
    return states


def summary(states: list[RunState]) -> str:
    """``done 3 / running 2 / failed 0 / to do 5`` (and ``/ unreadable N`` when there are any; with
    cross-corpus evaluation, ``/ cross-eval 12 of 40``: finished of planned evaluations)."""
    counts = Counter(s.state for s in states)
    shown = ORDER + ((UNREADABLE,) if counts.get(UNREADABLE) else ())
    text = " / ".join(f"{name} {counts.get(name, 0)}" for name in shown)
    planned = sum(len(s.cross) for s in states)
    if planned:
        text += f" / cross-eval {sum(s.cross_done for s in states)} of {planned}"
    return text


def format_states(states: list[RunState]) -> str:
    """One line per run, then the summary."""
    width = max((len(s.name) for s in states), default=3)
    lines = [f"{s.name:<{width}}  {s.state:<7}  {s.detail}".rstrip() for s in states]
    lines.append(summary(states))
    return "\n".join(lines)
