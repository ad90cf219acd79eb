"""The report as PDF, for the board and procurement: the same header, verdict, figures and charts as the HTML.

fpdf2 is pure Python (no system libraries, unlike weasyprint's Pango); its core Helvetica
covers Swedish letters (Latin-1), other characters are replaced. The creation date is the
snapshot's, so the same result gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fpdf import FPDF

from decommission.report.labels import LABELS, number, percent, year_label

_REPLACE = {"–": "-", "—": "-", "✓": "OK", "✗": "X", "→": "->", "≥": ">=", "≤": "<=", "’": "'", "“": '"', "”": '"'}
_BLUE, _GREEN, _RED = (59, 110, 165), (46, 133, 64), (163, 21, 21)


def latin1(text: Any) -> str:
    """Text the core fonts can draw: known symbols spelled out, anything else outside Latin-1 as '?'."""
    out = str(text)
    for a, b in _REPLACE.items():
        out = out.replace(a, b)
    return out.encode("latin-1", "replace").decode("latin-1")


class _Doc(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.title_text = title
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.cell(0, 6, latin1(f"{self.title_text} - {self.page_no()}/{{nb}}"), align="C")


def render_pdf(result: Mapping[str, Any], t: Mapping[str, str], digest: str, *, title: str | None = None) -> bytes:
    """Return the PDF of a reconciliation result in the language of the labels ``t``."""
    doc = _Doc(title or t["title"])
    doc.set_creation_date(_when(result))
    doc.set_title(latin1(f"{t['title']}: {result['system']['name']}"))
    doc.set_author("decommission")
    doc.alias_nb_pages()
    doc.add_page()
    doc.set_font("Helvetica", "B", 16)
    doc.multi_cell(0, 8, latin1(f"{t['title']}: {result['system']['name']}"))
    doc.ln(2)
    _pairs(
        doc,
        [
            (t["system"], result["system"]["id"]),
            (t["run"], result["run_id"]),
            (t["milestone"], result["milestone"]),
            (t["cut_off"], result["cut_off"]),
            (t["snapshot"], result.get("snapshot", "")),
            (t["version"], result["software_version"]),
            (t["report_hash"], digest),
            *_key_line(result, t),
        ],
    )
    verdict = result["verdict"]
    doc.ln(3)
    doc.set_font("Helvetica", "B", 14)
    doc.set_text_color(*(_RED if verdict == "FAIL" else _GREEN))
    doc.cell(0, 8, latin1(f"{t['verdict']}: {t.get(verdict, verdict)}"), new_x="LMARGIN", new_y="NEXT")
    doc.set_text_color(0, 0, 0)
    doc.set_font("Helvetica", size=9)
    for reason in result.get("reasons", []):
        doc.multi_cell(0, 5, latin1(f"- {reason}"), new_x="LMARGIN", new_y="NEXT")
    for w in result.get("waived", []):
        waiver = w["waiver"]
        doc.multi_cell(
            0,
            5,
            latin1(f"{t['waived']}: {w['name']} {w['scope']} ({waiver['rows']}), {waiver['by']}: {waiver['reason']}"),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    for warning in result.get("warnings", []):
        doc.multi_cell(0, 5, latin1(f"{t['warnings']}: {warning}"), new_x="LMARGIN", new_y="NEXT")
    _coverage_and_fixity(doc, result, t)
    doc.ln(2)
    language = "sv" if t is LABELS["sv"] else "en"
    totals = result["totals"]
    doc.multi_cell(
        0,
        5,
        latin1(
            t["dispositions_text"].format(
                **{k: number(totals.get(k, 0), language) for k in ("archived", "flagged", "corrected", "disposed")}
            )
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    _table(
        doc,
        [t["table"], t["source"], t["extracted"], t["archived"], t["flagged"], t["corrected"], t["disposed"]],
        [
            [
                name,
                *(
                    number(row[k], language)
                    for k in ("source", "extracted", "archived", "flagged_total", "corrected_total", "disposed_total")
                ),
            ]
            for name, row in result["tables"].items()
        ],
    )
    _dispositions(doc, result, t)
    _table(
        doc,
        [t["entity"], t["mapped"], t["packaged"], t["accepted"]],
        [[name, row["mapped"], row["packaged"], row["accepted"]] for name, row in result["entities"].items()],
    )
    years = result.get("breakdown", {}).get("years", {})
    if years:
        _bars(
            doc,
            t["by_year"],
            {year_label(y, t): (v["source"], v["archived"]) for y, v in years.items()},
            (_BLUE, _GREEN),
            legend=(t["source"], t["archived"]),
        )
    if result.get("findings_by_reason"):
        _bars(doc, t["by_reason"], {k: (v,) for k, v in result["findings_by_reason"].items()}, (_RED,))
    sample = result.get("sample", {})
    doc.set_font("Helvetica", "B", 11)
    doc.cell(0, 7, latin1(t["sample"]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)
    doc.multi_cell(
        0,
        5,
        latin1(
            f"{t['checked']}: {sample.get('checked', 0)} (seed {sample.get('seed', '')}); "
            f"{t['mismatches']}: {len(sample.get('mismatches', []))}. " + justification(sample, t)
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(doc.output())


def _key_line(result: Mapping[str, Any], t: Mapping[str, str]) -> list[tuple[str, Any]]:
    key = result.get("hash_key")
    if not key:
        return []
    return [(t["hash_key"], f"{key['id']} {t['demo_key'] if key['demo'] else ''}".strip())]


def _coverage_and_fixity(doc: FPDF, result: Mapping[str, Any], t: Mapping[str, str]) -> None:
    """What the signers must see: how much of the source the archive covers, and that it holds what was sent."""
    language = "sv" if t is LABELS["sv"] else "en"
    coverage = result.get("coverage")
    if coverage:
        columns = sum(coverage["columns_by_class"].values())
        covered = columns - coverage["columns_by_class"]["unclassified"]
        text = t["coverage_text"].format(
            covered=number(covered, language),
            columns=number(columns, language),
            pct=percent(coverage["coverage"], language),
        )
        doc.multi_cell(0, 5, latin1(f"{t['coverage']}: {text}"), new_x="LMARGIN", new_y="NEXT")
    fixity = result.get("fixity")
    if fixity:
        text = t["fixity_text"].format(audited=fixity["audited_whole"], sent=fixity["holdings"]["sent"])
        doc.multi_cell(0, 5, latin1(f"{t['fixity']}: {text}"), new_x="LMARGIN", new_y="NEXT")


def _dispositions(doc: FPDF, result: Mapping[str, Any], t: Mapping[str, str]) -> None:
    """Each class of rows with a finding, its rows and the decision that covers it: what the signers approve."""
    classes = (result.get("dispositions") or {}).get("classes") or []
    if not classes:
        return
    language = "sv" if t is LABELS["sv"] else "en"
    doc.set_font("Helvetica", "B", 11)
    doc.cell(0, 7, latin1(t["dispositions"]), new_x="LMARGIN", new_y="NEXT")
    _table(
        doc,
        [t["table"], t["reason"], t["class"], t["rows"], t["decision"], t["reference"]],
        [
            [
                c["table"],
                c["reason"],
                t["class_" + c["class"]],
                number(c["rows"], language),
                c["decision"] if c.get("decision_kind") == "declared" else t["decision_" + c["decision_kind"]],
                c.get("reference") or ", ".join(c.get("references") or []),
            ]
            for c in classes
        ],
    )


def justification(sample: Mapping[str, Any], t: Mapping[str, str]) -> str:
    """The sentence that says why the sample's size is enough (shared by HTML and PDF)."""
    j = sample.get("justification")
    if not j:
        return ""
    detect = j["chance_to_detect_damaged_share"]
    return t["justification_text"].format(
        drawn=j["drawn"],
        population=j["population"],
        pct=round(100 * j["share_checked"], 1),
        p5=detect.get("5%"),
        p10=detect.get("10%"),
        ub=round(100 * j["upper_bound_95"], 1),
    )


def _when(result: Mapping[str, Any]) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(str(result.get("snapshot")))
    except ValueError:
        when = dt.datetime(2000, 1, 1)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _pairs(doc: FPDF, pairs: Sequence[tuple[str, Any]]) -> None:
    for label, value in pairs:
        doc.set_font("Helvetica", "B", 9)
        doc.cell(55, 5, latin1(label))
        doc.set_font("Courier" if len(str(value)) == 64 else "Helvetica", size=8 if len(str(value)) == 64 else 9)
        doc.cell(0, 5, latin1(value), new_x="LMARGIN", new_y="NEXT")


def _table(doc: FPDF, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    doc.set_font("Helvetica", size=8)
    with doc.table(text_align="RIGHT", first_row_as_headings=True, line_height=5) as table:
        for row in [header, *rows]:
            cells = table.row()
            for value in row:
                cells.cell(latin1(value))
    doc.ln(3)


def _bars(
    doc: FPDF,
    title: str,
    groups: Mapping[str, Sequence[float]],
    colours: Sequence[tuple[int, int, int]],
    legend: Sequence[str] = (),
) -> None:
    """Horizontal bars drawn with rectangles: one line per key, one bar per series."""
    top = max([max(v, default=0) for v in groups.values()] + [1])
    line = 4.0 * len(colours) + 1.5
    if doc.will_page_break(10 + line * min(len(groups), 8)):
        doc.add_page()
    doc.set_font("Helvetica", "B", 11)
    doc.cell(0, 7, latin1(title), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=8)
    if legend:
        y = doc.get_y()
        for j, name in enumerate(legend):
            doc.set_fill_color(*colours[j % len(colours)])
            doc.rect(doc.l_margin + 47 + 40 * j, y + 0.8, 3, 3, style="F")
            doc.set_xy(doc.l_margin + 51 + 40 * j, y)
            doc.cell(35, 4, latin1(name))
        doc.set_y(y + 6)
    for key, values in groups.items():
        if doc.will_page_break(line + 2):  # break before a row, never inside it
            doc.add_page()
        y = doc.get_y()
        doc.set_xy(doc.l_margin, y)
        doc.cell(45, 4, latin1(key))
        for j, value in enumerate(values):
            doc.set_fill_color(*colours[j % len(colours)])
            width = 100 * value / top
            if width > 0:
                doc.rect(doc.l_margin + 47, y + 4 * j + 0.5, width, 3.2, style="F")
            doc.set_xy(doc.l_margin + 49 + width, y + 4 * j)
            doc.cell(20, 4, f"{value:g}")
        doc.set_y(y + line)
    doc.ln(3)
