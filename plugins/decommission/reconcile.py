"""Reconciliation: does the archive hold everything the source had, or is each difference explained?

Pure functions over counts gathered by the stages. Identities checked per table and
entity: ``source = extracted``, ``extracted = mapped + quarantined``, ``mapped =
packaged`` and ``packaged = accepted``; a read-back sample compares what the archive
returns with what was sent.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PASS, FAIL = "PASS", "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    scope: str
    left: int
    right: int

    @property
    def ok(self) -> bool:
        return self.left == self.right

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scope": self.scope, "left": self.left, "right": self.right, "ok": self.ok}


def sum_counts(items: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for item in items:
        total.update(item)
    return dict(sorted(total.items()))


def draw_sample(patients: list[tuple[str, str]], size: int, seed: int) -> list[tuple[str, str]]:
    """Draw ``size`` (package_id, patient_key) pairs with a recorded seed; same seed, same sample."""
    ordered = sorted(patients)
    return random.Random(seed).sample(ordered, min(size, len(ordered)))


def reconcile(
    *,
    table_entity: Mapping[str, str],
    source: Mapping[str, int],
    mapped_parts: Iterable[Mapping[str, Any]],
    packages: Iterable[Mapping[str, Any]],
    receipts: Mapping[str, Mapping[str, Any]],
    sample: list[Mapping[str, Any]],
) -> dict[str, Any]:
    """Compare every stage's counts and return the reconciliation result (JSON-ready)."""
    mapped_parts = list(mapped_parts)
    packages = list(packages)
    extracted = sum_counts(p["extracted"] for p in mapped_parts)
    mapped = sum_counts(p["mapped"] for p in mapped_parts)
    quarantined: dict[str, dict[str, int]] = {
        t: sum_counts(p["quarantined"].get(t, {}) for p in mapped_parts) for t in table_entity
    }
    checks: list[Check] = []
    tables = {}
    for t, entity in table_entity.items():
        q = sum(quarantined[t].values())
        checks.append(Check("source = extracted", t, source.get(t, 0), extracted.get(t, 0)))
        checks.append(Check("extracted = mapped + quarantined", t, extracted.get(t, 0), mapped.get(t, 0) + q))
        tables[t] = {
            "entity": entity,
            "source": source.get(t, 0),
            "extracted": extracted.get(t, 0),
            "mapped": mapped.get(t, 0),
            "quarantined": quarantined[t],
            "quarantined_total": q,
        }

    mapped_entity: Counter[str] = Counter()
    for t, entity in table_entity.items():
        mapped_entity[entity] += mapped.get(t, 0)
    packaged = sum_counts(p["counts"] for p in packages)
    accepted_receipts = [r for r in receipts.values() if r.get("status") == "accepted"]
    accepted = sum_counts(r.get("counts", {}) for r in accepted_receipts)
    entities = {}
    for entity in sorted(set(mapped_entity) | set(packaged)):
        checks.append(Check("mapped = packaged", entity, mapped_entity.get(entity, 0), packaged.get(entity, 0)))
        checks.append(Check("packaged = accepted", entity, packaged.get(entity, 0), accepted.get(entity, 0)))
        entities[entity] = {
            "mapped": mapped_entity.get(entity, 0),
            "packaged": packaged.get(entity, 0),
            "accepted": accepted.get(entity, 0),
        }

    statuses = Counter(receipts.get(p["package_id"], {}).get("status", "missing") for p in packages)
    reasons = [f"{c.name} fails for {c.scope}: {c.left} against {c.right}" for c in checks if not c.ok]
    if statuses.get("accepted", 0) != len(packages):
        reasons.append(f"{len(packages) - statuses.get('accepted', 0)} of {len(packages)} packages not accepted")
    mismatches = [s for s in sample if not s["match"]]
    if mismatches:
        reasons.append(f"{len(mismatches)} of {len(sample)} sampled patients differ from what was sent")
    by_reason = sum_counts(quarantined.values())
    return {
        "verdict": FAIL if reasons else PASS,
        "reasons": reasons,
        "tables": tables,
        "entities": entities,
        "checks": [c.to_dict() for c in checks],
        "packages": {"count": len(packages), **dict(sorted(statuses.items()))},
        "quarantine_by_reason": by_reason,
        "totals": {
            "source": sum(source.get(t, 0) for t in table_entity),
            "archived": sum(accepted.values()),
            "quarantined": sum(by_reason.values()),
        },
        "sample": {"checked": len(sample), "mismatches": mismatches},
    }
