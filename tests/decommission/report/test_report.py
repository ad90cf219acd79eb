"""The report: HTML, PDF (rendered to an image), annexes; Swedish by default, English on request."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from decommission.reconcile.checks import reconcile, sample_justification
from decommission.report.writer import write_report

PERSONNUMMER = "19121212-1212"


def _result(verdict_breaker: bool = False) -> dict:
    result = reconcile(
        table_entity={"patient": "patient", "anteckning": "document"},
        source={"patient": 5, "anteckning": 15},
        mapped_parts=[
            {
                "extracted": {"patient": 5, "anteckning": 15},
                "mapped": {"patient": 5, "anteckning": 11},
                "flagged": {"patient": {"ID_INVALID_CHECKSUM": 1}, "anteckning": {"CODE_INVALID": 2}},
                "corrected": {"anteckning": {"CODE_INVALID": 1}},
                "disposed": {"anteckning": {"SOFT_DELETED": 4}},
            }
        ],
        packages=[{"package_id": "pkg-1", "counts": {"patient": 5, "document": 11}}],
        receipts={
            "pkg-1": {
                "status": "rejected",
                "reasons": [{"requirement": "CSIP60", "path": "documentation", "message": "empty"}],
            }
            if verdict_breaker
            else {"status": "accepted", "counts": {"patient": 5, "document": 11}}
        },
        sample=[{"match": True}],
    )
    result["sample"] |= {"seed": 20250901, "justification": sample_justification(10, 40)}
    result["breakdown"] = {
        "years": {
            "2019": {"source": 7, "extracted": 7, "archived": 7, "flagged": 1, "disposed": 0},
            "-": {"source": 8, "extracted": 8, "archived": 4, "flagged": 3, "disposed": 4},
        },
        "units": [],
        "patients": {"count": 5, "differing": []},
        "fingerprints": {"document": {"rows": 11, "source": "00ff", "package": "00ff"}},
    }
    result["dispositions"] = {
        "classes": [
            {
                "table": "anteckning",
                "reason": "CODE_INVALID",
                "class": "flagged",
                "rows": 2,
                "reference": "",
                "decision_kind": "default",
                "decision": "",
                "decided_by": "",
            },
            {
                "table": "anteckning",
                "reason": "CODE_INVALID",
                "class": "corrected",
                "rows": 1,
                "reference": "RN 2025/0418",
                "references": ["RN 2025/0418"],
                "decision_kind": "correction_list",
                "decision": "",
                "decided_by": "Karin Lindström (verksamhetschef)",
            },
            {
                "table": "anteckning",
                "reason": "SOFT_DELETED",
                "class": "disposed",
                "rows": 4,
                "reference": "RN 2025/0415 (gallringsbeslut)",
                "decision_kind": "declared",
                "decision": "Makulerade anteckningar gallras",
                "decided_by": "Olof Öberg (regionarkivarie)",
            },
            {
                "table": "patient",
                "reason": "ID_INVALID_CHECKSUM",
                "class": "flagged",
                "rows": 1,
                "reference": "",
                "decision_kind": "default",
                "decision": "",
                "decided_by": "",
            },
        ],
        "corrections": {"file": "vas.yaml", "sha256": "ab" * 32, "listed": 1, "rows_corrected": 1, "not_applied": 0},
        "reasons": [],
        "warnings": [],
    }
    result |= {
        "system": {"id": "vas", "name": "VAS – Vårdadministrativt system", "supplier": "Tieto"},
        "run_id": "milestone__final_delivery__2025-09-01",
        "milestone": "final_delivery",
        "cut_off": "2024-09-30",
        "snapshot": "2025-09-01T00:00:00+00:00",
        "software_version": "0.1.0",
    }
    return result


class TestWriteReport:
    def test_pdf_renders_to_a_non_blank_image(self, tmp_path):
        import pypdfium2

        out = write_report(_result(), tmp_path)
        pdf = pypdfium2.PdfDocument(out["pdf"])
        assert len(pdf) >= 1
        image = pdf[0].render(scale=1).to_pil().convert("L")
        dark = sum(image.histogram()[:128])
        assert dark > 2000, f"page 1 of the PDF is nearly blank ({dark} dark pixels)"
        text = pdf[0].get_textpage().get_text_range()
        assert "GODKÄND" in text and "VAS" in text
        assert "utan datum" in pdf[1 if len(pdf) > 1 else 0].get_textpage().get_text_range() + text

    def test_rows_without_a_clinical_date_are_named_not_dashed(self, tmp_path):
        html = Path(write_report(_result(), tmp_path)["html"]).read_text(encoding="utf-8")
        assert "<td>utan datum</td>" in html and "<td>-</td>" not in html
        english = Path(write_report(_result(), tmp_path / "en", language="en")["html"]).read_text(encoding="utf-8")
        assert "<td>no date</td>" in english

    def test_many_years_do_not_spread_the_pdf_over_many_pages(self, tmp_path):
        import pypdfium2

        result = _result()
        result["breakdown"]["years"] = {
            str(y): {"source": 50 + y % 7, "extracted": 50 + y % 7, "disposed": 1, "flagged": 0, "archived": 49 + y % 7}
            for y in range(1985, 2025)
        }
        out = write_report(result, tmp_path)
        assert len(pypdfium2.PdfDocument(out["pdf"])) <= 4

    def test_html_is_self_contained_swedish_and_has_the_charts(self, tmp_path):
        out = write_report(_result(), tmp_path, annexes={"q": (["row_hash"], [["abc"]])})
        html = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert '<html lang="sv">' in html and "Avstämningsrapport" in html and "GODKÄND" in html
        assert html.count("<svg") >= 2 and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "src=" not in html and "<script" not in html
        assert out["result_sha256"] in html
        assert out["annex_xlsx"].endswith("annexes.xlsx") and (tmp_path / "annex-q.csv").exists()

    def test_every_class_of_rows_with_a_finding_and_its_decision_is_shown(self, tmp_path):
        import pypdfium2

        result = _result()
        assert result["totals"] | {} == {
            "source": 20,
            "extracted": 20,
            "archived": 16,
            "flagged": 3,
            "corrected": 1,
            "disposed": 4,
            "accepted": 16,
        }
        out = write_report(result, tmp_path)
        html = Path(out["html"]).read_text(encoding="utf-8")
        assert "Fynd och beslut" in html and "gallrat genom beslut" in html and "arkiverat, rättat" in html
        assert "RN 2025/0415 (gallringsbeslut)" in html and "Makulerade anteckningar gallras" in html
        assert "behålls och flaggas (standard; inget beslut behövs)" in html
        assert "Arkiverade rader: 16, varav flaggade för ett fynd: 3 och rättade enligt rättelselistan: 1" in html
        pdf = pypdfium2.PdfDocument(out["pdf"])
        text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
        assert "gallrat genom beslut" in text and "RN 2025/0415" in text
        english = Path(write_report(result, tmp_path / "en", language="en")["html"]).read_text(encoding="utf-8")
        assert "disposed by decision" in english and "Findings and decisions" in english

    def test_english_on_request(self, tmp_path):
        write_report(_result(), tmp_path, language="en")
        html = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert '<html lang="en">' in html and "Reconciliation report" in html

    def test_unknown_language_is_refused(self, tmp_path):
        with pytest.raises(ValueError, match="report language 'de'"):
            write_report(_result(), tmp_path, language="de")

    def test_rejection_shows_as_fail_reason(self, tmp_path):
        result = _result(verdict_breaker=True)
        assert result["verdict"] == "FAIL"
        write_report(result, tmp_path)
        html = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert "UNDERKÄND" in html and "CSIP60" in html and "arkivet avvisade paketet pkg-1" in html

    def test_same_result_gives_same_bytes(self, tmp_path):
        a = write_report(_result(), tmp_path / "a", annexes={"q": (["n"], [[1], [2]])})
        b = write_report(_result(), tmp_path / "b", annexes={"q": (["n"], [[1], [2]])})
        for name in ("result", "html", "pdf", "annex_xlsx", "annex_q"):
            assert a[f"{name}_sha256"] == b[f"{name}_sha256"], name

    def test_annex_rows_round_trip(self, tmp_path):
        write_report(_result(), tmp_path, annexes={"findings": (["table", "reason"], iter([["t", "ORPHAN"]]))})
        # Swedish Excel: a BOM and semicolons
        assert (tmp_path / "annex-findings.csv").read_bytes().startswith(b"\xef\xbb\xbftable;reason\n")
        with (tmp_path / "annex-findings.csv").open(encoding="utf-8-sig") as fh:
            assert list(csv.reader(fh, delimiter=";")) == [["table", "reason"], ["t", "ORPHAN"]]
        assert json.loads((tmp_path / "result.json").read_text())["verdict"] == "PASS"


class TestSampleJustification:
    def test_chances_follow_the_hypergeometric_law(self):
        j = sample_justification(10, 40)
        # 10 % of 40 = 4 damaged; P(none drawn) = C(36,10)/C(40,10) = (30·29·28·27)/(40·39·38·37)
        assert j["chance_to_detect_damaged_share"]["10%"] == pytest.approx(
            1 - (30 * 29 * 28 * 27) / (40 * 39 * 38 * 37), abs=1e-4
        )
        assert j["drawn"] == 10 and j["share_checked"] == 0.25
        assert sample_justification(50, 20)["drawn"] == 20
