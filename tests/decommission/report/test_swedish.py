"""The report, its PDF, its annexes and the sign-off form in natural Swedish (issue 15, item 4).

Each test lists the terms a Swedish reader must find, and the English words, raw codes and
number formats that must not be in the prose. The PDF's text is read back with pypdfium2 and
its first page rendered to an image; the workbook is read back with openpyxl.
"""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from decommission.evidence.signoff import consequence, signoff_intro, signoff_subject, verified_figures
from decommission.evidence.verified import VerifiedResult
from decommission.plan.programme import load_plan
from decommission.reconcile.checks import reconcile, sample_justification
from decommission.report.writer import about_system, write_report

REPO = Path(__file__).resolve().parents[3]
SHOTS = REPO / "out" / "screenshots"
NBSP = "\u00a0"
SEED = 20250901

#: what a Swedish reader must find in the report of a final delivery (HTML and PDF)
SWEDISH_TERMS = (
    "Avstämningsrapport",
    "Slutleverans",
    "Utlåtande för slutleveransen: GODKÄND",
    "Leverantör",
    "Region Norrbotten IT",
    "Leveransöverenskommelse",
    "LO-2025-VAS-01, till arkivets mellanarkiv",
    "Åtkomstlogg",
    "arkiveras (atkomstlogg)",
    "Signeras av",
    "Karin Lindström (verksamhetschef), informationsägare",
    "Olof Öberg (regionarkivarie), arkivarie",
    "Fynd och beslut",
    "ogiltig kod",
    "makulerad i källan",
    "gallrat genom beslut",
    "Kontroller",
    "Rader i källan = uttagna rader",
    "Omformade poster = paketerade poster",
    "Journalanteckningar",
    "Patienter",
    "Omformat",
    "Fingeravtryck av innehållet",
    "Rader per vårdenhet",
    "Förlopp över leveransen",
    "Stickprov: återläsning ur arkivet",
    "utan datum",
    f"3{NBSP}092",
    f"2,7{NBSP}%",
    "kan inte",  # what a sample of this size cannot show
)
#: English words and raw codes that must not be in the Swedish prose (the annexes keep the codes);
#: "patient" is a Swedish word too
LEFTOVERS = re.compile(
    r"\b(Milstolpe|Mappat|Slag|Entitet|verdict|Verdict|PASS|FAIL|final_delivery|test_delivery|production_delivery|"
    r"SOFT_DELETED|CODE_INVALID|ORPHAN|PATIENT_QUARANTINED|ID_INVALID_\w+|source = extracted|mapped = packaged|"
    r"packaged = accepted|information_owner|archivist|True|False|seed|sample|case|document|"
    r"mellanarkiv/slutarkiv)\b"
)


def _result(milestone: str = "final_delivery") -> dict:
    """A reconciliation of 1 500 patients and 3 092 notes, as reconcile() gives it, with a breakdown."""
    # the source's tables are named as the source names them (not as the archive model's entities)
    source = {"patientregister": 1500, "anteckning": 3092}
    result = reconcile(
        table_entity={"patientregister": "patient", "anteckning": "document"},
        source=source,
        mapped_parts=[
            {
                "extracted": source,
                "mapped": {"patientregister": 1500, "anteckning": 3008},
                "flagged": {"patientregister": {"ID_INVALID_CHECKSUM": 3}, "anteckning": {"CODE_INVALID": 40}},
                "disposed": {"anteckning": {"SOFT_DELETED": 84}},
            }
        ],
        packages=[{"package_id": "vas-p0001", "counts": {"patient": 1500, "document": 3008}}],
        receipts={"vas-p0001": {"status": "accepted", "counts": {"patient": 1500, "document": 3008}}},
        sample=[{"match": True}] * 40,
    )
    result["sample"] |= {"seed": SEED, "justification": sample_justification(40, 1500)}
    result["breakdown"] = {
        "years": {
            "1900": {"source": 3, "extracted": 3, "archived": 3, "flagged": 3, "disposed": 0},
            "2019": {"source": 2089, "extracted": 2089, "archived": 2005, "flagged": 20, "disposed": 84},
            "-": {"source": 2500, "extracted": 2500, "archived": 2500, "flagged": 20, "disposed": 0},
        },
        "units": [
            {
                "table": "anteckning",
                "unit": "Sunderby sjukhus",
                "source": 3092,
                "extracted": 3092,
                "archived": 3008,
                "flagged": 40,
                "disposed": 84,
            }
        ],
        "patients": {"count": 1500, "differing": []},
        "fingerprints": {"document": {"rows": 3008, "source": "00ff00ff00ff00ff", "package": "00ff00ff00ff00ff"}},
    }
    result["dispositions"] = {
        "classes": [
            {
                "table": "anteckning",
                "reason": "CODE_INVALID",
                "class": "flagged",
                "rows": 40,
                "reference": "",
                "decision_kind": "default",
                "decision": "",
                "decided_by": "",
            },
            {
                "table": "anteckning",
                "reason": "SOFT_DELETED",
                "class": "disposed",
                "rows": 84,
                "reference": "RN 2025/0415 (gallringsbeslut)",
                "decision_kind": "declared",
                "decision": "Makulerade anteckningar gallras",
                "decided_by": "Olof Öberg (regionarkivarie)",
            },
        ],
    }
    result["progress"] = [{"milestone": "test_delivery", "source": 2900, "archived": 2830}]
    result |= {
        "system": {"id": "vas", "name": "VAS – Vårdadministrativt system", "supplier": "Tieto"},
        "run_id": f"milestone__{milestone}__2025-09-01",
        "milestone": milestone,
        "cut_off": "2024-09-30",
        "snapshot": "2025-09-01T00:00:00+00:00",
        "software_version": "0.1.0",
    }
    return result


def _vas():
    return load_plan(REPO / "include" / "programme.yaml").system("vas")


def _write(tmp_path: Path, milestone: str = "final_delivery", language: str = "sv") -> dict:
    result = _result(milestone)
    annexes = {
        "checks": (
            ["check", "check_name", "scope", "left", "right", "ok"],
            [[c["name"], c["name"], c["scope"], c["left"], c["right"], c["ok"]] for c in result["checks"]],
        ),
        "rejections": (["package_id", "requirement", "path", "message"], []),
        "findings": (
            ["partition", "reason", "reason_name", "at"],
            [["p0001", "CODE_INVALID", "ogiltig kod", "2019-03-04"]],
        ),
    }
    return write_report(result, tmp_path, language=language, annexes=annexes, about=about_system(_vas()))


class _Prose(HTMLParser):
    """The text a reader sees, without fixed-width ids and hashes (``<code>`` and ``class="code"`` cells)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("code", "style", "title") or ("class", "code") in attrs or tag == "svg":
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("code", "style", "title", "svg") or (tag == "td" and self._skip):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _prose(html: str) -> str:
    parser = _Prose()
    parser.feed(html)
    return re.sub(r"[ \t\n]+", " ", " ".join(parser.parts))


def _pdf_text(path: str) -> list[str]:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(path)
    return [re.sub(r"\s+", " ", pdf[i].get_textpage().get_text_range()) for i in range(len(pdf))]


def _numbers_are_swedish(text: str, allowed: set[str]) -> None:
    """No count of four digits or more without its thousands space, no decimal point (ids and years aside)."""
    bare = {n for n in re.findall(r"(?<![\w.:/-])\d{4,}(?![\w.:/-])", text)} - allowed
    assert not bare, f"numbers without thousands separators: {sorted(bare)}"
    points = re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text.replace("0.1.0", ""))
    assert not points, f"decimal points in Swedish text: {points}"


class TestReportInSwedish:
    def test_html_names_everything_in_swedish(self, tmp_path):
        out = _write(tmp_path)
        html = Path(out["html"]).read_text(encoding="utf-8")
        prose = _prose(html)
        missing = [term for term in SWEDISH_TERMS if term not in prose]
        assert not missing, f"missing from the Swedish report: {missing}"
        leftovers = sorted(set(LEFTOVERS.findall(prose)))
        assert not leftovers, f"English or codes in the Swedish prose: {leftovers}"
        _numbers_are_swedish(prose, {"1900", "2019", "2024", "2025", str(SEED)})
        assert "TESTLEVERANS" not in prose

    def test_pdf_holds_the_sections_of_the_html_in_swedish(self, tmp_path):
        out = _write(tmp_path)
        pages = _pdf_text(out["pdf"])
        text = re.sub(r"\s+", " ", " ".join(pages).replace(NBSP, " "))
        html_prose = re.sub(r"\s+", " ", _prose(Path(out["html"]).read_text(encoding="utf-8")).replace(NBSP, " "))
        missing = [term.replace(NBSP, " ") for term in SWEDISH_TERMS if term.replace(NBSP, " ") not in text]
        assert not missing, f"missing from the PDF: {missing}"
        # every heading of the HTML is a heading of the PDF
        headings = re.findall(r"<h[23][^>]*>(.*?)</h[23]>", Path(out["html"]).read_text(encoding="utf-8"))
        headings = [re.sub(r"<[^>]+>", "", h).replace("–", "-") for h in headings]
        assert len(headings) >= 10
        assert [h for h in headings if h not in text] == []
        assert "00ff00ff00ff00ff" in text and "Sunderby sjukhus" in text  # fingerprints, care units
        leftovers = sorted(set(LEFTOVERS.findall(text)) - {"seed"})
        assert not leftovers, f"English or codes in the Swedish PDF: {leftovers}"
        assert "utan datum" in html_prose

    def test_a_test_delivery_says_so_on_every_page_and_cannot_pass_for_the_final(self, tmp_path):
        out = _write(tmp_path, "test_delivery")
        html = Path(out["html"]).read_text(encoding="utf-8")
        assert '<p class="banner" role="alert">TESTLEVERANS' in html
        assert "<title>TESTLEVERANS" in html and "<h1>TESTLEVERANS" in html
        assert "GODKÄND (TESTLEVERANS)" in html and "Slutleverans" not in _prose(html).replace("slutleveransen", "")
        pages = _pdf_text(out["pdf"])
        assert all("TESTLEVERANS" in page for page in pages), "a page of the test delivery's PDF is not marked"
        assert "Utlåtande för testleveransen: GODKÄND (TESTLEVERANS)" in pages[0]

    def test_page_one_of_the_test_delivery_carries_a_red_banner(self, tmp_path):
        import pypdfium2

        final = pypdfium2.PdfDocument(_write(tmp_path / "final")["pdf"])
        test = pypdfium2.PdfDocument(_write(tmp_path / "test", "test_delivery")["pdf"])

        def red_on_top(pdf, name: str) -> int:
            image = pdf[0].render(scale=1).to_pil().convert("RGB")
            image.save(tmp_path / "page1.png")
            SHOTS.mkdir(parents=True, exist_ok=True)
            image.save(SHOTS / name)  # to look at: out/screenshots/
            top = image.crop((0, 0, image.width, image.height // 4))
            return sum(1 for r, g, b in top.getdata() if r > 140 and g < 60 and b < 60)

        assert red_on_top(test, "report-testleverans-page1.png") > 2000, "the test delivery's page 1 has no banner"
        assert red_on_top(final, "report-slutleverans-page1.png") == 0
        assert (tmp_path / "page1.png").stat().st_size > 10_000

    def test_english_on_request(self, tmp_path):
        out = _write(tmp_path, language="en")
        prose = _prose(Path(out["html"]).read_text(encoding="utf-8"))
        for term in (
            "Final delivery",
            "Verdict on the final delivery: PASS",
            "Delivery agreement",
            "intermediate archive",
        ):
            assert term in prose
        assert "3,092" in prose and "Slutleverans" not in prose and "Leverantör" not in prose
        test = _write(tmp_path / "test", "test_delivery", language="en")
        assert all("TEST DELIVERY" in page for page in _pdf_text(test["pdf"]))
        openpyxl = pytest.importorskip("openpyxl")
        book = openpyxl.load_workbook(out["annex_xlsx"])
        assert book.sheetnames == ["Checks", "Rejected packages", "Findings"]
        assert [c.value for c in book["Checks"][1]][:3] == ["Check (code)", "Check", "Scope"]
        assert book["Rejected packages"]["A2"].value == "No rows: the list is empty for this delivery."


class TestAnnexesForSwedishExcel:
    def test_workbook_has_swedish_sheets_typed_cells_frozen_filtered_headers(self, tmp_path):
        openpyxl = pytest.importorskip("openpyxl")
        out = _write(tmp_path)
        book = openpyxl.load_workbook(out["annex_xlsx"])
        assert book.sheetnames == ["Kontroller", "Avvisade paket", "Fynd"]
        checks = book["Kontroller"]
        assert [c.value for c in checks[1]] == [
            "Kontroll (kod)",
            "Kontroll",
            "Gäller",
            "Antal",
            "Jämfört med",
            "Stämmer",
        ]
        assert checks["D2"].value == 1500 and checks["F2"].value is True  # a real number and a real boolean
        for sheet in book.worksheets:
            assert sheet.freeze_panes == "A2", sheet.title
            assert sheet.auto_filter.ref, sheet.title
            assert sheet.column_dimensions["A"].width > 8, sheet.title
        assert book["Avvisade paket"]["A2"].value == "Inga rader: listan är tom för den här leveransen."
        found = book["Fynd"]
        assert [c.value for c in found[1]] == ["Del", "Orsak (kod)", "Orsak", "at"]
        assert found["B2"].value == "CODE_INVALID" and found["C2"].value == "ogiltig kod"  # code beside its name
        assert found["D2"].value == dt.datetime(2019, 3, 4) and found["D2"].number_format == "yyyy-mm-dd"

    def test_csv_opens_in_columns_in_swedish_excel(self, tmp_path):
        out = _write(tmp_path)
        data = Path(out["annex_checks"]).read_bytes()
        assert data.startswith(b"\xef\xbb\xbfcheck;check_name;scope;left;right;ok\n")
        assert b"source = extracted;source = extracted;patientregister;1500;1500;True\n" in data
        again = _write(tmp_path / "again")
        assert Path(again["annex_checks"]).read_bytes() == data
        assert again["annex_xlsx_sha256"] == out["annex_xlsx_sha256"]


class TestSignoffFormInSwedish:
    def _form(self, tmp_path) -> str:
        out = _write(tmp_path)
        verified = VerifiedResult(
            system_id="vas",
            run_id="milestone__final_delivery__2025-09-01",
            milestone="final_delivery",
            folder=tmp_path,
            data=b"",
            result=_result(),
            sha256=out["result_sha256"],
            pdf_sha256=out["pdf_sha256"],
            files={},
            entry_hash="",
        )
        system = _vas()
        return "\n\n".join(
            [
                signoff_subject(system, "archivist"),
                signoff_intro(system),
                verified_figures(verified, "sv"),
                consequence(system, dt.date(2025, 9, 10)),
            ]
        )

    def test_the_form_says_what_is_signed_and_what_approving_leads_to(self, tmp_path):
        form = self._form(tmp_path)
        for term in (
            "Signering som arkivarie: avveckling av VAS",
            "Leverantör **Region Norrbotten IT",
            f"4{NBSP}200{NBSP}000 kr per år",
            "Leveransöverenskommelse LO-2025-VAS-01 till arkivets mellanarkiv",
            "Åtkomstloggen arkiveras",
            "Utlåtande för slutleveransen: **Godkänd**",
            f"Rader i källan: 4{NBSP}592",
            f"gallrade genom beslut: 84 (1,8{NBSP}%)",
            "anteckning, makulerad i källan: 84 rader gallrade genom beslut",
            "[avstämningsrapporten (PDF)](/decommission/systems/vas/final_delivery/report.pdf)",
            "**Om du godkänner**",
            "uppsägning kan ske från 2025-09-10",
            "avtalet upphör då tidigast 2026-09-10",
            f"årskostnaden 4{NBSP}200{NBSP}000 kr upphör med avtalet",
        ):
            assert term in form, term
        # hashes and the links' addresses are not prose
        prose = re.sub(r"\]\([^)]*\)", "]", re.sub(r"`[0-9a-f]{64}`", "", form))
        leftovers = sorted(set(LEFTOVERS.findall(prose)))
        assert not leftovers, f"English or codes in the Swedish sign-off form: {leftovers}"
        assert str(tmp_path) not in form, "the form gives the report as a path on the server"
        _numbers_are_swedish(prose, {"2019", "2024", "2025", "2026"})


class TestReasonsInSwedish:
    def test_a_failing_check_is_told_in_swedish_with_swedish_numbers(self, tmp_path):
        from decommission.report.labels import sentence

        result = reconcile(
            table_entity={"anteckning": "document"},
            source={"anteckning": 3092},
            mapped_parts=[{"extracted": {"anteckning": 3090}, "mapped": {"anteckning": 3090}}],
            packages=[{"package_id": "p1", "counts": {"document": 3090}}],
            receipts={"p1": {"status": "accepted", "counts": {"document": 3090}}},
            sample=[],
        )
        assert result["verdict"] == "FAIL"
        assert [sentence(r, "sv") for r in result["reasons"]] == [
            f"Rader i källan = uttagna rader stämmer inte för anteckning: 3{NBSP}092 mot 3{NBSP}090"
        ]
        assert sentence(result["reasons"][0], "en") == result["reasons"][0]

    @pytest.mark.parametrize(
        ("english", "swedish"),
        [
            (
                "12 rows of anteckning (SOFT_DELETED) are disposed of without a decision reference: "
                "a finding without a disposition",
                "12 rader i anteckning (makulerad i källan) är gallrade utan beslutsreferens: ett fynd utan beslut",
            ),
            (
                "column vas.patient.fodelseort is in no mapping and no exclusion",
                "kolumnen vas.patient.fodelseort finns varken i mappningen eller bland undantagen",
            ),
            (
                "table sjukhus.unit (1204 rows) is read only through a join, and no SIARD copy holds its rows:"
                " name it in tables or reference_tables, or exclude it by decision",
                f"tabellen sjukhus.unit (1{NBSP}204 rader) läses bara via en join, och dess rader finns inte i"
                " SIARD-delen: ange den under tables eller reference_tables, eller undanta den genom beslut",
            ),
            ("something new", "something new"),  # an unknown sentence is shown as recorded, never dropped
        ],
    )
    def test_known_warnings_and_reasons(self, english, swedish):
        from decommission.report.labels import sentence

        assert sentence(english, "sv") == swedish
