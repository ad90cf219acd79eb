"""Inline SVG charts for the report: plain markup, no script, no fonts or files fetched.

Labels never overlap: a group's label is turned 45 degrees when it is wider than its group,
the space below the axis grows with the longest label, and the value axis has round ticks
with grid lines, its numbers written as the report's language writes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

BLUE, GREEN, RED, GREY = "#3b6ea5", "#2e8540", "#a31515", "#666"
#: average width of a character at font-size 11 in a sans-serif font, in px (generous: labels must not touch)
CHAR_W = 6.6


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top``: 0, 250, 500, ... (steps of 1, 2, 2.5 or 5 times 10^k)."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if step >= 1:
        step = round(step)
    n = math.ceil(top / step)
    return [i * step for i in range(n + 1)]


def grouped_bars(
    title: str,
    groups: Mapping[str, Sequence[float]],
    series: Sequence[str],
    colours: Sequence[str] = (BLUE, GREEN),
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
) -> str:
    """Vertical bars, one group per key (e.g. year) and one bar per series (e.g. source, archive)."""
    keys = list(groups)
    ticks = nice_ticks(max([max(v, default=0) for v in groups.values()] + [0]))
    top = ticks[-1] or 1
    bar = 10 if len(keys) > 12 else 18
    group_w = bar * len(series) + max(6, bar // 2)
    left = 12 + CHAR_W * max(len(fmt(v)) for v in ticks)
    longest = max((len(k) for k in keys), default=1) * CHAR_W
    if len(keys) <= 8:  # few groups (milestones): widen them to their labels rather than turn the labels
        group_w = max(group_w, int(longest) + 10)
    turned = longest > group_w - 2
    label_h = longest * 0.72 + 8 if turned else 16
    plot_h, top_pad = 160, 30
    width = int(max(360, left + group_w * len(keys) + 20))
    base = top_pad + plot_h
    height = int(base + label_h + 34)
    parts = [_head(width, height, title)]
    for v in ticks:
        y = base - plot_h * v / top
        parts.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{left - 5:.1f}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{escape(fmt(v))}</text>'
        )
    parts.append(f'<line x1="{left:.1f}" y1="{base}" x2="{width - 8}" y2="{base}" stroke="{GREY}"/>')
    parts.append(f'<line x1="{left:.1f}" y1="{top_pad}" x2="{left:.1f}" y2="{base}" stroke="{GREY}"/>')
    for i, key in enumerate(keys):
        x0 = left + 4 + i * group_w
        for j, value in enumerate(groups[key]):
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{base - h:.1f}" width="{bar - 1}" height="{h:.1f}" '
                f'fill="{colours[j % len(colours)]}"><title>{escape(str(key))}, {escape(series[j])}: '
                f"{escape(fmt(value))}</title></rect>"
            )
        cx = x0 + bar * len(series) / 2
        if turned:
            parts.append(
                f'<text x="{cx:.1f}" y="{base + 12}" text-anchor="end" font-size="10" '
                f'transform="rotate(-45 {cx:.1f} {base + 12})">{escape(str(key))}</text>'
            )
        else:
            parts.append(
                f'<text x="{cx:.1f}" y="{base + 14}" text-anchor="middle" font-size="10">{escape(str(key))}</text>'
            )
    x = left
    for j, name in enumerate(series):
        parts.append(f'<rect x="{x:.1f}" y="{height - 16}" width="10" height="10" fill="{colours[j]}"/>')
        parts.append(f'<text x="{x + 14:.1f}" y="{height - 7}" font-size="11">{escape(name)}</text>')
        x += 30 + CHAR_W * len(name)
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(
    title: str, values: Mapping[str, float], colour: str = RED, fmt: Callable[[float], str] = lambda v: f"{v:g}"
) -> str:
    """One horizontal bar per key (e.g. finding reason), labelled with its value."""
    top = max(list(values.values()) + [1])
    row, bar_w = 18, 260
    label_w = int(12 + CHAR_W * max((len(k) for k in values), default=4))
    value_w = int(16 + CHAR_W * max((len(fmt(v)) for v in values.values()), default=1))
    width, height = label_w + bar_w + value_w, 30 + row * max(1, len(values))
    parts = [_head(width, height, title)]
    parts.append(f'<line x1="{label_w}" y1="24" x2="{label_w}" y2="{height - 2}" stroke="{GREY}"/>')
    for i, (key, value) in enumerate(values.items()):
        y = 26 + i * row
        w = bar_w * value / top
        parts.append(f'<text x="{label_w - 6}" y="{y + 11}" text-anchor="end" font-size="11">{escape(key)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row - 5}" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 11}" font-size="11">{escape(fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _head(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="system-ui,sans-serif">'
        f'<text x="4" y="14" font-size="13" font-weight="bold">{escape(title)}</text>'
    )
