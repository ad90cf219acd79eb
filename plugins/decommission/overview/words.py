"""The overview's and board report's words and number formats: Swedish by default, English on request.

Swedish writes ``3 092`` (a no-break space between thousands), ``3,4 %`` and ``1 740 tkr``;
dates are ISO (``2025-09-01``), as Swedish authorities write them.
"""

from __future__ import annotations

import datetime as dt

# the words the reports, forms and records share live one layer down; the overview reuses them
from decommission.words import (  # noqa: F401 - re-exported for the overview and the board report
    LANGUAGES,
    MILESTONES,
    NBSP,
    ROLES,
    VERDICTS,
    language_of,
    number,
    percent,
    word,
)

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
