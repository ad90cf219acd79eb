"""The report as PDF, for the board and procurement: the same sections as the HTML, drawn from one model.

fpdf2 is pure Python (no system libraries, unlike weasyprint's Pango); its core Helvetica
covers Swedish letters (Latin-1), other characters are replaced. The creation date is the
snapshot's, so the same result gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fpdf import FPDF, FontFace

from decommission.report.labels import decimal, number
from decommission.report.sections import Report, Table

_REPLACE = {
    "–": "-",
    "—": "-",
    "✓": "OK",
    "✗": "X",
    "→": "->",
    "≥": ">=",
    "≤": "<=",
    "’": "'",
    "“": '"',
    "”": '"',
    "−": "-",
}
_BLUE, _GREEN, _RED, _AMBER = (59, 110, 165), (46, 133, 64), (163, 21, 21), (138, 90, 0)


def latin1(text: Any) -> str:
    """Text the core fonts can draw: known symbols spelled out, anything else outside Latin-1 as '?'."""
    out = str(text)
    for a, b in _REPLACE.items():
        out = out.replace(a, b)
    return out.encode("latin-1", "replace").decode("latin-1")


class _Doc(FPDF):
    def __init__(self, title: str, mark: str = "") -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.title_text = title
        #: printed in red at the top of every page (a test delivery): no page can pass for the final report
        self.mark = mark
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)

    def header(self) -> None:
        if not self.mark:
            return
        self.set_y(5)
        self.set_font("Helvetica", "B", 10)
        self.set_text_color(*_RED)
        self.cell(0, 6, latin1(self.mark), align="C")
        self.set_text_color(0, 0, 0)
        self.set_y(15)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.cell(0, 6, latin1(f"{self.title_text} - {self.page_no()}/{{nb}}"), align="C")


def render_pdf(rep: Report, snapshot: Any, language: str) -> bytes:
    """Return the PDF of the report's sections (:mod:`decommission.report.sections`), as the HTML shows them."""
    doc = _Doc(rep.title, mark=rep.mark)
    doc.set_creation_date(_when(snapshot))
    doc.set_title(latin1(rep.title))
    doc.set_author("decommission")
    doc.alias_nb_pages()
    doc.add_page()
    if rep.banner:
        _banner(doc, rep.banner, big=rep.is_test)
    doc.set_font("Helvetica", "B", 16)
    doc.multi_cell(0, 8, latin1(rep.title), new_x="LMARGIN", new_y="NEXT")
    doc.ln(2)
    _pairs(doc, rep.header)
    doc.ln(3)
    doc.set_font("Helvetica", "B", 14)
    doc.set_text_color(*(_RED if rep.verdict == "FAIL" else _GREEN))
    doc.multi_cell(0, 8, latin1(rep.verdict_line), new_x="LMARGIN", new_y="NEXT")
    doc.set_text_color(0, 0, 0)

    def fmt(v: float) -> str:
        return number(v, language) if float(v).is_integer() else decimal(v, language)

    for section in rep.sections:
        if doc.will_page_break(30):
            doc.add_page()
        doc.set_font("Helvetica", "B", 11 if section.key == "verdict" else 12)
        doc.ln(2)
        doc.multi_cell(0, 7, latin1(section.title), new_x="LMARGIN", new_y="NEXT")
        doc.set_font("Helvetica", size=9)
        for paragraph in section.paragraphs:
            doc.multi_cell(0, 5, latin1(paragraph), new_x="LMARGIN", new_y="NEXT")
            doc.ln(1)
        for item in section.items:
            doc.multi_cell(0, 5, latin1(f"- {item}"), new_x="LMARGIN", new_y="NEXT")
        for chart in section.charts:
            title = "" if chart.title == section.title else chart.title  # not the section's heading twice
            if chart.kind == "grouped" and len(chart.groups) > 6:
                _columns(doc, title, chart.groups, (_BLUE, _GREEN), tuple(chart.series), fmt)
                continue
            colours = (_BLUE, _GREEN) if chart.kind == "grouped" else (_RED,)
            _bars(doc, title, chart.groups, colours, legend=tuple(chart.series), fmt=fmt)
        for table in section.tables:
            _table(doc, table)
    return bytes(doc.output())


def _banner(doc: FPDF, text: str, *, big: bool) -> None:
    """A framed warning above the title: a test delivery's report cannot be taken for the final one."""
    colour = _RED if big else _AMBER
    doc.set_draw_color(*colour)
    doc.set_text_color(*colour)
    doc.set_line_width(1.2 if big else 0.6)
    doc.set_font("Helvetica", "B", 16 if big else 10)
    doc.multi_cell(0, 8 if big else 6, latin1(text), border=1, align="C", padding=2, new_x="LMARGIN", new_y="NEXT")
    doc.set_line_width(0.2)
    doc.set_draw_color(0, 0, 0)
    doc.set_text_color(0, 0, 0)
    doc.ln(3)


def _when(snapshot: Any) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(str(snapshot))
    except ValueError:
        when = dt.datetime(2000, 1, 1)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _pairs(doc: FPDF, pairs: Sequence[tuple[str, Any]]) -> None:
    for label, value in pairs:
        doc.set_font("Helvetica", "B", 9)
        doc.cell(55, 5, latin1(label))
        doc.set_font("Courier" if len(str(value)) == 64 else "Helvetica", size=8 if len(str(value)) == 64 else 9)
        doc.cell(0, 5, latin1(value), new_x="LMARGIN", new_y="NEXT")


def _table(doc: FPDF, table: Table) -> None:
    """A table that breaks across pages with its header repeated; ids and hashes in a fixed-width font."""
    doc.set_font("Helvetica", size=7 if len(table.header) > 5 else 8)
    code = FontFace(family="Courier", size_pt=6)
    head = FontFace(emphasis="BOLD", fill_color=(242, 242, 242))
    with doc.table(
        text_align="LEFT", first_row_as_headings=True, headings_style=head, line_height=4, repeat_headings=1
    ) as pdf_table:
        header = pdf_table.row()
        for value in table.header:
            header.cell(latin1(value))
        for row in table.rows:
            cells = pdf_table.row()
            for i, value in enumerate(row):
                cells.cell(latin1(value), style=code if i in table.code_columns else None)
    doc.ln(3)


def _columns(
    doc: FPDF,
    title: str,
    groups: Mapping[str, Sequence[float]],
    colours: Sequence[tuple[int, int, int]],
    legend: Sequence[str],
    fmt: Callable[[float], str],
) -> None:
    """Vertical bars for many keys (e.g. 40 years on one page): a value axis with round ticks, labels turned 45°."""
    from decommission.report.charts import nice_ticks

    ticks = nice_ticks(max([max(v, default=0) for v in groups.values()] + [0]))
    top = ticks[-1] or 1
    doc.set_font("Helvetica", size=7)
    label_h = max(doc.get_string_width(latin1(k)) for k in groups) * 0.72 + 4
    plot_h = 55.0
    if doc.will_page_break(10 + plot_h + label_h + 10):
        doc.add_page()
    if title:
        doc.set_font("Helvetica", "B", 10)
        doc.cell(0, 7, latin1(title), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=7)
    axis_w = max(doc.get_string_width(latin1(fmt(v))) for v in ticks) + 3
    x0, y0 = doc.l_margin + axis_w, doc.get_y() + 3
    base = y0 + plot_h
    width = doc.epw - axis_w
    group_w = width / len(groups)
    bar = min(4.0, group_w * 0.8 / max(1, len(colours)))
    for v in ticks:
        y = base - plot_h * v / top
        doc.set_draw_color(221, 221, 221)
        doc.line(x0, y, x0 + width, y)
        doc.set_xy(doc.l_margin, y - 2)
        doc.cell(axis_w - 1, 4, latin1(fmt(v)), align="R")
    doc.set_draw_color(102, 102, 102)
    doc.line(x0, base, x0 + width, base)
    doc.line(x0, y0, x0, base)
    doc.set_draw_color(0, 0, 0)
    for i, (key, values) in enumerate(groups.items()):
        gx = x0 + i * group_w + (group_w - bar * len(values)) / 2
        for j, value in enumerate(values):
            h = plot_h * value / top
            doc.set_fill_color(*colours[j % len(colours)])
            if h > 0:
                doc.rect(gx + j * bar, base - h, bar * 0.9, h, style="F")
        cx = gx + bar * len(values) / 2
        with doc.rotation(45, cx, base + 2):
            text = latin1(key)
            doc.set_xy(cx - doc.get_string_width(text) - 1, base + 0.5)
            doc.cell(doc.get_string_width(text) + 1, 3, text)
    y = base + label_h + 2
    x = x0
    for j, name in enumerate(legend):
        doc.set_fill_color(*colours[j % len(colours)])
        doc.rect(x, y + 0.8, 3, 3, style="F")
        doc.set_xy(x + 4, y)
        doc.cell(doc.get_string_width(latin1(name)) + 2, 4, latin1(name))
        x += doc.get_string_width(latin1(name)) + 12
    doc.set_y(y + 8)
    doc.set_fill_color(255, 255, 255)


def _bars(
    doc: FPDF,
    title: str,
    groups: Mapping[str, Sequence[float]],
    colours: Sequence[tuple[int, int, int]],
    legend: Sequence[str] = (),
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
) -> None:
    """Horizontal bars drawn with rectangles: one line per key, one bar per series, the value at its end."""
    top = max([max(v, default=0) for v in groups.values()] + [1])
    line = 4.0 * len(colours) + 1.5
    doc.set_font("Helvetica", size=8)
    label_w = min(80.0, max([doc.get_string_width(latin1(k)) for k in groups] + [10.0]) + 3)
    bar_w = 180 - label_w - 25
    if doc.will_page_break(10 + line * min(len(groups), 8)):
        doc.add_page()
    if title:
        doc.set_font("Helvetica", "B", 10)
        doc.cell(0, 7, latin1(title), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=8)
    x0 = doc.l_margin + label_w
    if legend:
        y = doc.get_y()
        x = x0
        for j, name in enumerate(legend):
            doc.set_fill_color(*colours[j % len(colours)])
            doc.rect(x, y + 0.8, 3, 3, style="F")
            doc.set_xy(x + 4, y)
            doc.cell(doc.get_string_width(latin1(name)) + 2, 4, latin1(name))
            x += doc.get_string_width(latin1(name)) + 12
        doc.set_y(y + 6)
    first = doc.get_y()
    for key, values in groups.items():
        if doc.will_page_break(line + 2):  # break before a row, never inside it
            doc.add_page()
            first = doc.get_y()
        y = doc.get_y()
        doc.set_xy(doc.l_margin, y)
        doc.cell(label_w - 2, 4, latin1(key), align="R")
        for j, value in enumerate(values):
            doc.set_fill_color(*colours[j % len(colours)])
            width = bar_w * value / top
            if width > 0:
                doc.rect(x0, y + 4 * j + 0.5, width, 3.2, style="F")
            doc.set_xy(x0 + width + 1, y + 4 * j)
            doc.cell(24, 4, latin1(fmt(value)))
        doc.set_y(y + line)
        doc.line(x0, first, x0, doc.get_y())
    doc.set_fill_color(255, 255, 255)
    doc.ln(3)
