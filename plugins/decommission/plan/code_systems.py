"""The code systems a mapping may name: data (name, title, URI, the shape of a code, a further check).

A code system here is data: a name, a title, its canonical URI (FHIR ``system``, or an OID),
an RE2 pattern for the shape of a code and, where the system has one, the name of a check that
:mod:`decommission.mapping.codes` computes on the whole column (``not_icd9``: the ICD-9-CM-only
shapes are refused; ``sctid_concept``: the Verhoeff digit and the partition of a SNOMED CT id).
A mapping may declare its own local code lists (``code_systems:`` in the spec: a list of codes,
or a pattern), checked the same way.

Shape is what can be checked without the terminology itself: ``E888.9`` (ICD-9-CM external
cause) and ``V30.00`` are no ICD-10 codes, but ``V27.0`` is both an ICD-9-CM and an ICD-10 code,
and only the column's declared system tells them apart (a rule's ``system_column``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodeSystem:
    """One code system: how its codes look, and what identifies it in the archive."""

    name: str
    title: str
    uri: str
    #: RE2 pattern a code matches (anchored)
    pattern: str
    #: a further check on the codes that match the pattern (None: the pattern is all)
    check: str | None = None
    #: local code lists: the codes themselves (None: any code of the pattern)
    codes: tuple[str, ...] | None = None


ICD10_SHAPE = r"[A-Z][0-9]{2}(\.?[0-9][0-9A-Z]?)?"
#: ICD-9-CM only: external causes E800-E999 written with a dot, and E and V codes with two subclass
#: digits; ICD-10 (WHO and SE) has no E or V code with a second subclass digit
NOT_ICD10 = r"(?:E[0-9]{3}\.|[EV][0-9]{2}\.?[0-9]{2})"

REGISTRY: dict[str, CodeSystem] = {
    s.name: s
    for s in (
        CodeSystem(
            "icd10se",
            "ICD-10-SE (Socialstyrelsen)",
            "urn:oid:1.2.752.116.1.1.1",
            rf"^(?:{ICD10_SHAPE})$",
            check="not_icd9",
        ),
        CodeSystem("icd10", "ICD-10 (WHO)", "http://hl7.org/fhir/sid/icd-10", rf"^(?:{ICD10_SHAPE})$", "not_icd9"),
        CodeSystem(
            "icd10cm", "ICD-10-CM", "http://hl7.org/fhir/sid/icd-10-cm", r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$"
        ),
        CodeSystem(
            "icd9cm",
            "ICD-9-CM diagnoses (incl. V and E codes)",
            "http://hl7.org/fhir/sid/icd-9-cm",
            r"^(?:[0-9]{3}(\.?[0-9]{1,2})?|V[0-9]{2}(\.?[0-9]{1,2})?|E[0-9]{3}(\.?[0-9])?)$",
        ),
        CodeSystem(
            "icd9cm_proc",
            "ICD-9-CM procedures (volume 3)",
            "urn:oid:2.16.840.1.113883.6.104",
            r"^[0-9]{2}(\.?[0-9]{1,2})?$",
        ),
        CodeSystem("icd10pcs", "ICD-10-PCS", "http://www.cms.gov/Medicare/Coding/ICD10", r"^[0-9A-HJ-NP-Z]{7}$"),
        CodeSystem(
            "kva",
            "KVÅ, klassifikation av vårdåtgärder (Socialstyrelsen)",
            "urn:oid:1.2.752.116.1.3.2.1.4",
            r"^(?:[A-Z]{3}[0-9]{2}|[A-Z]{2}[0-9]{3})$",
        ),
        CodeSystem(
            "atc",
            "ATC (WHO), any level",
            "http://www.whocc.no/atc",
            r"^[ABCDGHJLMNPRSV]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$",
        ),
        CodeSystem(
            "npu",
            "NPU (incl. the Danish and Swedish national codes)",
            "urn:oid:1.2.208.176.2.1",
            r"^(?:NPU|DNK|SWE)[0-9]{5}$",
        ),
        CodeSystem(
            "snomedct",
            "SNOMED CT concept identifier",
            "http://snomed.info/sct",
            r"^[1-9][0-9]{5,17}$",
            check="sctid_concept",
        ),
    )
}


def local(name: str, title: str, codes: list[str] | None, pattern: str | None) -> CodeSystem:
    """A code list the mapping declares (``code_systems:``): its codes, or a pattern, or both."""
    return CodeSystem(
        name=name,
        title=title or name,
        uri=f"urn:decommission:codes:{name}",
        pattern=f"^(?:{pattern})$" if pattern else r"^.+$",
        codes=tuple(codes) if codes is not None else None,
    )
