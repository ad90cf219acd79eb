"""Validation of a column of codes against a code system (:mod:`decommission.plan.code_systems`).

Whole-column work: the pattern by Arrow (RE2), the further checks with numpy. A code is judged
without its fixed-width padding (the caller trims trailing blanks); null is not a code.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from decommission.plan.code_systems import NOT_ICD10, CodeSystem


def valid(system: CodeSystem, codes: pa.Array) -> np.ndarray:
    """One bool per code (text, padding already removed): does it belong to ``system``? Null is not a code."""
    ok = pc.fill_null(pc.match_substring_regex(codes, system.pattern), False)
    if system.codes is not None:
        ok = pc.and_(ok, pc.fill_null(pc.is_in(codes, value_set=pa.array(system.codes, pa.string())), False))
    mask = ok.to_numpy(zero_copy_only=False).copy()
    if system.check == "not_icd9":
        mask &= ~pc.fill_null(pc.match_substring_regex(codes, f"^{NOT_ICD10}"), False).to_numpy(zero_copy_only=False)
    elif system.check == "sctid_concept" and mask.any():
        rows = np.flatnonzero(mask)
        mask[rows] = sctid_concept(np.array(codes.take(pa.array(rows)).to_pylist(), dtype=object))
    return mask


def _verhoeff_tables() -> tuple[np.ndarray, np.ndarray]:
    """Verhoeff's tables from their definitions: multiplication in the dihedral group D5 (rotations
    0-4, reflections 5-9) and the powers of the position permutation."""

    def mul(j: int, k: int) -> int:
        if j < 5:
            return (j + k) % 5 + (5 if k >= 5 else 0)
        return (j - k) % 5 + (0 if k >= 5 else 5)

    d = np.array([[mul(j, k) for k in range(10)] for j in range(10)], dtype=np.int64)
    step = [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]
    p = [list(range(10))]
    for _ in range(7):
        p.append([step[x] for x in p[-1]])
    return d, np.array(p, dtype=np.int64)


_VERHOEFF_D, _VERHOEFF_P = _verhoeff_tables()


def verhoeff_ok(numbers: np.ndarray) -> np.ndarray:
    """Verhoeff check per digit string (check digit last), by length groups with numpy."""
    out = np.zeros(len(numbers), dtype=bool)
    lengths = np.array([len(s) for s in numbers], dtype=np.int64)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        raw = np.frombuffer("".join(numbers[rows]).encode("ascii"), dtype=np.uint8).reshape(-1, int(length))
        digits = raw.astype(np.int64) - 48
        c = np.zeros(len(rows), dtype=np.int64)
        for i in range(int(length)):
            digit = digits[:, int(length) - 1 - i]
            c = _VERHOEFF_D[c, _VERHOEFF_P[i % 8, digit]]
        out[rows] = c == 0
    return out


def sctid_concept(numbers: np.ndarray) -> np.ndarray:
    """A SNOMED CT concept id: a correct Verhoeff digit and a concept partition (``00`` or ``10``)."""
    if not len(numbers):
        return np.zeros(0, dtype=bool)
    partition = np.array([s[-3:-1] for s in numbers], dtype=object)
    return verhoeff_ok(numbers) & np.isin(partition, ["00", "10"])
