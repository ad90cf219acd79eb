"""The programme's words for people: codes named in Swedish (the default) or English, and Swedish number formats.

One place for every layer that writes for readers: the reconciliation report, its annexes, the
sign-off form, the contract-exit record, the overview and the board report. Swedish writes
``3 092`` (a no-break space between thousands), ``3,4 %`` and ``0,25``; English ``3,092``, ``3.4%``.
A code without a word is shown as itself: a new code is never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping

NBSP = "\u00a0"
LANGUAGES = ("sv", "en")

MILESTONES = {
    "sv": {
        "test_delivery": "Testleverans",
        "production_delivery": "Produktionsleverans",
        "final_delivery": "Slutleverans",
        "contract_end": "Avtalsslut",
    },
    "en": {
        "test_delivery": "Test delivery",
        "production_delivery": "Production delivery",
        "final_delivery": "Final delivery",
        "contract_end": "Contract end",
    },
}
VERDICTS = {
    "sv": {"PASS": "Godkänd", "PASS_WITH_WAIVER": "Godkänd med undantag", "FAIL": "Underkänd"},
    "en": {"PASS": "Pass", "PASS_WITH_WAIVER": "Pass with waiver", "FAIL": "Fail"},
}
ROLES = {
    "sv": {"information_owner": "informationsägare", "archivist": "arkivarie"},
    "en": {"information_owner": "information owner", "archivist": "archivist"},
}
#: the finding codes of decommission.model.Reason
REASONS = {
    "sv": {
        "SOFT_DELETED": "makulerad i källan",
        "ORPHAN": "hänvisar till en patient som saknas",
        "PATIENT_DISPOSED": "patienten gallrad genom beslut",
        "ID_INVALID_FORMAT": "personnummer med felaktig form",
        "ID_INVALID_CHECKSUM": "personnummer med fel kontrollsiffra",
        "ID_INVALID_DATE": "personnummer med ogiltigt datum",
        "SENTINEL_DATE": "platshållardatum (t.ex. 1900-01-01)",
        "XML_ILLEGAL_CHAR": "tecken som XML inte tillåter",
        "ENCODING_SUSPECT": "misstänkt teckenkodning",
        "EMPTY_ATTACHMENT": "tom bilaga",
        "CODE_INVALID": "ogiltig kod",
    },
    "en": {
        "SOFT_DELETED": "deleted in the source (soft delete)",
        "ORPHAN": "refers to a missing patient",
        "PATIENT_DISPOSED": "patient disposed of by decision",
        "ID_INVALID_FORMAT": "malformed personal identity number",
        "ID_INVALID_CHECKSUM": "personal identity number with a wrong check digit",
        "ID_INVALID_DATE": "personal identity number with an invalid date",
        "SENTINEL_DATE": "placeholder date (e.g. 1900-01-01)",
        "XML_ILLEGAL_CHAR": "characters XML does not allow",
        "ENCODING_SUSPECT": "suspect character encoding",
        "EMPTY_ATTACHMENT": "empty attachment",
        "CODE_INVALID": "invalid code",
    },
}
#: the archive model's entities (decommission.model.ENTITIES), as a table's row heading
ENTITIES = {
    "sv": {
        "patient": "Patienter",
        "case": "Vårdkontakter",
        "transfer": "Vårdtillfällen och förflyttningar",
        "document": "Journalanteckningar",
        "diagnosis": "Diagnoser",
        "procedure": "Åtgärder",
        "medication": "Läkemedel",
        "lab_result": "Laboratoriesvar",
        "observation": "Observationer",
        "order": "Beställningar och remisser",
        "attachment": "Bilagor",
        "access_log": "Åtkomstlogg",
        "record": "Post",
    },
    "en": {
        "patient": "Patients",
        "case": "Care contacts",
        "transfer": "Stays and transfers",
        "document": "Journal notes",
        "diagnosis": "Diagnoses",
        "procedure": "Procedures",
        "medication": "Medications",
        "lab_result": "Lab results",
        "observation": "Observations",
        "order": "Orders and referrals",
        "attachment": "Attachments",
        "access_log": "Access log",
        "record": "Record",
    },
}
#: the reconciliation's checks (decommission.reconcile.checks), each a count compared with another
CHECKS = {
    "sv": {
        "source = extracted": "Rader i källan = uttagna rader",
        "extracted = archived + disposed": "Uttagna rader = arkiverade + gallrade",
        "mapped = packaged": "Omformade poster = paketerade poster",
        "packaged = accepted": "Paketerade poster = poster mottagna av arkivet",
    },
    "en": {
        "source = extracted": "Source rows = rows extracted",
        "extracted = archived + disposed": "Rows extracted = archived + disposed",
        "mapped = packaged": "Records converted = records packaged",
        "packaged = accepted": "Records packaged = records accepted by the archive",
    },
}
#: how a sampled record differs from the source (decommission.reconcile.readback)
DIFFERENCES = {
    "sv": {
        "missing in the archive": "saknas i arkivet",
        "not in the source": "finns inte i källan",
        "differs": "annat värde",
        "unreadable": "kunde inte läsas",
    },
    "en": {},
}
ARCHIVES = {
    "sv": {"mellanarkiv": "mellanarkiv", "slutarkiv": "slutarkiv"},
    "en": {"mellanarkiv": "intermediate archive (mellanarkiv)", "slutarkiv": "final archive (slutarkiv)"},
}
ACCESS_LOG = {
    "sv": {"archived": "arkiveras", "deletion_decision": "gallras enligt beslut"},
    "en": {"archived": "archived", "deletion_decision": "deleted by decision"},
}


def number(value: float | int | None, language: str = "sv") -> str:
    """A count or amount: ``12 345`` in Swedish, ``12,345`` in English; a dash for none."""
    if value is None:
        return "–"
    text = f"{round(value):,}"
    return text.replace(",", NBSP).replace("-", "−") if language == "sv" else text


def decimal(value: float, language: str = "sv", digits: int = 1) -> str:
    """A decimal number: ``0,4`` in Swedish, ``0.4`` in English."""
    text = f"{value:,.{digits}f}"
    if language != "sv":
        return text
    return text.replace(",", NBSP).replace(".", ",").replace("-", "−")


def percent(share: float | None, language: str = "sv", digits: int = 1) -> str:
    """A share (0-1) as a percentage: ``3,4 %`` in Swedish, ``3.4%`` in English."""
    if share is None:
        return "–"
    text = f"{share * 100:.{digits}f}"
    return f"{text.replace('.', ',')}{NBSP}%" if language == "sv" else f"{text}%"


def word(table: Mapping[str, Mapping[str, str]], key: str | None, language: str = "sv") -> str:
    """The word for a code in ``language``; the code itself when the table has none."""
    if key is None:
        return "–"
    return table.get(language, table["sv"]).get(key, key)


def language_of(requested: str | None) -> str:
    """The language asked for, Swedish unless English is asked for."""
    return requested if requested in LANGUAGES else "sv"
