from __future__ import annotations

import pytest

from decommission.reconcile.checks import FAIL, PASS, draw_sample, reconcile

TABLES = {"patient": "patient", "anteckning": "document"}
PARTS = [
    {
        "extracted": {"patient": 3, "anteckning": 10},
        "mapped": {"patient": 3, "anteckning": 8},
        "flagged": {"anteckning": {"ORPHAN": 1}},
        "disposed": {"anteckning": {"SOFT_DELETED": 2}},
        "placeholders": 1,
    },
    {
        "extracted": {"patient": 2, "anteckning": 5},
        "mapped": {"patient": 1, "anteckning": 3},
        "corrected": {"anteckning": {"CODE_INVALID": 1}},
        "disposed": {"patient": {"ID_INVALID_CHECKSUM": 1}, "anteckning": {"PATIENT_DISPOSED": 2}},
    },
]
PACKAGES = [
    {"package_id": "a", "counts": {"patient": 4, "document": 8}},
    {"package_id": "b", "counts": {"patient": 1, "document": 3}},
]
RECEIPTS = {
    "a": {"status": "accepted", "counts": {"patient": 4, "document": 8}},
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
        assert result["by_reason"] == {
            "flagged": {"ORPHAN": 1},
            "corrected": {"CODE_INVALID": 1},
            "disposed": {"ID_INVALID_CHECKSUM": 1, "PATIENT_DISPOSED": 2, "SOFT_DELETED": 2},
        }
        # source rows archived (15) + disposed (5) = source (20); the placeholder patient is accepted, not a source row
        assert result["totals"] == {
            "source": 20,
            "extracted": 20,
            "archived": 15,
            "flagged": 1,
            "corrected": 1,
            "disposed": 5,
            "accepted": 16,
        }
        assert result["tables"]["anteckning"]["disposed"] == {"PATIENT_DISPOSED": 2, "SOFT_DELETED": 2}
        assert result["entities"]["patient"] == {"mapped": 5, "packaged": 5, "accepted": 5}

    def test_a_row_neither_archived_nor_disposed_fails(self):
        lost = [PARTS[0] | {"disposed": {"anteckning": {"SOFT_DELETED": 1}}}, PARTS[1]]
        result = run(mapped_parts=lost)
        assert result["verdict"] == FAIL
        assert "extracted = archived + disposed fails for anteckning: 15 against 14" in result["reasons"]

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


class TestSampleGoal:
    def test_the_size_meets_the_goal_and_no_smaller_does(self) -> None:
        from decommission.reconcile.checks import detection_chance, sample_size_for

        for population in (20, 300, 6000):
            n = sample_size_for(population, 0.01, 0.95)
            assert detection_chance(n, population, 0.01) >= 0.95 > detection_chance(n - 1, population, 0.01)

    def test_damage_in_one_percent_of_6000_patients_needs_about_300(self) -> None:
        from decommission.reconcile.checks import sample_size_for

        assert 280 <= sample_size_for(6000, 0.01, 0.95) <= 300

    def test_one_patient_per_package_at_least(self) -> None:
        from decommission.reconcile.checks import draw_sample

        patients = [(f"pkg-{p}", f"{k:04d}") for p in range(5) for k in range(50)]
        drawn = draw_sample(patients, 2, seed=7)
        assert {p for p, _ in drawn} == {f"pkg-{p}" for p in range(5)}
        assert draw_sample(patients, 2, seed=7) == drawn
