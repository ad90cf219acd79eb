"""Inline SVG charts for the report: plain markup, no script, no fonts or files fetched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

BLUE, GREEN, RED, GREY = "#3b6ea5", "#2e8540", "#a31515", "#666"


def grouped_bars(
    title: str, groups: Mapping[str, Sequence[float]], series: Sequence[str], colours: Sequence[str] = (BLUE, GREEN)
) -> str:
    """Vertical bars, one group per key (e.g. year) and one bar per series (e.g. source, archive)."""
    keys = list(groups)
    top = max([max(v, default=0) for v in groups.values()] + [1])
    width, height, left, bottom = max(320, 40 + 44 * len(keys) * len(series) // 2), 220, 50, 40
    plot_h = height - bottom - 30
    bar = max(6, min(24, (width - left - 10) // max(1, len(keys) * (len(series) + 1))))
    parts = [_head(width, height, title)]
    parts.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width - 5}" y2="{height - bottom}" stroke="{GREY}"/>')
    parts.append(f'<text x="{left - 4}" y="34" text-anchor="end" font-size="10">{top:g}</text>')
    for i, key in enumerate(keys):
        x0 = left + 6 + i * bar * (len(series) + 1)
        for j, value in enumerate(groups[key]):
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x0 + j * bar}" y="{height - bottom - h:.1f}" width="{bar - 1}" height="{h:.1f}" '
                f'fill="{colours[j % len(colours)]}"><title>{escape(str(key))} {escape(series[j])}: {value:g}</title>'
                "</rect>"
            )
        parts.append(
            f'<text x="{x0 + bar * len(series) / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
            f'font-size="10">{escape(str(key))}</text>'
        )
    for j, name in enumerate(series):
        parts.append(f'<rect x="{left + j * 110}" y="{height - 14}" width="10" height="10" fill="{colours[j]}"/>')
        parts.append(f'<text x="{left + j * 110 + 14}" y="{height - 5}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(title: str, values: Mapping[str, float], colour: str = RED) -> str:
    """One horizontal bar per key (e.g. finding reason), labelled with its value."""
    top = max(list(values.values()) + [1])
    row, label_w, bar_w = 18, 170, 260
    width, height = label_w + bar_w + 60, 30 + row * max(1, len(values))
    parts = [_head(width, height, title)]
    for i, (key, value) in enumerate(values.items()):
        y = 26 + i * row
        w = bar_w * value / top
        parts.append(f'<text x="{label_w - 6}" y="{y + 11}" text-anchor="end" font-size="11">{escape(key)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row - 5}" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 11}" font-size="11">{value:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _head(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="system-ui,sans-serif">'
        f'<text x="4" y="14" font-size="13" font-weight="bold">{escape(title)}</text>'
    )
