"""Reconciliation: does the archive hold everything the source had, or is each difference explained?

Pure functions over counts gathered by the stages. Identities checked per table and
entity: ``source = extracted``, ``extracted = archived + disposed`` (archived: mapped as
it is, flagged or corrected; disposed: left out under a recorded decision), ``mapped =
packaged`` and ``packaged = accepted`` (a patient made to hold orphans' rows counts as
mapped); a read-back sample compares what the archive returns with what was sent.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PASS, PASS_WITH_WAIVER, FAIL = "PASS", "PASS_WITH_WAIVER", "FAIL"
_REASON_KEYS = ("requirement", "path", "message")


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
    """Draw ``size`` (package_id, patient_key) pairs, at least one from every package; same seed, same sample."""
    ordered = sorted(patients)
    rng = random.Random(seed)
    by_package: dict[str, list[tuple[str, str]]] = {}
    for pair in ordered:
        by_package.setdefault(pair[0], []).append(pair)
    first = [rng.choice(members) for _, members in sorted(by_package.items())]
    chosen = set(first)
    rest = [pair for pair in ordered if pair not in chosen]
    return sorted(first + rng.sample(rest, max(0, min(size - len(first), len(rest)))))


def detection_chance(n: int, population: int, share: float) -> float:
    """The chance that ``n`` patients drawn without replacement include one of ``share`` damaged ones."""
    if not population or n <= 0:
        return 0.0
    damaged = max(1, math.ceil(share * population))
    if n > population - damaged:
        return 1.0
    return 1 - math.comb(population - damaged, n) / math.comb(population, n)


def sample_size_for(population: int, share: float, confidence: float) -> int:
    """The smallest sample that catches damage in ``share`` of ``population`` with ``confidence`` (bisection)."""
    lo, hi = 0, population
    while lo < hi:
        mid = (lo + hi) // 2
        if detection_chance(mid, population, share) >= confidence:
            hi = mid
        else:
            lo = mid + 1
    return lo


def sample_justification(size: int, population: int) -> dict[str, Any]:
    """Why ``size`` patients of ``population`` is enough: the chance the sample catches a damaged share.

    With ``d`` damaged patients among ``N`` and ``n`` drawn without replacement, the chance that
    at least one is drawn is ``1 - C(N-d, n) / C(N, n)`` (hypergeometric). With no mismatch found,
    the damaged share is below ``1 - 0.05 ** (1/n)`` at 95 % confidence.
    """
    n = min(size, population)
    detect = {}
    for share in (0.01, 0.05, 0.10):
        d = max(1, math.ceil(share * population)) if population else 0
        miss = math.comb(population - d, n) / math.comb(population, n) if population and n <= population - d else 0.0
        detect[f"{int(share * 100)}%"] = round(1 - miss, 4) if population else 0.0
    return {
        "drawn": n,
        "population": population,
        "share_checked": round(n / population, 4) if population else 0.0,
        "chance_to_detect_damaged_share": detect,
        "upper_bound_95": round(1 - 0.05 ** (1 / n), 4) if n else 1.0,
    }


def apply_waivers(checks: list[Check], waivers: Iterable[Mapping[str, Any]]) -> tuple[list[Check], list[dict]]:
    """Split failing checks into those still failing and those an explicit waiver accepts.

    A waiver accepts one check (name and scope) differing by exactly ``rows`` (left minus right);
    any other difference still fails, so a waiver never hides a new loss.
    """
    waivers = list(waivers)
    failing, waived = [], []
    for c in checks:
        if c.ok:
            continue
        match = next(
            (w for w in waivers if (w["check"], w["scope"], int(w["rows"])) == (c.name, c.scope, c.left - c.right)),
            None,
        )
        if match is None:
            failing.append(c)
        else:
            waived.append({**c.to_dict(), "waiver": dict(match)})
    return failing, waived


#: the classes of rows with a finding, as the mapping counts them (MapResult)
CLASSES = ("flagged", "corrected", "disposed")


def reconcile(
    *,
    table_entity: Mapping[str, str],
    source: Mapping[str, int],
    mapped_parts: Iterable[Mapping[str, Any]],
    packages: Iterable[Mapping[str, Any]],
    receipts: Mapping[str, Mapping[str, Any]],
    sample: list[Mapping[str, Any]],
    waivers: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Compare every stage's counts and return the reconciliation result (JSON-ready)."""
    mapped_parts = list(mapped_parts)
    packages = list(packages)
    extracted = sum_counts(p["extracted"] for p in mapped_parts)
    mapped = sum_counts(p["mapped"] for p in mapped_parts)
    by_class: dict[str, dict[str, dict[str, int]]] = {
        kind: {t: sum_counts(p.get(kind, {}).get(t, {}) for p in mapped_parts) for t in table_entity}
        for kind in (*CLASSES, "uncorrected")
    }
    placeholders = sum(int(p.get("placeholders", 0)) for p in mapped_parts)
    checks: list[Check] = []
    tables = {}
    for t, entity in table_entity.items():
        disposed = sum(by_class["disposed"][t].values())
        checks.append(Check("source = extracted", t, source.get(t, 0), extracted.get(t, 0)))
        checks.append(Check("extracted = archived + disposed", t, extracted.get(t, 0), mapped.get(t, 0) + disposed))
        tables[t] = {
            "entity": entity,
            "source": source.get(t, 0),
            "extracted": extracted.get(t, 0),
            "archived": mapped.get(t, 0),
            **{kind: by_class[kind][t] for kind in (*CLASSES, "uncorrected")},
            **{f"{kind}_total": sum(by_class[kind][t].values()) for kind in CLASSES},
        }

    mapped_entity: Counter[str] = Counter()
    for t, entity in table_entity.items():
        mapped_entity[entity] += mapped.get(t, 0)
    if placeholders:
        mapped_entity["patient"] += placeholders
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
    failing, waived = apply_waivers(checks, waivers)
    reasons = [f"{c.name} fails for {c.scope}: {c.left} against {c.right}" for c in failing]
    rejections = []
    for p in packages:
        receipt = receipts.get(p["package_id"], {})
        if receipt.get("status") == "accepted":
            continue
        if receipt.get("status") == "rejected":
            found = receipt.get("reasons") or [{}]
            for r in found:
                rejections.append({"package_id": p["package_id"], **{k: str(r.get(k, "")) for k in _REASON_KEYS}})
                reasons.append(
                    f"package {p['package_id']} rejected by the archive: "
                    f"{r.get('requirement', '')} {r.get('path', '')}: {r.get('message', '')}".replace("  ", " ")
                )
        else:
            reasons.append(
                f"package {p['package_id']} has no ingest receipt of acceptance ({receipt.get('status', 'missing')})"
            )
    mismatches = [s for s in sample if not s["match"]]
    if mismatches:
        fields = sum(len(s.get("differences", [])) for s in mismatches)
        reasons.append(
            f"read-back sample: {len(mismatches)} of {len(sample)} sampled patients differ from the source "
            f"({fields} field differences)"
        )
    by_reason = {kind: sum_counts(by_class[kind][t] for t in table_entity) for kind in CLASSES}
    return {
        "verdict": FAIL if reasons else PASS_WITH_WAIVER if waived else PASS,
        "reasons": reasons,
        "waived": waived,
        "rejections": rejections,
        "tables": tables,
        "entities": entities,
        "checks": [c.to_dict() for c in checks],
        "packages": {"count": len(packages), **dict(sorted(statuses.items()))},
        "findings_by_reason": sum_counts(by_reason.values()),
        "by_reason": by_reason,
        "placeholders": placeholders,
        "totals": {
            "source": sum(source.get(t, 0) for t in table_entity),
            "extracted": sum(extracted.get(t, 0) for t in table_entity),
            # source rows in the archive (as they are, flagged or corrected), not the placeholders
            "archived": sum(mapped.get(t, 0) for t in table_entity),
            **{kind: sum(by_reason[kind].values()) for kind in CLASSES},
            "accepted": sum(accepted.values()),
        },
        "sample": {"checked": len(sample), "mismatches": mismatches},
    }
