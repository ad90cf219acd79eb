"""The overview's and board report's words and number formats: Swedish by default, English on request.

Swedish writes ``3 092`` (a no-break space between thousands), ``3,4 %`` and ``1 740 tkr``;
dates are ISO (``2025-09-01``), as Swedish authorities write them.
"""

from __future__ import annotations

import datetime as dt
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
KINDS = {
    "sv": {
        "journal": "journalsystem",
        "lab": "laboratoriesystem",
        "radiology": "röntgensystem",
        "specialty": "specialistsystem",
    },
    "en": {
        "journal": "journal system",
        "lab": "laboratory system",
        "radiology": "radiology system",
        "specialty": "specialty system",
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


def number(value: float | int | None, language: str = "sv") -> str:
    """A count or amount: ``12 345`` in Swedish, ``12,345`` in English; a dash for none."""
    if value is None:
        return "–"
    text = f"{round(value):,}"
    return text.replace(",", NBSP).replace("-", "−") if language == "sv" else text


def percent(share: float | None, language: str = "sv", digits: int = 1) -> str:
    """A share (0-1) as a percentage: ``3,4 %`` in Swedish, ``3.4%`` in English."""
    if share is None:
        return "–"
    text = f"{share * 100:.{digits}f}"
    return f"{text.replace('.', ',')}{NBSP}%" if language == "sv" else f"{text}%"


def tkr(sek: int | None, language: str = "sv") -> str:
    """An amount in thousands of SEK, as a board reads it: ``1 740 tkr``, ``−860 tkr``."""
    if sek is None:
        return "–"
    return f"{number(round(sek / 1000), language)}{NBSP}{'tkr' if language == 'sv' else 'kSEK'}"


def kronor(sek: int | None, language: str = "sv") -> str:
    """An amount in SEK: ``350 000 kr``."""
    if sek is None:
        return "–"
    return f"{number(sek, language)}{NBSP}{'kr' if language == 'sv' else 'SEK'}"


def day(value: dt.date | dt.datetime | str | None) -> str:
    """A date as ISO ``2025-09-01``; a dash for none."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        return value[:10]
    return value.date().isoformat() if isinstance(value, dt.datetime) else value.isoformat()


def word(table: Mapping[str, Mapping[str, str]], key: str | None, language: str = "sv") -> str:
    """The word for a code in ``language``; the code itself when the table has none."""
    if key is None:
        return "–"
    return table.get(language, table["sv"]).get(key, key)


def language_of(requested: str | None) -> str:
    """The language asked for, Swedish unless English is asked for."""
    return requested if requested in LANGUAGES else "sv"
