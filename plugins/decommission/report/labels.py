"""The report's words in Swedish (the default) and English."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from decommission.words import CHECKS, ENTITIES, MILESTONES, REASONS, decimal, number, percent, word

__all__ = [
    "LABELS",
    "check_name",
    "decimal",
    "entity_name",
    "milestone_name",
    "number",
    "percent",
    "reason_name",
    "scope_name",
    "sentence",
    "year_label",
    "years_in_order",
]

LABELS = {
    "sv": {
        "title": "Avstämningsrapport",
        "test_title": "TESTLEVERANS",
        "rows_by_table": "Rader per tabell och posttyp",
        "test_mark": "TESTLEVERANS - inte slutleveransen",
        "test_banner": (
            "TESTLEVERANS – detta är inte slutleveransen. Paketen är märkta som test och rapporten är inte "
            "underlag för signering eller avtalsavslut."
        ),
        "production_banner": "Produktionsleverans – slutleveransen och signeringen återstår.",
        "verdict_of": "Utlåtande för {milestone}en",
        "supplier": "Leverantör",
        "agreement": "Leveransöverenskommelse",
        "agreement_text": "{id}, till arkivets {archive}",
        "access_log": "Åtkomstlogg",
        "signers": "Signeras av",
        "signer_text": "{name}, {role}",
        "seed": "slumpfrö",
        "ok_yes": "ja",
        "ok_no": "NEJ",
        "left": "Antal",
        "right": "Jämfört med",
        "code": "kod",
        "sheet_empty": "Inga rader: listan är tom för den här leveransen.",
        "packages_count": "Antal paket",
        "patients_differing_text": "{n} av {count} patienter har ett annat antal rader i arkivet än i källan.",
        "system": "System",
        "run": "Körning",
        "milestone": "Leverans",
        "cut_off": "Brytdatum",
        "version": "Programversion",
        "verdict": "Utlåtande",
        "reasons": "Skäl",
        "table": "Tabell",
        "entity": "Posttyp",
        "source": "Källa",
        "extracted": "Uttaget",
        "mapped": "Omformat",
        "flagged": "Flaggat",
        "corrected": "Rättat",
        "disposed": "Gallrat",
        "packaged": "Paketerat",
        "accepted": "Godkänt av arkivet",
        "checks": "Kontroller",
        "check": "Kontroll",
        "scope": "Gäller",
        "ok": "OK",
        "by_reason": "Fynd per orsak",
        "reason": "Orsak",
        "rows": "Rader",
        "packages": "Paket",
        "sample": "Stickprov: återläsning ur arkivet",
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
            "{drawn} av {population} patienter ({pct}) lästes tillbaka ur arkivet och jämfördes fält för fält "
            "med källan. Om {share5} av patienterna vore skadade skulle ett så här stort stickprov hitta minst "
            "en av dem med {p5} sannolikhet; om {share10} med {p10} sannolikhet. "
        ),
        "justification_none": (
            "Ingen avvikelse hittades: andelen skadade patienter är då med 95 % säkerhet under {ub}. "
        ),
        "justification_found": "Stickprovet hittade {found} patienter med avvikelser; de står i tabellen nedan. ",
        "justification_limits": (
            "Ett stickprov av den här storleken kan visa att fel inte är vanliga. Det kan inte visa att varje "
            "enskild patient är rätt; det gör räkningarna och fingeravtrycken ovan, som omfattar alla rader."
        ),
        "differences": "Fältavvikelser i stickprovet",
        "field": "Fält",
        "kind": "Typ av avvikelse",
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
        "coverage_text": "{covered} av {columns} kolumner ({pct}) är arkiverade eller undantagna genom beslut.",
        "column": "Kolumn",
        "class": "Klass",
        "by": "Genom",
        "rows_after_cutoff": "Rader efter brytdatum",
        "class_mapped": "arkiverad",
        "class_used": "nyckel eller regel",
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
            "{n} platshållare för patienter som saknas i källan håller raderna som hänvisar till dem (flaggade som "
            "hänvisning till en patient som saknas)."
        ),
    },
    "en": {
        "title": "Reconciliation report",
        "test_title": "TEST DELIVERY",
        "rows_by_table": "Rows per table and record type",
        "test_mark": "TEST DELIVERY - not the final delivery",
        "test_banner": (
            "TEST DELIVERY – this is not the final delivery. The packages are marked as a test and this report "
            "is no basis for sign-off or contract exit."
        ),
        "production_banner": "Production delivery – the final delivery and the sign-off are still to come.",
        "verdict_of": "Verdict on the {milestone}",
        "supplier": "Supplier",
        "agreement": "Delivery agreement",
        "agreement_text": "{id}, to the archive's {archive}",
        "access_log": "Access log",
        "signers": "To be signed by",
        "signer_text": "{name}, {role}",
        "seed": "seed",
        "ok_yes": "yes",
        "ok_no": "NO",
        "left": "Count",
        "right": "Compared with",
        "code": "code",
        "sheet_empty": "No rows: the list is empty for this delivery.",
        "packages_count": "Packages",
        "patients_differing_text": (
            "{n} of {count} patients have another number of rows in the archive than in the source."
        ),
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
        "mapped": "Converted",
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
            "{drawn} of {population} patients ({pct}) were read back from the archive and compared field by field "
            "with the source. If {share5} of the patients were damaged, a sample this size would find at least "
            "one of them with probability {p5}; if {share10}, with probability {p10}. "
        ),
        "justification_none": (
            "No difference was found: the damaged share of patients is then below {ub} at 95 % confidence. "
        ),
        "justification_found": "The sample found {found} patients with differences; they are listed below. ",
        "justification_limits": (
            "A sample of this size can show that errors are not common. It cannot show that every single "
            "patient is right; the counts and fingerprints above, which cover every row, do that."
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
        "coverage_text": "{covered} of {columns} columns ({pct}) are archived or excluded by a decision.",
        "column": "Column",
        "class": "Class",
        "by": "By",
        "rows_after_cutoff": "Rows after the cut-off",
        "class_mapped": "archived",
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
            "{n} placeholder patients for patients the source lacks hold the rows that name them (flagged as "
            "referring to a missing patient)."
        ),
    },
}


def year_label(year: str, labels: Mapping[str, str]) -> str:
    """A breakdown year as a reader sees it: rows without a clinical date are named, not shown as '-'."""
    return labels["no_year"] if year == "-" else year


def years_in_order(years: Mapping[str, Any]) -> list[str]:
    """Years oldest first, the rows without a date last (not first, where '-' sorts)."""
    return sorted(years, key=lambda y: (y == "-", y))


def language_of_labels(t: Mapping[str, str]) -> str:
    return "sv" if t is LABELS["sv"] else "en"


def milestone_name(milestone: str, language: str) -> str:
    return word(MILESTONES, milestone, language)


def reason_name(code: str, language: str) -> str:
    return word(REASONS, code, language)


def entity_name(code: str, language: str) -> str:
    return word(ENTITIES, code, language)


def check_name(code: str, language: str) -> str:
    return word(CHECKS, code, language)


#: the result's reasons and warnings are English sentences (machine records); their Swedish wording
_SENTENCES_SV: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (
            r"^(?P<check>.+) fails for (?P<scope>\S+): (?P<left>-?\d+) against (?P<right>-?\d+)$",
            "{check} stämmer inte för {scope}: {left} mot {right}",
        ),
        (r"^package (?P<pkg>\S+) rejected by the archive: (?P<rest>.*)$", "arkivet avvisade paketet {pkg}: {rest}"),
        (
            r"^package (?P<pkg>\S+) has no ingest receipt of acceptance \((?P<status>[^)]*)\)$",
            "paketet {pkg} saknar arkivets kvitto på mottagandet ({status})",
        ),
        (
            r"^read-back sample: (?P<n>\d+) of (?P<of>\d+) sampled patients differ from the source "
            r"\((?P<f>\d+) field differences\)$",
            "stickprovet: {n} av {of} kontrollerade patienter skiljer sig från källan ({f} fältavvikelser)",
        ),
        (
            r"^column (?P<col>\S+) is in no mapping and no exclusion$",
            "kolumnen {col} finns varken i mappningen eller bland undantagen",
        ),
        (
            r"^table (?P<tbl>\S+) \((?P<n>\d+) rows\) is in no mapping and no exclusion$",
            "tabellen {tbl} ({n} rader) finns varken i mappningen eller bland undantagen",
        ),
        (
            r"^table (?P<tbl>\S+) \((?P<n>\d+) rows\) is read only through a join, and no SIARD copy holds its rows: "
            r"name it in tables or reference_tables, or exclude it by decision$",
            "tabellen {tbl} ({n} rader) läses bara via en join, och dess rader finns inte i SIARD-delen: "
            "ange den under tables eller reference_tables, eller undanta den genom beslut",
        ),
        (
            r"^table (?P<tbl>\S+) has (?P<n>\d+) rows in the source but none on or before the cut-off (?P<day>\S+)$",
            "tabellen {tbl} har {n} rader i källan men ingen på eller före brytdatum {day}",
        ),
        (
            r"^the exclusion of (?P<what>\S+) has no decision reference$",
            "undantaget av {what} saknar beslutsreferens",
        ),
        (
            r"^(?P<n>\d+) rows of (?P<tbl>\S+) \((?P<reason>[A-Z_]+)\) are disposed of without a decision reference: "
            r"a finding without a disposition$",
            "{n} rader i {tbl} ({reason}) är gallrade utan beslutsreferens: ett fynd utan beslut",
        ),
        (
            r"^(?P<n>\d+) rows of (?P<tbl>\S+) \((?P<reason>[A-Z_]+)\) are to be corrected, but the correction list "
            r"names none of them \(kept flagged\): a finding without a disposition$",
            "{n} rader i {tbl} ({reason}) ska rättas, men rättelselistan nämner ingen av dem (de behålls flaggade): "
            "ett fynd utan beslut",
        ),
        (
            r"^(?P<n>\d+) rows the correction list names were not corrected \(not in the delivery, or disposed\)$",
            "{n} rader som rättelselistan nämner rättades inte (de finns inte i leveransen eller är gallrade)",
        ),
        (
            r"^(?P<n>\d+) patients have other row counts extracted than in the source$",
            "{n} patienter har ett annat antal uttagna rader än i källan",
        ),
    )
)


def sentence(text: str, language: str) -> str:
    """A reason or warning of the result in the report's language; one not known is shown as recorded."""
    if language != "sv":
        return text
    for pattern, template in _SENTENCES_SV:
        m = pattern.match(text)
        if m:
            parts = m.groupdict()
            if "check" in parts:
                parts["check"] = check_name(parts["check"], language)
                parts["scope"] = _scope_name(parts["scope"], language)
            for k in ("left", "right", "n", "of", "f"):
                if k in parts:
                    parts[k] = number(int(parts[k]), language)
            if "reason" in parts:
                parts["reason"] = reason_name(parts["reason"], language)
            return template.format(**parts)
    return text


def _scope_name(scope: str, language: str) -> str:
    """A check's scope is a source table (shown as it is named there) or an entity (named in words)."""
    return entity_name(scope, language).lower() if scope in ENTITIES["en"] else scope


def scope_name(scope: str, language: str) -> str:
    return _scope_name(scope, language)
