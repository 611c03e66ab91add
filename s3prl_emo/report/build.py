"""Write a sweep's report folder: leaderboard.{md,csv,html}, charts/*.png and index.html.

index.html has no scripts and no network references: tables inline, images as relative
links into charts/, so the folder reads the same offline or copied elsewhere. Every name in
it comes from the user's folders and is escaped; the inputs that were skipped are listed.

OUT is claimed before any work (``guards.claim_output_dir``): new, empty, or an earlier
report; never RESULTS nor a folder that holds it. It is built in a staging folder and moved
into place, so a failure leaves the previous report as it was.
"""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import pandas as pd

from ..runtime.guards import claim_output_dir, spreadsheet_safe, staged_output
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


COMMAND = "report"
SLUG_CHARS = 80  # file names stay well under the 255 bytes of common file systems


def _slugs(cells) -> dict[tuple[str, str], str]:
    """A distinct, short, file-system-safe name per (upstream, condition).

    Names come from the user's folders: two may differ only in characters a file name cannot
    hold (``a b`` and ``a_b``) or only in case, and one may be long; a clash or a cut name
    gets a hash of the full pair, so that no chart overwrites another's.
    """
    out, used = {}, set()
    for upstream, condition in cells:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{upstream}_{condition}").strip(".")
        if len(slug) > SLUG_CHARS or slug.lower() in used or not slug:
            digest = hashlib.sha256(f"{upstream}\0{condition}".encode()).hexdigest()[:12]
            slug = f"{slug[:SLUG_CHARS]}_{digest}"
        used.add(slug.lower())
        out[(upstream, condition)] = slug
    return out


def write_report(results: Path, out: Path, *, with_published: bool = False) -> Path:
    """Build the report of RESULTS into OUT (staged, then moved into place); return index.html.

    Raises:
        InvalidInputError: OUT cannot be the report's folder (a file, RESULTS or a folder
            holding it, a folder with other content), or RESULTS has no usable plan; raised
            before anything is written.
    """
    results, out = Path(results), Path(out)
    claim_output_dir(out, command=COMMAND, inputs=[results])
    sweep = load_sweep(results)
    with staged_output(out, command=COMMAND, inputs=[results]) as stage:
        _write(sweep, stage, with_published)
    return out / "index.html"


def _spreadsheet(board: pd.DataFrame) -> pd.DataFrame:
    """The board with every text cell and column name safe to open in a spreadsheet."""
    safe = board.rename(columns=lambda c: spreadsheet_safe(str(c)))
    return safe.map(lambda v: spreadsheet_safe(v) if isinstance(v, str) else v)


def _write(sweep: Sweep, out: Path, with_published: bool) -> None:
    board = leaderboard(sweep, with_published=with_published)
    shown = display_table(board, sweep.conditions)
    _spreadsheet(board).to_csv(out / "leaderboard.csv", index=False, float_format="%.5f")
    markdown = to_markdown(shown)
    if sweep.problems:
        markdown += f"\n*{len(sweep.problems)} input(s) skipped as unusable; index.html lists them.*\n"
    (out / "leaderboard.md").write_text(markdown, encoding="utf-8")
    table_html = to_html(shown)
    (out / "leaderboard.html").write_text(_page("EMO-SUPERB leaderboard", table_html), encoding="utf-8")

    figures = out / "charts"
    figures.mkdir()
    sections = [_status(sweep), _problems(sweep), "<h2>Leaderboard: test macro-F1</h2>", table_html, _grid_note(sweep)]
    radar = charts.conditions_chart(sweep, figures / "conditions.png")
    sections.append(_figure(radar, out, "test macro-F1 per condition and upstream"))
    slugs = _slugs(sweep.cells)
    for (upstream, condition), cell in sweep.cells.items():
        if not cell.folds:
            continue
        slug = slugs[(upstream, condition)]
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
    (out / "index.html").write_text(_page("EMO-SUPERB sweep report", "\n".join(sections)), encoding="utf-8")


def _status(sweep: Sweep) -> str:
    if sweep.complete:
        return f"<p>All {sweep.planned_runs} planned runs are finished.</p>"
    return (
        f'<p class="incomplete">Incomplete sweep: {sweep.finished_runs} of {sweep.planned_runs} planned runs '
        "finished. Cells list their fold counts; averages over incomplete rows are not shown.</p>"
    )


def _problems(sweep: Sweep) -> str:
    if not sweep.problems:
        return ""
    items = "\n".join(f"<li>{html.escape(problem)}</li>" for problem in sweep.problems)
    return (
        f'<h2 class="incomplete">Skipped inputs ({len(sweep.problems)})</h2>\n'
        "<p>Plan entries and result files that could not be used; none of their figures is shown.</p>\n"
        f"<ul>\n{items}\n</ul>"
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
