"""The reconciliation counted per partition: key ranges no partition covers, tallies as plain data that
add up to the same counts, and a kept tally used only when its file is the one the ledger recorded."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from decommission.reconcile import breakdown
from decommission.source.database import make_partitions


def _ranges(parts):
    return [(p.lo, p.hi) for p in parts]


def test_the_ranges_no_partition_covers_are_found_between_and_beyond_them():
    plan = make_partitions(list(range(1, 101)), 25)  # [None,26) [26,51) [51,76) [76,None)
    assert breakdown._gaps(plan) == []
    assert _ranges(breakdown._gaps([plan[0], plan[3]])) == [(26, 76)]
    assert _ranges(breakdown._gaps([plan[1], plan[2]])) == [(None, 26), (76, None)]
    assert _ranges(breakdown._gaps([plan[3], plan[1]])) == [(None, 26), (51, 76)]
    # nothing extracted at all: the whole source is read on the source side
    assert _ranges(breakdown._gaps([])) == [(None, None)]
    # the partition ids of the gaps cannot be taken for a run's partitions (p0001 ...)
    assert all(not g.id.startswith("p") for g in breakdown._gaps([plan[1]]))


def test_a_tally_as_plain_data_reads_back_to_the_same_counters_and_adds_up():
    side = {kind: Counter() for kind in breakdown._KINDS}
    side["year"][("diagnos", "2019")] = 3
    side["unit_flagged"][("vardkontakt", "Avd 3")] = 1
    side["patient"]["17"] = 4
    side["fp"]["diagnos"] = 2**64 - 1
    side["fp_rows"]["diagnos"] = 3
    plain = json.loads(json.dumps(breakdown._plain(side)))
    assert breakdown._counters(plain) == side
    merged = breakdown._merged([breakdown._counters(plain), breakdown._counters(plain)])
    assert merged["year"][("diagnos", "2019")] == 6 and merged["patient"]["17"] == 8
    assert merged["fp"]["diagnos"] == (2 * (2**64 - 1)) % 2**64  # a sum modulo 2**64, as one pass gives


class _Run:
    def __init__(self, folder):
        self.folder = folder

        class _M:
            value = "test_delivery"

        self.milestone = _M()

    def out(self, kind):
        return self.folder / kind


def test_a_kept_tally_counts_only_when_its_file_is_the_one_the_ledger_recorded(tmp_path, monkeypatch):
    run = _Run(tmp_path)
    tally = {"partition": "p0001", "source": {}, "extracted": {}, "id_collisions": []}
    data = json.dumps(tally).encode()
    path = breakdown.tally_path(run, "p0001")
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    ledger = {"p0001": {"sha256": hashlib.sha256(data).hexdigest()}, "p0002": {"sha256": "00"}}
    monkeypatch.setattr(breakdown, "from_ledger", lambda run, kind, key: ledger)
    # p0002's file does not exist, p0003 has no entry: both are counted by the reconcile task itself
    assert breakdown.kept_tallies(run, ["p0001", "p0002", "p0003"]) == {"p0001": tally}
    path.write_bytes(data.replace(b"p0001", b"p0009"))  # changed after the ledger recorded it
    assert breakdown.kept_tallies(run, ["p0001"]) == {}
