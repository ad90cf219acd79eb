"""The sign-off form's words: Swedish, signers by name, what approving leads to."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from decommission.evidence.signoff import consequence, signoff_intro, signoff_subject
from decommission.plan.programme import load_plan

REPO = Path(__file__).resolve().parents[3]


def _vas():
    return load_plan(REPO / "include" / "programme.yaml").system("vas")


def test_subject_names_the_role_and_the_system_in_swedish():
    assert (
        signoff_subject(_vas(), "archivist") == "Signering som arkivarie: avveckling av VAS – Vårdadministrativt system"
    )


def test_intro_names_supplier_agreement_archive_and_access_log():
    text = signoff_intro(_vas())
    assert "Leverantör **Region Norrbotten IT" in text and "4\u00a0200\u00a0000 kr per år" in text
    assert "Leveransöverenskommelse LO-2025-VAS-01 till arkivets mellanarkiv" in text
    assert "Åtkomstloggen arkiveras (atkomstlogg)" in text


def test_what_approving_leads_to():
    text = consequence(_vas(), dt.date(2025, 9, 10))
    assert "uppsägning kan ske från 2025-09-10" in text
    assert "avtalet upphör då tidigast 2026-09-10 (planerat 2026-06-30: 72 dagar senare)" in text
    assert "årskostnaden 4\u00a0200\u00a0000 kr upphör" in text
