"""Packages made by other E-ARK tools are accepted as folder, tar or zip; a broken zip fails closed.

The package under test is written by hand from the specifications' structure (``handmade.py``),
not by our packager, and the E-ARK reference validator (eark-validator, its own venv) is asked
to agree that it is valid.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from decommission.validate import package_source
from decommission.validate.limits import Limits
from tests.decommission.validate import handmade
from tests.decommission.validate.test_eark_validator import EARK_PYTHON, _tolerated, run_eark
from tests.decommission.validate.test_fail_closed import GIB, findings, only_problem, validate_within


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return handmade.write_folder(tmp_path / "folder")


def as_container(folder: Path, container: str, target_dir: Path) -> Path:
    if container == "folder":
        return folder
    if container == "zip":
        return handmade.write_zip(folder, target_dir / f"{folder.name}.zip")
    target = target_dir / f"{folder.name}.tar"
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(folder, arcname=folder.name)
    return target


CONTAINERS = pytest.mark.parametrize("container", ["folder", "tar", "zip"])


class TestHandmadePackage:
    @CONTAINERS
    def test_a_hand_made_package_is_valid(self, folder, tmp_path, container):
        report = validate_within(as_container(folder, container, tmp_path))
        assert report.ok, report.to_text()
        assert report.package_id == handmade.OBJID

    @CONTAINERS
    def test_schema_files_need_no_reference_but_other_files_do(self, folder, tmp_path, container):
        (folder / "representations/rep1/schemas").mkdir()
        (folder / "representations/rep1/schemas/local.xsd").write_text("<x/>")
        (folder / "documentation/unlisted.txt").write_text("x")
        report = validate_within(as_container(folder, container, tmp_path))
        assert [(p.requirement, p.path) for p in report.problems] == [("EXTRA-FILE", "documentation/unlisted.txt")]
        assert handmade.UNREFERENCED_SCHEMA not in report.to_text()

    @CONTAINERS
    def test_a_changed_data_file_is_still_caught(self, folder, tmp_path, container):
        data = next(iter(handmade.DATA))
        (folder / data).write_text((folder / data).read_text().upper())  # same size, other bytes
        report = validate_within(as_container(folder, container, tmp_path))
        assert {("FIXITY", data), ("PREMIS", data)} <= findings(report)

    @pytest.mark.parametrize("container", ["folder", "zip"])
    def test_the_reference_validator_agrees(self, folder, tmp_path, container):
        if not EARK_PYTHON.exists():
            pytest.skip("eark-validator's venv is missing: run `make eark-venv`")
        report = run_eark(as_container(folder, container, tmp_path))
        assert report["structure"]["status"] == "WellFormed", report["structure"]
        assert report["metadata"]["schema_results"]["status"] == "VALID", report["metadata"]["schema_results"]
        root = etree.parse(str(folder / "METS.xml")).getroot()
        errors = [m for m in report["metadata"]["schematron_results"]["messages"] if m["severity"] == "Error"]
        assert [f"{m['rule_id']} at {m.get('location')}" for m in errors if not _tolerated(m, root)] == []


def rezip(source: Path, target: Path, rename=lambda name: name, **options) -> Path:
    """Copy a zip member by member, names changed by ``rename``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", **options) as new:
        for info in old.infolist():
            new.writestr(rename(info.filename), old.read(info))
    return target


class TestBrokenZip:
    @pytest.fixture
    def packed(self, folder: Path, tmp_path: Path) -> Path:
        return handmade.write_zip(folder, tmp_path / "package.zip")

    @pytest.mark.parametrize(
        ("rename", "expected"),
        [
            pytest.param(
                lambda n: n.replace(f"{handmade.OBJID}/documentation", "other/documentation"), "LAYOUT", id="two-roots"
            ),
            pytest.param(
                lambda n: n.replace(f"{handmade.OBJID}/documentation/", f"{handmade.OBJID}/../"), "LAYOUT", id="escapes"
            ),
        ],
    )
    def test_a_zip_with_a_bad_layout_is_refused(self, packed, tmp_path, rename, expected):
        report = validate_within(rezip(packed, tmp_path / "bad.zip", rename))
        assert not report.ok and expected in {p.requirement for p in report.problems}, report.to_text()

    def test_a_truncated_zip_is_a_finding(self, packed, tmp_path):
        target = tmp_path / "truncated.zip"
        target.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
        assert only_problem(validate_within(target)) == ("LAYOUT", "truncated.zip", "not a readable zip (BadZipFile)")

    def test_a_damaged_member_is_a_finding(self, packed, tmp_path):
        target = rezip(packed, tmp_path / "stored.zip", compression=zipfile.ZIP_STORED)
        data = bytearray(target.read_bytes())
        at = data.index(b"Synthetic journal note, patient B")
        data[at] ^= 0x20  # the CRC-32 no longer matches
        target.write_bytes(bytes(data))
        report = validate_within(target)
        assert ("LAYOUT", "representations/rep1/data/patient-B/journal.txt") in findings(report), report.to_text()
        assert report.problems[-1].message == "cannot be read from the container (BadZipFile)"

    def test_an_encrypted_member_is_a_finding(self, packed, tmp_path):
        data = bytearray(packed.read_bytes())
        name = f"{handmade.OBJID}/documentation/about.txt".encode()
        for signature, flags in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central header
            data[_header_of(data, signature, name) + flags] |= 0x01
        target = tmp_path / "encrypted.zip"
        target.write_bytes(bytes(data))
        report = validate_within(target)
        assert ("LAYOUT", f"{handmade.OBJID}/documentation/about.txt") in findings(report), report.to_text()

    def test_a_member_declared_over_the_size_limit_is_refused_unread(self, packed, tmp_path):
        data = bytearray(packed.read_bytes())
        name = f"{handmade.OBJID}/documentation/about.txt".encode()
        at = _header_of(data, b"PK\x01\x02", name)
        data[at + 24 : at + 28] = (3 * GIB).to_bytes(4, "little")  # a bomb: 3 GiB once inflated
        target = tmp_path / "bomb.zip"
        target.write_bytes(bytes(data))
        report = validate_within(target, limits=Limits(max_member_bytes=GIB))
        assert only_problem(report) == (
            "LIMIT",
            "documentation/about.txt",
            f"{3 * GIB} bytes: larger than the limit of {GIB} bytes per file",
        )


def _header_of(data: bytearray, signature: bytes, name: bytes) -> int:
    """Where the zip header (local or central) of the member ``name`` starts."""
    name_at = {b"PK\x03\x04": 30, b"PK\x01\x02": 46}[signature]
    at = data.find(signature)
    while at >= 0:
        if data[at + name_at : at + name_at + len(name)] == name:
            return at
        at = data.find(signature, at + 4)
    raise AssertionError(f"no {signature!r} header for {name!r}")


class TestZipDirectory:
    def test_a_zip_directory_over_the_bound_is_refused_unread(self, folder, tmp_path, monkeypatch):
        # zipfile holds the whole central directory and an object per entry: a tar is streamed instead
        monkeypatch.setattr(package_source, "MAX_ZIP_DIRECTORY", 1_000)
        packed = handmade.write_zip(folder, tmp_path / "many.zip")
        requirement, path, message = only_problem(validate_within(packed))
        assert (requirement, path) == ("LIMIT", "many.zip")
        assert message.endswith("more than the 1000 read (about 130 000 files): deliver a package this large as a tar")
