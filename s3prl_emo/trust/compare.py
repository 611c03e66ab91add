"""``trust-compare``: several trust reports in one radar (shared fixed scaling) and one table.

Each ``DIR/trust.json`` is untrusted: it must resolve inside DIR, be bounded JSON
(``guards.read_json``), and every figure the profile scores must be absent, null or a finite
number in its range (``profile.check_report``); otherwise the report is named and refused
before anything is written. OUT is claimed first (``guards.claim_output_dir``: new, empty or
an earlier comparison, never one of the DIRs nor a folder holding one) and written staged.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidInputError
from ..runtime.guards import claim_output_dir, markdown_safe, read_json, resolve_inside, spreadsheet_safe, staged_output
from ..runtime.paths import Pathlike
from .plots import radar
from .profile import AXES, check_report, profile

COMMAND = "trust-compare"


def _load(folder: Path) -> dict:
    """A folder's trust.json (or the file named), checked; refused with its name otherwise."""
    if folder.is_dir():
        shown = folder / "trust.json"
        if not os.path.lexists(shown):
            raise InvalidInputError(f"{folder}: no trust.json (run `s3prl-emo trust --out {folder}` first)")
        path = resolve_inside(folder, "trust.json", what=str(shown))
    else:
        shown = path = folder
        if not path.is_file():
            raise InvalidInputError(f"{folder}: no trust.json (run `s3prl-emo trust --out {folder}` first)")
    report = read_json(path)
    if not isinstance(report, dict) or not isinstance(report.get("skipped"), dict):
        raise InvalidInputError(f"{shown}: not a trust report (no 'skipped' object)")
    check_report(report, where=str(shown))
    return report


def _names(folders: list[Path]) -> list[str]:
    names = [f.name if f.is_dir() else f.parent.name for f in folders]
    if len(set(names)) < len(names):
        names = [str(f) for f in folders]
    return names


def compare(folders: Sequence[Pathlike], out_dir: Pathlike) -> dict:
    """Write ``out_dir``/compare.png (overlaid radars), compare.csv and compare.md."""
    folders = [Path(f) for f in folders]
    if len(folders) < 1:
        raise InvalidInputError("trust-compare: give at least one trust output folder")
    out_dir = claim_output_dir(out_dir, command=COMMAND, inputs=folders)
    seen: dict[Path, Path] = {}
    for folder in folders:
        if folder.resolve() in seen:
            raise InvalidInputError(f"trust-compare: {folder} is given twice (as {seen[folder.resolve()]})")
        seen[folder.resolve()] = folder
    reports = [_load(f) for f in folders]  # every input checked before anything is written
    names = _names(folders)
    profiles = {name: profile(report) for name, report in zip(names, reports, strict=True)}
    header = ["model"] + [f"{axis} ({AXES[axis][1]})" for axis in AXES] + [f"{axis} scaled" for axis in AXES]
    rows = [
        [name]
        + [_fmt(profiles[name][axis]["raw"]) for axis in AXES]
        + [_fmt(profiles[name][axis]["scaled"]) for axis in AXES]
        for name in names
    ]
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([header, *[[spreadsheet_safe(row[0]), *row[1:]] for row in rows]])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([markdown_safe(row[0]), *row[1:]]) + " |" for row in rows]
    lines += ["", "Scaling (outward is better): " + "; ".join(f"{a}: {AXES[a][2]}" for a in AXES)]
    with staged_output(out_dir, command=COMMAND, inputs=folders) as stage:
        radar(profiles, stage / "compare.png", title="Trust profiles (shared scaling, outward is better)")
        (stage / "compare.csv").write_text(buffer.getvalue(), encoding="utf-8", newline="")
        (stage / "compare.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return profiles


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"
