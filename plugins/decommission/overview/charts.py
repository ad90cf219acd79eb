"""Inline SVG for the overview and the board report: the timeline (Gantt) and the money per year.

Plain markup, no script, fonts or files fetched; labels never overlap (one row per system,
a tick per quarter labelled only at each year).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from decommission.overview.state import SystemState
from decommission.overview.words import MILESTONES, tkr, word
from decommission.plan.economics import ProgrammeEconomics

BLUE, GREEN, RED, GREY, LIGHT = "#3b6ea5", "#2e8540", "#a31515", "#666", "#dde6f0"
LABEL_W, ROW_H, PLOT_W = 230, 34, 620
SHAPES = {
    "test_delivery": "circle",
    "production_delivery": "square",
    "final_delivery": "diamond",
    "contract_end": "bar",
}


def span(systems: Sequence[SystemState], today: dt.date) -> tuple[dt.date, dt.date]:
    """From the first of January of the earliest date to the last of December of the latest."""
    days = [today]
    for s in systems:
        days += [d for _, d in s.system.milestones.items()] + [s.contract_end]
        days += [m.actual for m in s.milestones if m.actual]
    return dt.date(min(days).year, 1, 1), dt.date(max(days).year, 12, 31)


def gantt(systems: Sequence[SystemState], today: dt.date, language: str = "sv") -> Markup:
    """One row per system: the planned span (light bar), planned milestones (hollow), actual ones (filled)."""
    if not systems:
        return Markup("")
    first, last = span(systems, today)
    total = (last - first).days or 1

    def x(d: dt.date) -> float:
        return LABEL_W + PLOT_W * (d - first).days / total

    height = 40 + ROW_H * len(systems) + 46
    parts = [_head(LABEL_W + PLOT_W + 20, height, "timeline")]
    for year in range(first.year, last.year + 1):
        for quarter in range(4):
            at = x(dt.date(year, 1 + 3 * quarter, 1))
            parts.append(f'<line x1="{at:.1f}" y1="28" x2="{at:.1f}" y2="{height - 46}" stroke="{LIGHT}"/>')
        mid = x(dt.date(year, 7, 1))
        parts.append(f'<text x="{mid:.1f}" y="20" text-anchor="middle" font-size="12">{year}</text>')
    for i, s in enumerate(systems):
        y = 34 + i * ROW_H
        parts.append(
            f'<text x="{LABEL_W - 8}" y="{y + 18}" text-anchor="end" font-size="12">{escape(_short(s))}</text>'
        )
        start, end = s.system.milestones.test_delivery, s.system.milestones.contract_end
        parts.append(
            f'<rect x="{x(start):.1f}" y="{y + 8}" width="{max(2, x(end) - x(start)):.1f}" height="12" fill="{LIGHT}"/>'
        )
        for m in s.milestones:
            parts.append(_marker(x(m.planned), y + 14, SHAPES[m.milestone.value], BLUE, filled=False))
            if m.actual:
                parts.append(_marker(x(m.actual), y + 14, SHAPES[m.milestone.value], GREEN, filled=True))
        planned_end = x(end)
        parts.append(
            f'<line x1="{planned_end:.1f}" y1="{y + 4}" x2="{planned_end:.1f}" y2="{y + 24}" '
            f'stroke="{BLUE}" stroke-width="3"/>'
        )
        if s.contract_end != end:
            colour = GREEN if s.contract_end_is_actual else RED
            dash = "" if s.contract_end_is_actual else ' stroke-dasharray="3,2"'
            parts.append(
                f'<line x1="{x(s.contract_end):.1f}" y1="{y + 4}" x2="{x(s.contract_end):.1f}" y2="{y + 24}" '
                f'stroke="{colour}" stroke-width="3"{dash}/>'
            )
    now = x(today)
    parts.append(
        f'<line x1="{now:.1f}" y1="26" x2="{now:.1f}" y2="{height - 46}" stroke="{RED}" stroke-dasharray="4,3"/>'
    )
    parts.append(_legend(height - 26, language))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped names only


def money_chart(econ: ProgrammeEconomics, language: str = "sv") -> Markup:
    """Per year: archive costs (red, down) against legacy costs ended (green, up), and the cumulative net."""
    years = econ.years
    top = max([max(y.archive_total, y.legacy_ended, abs(y.cumulative)) for y in years] + [1])
    width, height, left, mid = 90 + 70 * len(years), 300, 80, 150
    scale = 120 / top

    parts = [_head(width, height, "economics")]
    parts.append(f'<line x1="{left}" y1="{mid}" x2="{width - 10}" y2="{mid}" stroke="{GREY}"/>')
    parts.append(
        f'<text x="{left - 6}" y="{mid - 116}" text-anchor="end" font-size="10">{escape(tkr(top, language))}</text>'
    )
    parts.append(
        f'<text x="{left - 6}" y="{mid + 124}" text-anchor="end" font-size="10">−{escape(tkr(top, language))}</text>'
    )
    points = []
    for i, y in enumerate(years):
        x0 = left + 12 + i * 70
        up, down = y.legacy_ended * scale, y.archive_total * scale
        parts.append(f'<rect x="{x0}" y="{mid - up:.1f}" width="22" height="{up:.1f}" fill="{GREEN}"/>')
        parts.append(f'<rect x="{x0 + 24}" y="{mid}" width="22" height="{down:.1f}" fill="{RED}"/>')
        parts.append(f'<text x="{x0 + 23}" y="{height - 22}" text-anchor="middle" font-size="11">{y.year}</text>')
        points.append(f"{x0 + 23:.1f},{mid - y.cumulative * scale:.1f}")
    parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{BLUE}" stroke-width="2"/>')
    names = _MONEY_LEGEND[language if language in _MONEY_LEGEND else "sv"]
    for j, (name, colour) in enumerate(zip(names, (GREEN, RED, BLUE), strict=True)):
        parts.append(f'<rect x="{left + j * 190}" y="{height - 12}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + j * 190 + 14}" y="{height - 3}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped labels only


_MONEY_LEGEND = {
    "sv": ("Upphörda kostnader", "Arkivkostnader", "Ackumulerat netto"),
    "en": ("Legacy costs ended", "Archive costs", "Cumulative net"),
}


def _short(s: SystemState) -> str:
    name = s.system.name
    return name if len(name) <= 34 else name[:33] + "…"


def _marker(cx: float, cy: float, shape: str, colour: str, *, filled: bool) -> str:
    fill = colour if filled else "white"
    if shape == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy}" r="5" fill="{fill}" stroke="{colour}" stroke-width="2"/>'
    if shape == "square":
        return (
            f'<rect x="{cx - 5:.1f}" y="{cy - 5}" width="10" height="10" fill="{fill}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
    return (
        f'<polygon points="{cx:.1f},{cy - 6} {cx + 6:.1f},{cy} {cx:.1f},{cy + 6} {cx - 6:.1f},{cy}" '
        f'fill="{fill}" stroke="{colour}" stroke-width="2"/>'
    )


def _legend(y: float, language: str) -> str:
    items = [
        (word(MILESTONES, m, language), SHAPES[m]) for m in ("test_delivery", "production_delivery", "final_delivery")
    ]
    parts, x = [], LABEL_W
    for name, shape in items:
        parts.append(_marker(x + 6, y - 4, shape, BLUE, filled=False))
        parts.append(f'<text x="{x + 16}" y="{y}" font-size="11">{escape(name)}</text>')
        x += 130
    extra = (
        "ofylld = planerat, fylld = utfall; blått streck = planerat avtalsslut, grönt = avtalet upphör, "
        "rött = prognos efter planen; röd streckad linje = i dag"
        if language == "sv"
        else "hollow = planned, filled = actual; blue line = planned contract end, green = contract ends, "
        "red = forecast after the plan; dashed red line = today"
    )
    parts.append(f'<text x="4" y="{y + 18}" font-size="11" fill="{GREY}">{escape(extra)}</text>')
    return "".join(parts)


def _head(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{label}" font-family="system-ui,sans-serif">'
    )
