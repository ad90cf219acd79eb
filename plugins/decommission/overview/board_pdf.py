"""The board report as PDF (fpdf2, pure Python): summary, timeline, status, economics, risks and decisions.

Landscape A4 for the wide tables. The core Helvetica draws Latin-1 (Swedish letters included);
a few typographic symbols are spelled out. The same state gives the same bytes (the creation
date is the report's date).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from fpdf import FPDF

from decommission.overview.state import ProgrammeState
from decommission.overview.words import MILESTONES, word

_REPLACE = {"–": "-", "—": "-", "−": "-", "…": "...", "✗": "X", "’": "'"}
BLUE, GREEN, RED, LIGHT, GREY = (59, 110, 165), (46, 133, 64), (163, 21, 21), (221, 230, 240), (110, 110, 110)


def latin1(text: Any) -> str:
    """Text the core fonts can draw: known symbols spelled out, anything else outside Latin-1 as '?'."""
    out = str(text)
    for a, b in _REPLACE.items():
        out = out.replace(a, b)
    return out.encode("latin-1", "replace").decode("latin-1")


class _Doc(FPDF):
    def __init__(self, footer: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.footer_text = footer
        self.set_auto_page_break(auto=True, margin=14)
        self.set_margins(14, 12, 14)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font("Helvetica", size=8)
        self.cell(0, 5, latin1(f"{self.footer_text} - {self.page_no()}/{{nb}}"), align="C")


def render_board_pdf(state: ProgrammeState, view: dict[str, Any], month: str) -> bytes:
    t, lang = view["t"], view["lang"]
    doc = _Doc(f"{t['board_title']} {month}")
    doc.set_creation_date(dt.datetime.combine(state.today, dt.time(), tzinfo=dt.UTC))
    doc.set_title(latin1(f"{t['board_title']} {month}"))
    doc.set_author("decommission")
    doc.alias_nb_pages()
    doc.add_page()
    doc.set_font("Helvetica", "B", 17)
    doc.multi_cell(0, 8, latin1(t["board_title"]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=10)
    doc.cell(0, 6, latin1(f"{view['region']} - {month} - {t['as_of']} {view['today']}"), new_x="LMARGIN", new_y="NEXT")
    _summary(doc, view)
    _heading(doc, t["timeline"])
    _timeline(doc, state, lang)
    _heading(doc, t["status_table"])
    _status_table(doc, view)
    _heading(doc, t["economics"])
    _economics(doc, state, view)
    _heading(doc, f"{t['risks']} / {t['decisions']}")
    _risks(doc, view)
    return bytes(doc.output())


def _heading(doc: FPDF, text: str) -> None:
    if doc.will_page_break(30):
        doc.add_page()
    doc.ln(2)
    doc.set_font("Helvetica", "B", 13)
    doc.cell(0, 8, latin1(text), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)


def _summary(doc: FPDF, view: dict[str, Any]) -> None:
    t, totals = view["t"], view["totals"]
    _heading(doc, t["summary"])
    lines = [
        f"{t['systems']}: {totals['systems']}, {t['decommissioned_count']}: {totals['decommissioned']}",
        f"{t['source']}: {totals['source']}; {t['archived']}: {totals['archived']}; "
        f"{t['disposed']}: {totals['disposed']} ({totals['disposed_share']})",
        f"{t['annual_cost']}: {totals['annual_cost_ended']} / {totals['annual_cost']}",
    ]
    if view["economics"]:
        lines.append(f"{t['payback']}: {view['economics']['payback']}")
    for line in lines:
        doc.multi_cell(0, 5, latin1(line), new_x="LMARGIN", new_y="NEXT")


def _timeline(doc: FPDF, state: ProgrammeState, lang: str) -> None:
    from decommission.overview.charts import span

    systems = state.systems
    if not systems:
        return
    first, last = span(systems, state.today)
    total = (last - first).days or 1
    label_w, plot_w, row = 62.0, doc.epw - 64, 7.0
    if doc.will_page_break(14 + row * len(systems)):
        doc.add_page()
    left, top = doc.l_margin + label_w, doc.get_y() + 6

    def x(d: dt.date) -> float:
        return left + plot_w * (d - first).days / total

    doc.set_font("Helvetica", size=8)
    bottom = top + row * len(systems)
    for year in range(first.year, last.year + 1):
        doc.set_draw_color(*LIGHT)
        for quarter in range(4):
            at = x(dt.date(year, 1 + 3 * quarter, 1))
            doc.line(at, top - 1, at, bottom)
        doc.set_xy(x(dt.date(year, 7, 1)) - 8, top - 6)
        doc.cell(16, 4, str(year), align="C")
    for i, s in enumerate(systems):
        y = top + i * row
        doc.set_xy(doc.l_margin, y + 1)
        name = s.system.name if len(s.system.name) <= 38 else s.system.name[:37] + "..."
        doc.cell(label_w - 2, 5, latin1(name))
        start, end = s.system.milestones.test_delivery, s.system.milestones.contract_end
        doc.set_fill_color(*LIGHT)
        doc.rect(x(start), y + 2, max(0.5, x(end) - x(start)), 3, style="F")
        for m in s.milestones:
            _mark(doc, x(m.planned), y + 3.5, BLUE, filled=False)
            if m.actual:
                _mark(doc, x(m.actual), y + 3.5, GREEN, filled=True)
        doc.set_draw_color(*BLUE)
        doc.set_line_width(0.6)
        doc.line(x(end), y + 0.5, x(end), y + 6.5)
        if s.contract_end != end:
            doc.set_draw_color(*(GREEN if s.contract_end_is_actual else RED))
            doc.line(x(s.contract_end), y + 0.5, x(s.contract_end), y + 6.5)
        doc.set_line_width(0.2)
    doc.set_draw_color(*RED)
    doc.line(x(state.today), top - 1, x(state.today), bottom)
    doc.set_draw_color(0, 0, 0)
    doc.set_xy(doc.l_margin, bottom + 1)
    legend = (
        "Ofyllda = planerat, fyllda = utfall; blått streck = planerat avtalsslut, grönt = avtalet upphör, "
        "rött = prognos efter planen; röd lodrät linje = i dag. Milstolpar: "
        if lang == "sv"
        else "Hollow = planned, filled = actual; blue line = planned contract end, green = contract ends, "
        "red = forecast after the plan; red vertical line = today. Milestones: "
    )
    legend += ", ".join(word(MILESTONES, m, lang) for m in ("test_delivery", "production_delivery", "final_delivery"))
    doc.set_font("Helvetica", size=7)
    doc.multi_cell(0, 4, latin1(legend), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)


def _mark(doc: FPDF, cx: float, cy: float, colour: tuple[int, int, int], *, filled: bool) -> None:
    doc.set_draw_color(*colour)
    doc.set_fill_color(*(colour if filled else (255, 255, 255)))
    doc.ellipse(cx - 1.4, cy - 1.4, 2.8, 2.8, style="FD")


def _status_table(doc: FPDF, view: dict[str, Any]) -> None:
    t = view["t"]
    header = [
        t["system"],
        t["status"],
        t["milestones"],
        t["verdict"],
        t["source"],
        t["archived"],
        t["disposed"],
        t["signed_by"],
        t["notice_deadline"],
        t["contract_end_actual"],
        t["access_ends"],
        t["annual_cost"],
    ]
    rows = []
    for s in view["systems"]:
        stones = "\n".join(f"{m['name']}: {m['planned']} / {m['actual']}" for m in s["milestones"])
        signed = "\n".join(f"{g['name']}, {g['at']}" for g in s["signatures"]) or "-"
        end = s["contract_end"] + ("" if s["contract_end_is_actual"] else f" ({t['forecast']})")
        end += f"\n{t['planned']} {s['contract_end_planned']}"
        status = s["status_label"] + (f"\n{s['waiting']}" if s["waiting"] else "")
        rows.append(
            [
                s["name"],
                status,
                stones,
                s["verdict"] or "-",
                s["source"],
                s["archived"],
                f"{s['disposed']} ({s['disposed_share']})",
                signed,
                s["notice_deadline"],
                end,
                s["access_ends"],
                s["annual_cost"],
            ]
        )
    _table(doc, header, rows, widths=(36, 22, 44, 18, 16, 16, 20, 34, 18, 24, 18, 21))


def _economics(doc: FPDF, state: ProgrammeState, view: dict[str, Any]) -> None:
    t, econ = view["t"], view["economics"]
    if econ is None:
        doc.multi_cell(0, 5, latin1(t["no_economics"]), new_x="LMARGIN", new_y="NEXT")
        return
    keys = ("archive_fee", "startup", "own_it", "archive_total", "legacy_paid", "legacy_ended", "net", "cumulative")
    _table(
        doc,
        [t["year"], *(t[k] for k in keys)],
        [[str(y["year"]), *(y[k] for k in keys)] for y in econ["years"]],
        widths=(16, *(30,) * len(keys)),
    )
    doc.multi_cell(0, 5, latin1(f"{t['payback']}: {econ['payback']}"), new_x="LMARGIN", new_y="NEXT")
    _money_bars(doc, state, view)


def _money_bars(doc: FPDF, state: ProgrammeState, view: dict[str, Any]) -> None:
    """Per year a green bar up (legacy costs ended) and a red bar down (archive costs)."""
    years = state.economics.years if state.economics else ()
    if not years:
        return
    if doc.will_page_break(62):
        doc.add_page()
    t = view["t"]
    doc.set_font("Helvetica", "B", 10)
    doc.cell(0, 6, latin1(t["economics_chart"]), new_x="LMARGIN", new_y="NEXT")
    top = max(max(y.archive_total, y.legacy_ended, abs(y.cumulative)) for y in years) or 1
    mid, half, left = doc.get_y() + 24, 22.0, doc.l_margin + 10
    doc.set_draw_color(*GREY)
    doc.line(left, mid, left + 24 * len(years) + 6, mid)
    doc.set_font("Helvetica", size=7)
    previous = None
    for i, y in enumerate(years):
        x0 = left + 4 + i * 24
        up, down = half * y.legacy_ended / top, half * y.archive_total / top
        doc.set_fill_color(*GREEN)
        if up:
            doc.rect(x0, mid - up, 8, up, style="F")
        doc.set_fill_color(*RED)
        if down:
            doc.rect(x0 + 9, mid, 8, down, style="F")
        doc.set_xy(x0 - 2, mid + half + 1)
        doc.cell(22, 4, str(y.year), align="C")
        point = (x0 + 8.5, mid - half * y.cumulative / top)
        if previous is not None:
            doc.set_draw_color(*BLUE)
            doc.set_line_width(0.5)
            doc.line(*previous, *point)
            doc.set_line_width(0.2)
        previous = point
    legend = _LEGEND[view["lang"]]
    doc.set_y(mid + half + 6)
    for name, colour in zip(legend, (GREEN, RED, BLUE), strict=True):
        doc.set_fill_color(*colour)
        doc.rect(doc.get_x(), doc.get_y() + 1, 3, 3, style="F")
        doc.set_x(doc.get_x() + 4)
        doc.cell(50, 5, latin1(name))
    doc.ln(7)
    doc.set_draw_color(0, 0, 0)
    doc.set_font("Helvetica", size=9)


_LEGEND = {
    "sv": ("Upphörda kostnader", "Arkivkostnader", "Ackumulerat netto"),
    "en": ("Legacy costs ended", "Archive costs", "Cumulative net"),
}


def _risks(doc: FPDF, view: dict[str, Any]) -> None:
    t = view["t"]
    doc.set_font("Helvetica", "B", 10)
    doc.cell(0, 6, latin1(t["risks"]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)
    for risk in view["risks"] or [t["no_risks"]]:
        doc.multi_cell(0, 5, latin1(f"- {risk}"), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", "B", 10)
    doc.cell(0, 6, latin1(t["decisions"]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)
    for decision in view["decisions"] or [t["no_decisions"]]:
        doc.multi_cell(0, 5, latin1(f"- {decision}"), new_x="LMARGIN", new_y="NEXT")


def _table(doc: FPDF, header: Sequence[str], rows: Sequence[Sequence[Any]], *, widths: Sequence[float]) -> None:
    from fpdf.fonts import FontFace

    doc.set_font("Helvetica", size=7)
    doc.set_fill_color(255, 255, 255)  # the charts leave their colours behind
    doc.set_draw_color(170, 170, 170)
    heading = FontFace(emphasis="BOLD", fill_color=(235, 239, 244))
    with doc.table(
        col_widths=widths, first_row_as_headings=True, headings_style=heading, line_height=3.6, text_align="LEFT"
    ) as table:
        for row in [header, *rows]:
            cells = table.row()
            for value in row:
                cells.cell(latin1(value))
    doc.ln(2)
    doc.set_draw_color(0, 0, 0)
    doc.set_font("Helvetica", size=9)
