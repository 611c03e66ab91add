"""Write a sweep's report folder: leaderboard.{md,csv,html}, charts/*.png and index.html.

index.html has no scripts and no network references: tables inline, images as relative
links into charts/, so the folder reads the same offline or copied elsewhere.
"""

from __future__ import annotations

import html
import re
import shutil
import tempfile
from pathlib import Path

from . import charts
from .results import Sweep, load_sweep
from .tables import display_table, leaderboard, to_html, to_markdown

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 75em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
tr.published td { color: #555; font-style: italic; }
tr.difference td { color: #777; }
.incomplete { color: #b00; font-weight: bold; }
figure { display: inline-block; margin: 0.5em; }
"""


def _slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(parts))


def write_report(results: Path, out: Path, *, with_published: bool = False) -> Path:
    """Build the report of RESULTS into OUT (staged, then moved into place); return index.html."""
    sweep = load_sweep(results)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write(sweep, staging, with_published)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / "index.html"


def _write(sweep: Sweep, out: Path, with_published: bool) -> None:
    board = leaderboard(sweep, with_published=with_published)
    shown = display_table(board, sweep.conditions)
    board.to_csv(out / "leaderboard.csv", index=False, float_format="%.5f")
    (out / "leaderboard.md").write_text(to_markdown(shown))
    table_html = to_html(shown)
    (out / "leaderboard.html").write_text(_page("EMO-SUPERB leaderboard", table_html))

    figures = out / "charts"
    figures.mkdir()
    sections = [_status(sweep), "<h2>Leaderboard: test macro-F1</h2>", table_html, _grid_note(sweep)]
    radar = charts.conditions_chart(sweep, figures / "conditions.png")
    sections.append(_figure(radar, out, "test macro-F1 per condition and upstream"))
    for (upstream, condition), cell in sweep.cells.items():
        if not cell.folds:
            continue
        slug = _slug(upstream, condition)
        sections.append(f"<h3>{html.escape(upstream)} / {html.escape(condition)}</h3>")
        layers = charts.layer_weights_chart(cell, figures / f"layers_{slug}.png")
        if layers is None:
            sections.append("<p>Single-feature upstream: no layer weights.</p>")
        else:
            sections.append(_figure(layers, out, "layer weights (softmax, mean over folds)"))
        sections.append(_figure(charts.per_class_f1_chart(cell, figures / f"f1_{slug}.png"), out, "per-class F1"))
        sections.append(
            _figure(charts.cooccurrence_chart(cell, figures / f"cooccurrence_{slug}.png"), out, "co-occurrence")
        )
    (out / "index.html").write_text(_page("EMO-SUPERB sweep report", "\n".join(sections)))


def _status(sweep: Sweep) -> str:
    if sweep.complete:
        return f"<p>All {sweep.planned_runs} planned runs are finished.</p>"
    return (
        f'<p class="incomplete">Incomplete sweep: {sweep.finished_runs} of {sweep.planned_runs} planned runs '
        "finished. Cells list their fold counts; averages over incomplete rows are not shown.</p>"
    )


def _grid_note(sweep: Sweep) -> str:
    chosen = [
        f"{html.escape(u)} / {html.escape(c)}: {html.escape(cell.grid)}"
        for (u, c), cell in sweep.cells.items()
        if len(cell.grid_dev) > 1
    ]
    if not chosen:
        return ""
    return "<p>Grid point per cell (best mean dev macro-F1): " + "; ".join(chosen) + "</p>"


def _figure(path: Path, root: Path, caption: str) -> str:
    src = path.relative_to(root).as_posix()
    text = html.escape(caption)
    return f'<figure><img src="{html.escape(src)}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )
