"""The monthly board report: Swedish, every section, figures equal to the plan and the ledger, recorded by hash."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from decommission.overview.board import board_files, write_board_report
from decommission.plan.programme import load_plan
from tests.decommission.overview.programme_fixture import PLAN, build

REPO = Path(__file__).resolve().parents[3]
TODAY = dt.date(2025, 9, 15)
SECTIONS = (
    "Lägesrapport - avveckling av äldre vårdinformationssystem",
    "Sammanfattning",
    "Tidslinje: planerade och faktiska milstolpar",
    "Status per system",
    "Ekonomi per år",
    "Kostnader och besparingar per år",
    "Risker",
    "Beslut som behövs",
)


@pytest.fixture
def written(tmp_path, monkeypatch):
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    ledger = build(tmp_path)
    out = write_board_report(load_plan(PLAN), TODAY, run_id="scheduled__2025-09-15", ledger=ledger)
    return out, ledger, tmp_path


def _pdf_text(path: str) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    return "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))


def test_written_and_recorded_with_its_hashes(written):
    out, ledger, _home = written
    (entry,) = ledger.entries(system_id="programme", kind="board_report")
    assert entry.payload["month"] == "2025-09"
    for key in ("html", "pdf"):
        data = Path(out[key]).read_bytes()
        assert entry.payload["files"][key]["sha256"] == hashlib.sha256(data).hexdigest() == out[f"{key}_sha256"]
    assert Path(out["pdf"]).name == "lagesrapport-2025-09.pdf"


def test_pdf_has_every_section_in_swedish(written):
    text = _pdf_text(written[0]["pdf"])
    for section in SECTIONS:
        assert section in text, section
    for word in ("avvecklad", "väntar på signering", "avvikelse", "Testleverans", "Slutleverans"):
        assert word in text, word
    assert "PASS" not in text and "final_delivery" not in text  # codes stay out of the board's report


def test_pdf_figures_equal_the_plan_and_the_ledger(written):
    from decommission.plan.economics import plan_economics

    out, ledger, _home = written
    text = _pdf_text(out["pdf"]).replace("\u00a0", " ")
    (entry,) = ledger.entries(system_id="programme", kind="board_report")
    totals = entry.payload["totals"]
    recorded = sum(e.payload["totals"]["source"] for e in ledger.entries(kind="reconciliation") if e.system_id == "vas")
    assert recorded // 3 == 3092 and "3 092" in text  # vas's verified result.json
    assert f"Rader i källan: {totals['source']:,}".replace(",", " ") in text
    # economics: the plan's figures, in tkr
    econ = plan_economics(load_plan(PLAN))
    assert "1 740 tkr" in text and "680 tkr" in text and "500 tkr" in text
    first = econ.years[0]
    assert f"{first.archive_total // 1000:,} tkr".replace(",", " ") in text  # 2 920 tkr in 2023
    # the payback year recorded is the one shown
    shown = entry.payload["economics"]["payback_year"]
    assert (f"Återbetalningsår: {shown}" if shown else "Återbetalningsår: inte före") in text
    # each system's contract end and notice deadline as recorded
    for system in entry.payload["systems"].values():
        assert system["notice_deadline"] in text and system["contract_end"] in text


def test_pdf_renders_to_pages_with_a_timeline(written, tmp_path):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(written[0]["pdf"])
    image = pdf[0].render(scale=1.5).to_pil()
    out = REPO / "out" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    image.save(out / "board-report-page1.png")
    # the timeline draws in colour: blue planned markers and the programme's light bars
    colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=1 << 16)}
    assert (59, 110, 165) in colours and (221, 230, 240) in colours


def test_the_overview_serves_the_recorded_board_report(written):
    out, ledger, _home = written
    files = board_files(ledger)
    assert {name: problem for name, (_path, problem) in files.items()} == {
        "lagesrapport-2025-09.html": None,
        "lagesrapport-2025-09.pdf": None,
    }
    Path(out["pdf"]).write_bytes(b"%PDF-1.4 changed")
    assert board_files(ledger)["lagesrapport-2025-09.pdf"][1] == (
        "lagesrapport-2025-09.pdf har ändrats efter att den registrerades i liggaren"
    )


def test_html_is_swedish_and_self_contained(written):
    html = Path(written[0]["html"]).read_text(encoding="utf-8")
    assert (
        '<html lang="sv">' in html and "<svg" in html and "<script" not in html and "http" not in html.split("<svg")[0]
    )
    assert "Lägesrapport – avveckling av äldre vårdinformationssystem" in html
