"""The HTML report: one self-contained file (no scripts, fonts or images from elsewhere).

Three plots drawn here as inline SVG: accuracy per category as grouped bars (raw vs foxagent vs
the whole run for BFCL; right answer vs tool choice for the local suite), repairs per family,
and the latency distribution; then the summary table and one row per case. The bar colours
are fixed (`COLORS`) so a screenshot can be checked for the plots.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["COLORS", "render_html"]

#: One colour per score, in the order the scores are drawn.
COLORS = ("#d62728", "#1f77b4", "#2ca02c")
_REPAIR_COLOR = "#9467bd"
_LATENCY_COLOR = "#ff7f0e"
_BINS = 12
_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}
td:first-child,th:first-child{text-align:left}
td.calls{text-align:left;font-family:monospace;max-width:420px;word-break:break-all}
.ok{background:#e6f4e6}.bad{background:#fbe9e9}
svg{display:block;margin:8px 0;background:#fafafa;border:1px solid #eee}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
"""


def render_html(
    *,
    title: str,
    meta: Mapping[str, Any],
    summary: Mapping[str, Any],
    scores: Sequence[tuple[str, str]],
    records: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
) -> str:
    """The whole report page.

    Args:
        title: the page's heading.
        meta: shown as a definition list under it (backend, model, settings, ...).
        summary: per-category summaries (`foxagent.eval._report`), ``all`` included.
        scores: ``(record field, summary name)`` of each score to plot.
        records: one per case.
        columns: the record fields shown in the case table.
    """
    groups = [g for g, v in summary.items() if g not in ("by_lang",) and isinstance(v, Mapping)]
    names = [name for _, name in scores]
    series = {name: [float(summary[g][f"{name}_accuracy"]) for g in groups] for name in names}
    repairs: Mapping[str, int] = summary.get("all", {}).get("repairs", {}) if summary else {}
    latency = [float(r.get("latency_ms") or 0.0) for r in records]
    legend = "".join(
        f'<span><i style="background:{COLORS[i % len(COLORS)]}"></i>{html.escape(name)}</span>'
        for i, name in enumerate(names)
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _meta(meta),
        "<h2>Accuracy per category</h2>",
        f'<div class="legend">{legend}</div>',
        accuracy_svg(groups, series),
        "<h2>Repairs per family (first reply)</h2>",
        repairs_svg(repairs),
        "<h2>Latency per case</h2>",
        latency_svg(latency),
        "<h2>Summary</h2>",
        _summary_table(summary, groups, names),
        "<h2>Cases</h2>",
        _case_table(records, columns),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def accuracy_svg(groups: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """Grouped bars: one group per category, one bar per score (0 to 100 %)."""
    names = list(series)
    bar, gap, left, top, height = 16, 18, 44, 12, 180
    group_width = bar * max(1, len(names)) + gap
    width = left + group_width * max(1, len(groups)) + 10
    total = top + height + 70
    shapes = [_axis(left, top, height, width)]
    for index, group in enumerate(groups):
        x0 = left + gap / 2 + index * group_width
        for k, name in enumerate(names):
            value = max(0.0, min(1.0, series[name][index]))
            h = value * height
            x = x0 + k * bar
            color = COLORS[k % len(COLORS)]
            shapes.append(
                f'<rect class="bar" x="{x:.1f}" y="{top + height - h:.1f}" width="{bar - 2}" '
                f'height="{h:.1f}" fill="{color}"><title>{html.escape(group)} {html.escape(name)}'
                f": {value * 100:.1f}%</title></rect>"
            )
        label_x = x0 + bar * len(names) / 2
        shapes.append(
            f'<text x="{label_x:.1f}" y="{top + height + 12}" font-size="10" '
            f'text-anchor="end" transform="rotate(-35 {label_x:.1f} {top + height + 12})">'
            f"{html.escape(group)}</text>"
        )
    return _svg("accuracy", width, total, shapes)


def repairs_svg(repairs: Mapping[str, int]) -> str:
    """Horizontal bars: how often each repair family was needed."""
    items = list(repairs.items())[:20]
    left, row, top = 170, 20, 8
    width = 560
    height = top * 2 + row * max(1, len(items))
    biggest = max((count for _, count in items), default=1) or 1
    shapes: list[str] = []
    if not items:
        shapes.append(f'<text x="10" y="{top + 14}" font-size="12">no repairs</text>')
    for index, (family, count) in enumerate(items):
        y = top + index * row
        w = (width - left - 50) * count / biggest
        shapes.append(
            f'<text x="{left - 6}" y="{y + 13}" font-size="11" text-anchor="end">'
            f"{html.escape(family)}</text>"
            f'<rect class="bar" x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{_REPAIR_COLOR}"><title>{html.escape(family)}: {count}</title></rect>'
            f'<text x="{left + w + 4:.1f}" y="{y + 13}" font-size="11">{count}</text>'
        )
    return _svg("repairs", width, height, shapes)


def latency_svg(latency: Sequence[float]) -> str:
    """A histogram of per-case latency in milliseconds."""
    left, top, height, width = 44, 12, 150, 560
    total = top + height + 34
    shapes = [_axis(left, top, height, width, percent=False)]
    if latency:
        low, high = min(latency), max(latency)
        span = (high - low) or 1.0
        counts = [0] * _BINS
        for value in latency:
            counts[min(_BINS - 1, int((value - low) / span * _BINS))] += 1
        biggest = max(counts) or 1
        bin_width = (width - left - 10) / _BINS
        for index, count in enumerate(counts):
            h = height * count / biggest
            x = left + index * bin_width
            start = low + span * index / _BINS
            shapes.append(
                f'<rect class="bar" x="{x:.1f}" y="{top + height - h:.1f}" '
                f'width="{bin_width - 2:.1f}" height="{h:.1f}" fill="{_LATENCY_COLOR}">'
                f"<title>{start:.0f} ms and up: {count} cases</title></rect>"
            )
        for x, text, anchor in ((left, low, "start"), (width - 10, high, "end")):
            shapes.append(
                f'<text x="{x}" y="{top + height + 14}" font-size="10" text-anchor="{anchor}">'
                f"{text:.0f} ms</text>"
            )
    return _svg("latency", width, total, shapes)


def _axis(left: int, top: int, height: int, width: float, *, percent: bool = True) -> str:
    lines = [
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + height}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top + height}" x2="{width}" y2="{top + height}" stroke="#444"/>',
    ]
    if percent:
        for tick in (0, 50, 100):
            y = top + height - height * tick / 100
            lines.append(
                f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end">'
                f"{tick}%</text>"
            )
    return "".join(lines)


def _svg(name: str, width: float, height: float, shapes: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{name}" class="plot" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" aria-label="{name}">' + "".join(shapes) + "</svg>"
    )


def _meta(meta: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>"
        for k, v in meta.items()
    )
    return f'<table class="meta">{rows}</table>'


def _summary_table(summary: Mapping[str, Any], groups: Sequence[str], names: Sequence[str]) -> str:
    head = ["category", "n", *names, "errors", "p50 ms", "model ms", "tools ms", "foxagent ms"]
    rows = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for group in groups:
        values = summary[group]
        cells = [
            group,
            str(values["n"]),
            *(f"{values[f'{name}_accuracy'] * 100:.1f}%" for name in names),
            str(values["errors"]),
            f"{values['latency_ms']['p50']:.0f}",
            f"{values['model_ms']:.0f}",
            f"{values['tools_ms']:.1f}",
            f"{values['framework_ms']:.1f}",
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="summary">{"".join(rows)}</table>'


def _case_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    rows = ["<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"]
    for record in records:
        cells = []
        for column in columns:
            value = record.get(column)
            css = ""
            if isinstance(value, bool):
                css = ' class="ok"' if value else ' class="bad"'
            elif isinstance(value, (list, dict)):
                css = ' class="calls"'
            cells.append(f"<td{css}>{html.escape(_text(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="cases">{"".join(rows)}</table>'


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
