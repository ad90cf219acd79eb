from __future__ import annotations

import pytest

from decommission.reconcile.checks import FAIL, PASS, draw_sample, reconcile

TABLES = {"patient": "patient", "anteckning": "document"}
PARTS = [
    {
        "extracted": {"patient": 3, "anteckning": 10},
        "mapped": {"patient": 3, "anteckning": 8},
        "quarantined": {"anteckning": {"SOFT_DELETED": 2}},
    },
    {
        "extracted": {"patient": 2, "anteckning": 5},
        "mapped": {"patient": 1, "anteckning": 3},
        "quarantined": {"patient": {"ID_INVALID_CHECKSUM": 1}, "anteckning": {"PATIENT_QUARANTINED": 2}},
    },
]
PACKAGES = [
    {"package_id": "a", "counts": {"patient": 3, "document": 8}},
    {"package_id": "b", "counts": {"patient": 1, "document": 3}},
]
RECEIPTS = {
    "a": {"status": "accepted", "counts": {"patient": 3, "document": 8}},
    "b": {"status": "accepted", "counts": {"patient": 1, "document": 3}},
}


def run(**overrides):
    args = {
        "table_entity": TABLES,
        "source": {"patient": 5, "anteckning": 15},
        "mapped_parts": PARTS,
        "packages": PACKAGES,
        "receipts": RECEIPTS,
        "sample": [{"match": True}],
    }
    return reconcile(**(args | overrides))


class TestReconcile:
    def test_all_identities_hold(self):
        result = run()
        assert result["verdict"] == PASS, result["reasons"]
        assert result["quarantine_by_reason"] == {"ID_INVALID_CHECKSUM": 1, "PATIENT_QUARANTINED": 2, "SOFT_DELETED": 2}
        assert result["totals"] == {"source": 20, "archived": 15, "quarantined": 5}

    @pytest.mark.parametrize(
        ("override", "reason"),
        [
            ({"source": {"patient": 6, "anteckning": 15}}, "source = extracted fails for patient: 6 against 5"),
            (
                {"receipts": {**RECEIPTS, "b": {"status": "rejected", "counts": {}}}},
                "package b rejected by the archive",
            ),
            (
                {"receipts": {**RECEIPTS, "a": {"status": "accepted", "counts": {"patient": 3, "document": 7}}}},
                "packaged = accepted fails for document: 11 against 10",
            ),
            ({"sample": [{"match": True}, {"match": False}]}, "1 of 2 sampled patients differ"),
        ],
        ids=["source-count", "rejected", "archive-count", "sample"],
    )
    def test_each_difference_fails_with_its_reason(self, override, reason):
        result = run(**override)
        assert result["verdict"] == FAIL
        assert any(reason in r for r in result["reasons"]), result["reasons"]

    def test_sample_is_repeatable_from_its_seed(self):
        population = [("p1", str(i)) for i in range(100)]
        assert draw_sample(population, 5, 42) == draw_sample(list(reversed(population)), 5, 42)
        assert draw_sample(population, 5, 42) != draw_sample(population, 5, 43)
        assert len(draw_sample(population[:3], 5, 1)) == 3
