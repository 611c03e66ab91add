"""Write a sweep's report folder: leaderboard.{md,csv,html}, significance.csv, charts/*.png and index.html;
for a sweep run with ``--cross-eval``, also cross_matrix.{md,csv} and a heatmap per upstream.

index.html has no scripts and no network references: tables and the forest plot of the
intervals inline (SVG), images as relative links into charts/, so the folder reads the same
offline or copied elsewhere. Every name in it comes from the user's folders and is escaped;
the inputs that were skipped are listed, and so is every cell without an interval, with why.

OUT is claimed before any work (``guards.claim_output_dir``): new, empty, or an earlier
report (its marker, or the ``leaderboard.csv`` of a report written before markers existed);
never RESULTS nor a folder that holds it. It is built in a staging folder and moved
into place, so a failure leaves the previous report as it was.
"""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import pandas as pd

from ..runtime.guards import claim_output_dir, spreadsheet_safe, staged_output
from . import attributes, charts, cross_tables
from .cross_matrix import CrossMatrix, cross_matrix
from .forest import forest_svg
from .results import Sweep, load_sweep
from .significance import N_RESAMPLES, Analysis, analyse
from .tables import display_table, leaderboard, significance_table, to_html, to_markdown

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 75em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
tr.published td { color: #555; font-style: italic; }
tr.difference td { color: #777; }
.incomplete { color: #b00; font-weight: bold; }
td.tied { background: #eef3fb; }
td.diagonal { background: #f3f3f3; }
figure { display: inline-block; margin: 0.5em; }
svg.forest { display: block; margin: 1em 0; }
"""


# A report written before output folders carried a marker holds this file.
LEGACY_OUTPUT = ("leaderboard.csv",)
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


def write_report(results: Path, out: Path, *, with_published: bool = False, n_resamples: int = N_RESAMPLES) -> Path:
    """Build the report of RESULTS into OUT (staged, then moved into place); return index.html.

    ``n_resamples``: bootstrap resamples per interval and random swaps per paired test.

    Raises:
        InvalidInputError: OUT cannot be the report's folder (a file, RESULTS or a folder
            holding it, a folder with other content), or RESULTS has no usable plan; raised
            before anything is written.
    """
    results, out = Path(results), Path(out)
    claim_output_dir(out, command=COMMAND, inputs=[results], own_files=LEGACY_OUTPUT)
    sweep = load_sweep(results)
    analysis = analyse(sweep, n_resamples=n_resamples)
    matrix = cross_matrix(results, sweep, n_resamples=n_resamples)
    scored = None
    if sweep.attribute_cells:
        scored = attributes.analyse_attributes(
            sweep.attribute_cells, sweep.upstreams, sweep.attribute_conditions, n_resamples=n_resamples
        )
    with staged_output(out, command=COMMAND, inputs=[results], own_files=LEGACY_OUTPUT) as stage:
        _write(sweep, analysis, stage, with_published, matrix, scored)
    return out / "index.html"


def _write_attributes(sweep: Sweep, analysis: attributes.AttributeAnalysis, out: Path) -> str:
    """attributes.{md,csv} and attributes_significance.csv; return the index.html section."""
    board = attributes.attribute_board(sweep, analysis)
    shown = attributes.display_attributes(board, sweep.attribute_cells)
    _spreadsheet(board).to_csv(out / "attributes.csv", index=False, float_format="%.5f")
    tests = significance_table(analysis).rename(columns={"metric_upstream": "ccc_mean", "metric_best": "ccc_mean_best"})
    _spreadsheet(tests).to_csv(out / "attributes_significance.csv", index=False, float_format="%.5g")
    (out / "attributes.md").write_text(attributes.markdown(shown, analysis), encoding="utf-8")
    return attributes.html_section(shown, analysis)


def _spreadsheet(board: pd.DataFrame) -> pd.DataFrame:
    """The board with every text cell and column name safe to open in a spreadsheet."""
    safe = board.rename(columns=lambda c: spreadsheet_safe(str(c)))
    return safe.map(lambda v: spreadsheet_safe(v) if isinstance(v, str) else v)


def _write(
    sweep: Sweep,
    analysis: Analysis,
    out: Path,
    with_published: bool,
    matrix: CrossMatrix | None = None,
    scored: attributes.AttributeAnalysis | None = None,
) -> None:
    board = leaderboard(sweep, with_published=with_published, analysis=analysis)
    shown = display_table(board, sweep, analysis)
    _spreadsheet(board).to_csv(out / "leaderboard.csv", index=False, float_format="%.5f")
    _spreadsheet(significance_table(analysis)).to_csv(out / "significance.csv", index=False, float_format="%.5g")
    markdown = to_markdown(shown) + f"\n{_legend(analysis)}\n"
    if analysis.notes:
        markdown += (
            f"\n*{len(analysis.notes)} cell(s) or comparison(s) without an interval or test; index.html says why.*\n"
        )
    if sweep.problems:
        markdown += f"\n*{len(sweep.problems)} input(s) skipped as unusable; index.html lists them.*\n"
    (out / "leaderboard.md").write_text(markdown, encoding="utf-8")
    table_html = to_html(shown)
    legend = f"<p>{html.escape(_legend(analysis))}</p>"
    (out / "leaderboard.html").write_text(_page("EMO-SUPERB leaderboard", table_html + legend), encoding="utf-8")

    figures = out / "charts"
    figures.mkdir()
    sections = [_status(sweep), _problems(sweep), "<h2>Leaderboard: test macro-F1</h2>", table_html, legend]
    sections += [_grid_note(sweep), _intervals(sweep, analysis)]
    if scored is not None:
        sections.append(_write_attributes(sweep, scored, out))
    radar = charts.conditions_chart(sweep, figures / "conditions.png")
    sections.append(_figure(radar, out, "test macro-F1 per condition and upstream"))
    if matrix is not None:
        sections.append(_cross_matrix(matrix, out, figures))
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


def _cross_matrix(matrix: CrossMatrix, out: Path, figures: Path) -> str:
    """Write cross_matrix.{md,csv} and a heatmap per upstream; return the index.html section."""
    _spreadsheet(cross_tables.matrix_frame(matrix)).to_csv(out / "cross_matrix.csv", index=False, float_format="%.5f")
    (out / "cross_matrix.md").write_text(cross_tables.to_markdown(matrix), encoding="utf-8")
    slugs = _slugs([(upstream, "matrix") for upstream in matrix.upstreams])
    shown = {}
    for upstream in matrix.upstreams:
        path = charts.cross_matrix_chart(matrix, upstream, figures / f"cross_{slugs[(upstream, 'matrix')]}.png")
        shown[upstream] = _figure(path, out, f"{upstream}: train x test macro-F1 over shared classes")
    return cross_tables.to_html(matrix, shown)


def _legend(analysis: Analysis) -> str:
    """What the cells say, in words (for the Markdown and the HTML alike)."""
    confidence = round(100 * analysis.confidence)
    return (
        "Cells: mean ± standard deviation over folds of test macro-F1 (number of folds; with seeds, the "
        f"seed-to-seed standard deviation), then the pooled figure and its {confidence}% bootstrap interval: the "
        "condition's test utterances pooled over its folds, each scored by its own fold's model, the seeds' "
        f"probabilities averaged per utterance ({analysis.n_resamples} resamples). Bold: the condition's best "
        "upstream (highest pooled macro-F1) and those tied with it, not significantly worse at "
        f"{analysis.alpha:g} (paired approximate randomization, Holm-adjusted within the condition); "
        "significance.csv holds the p-values."
    )


def _intervals(sweep: Sweep, analysis: Analysis) -> str:
    """The forest plot, and why a cell has no interval or an upstream no test."""
    parts = ["<h2>Intervals and ties</h2>"]
    svg = forest_svg(sweep, analysis)
    parts.append(svg or "<p>No interval: no cell has the per-utterance test predictions of all its runs.</p>")
    if analysis.notes:
        items = "\n".join(f"<li>{html.escape(note)}</li>" for note in analysis.notes)
        parts.append(
            f'<p>Without an interval or a test ({len(analysis.notes)}):</p>\n<ul class="notes">\n{items}\n</ul>'
        )
    return "\n".join(parts)


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
