"""The cross-corpus matrix as tables: ``cross_matrix.csv`` (one row per cell), Markdown and HTML
(one train x test table per upstream, then the classes each cell scores and why a cell is empty)."""

from __future__ import annotations

import html
import math

import pandas as pd

from ..runtime.guards import markdown_safe
from .cross_matrix import CrossMatrix, Figure, MatrixCell

CSV_COLUMNS = (
    "upstream",
    "train_condition",
    "test_condition",
    "diagonal",
    "classes",
    "n_classes",
    "runs",
    "expected_runs",
    "folds",
    "seeds",
    "mean",
    "std",
    "pooled",
    "ci_low",
    "ci_high",
    "in_corpus_mean",
    "in_corpus_std",
    "in_corpus_pooled",
    "in_corpus_ci_low",
    "in_corpus_ci_high",
    "note",
)


def _numbers(figure: Figure | None, prefix: str = "") -> dict:
    keys = ("mean", "std", "pooled", "ci_low", "ci_high")
    if figure is None or not figure.runs:
        return {f"{prefix}{k}": math.nan for k in keys}
    interval = figure.interval
    return {
        f"{prefix}mean": figure.mean,
        f"{prefix}std": figure.std,
        f"{prefix}pooled": interval.value if interval else math.nan,
        f"{prefix}ci_low": interval.low if interval else math.nan,
        f"{prefix}ci_high": interval.high if interval else math.nan,
    }


def _note(cell: MatrixCell) -> str:
    if cell.skipped:
        return f"skipped: {cell.skipped}"
    notes = []
    if cell.figure is not None and cell.figure.note:
        notes.append(f"no interval: {cell.figure.note}")
    if cell.in_corpus is not None and cell.in_corpus.note:
        notes.append(f"in-corpus reference: {cell.in_corpus.note}")
    return "; ".join(notes)


def matrix_frame(matrix: CrossMatrix) -> pd.DataFrame:
    """One row per (upstream, train condition, test condition): ``CSV_COLUMNS``.

    ``mean``/``std``/``pooled``/``ci_*`` are the cell's figure (the diagonal's: in-corpus over the
    row's common classes); ``in_corpus_*`` the off-diagonal cell's in-corpus reference on its
    classes (empty on the diagonal); ``note`` why a figure or interval is missing.
    """
    rows = []
    for (upstream, train, test), cell in matrix.cells.items():
        figure = cell.figure
        classes = figure.classes if figure is not None else ()
        rows.append(
            {
                "upstream": upstream,
                "train_condition": train,
                "test_condition": test,
                "diagonal": str(cell.diagonal).lower(),
                "classes": ";".join(classes),
                "n_classes": len(classes),
                "runs": figure.runs if figure else 0,
                "expected_runs": figure.expected_runs if figure else 0,
                "folds": figure.folds if figure else 0,
                "seeds": figure.seeds if figure else 0,
                **_numbers(figure),
                **_numbers(None if cell.diagonal else cell.in_corpus, "in_corpus_"),
                "note": _note(cell),
            }
        )
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


def _figure_text(figure: Figure) -> str:
    if not figure.runs:
        return f"missing (0 of {figure.expected_runs} runs)"
    runs = f"{figure.folds}" if figure.seeds <= 1 else f"{figure.folds} × {figure.seeds} seeds"
    text = f"{figure.mean:.3f} ± {figure.std:.3f} ({runs})"
    if figure.interval is not None:
        text += f"; pooled {figure.interval.value:.3f} [{figure.interval.low:.3f}, {figure.interval.high:.3f}]"
    if not figure.complete:
        text += f" incomplete: {figure.runs} of {figure.expected_runs} runs"
    return text


def cell_text(cell: MatrixCell) -> str:
    """``0.412 ± 0.020 (2); pooled 0.430 [0.380, 0.470]; in-corpus 0.553``; the diagonal names its
    number of classes; ``skipped`` or ``missing`` otherwise.

    Examples:
        >>> cell = MatrixCell("fbank", "A", "B", Figure(("x", "y"), [(1, None, 0.4), (2, None, 0.6)], 2),
        ...                   Figure(("x", "y"), [(1, None, 0.7), (2, None, 0.7)], 2))
        >>> cell_text(cell)
        '0.500 ± 0.141 (2); in-corpus 0.700'
    """
    if cell.skipped:
        return "skipped"
    if cell.figure is None:
        return "missing"
    text = _figure_text(cell.figure)
    if cell.diagonal:
        return f"{text}; {len(cell.figure.classes)} classes"
    reference = cell.in_corpus
    if reference is not None and reference.runs:
        text += f"; in-corpus {reference.mean:.3f}"
    return text


def legend(matrix: CrossMatrix) -> str:
    """What the cells say, in words."""
    confidence = round(100 * matrix.confidence)
    return (
        "Rows: the condition the models were trained on; columns: the condition whose test utterances they were "
        "scored on. Cells: macro-F1 over the classes the two conditions share (listed below), mean ± standard "
        "deviation over folds (number of folds; with seeds, folds × seeds), as in the leaderboard, at the "
        "leaderboard's grid point. Off the diagonal, 'in-corpus' is the same models on their own test sets over "
        "the same classes (the like-for-like comparison); the diagonal is that in-corpus figure over the classes "
        "the row's condition shares with every column. Pooled figures and their "
        f"{confidence}% bootstrap intervals ({matrix.n_resamples} resamples): across corpora, every fold's model "
        "scores every target utterance, so the pooled figure is the mean over folds (seeds averaged per utterance) "
        "and each resample draws the target's utterances once for all folds; in-corpus, the folds' test sets are "
        "pooled as in the leaderboard."
    )


def _classes_lines(matrix: CrossMatrix, upstream: str) -> list[str]:
    lines = []
    for train in matrix.conditions[upstream]:
        for test in matrix.conditions[upstream]:
            cell = matrix.cells[(upstream, train, test)]
            pair = f"{train} (diagonal)" if cell.diagonal else f"{train} → {test}"
            if cell.skipped:
                lines.append(f"{pair}: skipped, {cell.skipped}")
            elif cell.figure is not None:
                lines.append(f"{pair}: {', '.join(cell.figure.classes)}")
    return lines


def _notes(matrix: CrossMatrix, upstream: str) -> list[str]:
    out = []
    for (u, train, test), cell in matrix.cells.items():
        note = _note(cell)
        if u == upstream and note and not cell.skipped:
            out.append(f"{train} → {test}: {note}")
    return out


def to_markdown(matrix: CrossMatrix) -> str:
    """``cross_matrix.md``: per upstream a train x test table, the classes of each cell and the notes."""
    parts = ["# Cross-corpus matrix: macro-F1 over shared classes", "", legend(matrix), ""]
    for upstream in matrix.upstreams:
        conditions = matrix.conditions[upstream]
        parts.append(f"## {markdown_safe(upstream)}")
        parts.append("")
        parts.append("| train \\ test | " + " | ".join(markdown_safe(c) for c in conditions) + " |")
        parts.append("|" + "---|" * (len(conditions) + 1))
        for train in conditions:
            cells = []
            for test in conditions:
                text = markdown_safe(cell_text(matrix.cells[(upstream, train, test)]))
                cells.append(f"**{text}**" if train == test else text)
            parts.append(f"| {markdown_safe(train)} | " + " | ".join(cells) + " |")
        parts.append("")
        parts.append("Classes scored:")
        parts += [f"- {markdown_safe(line)}" for line in _classes_lines(matrix, upstream)]
        notes = _notes(matrix, upstream)
        if notes:
            parts.append("")
            parts.append("Without an interval or complete figure:")
            parts += [f"- {markdown_safe(line)}" for line in notes]
        parts.append("")
    return "\n".join(parts)


def to_html(matrix: CrossMatrix, figures: dict[str, str] | None = None) -> str:
    """The index.html section: per upstream a table (``table.cross``), its heatmap (``figures``:
    upstream -> an ``<figure>`` element) and the classes and notes as lists; names escaped."""
    parts = ["<h2>Cross-corpus matrix: macro-F1 over shared classes</h2>", f"<p>{html.escape(legend(matrix))}</p>"]
    for upstream in matrix.upstreams:
        conditions = matrix.conditions[upstream]
        parts.append(f"<h3>{html.escape(upstream)}</h3>")
        head = "".join(f"<th>{html.escape(c)}</th>" for c in conditions)
        rows = []
        for train in conditions:
            cells = []
            for test in conditions:
                text = html.escape(cell_text(matrix.cells[(upstream, train, test)]))
                cells.append(
                    f'<td class="diagonal"><strong>{text}</strong></td>' if train == test else f"<td>{text}</td>"
                )
            rows.append(f"<tr><td>{html.escape(train)}</td>{''.join(cells)}</tr>")
        parts.append(
            f'<table class="cross">\n<thead><tr><th>train \\ test</th>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows)
            + "\n</tbody>\n</table>"
        )
        if figures and upstream in figures:
            parts.append(figures[upstream])
        items = "".join(f"<li>{html.escape(line)}</li>" for line in _classes_lines(matrix, upstream))
        parts.append(f"<p>Classes scored:</p>\n<ul>{items}</ul>")
        notes = _notes(matrix, upstream)
        if notes:
            items = "".join(f"<li>{html.escape(line)}</li>" for line in notes)
            parts.append(f'<p>Without an interval or complete figure:</p>\n<ul class="notes">{items}</ul>')
    return "\n".join(parts)
