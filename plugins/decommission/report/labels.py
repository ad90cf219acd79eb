"""The report's words in Swedish (the default) and English."""

from __future__ import annotations

LABELS = {
    "sv": {
        "title": "Avstämningsrapport",
        "system": "System",
        "run": "Körning",
        "milestone": "Milstolpe",
        "cut_off": "Brytdatum",
        "version": "Programversion",
        "verdict": "Utlåtande",
        "reasons": "Skäl",
        "table": "Tabell",
        "entity": "Entitet",
        "source": "Källa",
        "extracted": "Extraherat",
        "mapped": "Mappat",
        "flagged": "Flaggat",
        "corrected": "Rättat",
        "disposed": "Gallrat",
        "packaged": "Paketerat",
        "accepted": "Godkänt av arkivet",
        "checks": "Kontroller",
        "check": "Kontroll",
        "scope": "Omfång",
        "ok": "OK",
        "by_reason": "Fynd per orsak",
        "reason": "Orsak",
        "rows": "Rader",
        "packages": "Paket",
        "sample": "Stickprov",
        "checked": "Kontrollerade patienter",
        "mismatches": "Avvikelser",
        "snapshot": "Ögonblicksbild",
        "report_hash": "Rapportens SHA-256 (result.json)",
        "waived": "Avvikelser godtagna genom undantag",
        "waiver_by": "Beslutat av",
        "waiver_reason": "Motivering",
        "rejections": "Paket som arkivet avvisat",
        "requirement": "Krav",
        "path": "Sökväg",
        "message": "Meddelande",
        "by_year": "Rader per år: källa mot arkiv",
        "by_unit": "Rader per vårdenhet",
        "year": "År",
        "no_year": "utan datum",
        "unit": "Vårdenhet",
        "archived": "Arkiverat",
        "progress": "Förlopp över leveransen",
        "justification": "Stickprovets storlek",
        "justification_text": (
            "{drawn} av {population} patienter ({pct} %) enligt planen. Om 5 % av patienterna vore skadade "
            "hittar stickprovet minst en med sannolikheten {p5}; om 10 %: {p10}. Utan avvikelse är andelen "
            "skadade under {ub} % med 95 % säkerhet."
        ),
        "differences": "Fältavvikelser i stickprovet",
        "field": "Fält",
        "kind": "Slag",
        "record": "Post (nyckelhash)",
        "patient": "Patient (nyckelhash)",
        "fingerprints": "Fingeravtryck av innehållet",
        "source_side": "Källsidan",
        "package_side": "Paketsidan",
        "patients_differing": "Patienter med avvikande antal",
        "annexes": "Bilagor",
        "PASS": "GODKÄND",
        "PASS_WITH_WAIVER": "GODKÄND MED UNDANTAG",
        "FAIL": "UNDERKÄND",
        "hash": "Resultatets SHA-256",
        "hash_key": "Nyckel för nyckelhashar",
        "demo_key": "DEMONSTRATIONSNYCKEL: hasharna i denna rapport skyddar inte identiteterna",
        "coverage": "Täckning av källdatabasen",
        "coverage_text": "{covered} av {columns} kolumner ({pct} %) är arkiverade eller undantagna genom beslut.",
        "column": "Kolumn",
        "class": "Klass",
        "by": "Genom",
        "rows_after_cutoff": "Rader efter brytdatum",
        "class_mapped": "mappad",
        "class_used": "nyckel/regel",
        "class_preserved": "bevarad i SIARD-delen",
        "raw": "Källraderna i SIARD-format (rådata)",
        "raw_text": (
            "Varje paket har källans rader för sina patienter i en SIARD 2.2-fil (representations/rep2): "
            "{rows} rader, lika med källans rader minus de gallrade ({expected})."
        ),
        "raw_siard": "I SIARD-delen",
        "raw_expected": "Källan minus gallrade",
        "class_excluded": "undantagen genom beslut",
        "class_unclassified": "OKLASSAD",
        "warnings": "Varningar (blir skäl till UNDERKÄND vid slutleveransen)",
        "fixity": "Arkivets innehav kontrollerat mot det som skickades",
        "fixity_text": "{audited} av {sent} paket lästa tillbaka i sin helhet och kontrollerade mot sin SHA-256.",
        "sent_sha256": "Skickad SHA-256",
        "read_sha256": "Återläst SHA-256",
        "dispositions": "Fynd och beslut",
        "dispositions_text": (
            "Varje rad i källan är arkiverad eller gallrad genom beslut. Arkiverade rader: {archived}, varav "
            "flaggade för ett fynd: {flagged} och rättade enligt rättelselistan: {corrected}. Gallrade genom "
            "beslut: {disposed}."
        ),
        "class_flagged": "arkiverat, flaggat",
        "class_corrected": "arkiverat, rättat",
        "class_disposed": "gallrat genom beslut",
        "decision": "Beslut",
        "reference": "Beslutsreferens",
        "decision_default": "behålls och flaggas (standard; inget beslut behövs)",
        "decision_correction_list": "rättat enligt rättelselistan",
        "decision_patient": "patienten är gallrad genom beslut; raderna följer patienten",
        "corrections_text": "Rättelselista {file} (SHA-256 {sha}): {listed} rättelser, {rows} rader rättade.",
        "placeholders_text": (
            "{n} platshållare för patienter som saknas i källan håller rader som hänvisar till dem (flaggade ORPHAN)."
        ),
    },
    "en": {
        "title": "Reconciliation report",
        "system": "System",
        "run": "Run",
        "milestone": "Milestone",
        "cut_off": "Cut-off date",
        "version": "Software version",
        "verdict": "Verdict",
        "reasons": "Reasons",
        "table": "Table",
        "entity": "Entity",
        "source": "Source",
        "extracted": "Extracted",
        "mapped": "Mapped",
        "flagged": "Flagged",
        "corrected": "Corrected",
        "disposed": "Disposed",
        "packaged": "Packaged",
        "accepted": "Accepted by archive",
        "checks": "Checks",
        "check": "Check",
        "scope": "Scope",
        "ok": "OK",
        "by_reason": "Findings by reason",
        "reason": "Reason",
        "rows": "Rows",
        "packages": "Packages",
        "sample": "Read-back sample",
        "checked": "Patients checked",
        "mismatches": "Mismatches",
        "snapshot": "Snapshot",
        "report_hash": "SHA-256 of the report (result.json)",
        "waived": "Differences accepted by waiver",
        "waiver_by": "Decided by",
        "waiver_reason": "Reason",
        "rejections": "Packages the archive rejected",
        "requirement": "Requirement",
        "path": "Path",
        "message": "Message",
        "by_year": "Rows per year: source against archive",
        "by_unit": "Rows per care unit",
        "year": "Year",
        "no_year": "no date",
        "unit": "Care unit",
        "archived": "Archived",
        "progress": "Progress over the delivery",
        "justification": "Size of the sample",
        "justification_text": (
            "{drawn} of {population} patients ({pct} %) as the plan sets. If 5 % of the patients were damaged, "
            "the sample finds at least one with probability {p5}; if 10 %: {p10}. With no mismatch, the damaged "
            "share is below {ub} % at 95 % confidence."
        ),
        "differences": "Field differences in the sample",
        "field": "Field",
        "kind": "Kind",
        "record": "Record (keyed hash)",
        "patient": "Patient (keyed hash)",
        "fingerprints": "Content fingerprints",
        "source_side": "Source side",
        "package_side": "Package side",
        "patients_differing": "Patients whose counts differ",
        "annexes": "Annexes",
        "PASS": "PASS",
        "PASS_WITH_WAIVER": "PASS WITH WAIVER",
        "FAIL": "FAIL",
        "hash": "SHA-256 of the result",
        "hash_key": "Key of the keyed hashes",
        "demo_key": "DEMO KEY: the hashes in this report do not protect identities",
        "coverage": "Coverage of the source database",
        "coverage_text": "{covered} of {columns} columns ({pct} %) are archived or excluded by a decision.",
        "column": "Column",
        "class": "Class",
        "by": "By",
        "rows_after_cutoff": "Rows after the cut-off",
        "class_mapped": "mapped",
        "class_used": "key/rule",
        "class_preserved": "kept in the SIARD part",
        "raw": "The source rows in SIARD (raw representation)",
        "raw_text": (
            "Every package holds the source rows of its patients in a SIARD 2.2 file (representations/rep2): "
            "{rows} rows, equal to the source rows less those disposed of ({expected})."
        ),
        "raw_siard": "In the SIARD part",
        "raw_expected": "Source less disposed",
        "class_excluded": "excluded by decision",
        "class_unclassified": "UNCLASSIFIED",
        "warnings": "Warnings (FAIL reasons at the final delivery)",
        "fixity": "The archive's holdings checked against what was sent",
        "fixity_text": "{audited} of {sent} packages read back whole and checked against their SHA-256.",
        "sent_sha256": "SHA-256 sent",
        "read_sha256": "SHA-256 read back",
        "dispositions": "Findings and decisions",
        "dispositions_text": (
            "Every source row is archived or disposed of by a decision. Rows archived: {archived}, of which "
            "flagged with a finding: {flagged} and corrected from the correction list: {corrected}. Disposed of "
            "by decision: {disposed}."
        ),
        "class_flagged": "archived, flagged",
        "class_corrected": "archived, corrected",
        "class_disposed": "disposed by decision",
        "decision": "Decision",
        "reference": "Decision reference",
        "decision_default": "kept and flagged (the default; no decision needed)",
        "decision_correction_list": "corrected from the correction list",
        "decision_patient": "the patient is disposed of by decision; their rows go with them",
        "corrections_text": "Correction list {file} (SHA-256 {sha}): {listed} corrections, {rows} rows corrected.",
        "placeholders_text": (
            "{n} placeholder patients for patients the source lacks hold the rows that name them (flagged ORPHAN)."
        ),
    },
}


def year_label(year: str, labels: dict[str, str]) -> str:
    """A breakdown year as a reader sees it: rows without a clinical date are named, not shown as '-'."""
    return labels["no_year"] if year == "-" else year


def number(value: float, language: str) -> str:
    """A count as its readers write it: ``12 345`` in Swedish (no-break space), ``12,345`` in English."""
    text = f"{value:,}"
    return text.replace(",", "\u00a0") if language == "sv" else text


def percent(share: float, language: str, digits: int = 1) -> str:
    """A share (0-1) as a percentage: ``90,5`` in Swedish, ``90.5`` in English."""
    text = f"{share * 100:.{digits}f}"
    return text.replace(".", ",") if language == "sv" else text
