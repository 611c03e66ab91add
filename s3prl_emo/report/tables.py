"""The leaderboard in the layout of the paper's Table 3: one row per upstream, one column per
condition (mean +- std over folds, number of folds, and with the pooled test utterances an
interval and whether the upstream is tied with the condition's best), and the average over
conditions."""

from __future__ import annotations

import html
import math

import pandas as pd

from ..runtime.guards import markdown_safe
from .published import published_table
from .results import Cell, Sweep
from .significance import Analysis, Interval, analyse

MEASURED, PUBLISHED, DIFFERENCE = "measured", "published", "difference"
BOLD = "bold"  # display-table column: the condition columns to show in bold (tied with the best)
SIGNIFICANCE_COLUMNS = (
    "condition",
    "upstream",
    "best",
    "metric_upstream",
    "metric_best",
    "p_value",
    "p_holm",
    "tied_with_best",
)


def _cell_text(cell: Cell | None, interval: Interval | None, expected: int) -> str:
    if cell is None or cell.runs == 0:
        return f"missing (0 of {expected} folds)"
    text = f"{cell.mean:.3f} ± {cell.std:.3f} ({cell.folds})"
    if cell.seeds > 1 or (cell.expected_runs or 0) > cell.expected_folds:
        seed_std = "" if math.isnan(cell.seed_std) else f", seed sd {cell.seed_std:.3f}"
        text = f"{cell.mean:.3f} ± {cell.std:.3f} ({cell.folds} × {cell.seeds} seeds{seed_std})"
    if interval is not None:
        text += f"; pooled {interval.value:.3f} [{interval.low:.3f}, {interval.high:.3f}]"
    if cell.complete:
        return text
    if cell.expected_runs is not None and cell.expected_runs != cell.expected_folds:
        return f"{text} incomplete: {cell.runs} of {cell.expected_runs} runs"
    return f"{text} incomplete: {cell.folds} of {expected} folds"


def _flag(value: bool | None) -> str:
    return "" if value is None else str(bool(value)).lower()


def leaderboard(sweep: Sweep, *, with_published: bool = False, analysis: Analysis | None = None) -> pd.DataFrame:
    """Numbers: per condition ``<c> mean`` (over seeds and folds), ``<c> std`` (over folds), ``<c> folds``,
    ``<c> expected``, ``<c> grid``, ``<c> seeds``, ``<c> seed_std``, and from the pooled test utterances
    ``<c> pooled``, ``<c> ci_low``, ``<c> ci_high`` and ``<c> tied_with_best`` (``true``/``false``, empty
    without pooled predictions); ``Average`` is the mean over conditions, only when every condition of
    the row is complete (else NaN), with ``Average pooled``, ``Average ci_low`` and ``Average ci_high``.

    ``analysis`` (``significance.analyse``) is computed here when not given."""
    analysis = analyse(sweep) if analysis is None else analysis
    rows = []
    for upstream in sweep.upstreams:
        row: dict = {"upstream": upstream, "source": MEASURED}
        means = []
        for condition in sweep.conditions:
            cell = sweep.cells.get((upstream, condition))
            folds = cell.folds if cell else 0
            interval = analysis.intervals.get((upstream, condition))
            row[f"{condition} mean"] = cell.mean if cell and folds else math.nan
            row[f"{condition} std"] = cell.std if cell and folds else math.nan
            row[f"{condition} folds"] = folds
            row[f"{condition} expected"] = cell.expected_folds if cell else 0
            row[f"{condition} grid"] = cell.grid if cell else ""
            row[f"{condition} seeds"] = cell.seeds if cell else 0
            row[f"{condition} seed_std"] = cell.seed_std if cell and folds else math.nan
            row[f"{condition} pooled"] = interval.value if interval else math.nan
            row[f"{condition} ci_low"] = interval.low if interval else math.nan
            row[f"{condition} ci_high"] = interval.high if interval else math.nan
            row[f"{condition} tied_with_best"] = _flag(analysis.tied.get((upstream, condition)))
            means.append(row[f"{condition} mean"] if cell and cell.complete else math.nan)
        row["Average"] = math.nan if not means or any(math.isnan(m) for m in means) else sum(means) / len(means)
        average = analysis.averages.get(upstream)
        row["Average pooled"] = average.value if average else math.nan
        row["Average ci_low"] = average.low if average else math.nan
        row["Average ci_high"] = average.high if average else math.nan
        rows.append(row)
    if with_published:
        rows = _add_published(rows, sweep)
    return pd.DataFrame(rows)


def significance_table(analysis: Analysis) -> pd.DataFrame:
    """One row per upstream compared with its condition's best: ``SIGNIFICANCE_COLUMNS``."""
    rows = [
        {
            "condition": c.condition,
            "upstream": c.upstream,
            "best": c.best,
            "metric_upstream": c.metric_upstream,
            "metric_best": c.metric_best,
            "p_value": c.p_value,
            "p_holm": c.p_holm,
            "tied_with_best": _flag(c.tied_with_best),
        }
        for c in analysis.comparisons
    ]
    return pd.DataFrame(rows, columns=list(SIGNIFICANCE_COLUMNS))


def _add_published(rows: list[dict], sweep: Sweep) -> list[dict]:
    """After each measured row: the paper's row for the same upstream and the difference.
    FBANK's published row is always added, as the paper's baseline."""
    table = published_table()
    out = []
    names = [r["upstream"] for r in rows]
    for row in rows:
        out.append(row)
        if row["upstream"] not in table.index:
            continue
        published = _published_row(table, row["upstream"], sweep.conditions)
        difference = {"upstream": row["upstream"], "source": DIFFERENCE}
        for key, value in published.items():
            if key.endswith(" mean") or key == "Average":
                difference[key] = row.get(key, math.nan) - value if not math.isnan(value) else math.nan
        out += [published, difference]
    if "fbank" not in names:
        out.append(_published_row(table, "fbank", sweep.conditions))
    return out


def _published_row(table: pd.DataFrame, upstream: str, conditions: list[str]) -> dict:
    entry = table.loc[upstream]
    row: dict = {"upstream": upstream, "source": PUBLISHED, "paper_name": entry["paper_name"]}
    for condition in conditions:
        row[f"{condition} mean"] = float(entry[condition]) if condition in entry.index else math.nan
    known = [c for c in conditions if c in entry.index]
    # The paper's own average covers its nine conditions; shown only when the sweep has all nine.
    row["Average"] = float(entry["Average"]) if len(known) == len(entry.index) - 3 else math.nan
    return row


def display_table(board: pd.DataFrame, sweep: Sweep, analysis: Analysis) -> pd.DataFrame:
    """Text cells for people: ``0.512 ± 0.010 (5); pooled 0.520 [0.480, 0.560]`` (with seeds:
    ``(5 × 3 seeds, seed sd 0.004)``); published and difference rows marked; ``BOLD`` lists the
    condition columns of a row tied with the condition's best."""
    conditions = sweep.conditions
    rows = []
    for _, row in board.iterrows():
        source = row["source"]
        label = row["upstream"] if source == MEASURED else f"{row['upstream']} ({source})"
        out = {"upstream": label}
        bold = set()
        for condition in conditions:
            mean = row.get(f"{condition} mean", math.nan)
            if source == MEASURED:
                key = (row["upstream"], condition)
                out[condition] = _cell_text(
                    sweep.cells.get(key), analysis.intervals.get(key), int(row[f"{condition} expected"])
                )
                if analysis.tied.get(key):
                    bold.add(condition)
            elif source == DIFFERENCE:
                out[condition] = "" if pd.isna(mean) else f"{mean:+.3f}"
            else:
                out[condition] = "not in the paper" if pd.isna(mean) else f"{mean:.3f}"
        average = row.get("Average", math.nan)
        if pd.isna(average):
            out["Average"] = "incomplete" if source == MEASURED else ""
        else:
            out["Average"] = f"{average:+.3f}" if source == DIFFERENCE else f"{average:.3f}"
            pooled = analysis.averages.get(row["upstream"]) if source == MEASURED else None
            if pooled is not None:
                out["Average"] += f"; pooled {pooled.value:.3f} [{pooled.low:.3f}, {pooled.high:.3f}]"
        out["source"] = source
        out[BOLD] = frozenset(bold)
        rows.append(out)
    return pd.DataFrame(rows)


def _columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in ("source", BOLD)]


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table; names (from the user's folders) are escaped so that they stay text; cells
    tied with the best are bold."""
    columns = _columns(table)
    lines = ["| " + " | ".join(map(markdown_safe, columns)) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        bold = row.get(BOLD) or frozenset()
        cells = [f"**{markdown_safe(str(row[c]))}**" if c in bold else markdown_safe(str(row[c])) for c in columns]
        if row["source"] != MEASURED:
            cells[0] = f"*{cells[0]}*"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_html(table: pd.DataFrame) -> str:
    """A plain table (no scripts, no external styles); rows carry their source as a class, cells tied
    with the best are ``<strong>`` in a ``td.tied``."""
    columns = _columns(table)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for _, row in table.iterrows():
        bold = row.get(BOLD) or frozenset()
        cells = "".join(
            f'<td class="tied"><strong>{html.escape(str(row[c]))}</strong></td>'
            if c in bold
            else f"<td>{html.escape(str(row[c]))}</td>"
            for c in columns
        )
        body.append(f'<tr class="{html.escape(str(row["source"]))}">{cells}</tr>')
    return (
        f'<table id="leaderboard">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody>\n</table>\n"
    )
