"""The programme state as its readers see it: every figure formatted, every code in words.

Shared by the overview page and the board report, so both say the same thing the same way.
Report links are addresses in the Airflow UI (``settings.report_url``), never server paths.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from decommission import settings
from decommission.overview.risks import risks
from decommission.overview.state import ProgrammeState, SystemState
from decommission.overview.status import Status
from decommission.overview.words import KINDS, MILESTONES, ROLES, VERDICTS, day, kronor, number, percent, tkr, word

TEXTS = {
    "sv": {
        "title": "Programöversikt – avveckling av äldre vårdinformationssystem",
        "board_title": "Lägesrapport – avveckling av äldre vårdinformationssystem",
        "as_of": "Läget den",
        "systems": "System",
        "system": "System",
        "kind": "Slag",
        "supplier": "Leverantör",
        "status": "Status",
        "milestones": "Milstolpar (planerat / utfall)",
        "planned": "Planerat",
        "actual": "Utfall",
        "verdict": "Utlåtande",
        "figures": "Rader i källan / arkiverade / gallrade genom beslut",
        "source": "Rader i källan",
        "archived": "Arkiverade",
        "disposed": "Gallrade genom beslut",
        "disposed_share": "Andel gallrad",
        "packages": "Paket (godkända av arkivet)",
        "sample": "Stickprov (patienter / med avvikelse)",
        "report": "Rapport",
        "report_html": "Rapport",
        "report_pdf": "PDF",
        "signed": "Signerat",
        "signed_by": "Signerat av",
        "notice_deadline": "Sista dag för uppsägning",
        "contract_end": "Avtalsslut (planerat)",
        "contract_end_actual": "Avtalet upphör",
        "forecast": "prognos",
        "access_ends": "Åtkomsten till systemet upphör",
        "annual_cost": "Årskostnad som upphör",
        "delay_cost": "En månads försening kostar",
        "totals": "Programmet totalt",
        "risks": "Risker",
        "decisions": "Beslut som behövs",
        "no_risks": "Inga risker just nu.",
        "no_decisions": "Inga beslut behövs just nu.",
        "economics": "Ekonomi per år",
        "year": "År",
        "archive_fee": "Arkivets årsavgift",
        "startup": "Uppstartsbidrag",
        "own_it": "Egen IT-drift",
        "archive_total": "Arkivkostnad totalt",
        "legacy_paid": "Kvarvarande kostnader för gamla system",
        "legacy_ended": "Upphörda kostnader för gamla system",
        "net": "Nettoeffekt",
        "cumulative": "Ackumulerat",
        "payback": "Återbetalningsår",
        "payback_none": "inte före {year} (kalkylen slutar {last})",
        "payback_year": "{year}",
        "no_economics": "Planen har ingen ekonomidel.",
        "waiting": "väntar på {who}",
        "not_verified": "ej styrkt",
        "file_problem": "Filen stämmer inte med liggaren",
        "none": "–",
        "board_link": "Senaste lägesrapport",
        "lang_switch": "In English",
        "lang_href": "?lang=en",
        "ledger_ok": "Liggarens kedja är obruten.",
        "timeline": "Tidslinje: planerade och faktiska milstolpar",
        "economics_chart": "Kostnader och besparingar per år",
        "status_table": "Status per system",
        "summary": "Sammanfattning",
        "decommissioned_count": "avvecklade",
        "systems_count": "system",
        "no_patient_data": "Sidan visar antal, datum, hashar och namn på de som signerat; inga patientuppgifter.",
        "planned_marker": "planerat",
        "actual_marker": "utfall",
        "today": "i dag",
    },
    "en": {
        "title": "Programme overview – decommissioning of legacy care systems",
        "board_title": "Status report – decommissioning of legacy care systems",
        "as_of": "As of",
        "systems": "Systems",
        "system": "System",
        "kind": "Kind",
        "supplier": "Supplier",
        "status": "Status",
        "milestones": "Milestones (planned / actual)",
        "planned": "Planned",
        "actual": "Actual",
        "verdict": "Verdict",
        "figures": "Source rows / archived / disposed of by decision",
        "source": "Source rows",
        "archived": "Archived",
        "disposed": "Disposed of by decision",
        "disposed_share": "Share disposed",
        "packages": "Packages (accepted by the archive)",
        "sample": "Sample (patients / with differences)",
        "report": "Report",
        "report_html": "Report",
        "report_pdf": "PDF",
        "signed": "Signed",
        "signed_by": "Signed by",
        "notice_deadline": "Last day to give notice",
        "contract_end": "Contract end (planned)",
        "contract_end_actual": "Contract ends",
        "forecast": "forecast",
        "access_ends": "Access to the system ends",
        "annual_cost": "Yearly cost that ends",
        "delay_cost": "A month's delay costs",
        "totals": "Programme totals",
        "risks": "Risks",
        "decisions": "Decisions needed",
        "no_risks": "No risks at present.",
        "no_decisions": "No decisions needed at present.",
        "economics": "Economics per year",
        "year": "Year",
        "archive_fee": "Archive's yearly fee",
        "startup": "Start-up contribution",
        "own_it": "Own IT operations",
        "archive_total": "Archive costs in all",
        "legacy_paid": "Legacy costs still paid",
        "legacy_ended": "Legacy costs ended",
        "net": "Net effect",
        "cumulative": "Cumulative",
        "payback": "Payback year",
        "payback_none": "not before {year} (the calculation ends {last})",
        "payback_year": "{year}",
        "no_economics": "The plan has no economics section.",
        "waiting": "waiting for {who}",
        "not_verified": "not verified",
        "file_problem": "The file does not match the ledger",
        "none": "–",
        "board_link": "Latest status report",
        "lang_switch": "På svenska",
        "lang_href": "?lang=sv",
        "ledger_ok": "The ledger's chain is unbroken.",
        "timeline": "Timeline: planned and actual milestones",
        "economics_chart": "Costs and savings per year",
        "status_table": "Status per system",
        "summary": "Summary",
        "decommissioned_count": "decommissioned",
        "systems_count": "systems",
        "no_patient_data": "This page shows counts, dates, hashes and the names of those who signed; no patient data.",
        "planned_marker": "planned",
        "actual_marker": "actual",
        "today": "today",
    },
}


def programme_view(state: ProgrammeState, language: str = "sv", visible: Collection[str] | None = None) -> dict:
    """Everything the page and the board report show, formatted for ``language``."""
    t = TEXTS[language]
    shown = [s for s in state.systems if visible is None or s.system.id in visible]
    found = [r for r in risks(state, language) if visible is None or not r.system_id or r.system_id in visible]
    totals = state.totals
    source = totals.get("source", 0)
    return {
        "t": t,
        "lang": language,
        "today": day(state.today),
        "region": state.plan.region.name,
        "systems": [system_view(s, language) for s in shown],
        "risks": [r.text for r in found],
        "decisions": list(dict.fromkeys(r.decision for r in found if r.decision)),
        "totals": {
            "systems": number(len(shown), language),
            "decommissioned": number(sum(s.status is Status.DECOMMISSIONED for s in shown), language),
            "source": number(source, language),
            "archived": number(totals.get("archived", 0), language),
            "disposed": number(totals.get("disposed", 0), language),
            "disposed_share": percent(totals.get("disposed", 0) / source if source else None, language),
            "annual_cost": kronor(totals["annual_cost"], language),
            "annual_cost_ended": kronor(totals["annual_cost_ended"], language),
        },
        "economics": economics_view(state, language),
        "ledger_broken": state.ledger_broken,
    }


def system_view(s: SystemState, language: str) -> dict[str, Any]:
    t = TEXTS[language]
    report = s.latest_report
    figures = report.figures if report else None
    totals = figures["totals"] if figures else {}
    links = {}
    problems = []
    if report is not None:
        milestone = report.reconciliation.milestone
        for key, name in (("html", "report.html"), ("pdf", "report.pdf")):
            if report.ok(key):
                links[key] = settings.report_url(s.system.id, milestone, name)
        problems = [p for p in report.problems.values() if p]
    if s.exit is not None and s.exit.problem:
        problems.append(s.exit.problem)
    packages = figures.get("packages") if figures else None
    sample = figures.get("sample") if figures else None
    return {
        "id": s.system.id,
        "name": s.system.name,
        "kind": word(KINDS, s.system.kind, language),
        "supplier": s.system.supplier,
        "status": s.status.value,
        "status_label": s.status.label(language),
        "waiting": t["waiting"].format(who=", ".join(s.waiting_for)) if s.waiting_for else "",
        "milestones": [
            {
                "name": word(MILESTONES, m.milestone.value, language),
                "code": m.milestone.value,
                "planned": day(m.planned),
                "actual": day(m.actual),
                "overdue": m.overdue,
                "verdict": word(VERDICTS, m.verdict, language) if m.verdict else "",
            }
            for m in s.milestones
        ],
        "report_milestone": word(MILESTONES, report.reconciliation.milestone, language) if report else "",
        "verdict": word(VERDICTS, report.reconciliation.verdict, language) if report else "",
        "verdict_code": report.reconciliation.verdict if report else "",
        "verified": bool(figures and figures["verified"]),
        "source": number(totals.get("source"), language),
        "archived": number(totals.get("archived"), language),
        "disposed": number(totals.get("disposed"), language),
        "disposed_share": percent(totals["disposed"] / totals["source"] if totals.get("source") else None, language),
        "packages": f"{number(packages.get('count'), language)} ({number(packages.get('accepted', 0), language)})"
        if packages
        else t["none"],
        "sample": f"{number(sample['checked'], language)} / {number(sample['mismatches'], language)}"
        if sample
        else t["none"],
        "links": links,
        "problems": problems,
        "signatures": [
            {
                "name": sig.name,
                "role": word(ROLES, sig.role, language),
                "at": day(sig.at),
                "approved": sig.decision == "Approve",
            }
            for sig in s.view.signatures
        ],
        "notice_deadline": day(s.notice_deadline),
        "contract_end_planned": day(s.system.milestones.contract_end),
        "contract_end": day(s.contract_end),
        "contract_end_is_actual": s.contract_end_is_actual,
        "days_past_plan": s.days_past_plan,
        "access_ends": day(s.access_ends),
        "annual_cost": kronor(s.system.contract.annual_cost_sek, language),
        "delay_cost": kronor(s.delay_cost_per_month, language),
    }


def economics_view(state: ProgrammeState, language: str) -> dict[str, Any] | None:
    econ = state.economics
    if econ is None:
        return None
    t = TEXTS[language]
    last = econ.years[-1].year
    return {
        "years": [
            {
                "year": y.year,
                "archive_fee": tkr(y.archive_fee, language),
                "startup": tkr(y.startup, language),
                "own_it": tkr(y.own_it, language),
                "archive_total": tkr(y.archive_total, language),
                "legacy_paid": tkr(y.legacy_paid, language),
                "legacy_ended": tkr(y.legacy_ended, language),
                "net": tkr(y.net, language),
                "cumulative": tkr(y.cumulative, language),
                "negative": y.cumulative < 0,
            }
            for y in econ.years
        ],
        "payback": t["payback_year"].format(year=econ.payback_year)
        if econ.payback_year
        else t["payback_none"].format(year=last + 1, last=last),
        "payback_year": econ.payback_year,
    }
