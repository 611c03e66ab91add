"""A forest plot of the report's intervals, as inline SVG: one panel per condition and one for the average.

Each upstream is a row: a horizontal line from the interval's low to its high end, a dot at
the pooled figure; rows tied with the condition's best are bold and dark, the others grey.
Inline SVG (no namespace attribute: HTML needs none) rather than an image: the page stays
one file with no scripts, every interval is an element a browser (or a test) can find
(``line.ci``), and names are escaped text.
"""

from __future__ import annotations

import html

import numpy as np

from .results import Sweep
from .significance import Analysis, Interval

WIDTH = 760
LABEL_END, PLOT_START, PLOT_END = 200, 215, 640  # x: labels end, the plot's span
ROW, TITLE, AXIS = 20, 26, 28  # heights
AVERAGE = "Average over conditions"
TIED, OTHER, UNDECIDED = "#1f4e9c", "#9a9a9a", "#333333"  # undecided: the average, or not compared


def _span(intervals: list[Interval]) -> tuple[float, float]:
    """The panel's x range: the intervals with a margin, at least 0.1 wide, inside [0, 1]."""
    low = min(i.low for i in intervals)
    high = max(i.high for i in intervals)
    middle, half = (low + high) / 2, max((high - low) / 2 + 0.02, 0.05)
    low, high = max(0.0, middle - half), min(1.0, middle + half)
    return (low, high) if high > low else (0.0, 1.0)


def _panel(title: str, rows: list[tuple[str, Interval | None, bool | None, str]], top: float) -> tuple[str, float]:
    """One panel's SVG elements from ``(upstream, interval, tied, tooltip)`` rows; returns them and its height."""
    parts = [f'<text class="panel-title" x="{LABEL_END}" y="{top + 17}" font-weight="bold">{html.escape(title)}</text>']
    drawn = [interval for _, interval, _, _ in rows if interval is not None]
    low, high = _span(drawn) if drawn else (0.0, 1.0)

    def x(value: float) -> float:
        return PLOT_START + (value - low) / (high - low) * (PLOT_END - PLOT_START)

    y = top + TITLE
    for upstream, interval, tied, tooltip in rows:
        middle = y + ROW / 2
        weight = ' font-weight="bold"' if tied else ""
        colour = TIED if tied else OTHER if tied is False else UNDECIDED
        parts.append(f'<g class="row{" tied" if tied else ""}"><title>{html.escape(tooltip)}</title>')
        parts.append(
            f'<text x="{LABEL_END}" y="{middle + 4}" text-anchor="end"{weight}>{html.escape(upstream[:40])}</text>'
        )
        if interval is None:
            parts.append(f'<text class="none" x="{PLOT_START}" y="{middle + 4}" fill="{OTHER}">no interval</text>')
        else:
            x1, x2, xp = x(interval.low), x(interval.high), x(interval.value)
            parts.append(
                f'<line class="ci" x1="{x1:.1f}" x2="{x2:.1f}" y1="{middle}" y2="{middle}" stroke="{colour}" '
                f'stroke-width="{3 if tied else 2}" data-low="{interval.low:.5f}" data-high="{interval.high:.5f}"/>'
            )
            for end in (x1, x2):
                parts.append(
                    f'<line class="cap" x1="{end:.1f}" x2="{end:.1f}" y1="{middle - 5}" y2="{middle + 5}" '
                    f'stroke="{colour}" stroke-width="1.5"/>'
                )
            parts.append(f'<circle class="point" cx="{xp:.1f}" cy="{middle}" r="4" fill="{colour}"/>')
            text = f"{interval.value:.3f} [{interval.low:.3f}, {interval.high:.3f}]"
            parts.append(f'<text x="{PLOT_END + 10}" y="{middle + 4}"{weight}>{text}</text>')
        parts.append("</g>")
        y += ROW
    axis = y + 6
    parts.append(f'<line class="axis" x1="{PLOT_START}" x2="{PLOT_END}" y1="{axis}" y2="{axis}" stroke="#444"/>')
    for tick in np.linspace(low, high, 5):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{axis}" y2="{axis + 4}" stroke="#444"/>')
        parts.append(f'<text x="{x(tick):.1f}" y="{axis + 16}" text-anchor="middle" font-size="11">{tick:.3f}</text>')
    return "\n".join(parts), y + AXIS - top


def forest_svg(sweep: Sweep, analysis: Analysis) -> str:
    """The SVG element (a string) of every condition's intervals, then the average's; empty without any interval.

    Examples:
        >>> from s3prl_emo.report.significance import analyse
        >>> forest_svg(Sweep({}, ["fbank"], ["IEMOCAP"], 0, 0), analyse(Sweep({}, ["fbank"], ["IEMOCAP"], 0, 0)))
        ''
    """
    if not analysis.intervals:
        return ""
    p_holm = {(c.upstream, c.condition): c.p_holm for c in analysis.comparisons}
    panels, top = [], 0.0
    for condition in sweep.conditions:
        rows = []
        for upstream in sweep.upstreams:
            interval = analysis.intervals.get((upstream, condition))
            tied = analysis.tied.get((upstream, condition))
            if interval is None:
                tooltip = f"{upstream} / {condition}: no interval"
            elif analysis.best.get(condition) == upstream:
                tooltip = f"{upstream} / {condition}: the best"
            elif (upstream, condition) in p_holm:
                verdict = "tied with the best" if tied else "worse than the best"
                tooltip = f"{upstream} / {condition}: {verdict} (Holm p = {p_holm[(upstream, condition)]:.3g})"
            else:
                tooltip = f"{upstream} / {condition}: not compared with the best"
            rows.append((upstream, interval, tied, tooltip))
        panel, height = _panel(condition, rows, top)
        panels.append(panel)
        top += height
    if analysis.averages:
        rows = [(u, analysis.averages.get(u), None, f"{u}: average over conditions") for u in sweep.upstreams]
        panel, height = _panel(AVERAGE, rows, top)
        panels.append(panel)
        top += height
    label = f"{round(100 * analysis.confidence)}% bootstrap intervals of test macro-F1 on the pooled test utterances"
    return (
        f'<svg class="forest" width="{WIDTH}" height="{top:.0f}" '
        f'viewBox="0 0 {WIDTH} {top:.0f}" role="img" aria-label="{html.escape(label)}" font-family="sans-serif" '
        f'font-size="13">\n<title>{html.escape(label)}</title>\n' + "\n".join(panels) + "\n</svg>"
    )
