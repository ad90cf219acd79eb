"""Fingerprints of the package side: the stylesheet reads record files into the same digests as the records
read one by one, whatever their text holds."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from decommission.package.records import ELEMENTS, NS
from decommission.plan.mapping_spec import load_spec
from decommission.reconcile.package_digests import RecordReader as _RecordReader
from decommission.reconcile.package_digests import owners_of as _owners

REPO = Path(__file__).resolve().parents[3]

RECORD = f"""<?xml version='1.0' encoding='UTF-8'?>
<record xmlns="{NS}" version="1">
  <patient key="7">
    <personalId type="personnummer">197806012832</personalId>
    <givenName>Åsa;12:x</givenName>
    <familyName></familyName>
    <sex>female</sex>
  </patient>
  <cases>
    <case id="23"><careUnit>Avd 3\U0001f600</careUnit><caseType>Öppen
vård&#13;</caseType><startTime>1999-04-06T13:48:44Z</startTime></case>
    <case id=""><caseType>9:a</caseType></case>
  </cases>
  <documents>
    <document id="46" caseId="23"><time>1999-04-06T05:56:48Z</time><title>a=b</title>
      <text>Rad ett.
Rad två &amp; tre &lt;ok&gt;</text></document>
    <document id="47"><text/></document>
  </documents>
</record>
""".encode()


def test_the_stylesheet_gives_the_digests_of_records_read_one_by_one():
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    fast = _RecordReader(spec, _owners(spec, {}))
    fast.read(RECORD)
    slow = _RecordReader(spec, _owners(spec, {}))
    tags = set(slow.tags)
    for node in etree.fromstring(RECORD).iter():
        if node.tag in tags:
            slow._one(node)
    assert sum(fast.rows.values()) == sum(slow.rows.values()) == 5
    assert fast.fp == slow.fp
    assert fast.rows == slow.rows


def test_a_changed_value_changes_the_digest():
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    one, other = _RecordReader(spec, _owners(spec, {})), _RecordReader(spec, _owners(spec, {}))
    one.read(RECORD)
    other.read(RECORD.replace(b"Rad ett.", b"Rad ett!"))
    assert one.fp["journalanteckning"] != other.fp["journalanteckning"]
    assert one.fp["vardkontakt"] == other.fp["vardkontakt"]


def _package(path: Path, records: list[bytes]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for key, record in enumerate(records):
            info = tarfile.TarInfo(f"p/representations/rep1/data/{key}/record.xml")
            info.size = len(record)
            tar.addfile(info, io.BytesIO(record))
    return path


def test_packages_read_in_processes_of_their_own_sum_to_the_same(tmp_path, monkeypatch):
    from decommission.reconcile import package_digests

    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    tars = [
        _package(tmp_path / "a.tar", [RECORD, RECORD.replace(b"Rad ett.", b"Rad ett!")]),
        _package(tmp_path / "b.tar", [RECORD.replace(b'key="7"', b'key="8"')]),
        _package(tmp_path / "c.tar", []),
    ]
    found = {}
    for readers in ("1", "3"):
        monkeypatch.setenv("DECOMMISSION_RECONCILE_PROCESSES", readers)
        parts = package_digests.read_all(spec, [(tar, _owners(spec, {})) for tar in tars])
        found[readers] = [(dict(fp), dict(rows)) for fp, rows in parts]
    assert found["1"] == found["3"]
    assert [sum(rows.values()) for _fp, rows in found["3"]] == [10, 5, 0]


def test_only_an_entity_with_two_field_sets_is_read_record_by_record():
    # the record files hold an empty container for every entity (<orders></orders>): only an element's own
    # start tag may send a record file past the stylesheet
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    assert _RecordReader(spec, _owners(spec, {})).mixed == []
    hospital = load_spec(REPO / "include" / "mappings" / "sjukhus.yaml")
    start_tags = {f"<{element}{end}".encode() for _container, element in ELEMENTS.values() for end in " >"}
    assert set(_RecordReader(hospital, _owners(hospital, {})).mixed) <= start_tags


class _Run:
    def __init__(self, spec, folder):
        self.spec, self.folder = spec, folder

    def out(self, kind):
        return self.folder / kind


def test_package_fingerprints_come_from_the_validation_of_the_same_bytes_else_from_the_package(tmp_path, monkeypatch):
    from decommission.reconcile import breakdown

    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    (tmp_path / "packages").mkdir()
    _package(tmp_path / "packages" / "a.tar", [RECORD])
    read_back = _RecordReader(spec, _owners(spec, {}))
    read_back.read(RECORD)
    digests = {"fingerprints": {"patient": "0000000000000005"}, "rows": {"patient": 1}}
    ledger = {
        "package": {"a": {"sha256": "aa"}, "b": {"sha256": "bb"}},  # no partition: one table per entity
        "validation": {"a": {"sha256": "aa", "valid": True, "digests": digests}, "b": {"sha256": "bb", "valid": True}},
    }
    monkeypatch.setattr(breakdown, "from_ledger", lambda run, kind, key: ledger[kind])
    run = _Run(spec, tmp_path)
    # package "b" has no tar here: the validation's digests are used, the package is not opened
    fp, rows, how = breakdown._package_fingerprints(run, spec, ["a"])
    assert (fp, rows, how) == ({"patient": 5}, {"patient": 1}, {"from_validation": 1, "read_back": 0})
    # validated bytes that are not the built ones, a package that failed validation, or no digests: read back
    for changed in ({"sha256": "other"}, {"valid": False}, {"digests": None}):
        entry = {**ledger["validation"]["a"], **changed}
        if entry["digests"] is None:
            del entry["digests"]
        monkeypatch.setitem(ledger["validation"], "a", entry)
        fp, rows, how = breakdown._package_fingerprints(run, spec, ["a"])
        assert how == {"from_validation": 0, "read_back": 1}, changed
        assert fp == {t: v % 2**64 for t, v in read_back.fp.items()} and rows == read_back.rows
