"""The tables of the hospital-shaped demo system ``sjukhus``: two schemas, 21 tables, their types and keys.

``adt`` (patient administration, English names as the supplier's system had them) and ``klinik``
(the clinical part, Swedish names). Codes are ``char(n)``; a few tables have a composite key. On
SQLite the two schemas are two files: ``<target>`` holds ``adt`` and :func:`klinik_path` the other.
"""

from __future__ import annotations

from pathlib import Path

from demo.writers import Table

ADT, KLINIK = "adt", "klinik"


def _cols(spec: str) -> tuple[tuple[str, str, str], ...]:
    types = {
        "i": ("INTEGER", "integer"),
        "t": ("TEXT", "text"),
        "ts": ("TEXT", "timestamp"),
        "d": ("TEXT", "date"),
        "c6": ("CHAR(6)", "char(6)"),
        "c7": ("CHAR(7)", "char(7)"),
    }
    return tuple((name, *types[kind]) for name, kind in (item.split(":") for item in spec.split()))


#: schema -> its tables; the first column is the key unless ``primary_key`` says otherwise
TABLES: dict[str, tuple[Table, ...]] = {
    ADT: (
        Table(
            "patient",
            _cols(
                "patient_id:i pnr:t given_name:t family_name:t sex:t birth_date:d protected:i "
                "death_date:d death_cause:c7"
            ),
            None,
        ),
        Table(
            "encounter",
            _cols(
                "encounter_id:i patient_id:i unit_code:c6 admission_type:t admit_source:t discharge_to:t "
                "admit_time:ts discharge_time:ts"
            ),
            "patient_id",
        ),
        Table(
            "transfer",
            _cols("transfer_id:i encounter_id:i patient_id:i event:t unit_code:c6 in_time:ts out_time:ts"),
            "patient_id",
        ),
        Table("access_log", _cols("log_id:i patient_id:i user_id:t action:t logged_at:ts"), "patient_id"),
        Table("care_unit", _cols("unit_code:c6 name:t hsa_id:t"), None),
        Table("staff", _cols("user_id:t name:t title:t"), None),
        Table("admission_type", _cols("code:t description:t"), None),
    ),
    KLINIK: (
        Table(
            "diagnos",
            _cols("vtf_id:i radnr:i kod:c7 kodverk:t rang:t diagnostext:t reg_tid:ts"),
            None,
            primary_key=("vtf_id", "radnr"),
        ),
        Table(
            "atgard",
            _cols("vtf_id:i radnr:i kod:c6 kodverk:t beskrivning:t vardenhet:t start_tid:ts slut_tid:ts"),
            None,
            primary_key=("vtf_id", "radnr"),
        ),
        Table(
            "provtagning", _cols("prov_id:i patient_id:i vtf_id:i provtid:ts provmaterial:t bestallare:t"), "patient_id"
        ),
        Table(
            "labsvar",
            _cols("prov_id:i rad:i analys_id:t varde:t enhet:t ref_lag:t ref_hog:t flagga:t svarstid:ts status:t"),
            None,
            primary_key=("prov_id", "rad"),
        ),
        Table("labanalys", _cols("analys_id:t npu_kod:t namn:t enhet:t ref_lag:t ref_hog:t"), None),
        Table(
            "vitalparameter",
            _cols("obs_id:i patient_id:i vtf_id:i parameter:t varde:t enhet:t mattid:ts avvikande:t"),
            "patient_id",
        ),
        Table("vitalparameter_def", _cols("parameter:t namn:t enhet:t ref_lag:t ref_hog:t"), None),
        Table(
            "ordination",
            _cols(
                "ord_id:i patient_id:i vtf_id:i atc:c7 preparat:t dos:t enhet:t administrationsvag:t frekvens:t "
                "start_tid:ts stopp_tid:ts"
            ),
            "patient_id",
        ),
        Table(
            "administrering",
            _cols("adm_id:i ord_id:i patient_id:i given_tid:ts dos:t enhet:t given_av:t"),
            "patient_id",
        ),
        Table(
            "bestallning",
            _cols(
                "best_id:i patient_id:i vtf_id:i typ:t kod:t beskrivning:t bestallande_enhet:t utforande_enhet:t "
                "status:t bestalld_tid:ts klar_tid:ts"
            ),
            "patient_id",
        ),
        Table(
            "remiss",
            _cols(
                "remiss_id:i patient_id:i fran_enhet:t till_enhet:t fragestallning:t skickad_tid:ts "
                "besvarad_tid:ts status:t"
            ),
            "patient_id",
        ),
        Table(
            "anteckning",
            _cols("ant_id:i patient_id:i vtf_id:i typ:t skriven_tid:ts text:t signerad_av:t makulerad:i"),
            "patient_id",
        ),
        Table("anteckningstyp", _cols("typ:t namn:t"), None),
        Table("kodverk", _cols("kodverk:t namn:t oid:t"), None),
    ),
}
SCHEMA_OF = {t.name: schema for schema, tables in TABLES.items() for t in tables}
ALL_TABLES = tuple(t for tables in TABLES.values() for t in tables)


def klinik_path(target: str | Path) -> Path:
    """The SQLite file of schema ``klinik`` beside ``<target>`` (which holds ``adt``)."""
    target = Path(target)
    return target.with_name(f"{target.stem}.{KLINIK}{target.suffix}")
