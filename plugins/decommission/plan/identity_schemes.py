"""Identity schemes of Swedish patient identifiers other than the personnummer, as plan data.

Personnummer and samordningsnummer are recognised by :mod:`decommission.mapping.identity` itself
(the century of ten-digit forms, the day + 60, the Luhn digit). Every other scheme is a row
here: the shape of the identifier and, where the scheme has one, its check character, chosen
from a named set of rules. The built-in rows follow the formats HL7 Sweden's base profiles
(*basprofiler*, SEBasePatient) and Inera's list of local reserve identities publish, each with
the profile's example; a region adds its own in the mapping spec (``identity_schemes:``) and
chooses the order tried (``id_schemes:``). The first scheme whose pattern matches names the
identifier; a wrong check character or a birth date that does not exist refuses it (the row
is kept, flagged, never dropped).

Check rules (positions are 1-based, inclusive, counted on the identifier without ``-``/``+``;
the check digit is the character after ``check_to``):

* ``luhn``: the Luhn (modulus 10) digit over the digits ``check_from``-``check_to``.
* ``luhn_letters``: the same, letters first given the values of ``letter_values``.

Some shapes are shared: Blekinge's and Sörmland's first format, and VGR's old GRID and Dalarna's
format; Halland uses Inera Carelink's format. The first listed wins; a region lists its own first.
The national reserve number's check character is defined in Inera's NRID specification, which
the published sources used here do not give: its shape is checked, its check character is not.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CheckRule = Literal["luhn", "luhn_letters"]


class IdentityScheme(BaseModel):
    """One identity scheme: its name, its URI or OID, its shape and its check, from a named set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = ""
    #: the scheme's URI or OID (what FHIR calls the identifier's system)
    system: str = ""
    #: the whole identifier, upper-cased, surrounding blanks removed (Python regular expression)
    pattern: str
    check: CheckRule | None = None
    check_from: int | None = Field(default=None, ge=1)
    check_to: int | None = Field(default=None, ge=1)
    letter_values: dict[str, int] = {}
    #: the 1-based position of a birth date ``YYYYMMDD`` that must exist (None: no date checked)
    date_at: int | None = Field(default=None, ge=1)
    #: a published example that the scheme accepts (checked when the spec loads)
    example: str = ""

    @model_validator(mode="after")
    def _complete(self) -> IdentityScheme:
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"pattern: not a regular expression ({exc})") from None
        if self.check is not None and (self.check_from is None or self.check_to is None):
            raise ValueError("a check needs 'check_from' and 'check_to'")
        if self.check is not None and self.check_to < self.check_from:
            raise ValueError("'check_to' is before 'check_from'")
        if self.check == "luhn_letters" and not self.letter_values:
            raise ValueError("check 'luhn_letters' needs 'letter_values'")
        if self.example and not compiled.fullmatch(self.example.strip().upper()):
            raise ValueError(f"the example does not match the pattern of '{self.name}'")
        return self


_DATE8 = r"(1[89]|2[01])[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])"
#: letters of the national reserve number: A-Z without I, O, Q, V, W
_NRID_LETTER = "[A-HJ-NPR-UX-Z]"

BUILTIN: tuple[IdentityScheme, ...] = (
    IdentityScheme(
        name="reservnummer_national",
        title="Nationellt reservnummer (NRID)",
        system="http://electronichealth.se/identifier/nationelltReservnummer",
        pattern=rf"[0-9]{{8}}-?({_NRID_LETTER}{{2}}[0-9]{{2}}|{_NRID_LETTER}{{3}}[0-9])",
        example="22950606-FH20",
    ),
    IdentityScheme(
        name="reservnummer_stockholm",
        title="Region Stockholm",
        system="urn:oid:1.2.752.97.3.1.3",
        pattern=r"99[0-9]{10}",
        check="luhn",
        check_from=5,
        check_to=11,
        example="991981000010",
    ),
    IdentityScheme(
        name="reservnummer_carelink",
        title="Inera Carelink (also Region Halland)",
        system="urn:oid:1.2.752.129.2.1.3.2",
        # written like a personnummer, so legacy systems write it with its hyphen too
        pattern=r"(1[7-9]|20)[0-9]{2}(0[1-9]|1[0-2])(3[2-9]|[45][0-9])[-+]?[0-9]{4}",
        check="luhn",
        check_from=3,
        check_to=11,
        example="198108320014",
    ),
    IdentityScheme(
        name="reservnummer_vgr",
        title="Västra Götalandsregionen (LRID)",
        system="urn:oid:1.2.752.113.11.0.2.1.1.1",
        pattern=r"[0-9]{8}[KMX](0[6-9]|[1-8][0-9])[0-9]",
        check="luhn_letters",
        check_from=3,
        check_to=11,
        letter_values={"K": 5, "M": 7, "X": 8},
        date_at=1,
        example="19810829M071",
    ),
    IdentityScheme(
        name="reservnummer_sormland2",
        title="Region Sörmland (format 2)",
        system="urn:oid:1.2.752.266.1.1.2",
        pattern=r"(18500101|18600101)[MNKP](00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})",
        example="18500101N123",
    ),
    IdentityScheme(
        name="reservnummer_varmland",
        title="Region Värmland",
        system="urn:oid:1.2.752.74.9.2",
        pattern=r"[0-9]{8}S[FUXPL][0-9]([A-UW-Z]|[1-9])",
        date_at=1,
        example="19810829SU3A",
    ),
    IdentityScheme(
        name="reservnummer_orebro",
        title="Region Örebro län",
        system="urn:oid:1.2.752.74.9.3",
        pattern=rf"{_DATE8}T[A-Z][0-9][A-J]",
        date_at=1,
        example="19810829TB1F",
    ),
    IdentityScheme(
        name="reservnummer_skane",
        title="Region Skåne",
        system="urn:oid:1.2.752.219.1.10.10.1",
        pattern=r"([0-9]{6}|[0-9]{8})[DEF][A-Z][01][A-Z]",
        example="810829DA1B",
    ),
    IdentityScheme(
        name="reservnummer_blekinge",
        title="Region Blekinge",
        system="urn:oid:1.2.752.74.9.5",
        pattern=rf"{_DATE8}-?[A-Z]{{2}}[0-9][A-Z]",
        date_at=1,
        example="20200501-AA8A",
    ),
    IdentityScheme(
        name="reservnummer_sormland1",
        title="Region Sörmland (format 1; the shape of Blekinge's)",
        system="urn:oid:1.2.752.266.1.1.1",
        pattern=rf"{_DATE8}[A-Z]{{2}}[0-9][A-Z]",
        date_at=1,
        example="19600606AA1G",
    ),
    IdentityScheme(
        name="reservnummer_vasternorrland",
        title="Region Västernorrland",
        system="urn:oid:1.2.752.269.1.1",
        pattern=rf"{_DATE8}[0-9]{{3}}R",
        date_at=1,
        example="20100101014R",
    ),
    IdentityScheme(
        name="reservnummer_vgr_grid",
        title="Västra Götalandsregionen, old reserve numbers (GRID)",
        system="urn:oid:1.2.752.113.11.0.2.1.1.1",
        pattern=r"[0-9]{8}-?[A-FHJ-NPR-Y][0-9]{3}",
        date_at=1,
    ),
)
_BY_NAME = {s.name: s for s in BUILTIN}
#: tried only when a spec names them: VGR's old reserve numbers (no check digit) would take in every
#: VGR number with a wrong check digit
OPT_IN = frozenset({"reservnummer_vgr_grid"})


def chosen(names: tuple[str, ...], added: tuple[IdentityScheme, ...]) -> tuple[IdentityScheme, ...]:
    """The schemes tried, in order: those named (built-in or added), or every built-in then the added."""
    every = {**_BY_NAME, **{s.name: s for s in added}}
    if names:
        return tuple(every[n] for n in names)
    return (*(s for s in BUILTIN if s.name not in OPT_IN), *added)
