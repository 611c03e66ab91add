"""``trust-compare``: several trust reports in one radar (shared fixed scaling) and one table."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from ..data.layout import Pathlike
from ..errors import InvalidInputError
from ..runtime.atomic import write_text_atomically
from .plots import radar
from .profile import AXES, profile


def _load(folder: Path) -> dict:
    path = folder / "trust.json" if folder.is_dir() else folder
    if not path.is_file():
        raise InvalidInputError(f"{folder}: no trust.json (run `s3prl-emo trust --out {folder}` first)")
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InvalidInputError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(report, dict) or "skipped" not in report:
        raise InvalidInputError(f"{path}: not a trust report (no 'skipped' key)")
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
    reports = [_load(f) for f in folders]  # every input checked before anything is written
    names = _names(folders)
    profiles = {name: profile(report) for name, report in zip(names, reports, strict=True)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    radar(profiles, out_dir / "compare.png", title="Trust profiles (shared scaling, outward is better)")
    header = ["model"] + [f"{axis} ({AXES[axis][1]})" for axis in AXES] + [f"{axis} scaled" for axis in AXES]
    rows = [
        [name]
        + [_fmt(profiles[name][axis]["raw"]) for axis in AXES]
        + [_fmt(profiles[name][axis]["scaled"]) for axis in AXES]
        for name in names
    ]
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([header, *rows])
    write_text_atomically(out_dir / "compare.csv", buffer.getvalue())
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "Scaling (outward is better): " + "; ".join(f"{a}: {AXES[a][2]}" for a in AXES)]
    write_text_atomically(out_dir / "compare.md", "\n".join(lines) + "\n")
    return profiles


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"
