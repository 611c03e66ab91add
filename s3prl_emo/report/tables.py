"""The leaderboard in the layout of the paper's Table 3: one row per upstream, one column per
condition (mean +- std over folds, number of folds), and the average over conditions."""

from __future__ import annotations

import html
import math

import pandas as pd

from ..runtime.guards import markdown_safe
from .published import published_table
from .results import Sweep

MEASURED, PUBLISHED, DIFFERENCE = "measured", "published", "difference"


def _cell_text(mean: float, std: float, folds: int, expected: int) -> str:
    if folds == 0:
        return f"missing (0 of {expected} folds)"
    text = f"{mean:.3f} ± {std:.3f} ({folds})"
    return text if folds == expected else f"{text} incomplete: {folds} of {expected} folds"


def leaderboard(sweep: Sweep, *, with_published: bool = False) -> pd.DataFrame:
    """Numbers: per condition ``<c> mean``, ``<c> std``, ``<c> folds``, ``<c> expected``; ``Average``
    is the mean over conditions, only when every condition of the row is complete (else NaN)."""
    rows = []
    for upstream in sweep.upstreams:
        row: dict = {"upstream": upstream, "source": MEASURED}
        means = []
        for condition in sweep.conditions:
            cell = sweep.cells.get((upstream, condition))
            folds = cell.folds if cell else 0
            row[f"{condition} mean"] = cell.mean if cell and folds else math.nan
            row[f"{condition} std"] = cell.std if cell and folds else math.nan
            row[f"{condition} folds"] = folds
            row[f"{condition} expected"] = cell.expected_folds if cell else 0
            row[f"{condition} grid"] = cell.grid if cell else ""
            means.append(row[f"{condition} mean"] if cell and cell.complete else math.nan)
        row["Average"] = math.nan if any(math.isnan(m) for m in means) else sum(means) / len(means)
        rows.append(row)
    if with_published:
        rows = _add_published(rows, sweep)
    return pd.DataFrame(rows)


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


def display_table(board: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Text cells for people: ``0.512 ± 0.010 (5)``; published and difference rows marked."""
    rows = []
    for _, row in board.iterrows():
        source = row["source"]
        label = row["upstream"] if source == MEASURED else f"{row['upstream']} ({source})"
        out = {"upstream": label}
        for condition in conditions:
            mean = row.get(f"{condition} mean", math.nan)
            if source == MEASURED:
                out[condition] = _cell_text(
                    mean, row[f"{condition} std"], int(row[f"{condition} folds"]), int(row[f"{condition} expected"])
                )
            elif source == DIFFERENCE:
                out[condition] = "" if pd.isna(mean) else f"{mean:+.3f}"
            else:
                out[condition] = "not in the paper" if pd.isna(mean) else f"{mean:.3f}"
        average = row.get("Average", math.nan)
        if pd.isna(average):
            out["Average"] = "incomplete" if source == MEASURED else ""
        else:
            out["Average"] = f"{average:+.3f}" if source == DIFFERENCE else f"{average:.3f}"
        out["source"] = source
        rows.append(out)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table; names (from the user's folders) are escaped so that they stay text."""
    columns = [c for c in table.columns if c != "source"]
    lines = ["| " + " | ".join(map(markdown_safe, columns)) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        cells = [markdown_safe(str(row[c])) for c in columns]
        if row["source"] != MEASURED:
            cells[0] = f"*{cells[0]}*"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_html(table: pd.DataFrame) -> str:
    """A plain table (no scripts, no external styles); rows carry their source as a class."""
    columns = [c for c in table.columns if c != "source"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for _, row in table.iterrows():
        cells = "".join(f"<td>{html.escape(str(row[c]))}</td>" for c in columns)
        body.append(f'<tr class="{html.escape(str(row["source"]))}">{cells}</tr>')
    return (
        f'<table id="leaderboard">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody>\n</table>\n"
    )
