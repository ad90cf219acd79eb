"""What a table or column name makes likely: name patterns -> entity and field, in Swedish and English.

The scaffold's only knowledge of care systems is this table; a new entity of the record model is one
entry of :data:`ENTITY_RULES` (guessed only when ``model.ENTITIES`` has it at run time, and only its
fields that the model has). A pattern is a few words; a word is matched against the words of a name
(lower case, å/ä -> a, ö -> o, split at ``_``, ``-``, blanks, digits after letters and camelCase):
``pnr`` is the word pnr, ``personnummer*`` a word starting so, ``*tid`` a word ending so, ``*kontakt*``
a word holding it, ``subject id`` two words in a row.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

_FOLD = str.maketrans({"å": "a", "ä": "a", "ö": "o", "æ": "a", "ø": "o", "é": "e", "ü": "u"})


def words(name: str) -> str:
    """The words of a name, lower case and folded, one blank apart: ``skrivenTid_2`` -> ``skriven tid 2``."""
    spaced = re.sub(r"(?<=[a-zåäö])(?=[A-ZÅÄÖ])", " ", name)
    folded = unicodedata.normalize("NFC", spaced).lower().translate(_FOLD)
    return " ".join(re.findall(r"[a-z]+|[0-9]+", folded))


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(w).replace(r"\*", r"[a-z0-9]*") for w in pattern.split()]
    return re.compile(r"(?<![a-z0-9])" + " ".join(parts) + r"(?![a-z0-9])")


def matches(pattern: str, name: str) -> bool:
    """Whether ``name`` holds the words of ``pattern``."""
    return _regex(pattern).search(words(name)) is not None


def first_match(patterns: tuple[str, ...], name: str) -> str | None:
    """The first of ``patterns`` that ``name`` matches (the reason given for a guess), or None."""
    return next((p for p in patterns if matches(p, name)), None)


@dataclass(frozen=True)
class FieldRule:
    """Column names that make a field of the entity likely.

    :param sign: a match is evidence of the entity itself (a table with an ``icd10`` column holds diagnoses)
    :param code_system: a code column matched by ``names[i]`` holds codes of ``code_system[i]`` (None: unknown)
    """

    field: str
    names: tuple[str, ...]
    sign: bool = False
    code_systems: tuple[tuple[str, str], ...] = ()

    def system_of(self, pattern: str) -> str | None:
        return dict(self.code_systems).get(pattern)


@dataclass(frozen=True)
class EntityRule:
    """Table names that make the entity likely, and its fields' column names."""

    entity: str
    tables: tuple[str, ...]
    fields: tuple[FieldRule, ...]


_TIME = ("*tid", "*tidpunkt", "time", "*time", "timestamp", "*datum", "date", "*date", "datetime")
_CASE = ("*kontakt* id", "*kontakt*id", "*vardtillfalle* id", "vtf id", "besok* id", "encounter* id", "visit* id")
_CASE += ("case id", "caseid", "episode* id", "hadm id", "remiss* id")
_UNIT = ("vardenhet*", "*enhet", "avdelning*", "avd", "klinik*", "mottagning*", "ward", "department", "care unit")
_UNIT += ("careunit",)
_CODE_ICD = ("icd 10", "icd 9", "icd*", "diagnoskod", "diagnos kod", "diag kod", "dx")

#: in the record model's order of entities; the first of equally likely entities is taken
ENTITY_RULES: tuple[EntityRule, ...] = (
    EntityRule(
        "patient",
        ("patient*", "pat", "person*", "individ*", "invanare", "subject*"),
        (
            # subject_id (MIMIC and the like) is an internal key, never an identity number: see PATIENT_LINK
            FieldRule("personal_id", ("personnummer*", "personnr", "pers nr", "persnr", "pnr", "ssn"), sign=True),
            FieldRule("personal_id", ("personal id*", "national id*", "social security*")),
            FieldRule("given_name", ("fornamn*", "tilltalsnamn", "given*", "first name", "firstname", "forename")),
            FieldRule("family_name", ("efternamn*", "family*", "last name", "lastname", "surname")),
            FieldRule("sex", ("kon", "sex", "gender", "kon kod")),
            FieldRule(
                "birth_date", ("fodelsedatum", "fodelse datum", "fodelsedag", "fodd", "birth*", "dob", "date of birth")
            ),
            FieldRule("protected_identity", ("skyddad*", "protected*", "sekretessmarker*")),
            FieldRule("blocked", ("sparr*", "blocked", "sparrad")),
            FieldRule("confidential", ("konfidentiell*", "confidential*", "sekretess")),
            FieldRule("death_date", ("dodsdatum", "dod datum", "avliden*", "death date", "date of death", "dod")),
            FieldRule("death_cause", ("dodsorsak*", "death cause", "cause of death")),
        ),
    ),
    EntityRule(
        "case",
        ("vardkontakt*", "kontakt*", "besok*", "vardtillfalle*", "inlaggning*", "encounter*", "visit*", "episode*")
        + ("case*", "admission*"),
        (
            FieldRule("care_unit", _UNIT, sign=True),
            FieldRule("case_type", ("kontakttyp", "*typ", "type", "*type", "vardform", "kategori")),
            FieldRule("start_time", ("start*", "inkom*", "inskriv*", "admit*", "admission*", "in tid", "fran*")),
            FieldRule("end_time", ("slut*", "utskriv*", "discharge*", "disch*", "end*", "ut tid", "till*", "tom")),
            FieldRule("admission_source", ("inskrivningssatt", "kom fran", "admission source")),
            FieldRule("discharge_destination", ("utskriven till", "discharge destination", "discharge location")),
        ),
    ),
    EntityRule(
        "transfer",
        ("transfer*", "forflyttning*", "flytt*", "vistelse*", "stay*", "movement*", "bed*"),
        (
            FieldRule("case_id", _CASE),
            FieldRule("care_unit", _UNIT, sign=True),
            FieldRule("event", ("handelse*", "event*", "typ", "type")),
            FieldRule("start_time", ("start*", "in*", "fran*", "from")),
            FieldRule("end_time", ("slut*", "ut*", "till*", "end*", "to")),
        ),
    ),
    EntityRule(
        "document",
        ("*anteckning*", "journal*", "note*", "dokument*", "document*", "epikris*", "*berattelse"),
        (
            FieldRule("case_id", _CASE),
            FieldRule("care_unit", _UNIT),
            FieldRule("time", ("skriven*", "signerad tid", *_TIME)),
            FieldRule("title", ("sokord", "rubrik*", "title", "titel", "mall*", "*form", "*typ", "type")),
            FieldRule("text", ("*anteckning", "text", "*text", "note*", "body", "journaltext", "fritext"), sign=True),
            FieldRule("author", ("signerad av", "signerad*", "author*", "skribent", "forfattare", "signer*")),
        ),
    ),
    EntityRule(
        "diagnosis",
        ("diagnos*", "icd*", "dx*"),
        (
            FieldRule("case_id", _CASE),
            FieldRule(
                "code",
                _CODE_ICD,
                sign=True,
                # a Swedish system's unnamed ICD is ICD-10-SE; "icd9" is ICD-9-CM (the rule flags what is not)
                code_systems=(
                    ("icd 10", "icd10se"),
                    ("icd 9", "icd9cm"),
                    ("icd*", "icd10se"),
                    ("diagnoskod", "icd10se"),
                ),
            ),
            FieldRule("rank", ("rang*", "rank*", "ordning*", "seq num", "prioritet*", "huvud*")),
            FieldRule("text", ("diagnostext", "text", "beskrivning", "benamning", "long title")),
            FieldRule("time", ("diagnos tid", "diagnostid", "satt*", *_TIME)),
        ),
    ),
    EntityRule(
        "procedure",
        ("kva*", "procedur*", "procedure*", "atgard*", "operation*", "ingrepp*", "op"),
        (
            FieldRule("case_id", _CASE),
            FieldRule("care_unit", _UNIT),
            FieldRule("code", ("kva*", "atgardskod", "opkod", "op kod", "procedure code"), True, (("kva*", "kva"),)),
            FieldRule("text", ("beskrivning", "benamning", "text", "*text", "*anteckning", "*berattelse")),
            FieldRule("rank", ("rang*", "rank*", "ordning*", "seq num")),
            FieldRule("start_time", ("start*", "utford*", "performed*", "op datum", "opdatum", "op tid", *_TIME)),
            FieldRule("end_time", ("slut*", "end*", "stop*")),
        ),
    ),
    EntityRule(
        "medication",
        ("lakemedel*", "medic*", "drug*", "ordination*", "recept*", "prescription*", "administrering*"),
        (
            FieldRule("case_id", _CASE),
            FieldRule("atc", ("atc*",), sign=True, code_systems=(("atc*", "atc"),)),
            FieldRule("product", ("preparat*", "produkt*", "product*", "lakemedel*", "drug*", "namn", "name")),
            FieldRule("dose", ("dosering*", "dos", "dose*", "styrka")),
            FieldRule("route", ("administrationssatt", "administrationsvag", "route", "vag")),
            FieldRule("unit", ("enhet", "unit", "dos enhet")),
            FieldRule("frequency", ("frekvens", "frequency", "intervall", "doseringsintervall")),
            FieldRule("start_time", ("insatt*", "start*")),
            FieldRule("stop_time", ("utsatt*", "stop*", "slut*")),
            FieldRule("time", ("ordinerad*", "ordinations*", "forskriv*", *_TIME)),
        ),
    ),
    EntityRule(
        "lab_result",
        ("lab*", "*prov", "prov*", "analys*", "*svar", "result*"),
        (
            FieldRule("case_id", _CASE),
            FieldRule("code", ("npu*", "analyskod", "loinc*"), True, (("npu*", "npu"),)),
            FieldRule("analysis", ("analys*", "test name", "test", "undersokning"), sign=True),
            FieldRule("value", ("varde", "resultat*", "value*", "result*"), sign=True),
            FieldRule("unit", ("enhet", "unit*", "valueuom")),
            FieldRule("reference_range", ("referensintervall", "ref intervall", "reference range")),
            FieldRule("reference_low", ("ref lag", "referens lag", "ref low", "reference low", "ref range lower")),
            FieldRule("reference_high", ("ref hog", "referens hog", "ref high", "reference high", "ref range upper")),
            FieldRule("abnormal_flag", ("avvikelse*", "flag*", "abnormal*", "patologisk")),
            FieldRule("time", ("provtid", "provtagning*", "svarstid", "charttime", *_TIME)),
        ),
    ),
    EntityRule(
        "observation",
        ("vital*", "obs", "observation*", "matning*", "matvarde*", "parameter*", "score*", "chartevents"),
        (
            FieldRule("case_id", _CASE),
            FieldRule("code", ("kod", "code", "itemid", "term id")),
            FieldRule("name", ("parameter*", "namn", "name", "term", "label")),
            FieldRule("value", ("varde", "value*", "matvarde", "resultat*", "klass"), sign=True),
            FieldRule("unit", ("enhet", "unit*", "valueuom")),
            FieldRule("reference_low", ("ref lag", "ref low", "reference low")),
            FieldRule("reference_high", ("ref hog", "ref high", "reference high")),
            FieldRule("abnormal_flag", ("avvikelse*", "flag*", "abnormal*")),
            FieldRule("time", ("matt*", "charttime", *_TIME)),
        ),
    ),
    EntityRule(
        "order",
        ("bestallning*", "order*", "remiss*", "referral*", "request*"),
        (
            FieldRule("case_id", ("*kontakt* id", "*vardtillfalle* id", "encounter* id", "visit* id", "hadm id")),
            FieldRule("order_type", ("remisstyp", "bestallningstyp", "order type", "typ", "type")),
            FieldRule("code", ("kod", "code", "*kod")),
            FieldRule("text", ("fragestallning", "text", "*text", "beskrivning")),
            FieldRule("ordering_unit", ("bestallare*", "remittent*", "avsandare", "ordering*", "fran enhet")),
            FieldRule("performing_unit", ("utforare*", "mottagare*", "performing*", "till enhet", *_UNIT)),
            FieldRule("status", ("status",)),
            FieldRule("completed_time", ("besvarad*", "klar*", "completed*", "svar tid")),
            FieldRule("time", ("bestalld*", "skickad*", "inkom*", "remisstid", *_TIME)),
        ),
    ),
    EntityRule(
        "attachment",
        ("bilaga*", "attachment*", "fil", "filer", "file*", "blob*", "bild*", "scan*", "dokumentfil*"),
        (
            FieldRule("document_id", ("ant id", "*anteckning* id", "dokument* id", "document* id", "note* id")),
            FieldRule("filename", ("filnamn", "filename", "file name", "namn", "name"), sign=True),
            FieldRule("mimetype", ("mime*", "content type", "filtyp", "format"), sign=True),
            FieldRule("content", ("innehall", "content", "data", "blob", "fil", "file", "bild", "dokument")),
        ),
    ),
    EntityRule(
        "access_log",
        ("*logg", "logg*", "log", "*log", "audit*", "atkomst*", "access*", "handelselogg*"),
        (
            FieldRule("user", ("anvandare*", "user*", "login", "signatur", "operator"), sign=True),
            # not a sign: an event column alone (a transfer's, an order's) says nothing of an access log
            FieldRule("event", ("handelse*", "event*", "action", "atgard", "aktivitet")),
            FieldRule("time", _TIME),
        ),
    ),
)

RULES_BY_ENTITY = {r.entity: r for r in ENTITY_RULES}

#: a column of another table that holds the patient's key (besides a foreign key or the key's own name)
PATIENT_LINK = ("pat id", "patid", "patient id", "patientid", "patient", "pat", "pid", "subject id", "person id")
PATIENT_LINK += ("personid", "individ id", "pat nr", "patientnr", "patient nr", "lid")
#: a patient table's one column of the whole name, when it has no given and family name: read as "Family, Given"
FULL_NAME = ("namn", "name", "fullname", "full name", "patientnamn", "patient namn")
#: the patient table's own key, when it declares none
PATIENT_KEY = ("pat id", "patid", "patient id", "patientid", "id", "pid", "subject id", "person id", "lid", "nr")
#: a row marked deleted in the source (integer or boolean columns: 1 / true marks it)
SOFT_DELETED = ("makulerad*", "deleted", "is deleted", "raderad*", "borttagen", "struken", "makul*", "deleted at")
#: a row's own key, when the table declares none
OWN_KEY = ("id", "*id", "* id", "nr", "*nr", "lopnr", "rad id")
#: a text or integer column named so is no time, whatever else its name says ("discharge_location")
NOT_TIME = ("*location", "plats", "*plats", "ort", "typ", "*typ", "type", "*type", "status", "kod", "*kod", "code")
NOT_TIME += ("namn", "name", "id", "* id", "enhet", "unit", "flag*", "text")  # not "*id": "svarstid"
#: fields whose free text deserves the mojibake check (the encoding rule) as well as the XML one
FREE_TEXT = ("text",)
