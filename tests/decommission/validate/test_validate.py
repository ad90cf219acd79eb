"""Tests of the package validator and its command line: valid packages pass, each corruption is named."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from lxml import etree

from decommission.__main__ import main
from decommission.package import mets, premis, records, sip
from decommission.validate import tarindex
from decommission.validate.validator import Problem, ValidationReport, validate_package
from tests.decommission.fixtures import make_context, write_mapped

ROOT = Path(__file__).resolve().parents[3]
NS = {"mets": mets.METS_NS, "xlink": mets.XLINK_NS, "premis": premis.PREMIS_NS, "r": records.NS}
ATTACHMENT = "representations/rep1/data/2/attachments/Remiss_från_vårdcentralen_Åsa.pdf"
RECORD = "representations/rep1/data/3/record.xml"
REP_METS = "representations/rep1/METS.xml"
DOC = "documentation/mapping-vas.yaml"
MANIFEST = "metadata/descriptive/patients.xml"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> sip.PackageResult:
    base = tmp_path_factory.mktemp("validate")
    return sip.build_package(
        mapped=write_mapped(base / "mapped"),
        context=make_context(base / "docs"),
        partition_id="3",
        out_dir=base / "out",
    )


@pytest.fixture
def package(built: sip.PackageResult, tmp_path: Path) -> Path:
    """A private copy of the package folder, free to corrupt."""
    return Path(shutil.copytree(built.directory, tmp_path / built.package_id))


def edit_xml(path: Path, change) -> None:
    tree = etree.parse(str(path))
    change(tree.getroot())
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")


def flip_byte(package: Path) -> None:
    path = package / ATTACHMENT
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))


def wrong_size(package: Path) -> None:
    def change(root):
        root.find(f".//mets:FLocat[@xlink:href='{DOC}']/..", NS).set("SIZE", "1")

    edit_xml(package / "METS.xml", change)


def schema_break(package: Path) -> None:
    bogus = f"{{{mets.METS_NS}}}bogus"
    edit_xml(package / "METS.xml", lambda root: etree.SubElement(root.find("mets:metsHdr", NS), bogus))


def drop_attribute(xpath: str, attribute: str):
    def corrupt(package: Path) -> None:
        edit_xml(package / "METS.xml", lambda root: root.xpath(xpath, namespaces=NS)[0].attrib.pop(attribute))

    return corrupt


def drop_element(xpath: str):
    def corrupt(package: Path) -> None:
        def change(root):
            element = root.xpath(xpath, namespaces=NS)[0]
            element.getparent().remove(element)

        edit_xml(package / "METS.xml", change)

    return corrupt


def rep_mets_changed(package: Path) -> None:
    edit_xml(package / REP_METS, lambda root: root.set("LABEL", "changed after packaging"))


def rep_mets_dangling_fptr(package: Path) -> None:
    edit_xml(package / REP_METS, lambda root: root.xpath("//mets:fptr", namespaces=NS)[-1].set("FILEID", "nowhere"))


def rep_mets_schema_break(package: Path) -> None:
    edit_xml(package / REP_METS, lambda root: root.find("mets:fileSec", NS).set("BOGUS", "x"))


def rep_mets_no_size(package: Path) -> None:
    edit_xml(package / REP_METS, lambda root: root.xpath("//mets:file", namespaces=NS)[0].attrib.pop("SIZE"))


def manifest_wrong_record(package: Path) -> None:
    def change(root):
        root.find("r:patient[@key='3']", NS).set("record", "representations/rep1/data/3/other.xml")

    edit_xml(package / MANIFEST, change)


def manifest_schema_break(package: Path) -> None:
    edit_xml(package / MANIFEST, lambda root: root.find("r:patient", NS).set("unknown", "x"))


def premis_digest_changed(package: Path) -> None:
    def change(root):
        root.xpath("//premis:messageDigest", namespaces=NS)[0].text = "0" * 64

    edit_xml(package / "metadata/preservation/premis.xml", change)


CORRUPTIONS = [
    pytest.param(flip_byte, [("FIXITY", ATTACHMENT), ("PREMIS", ATTACHMENT)], id="flipped-byte"),
    pytest.param(lambda p: (p / RECORD).unlink(), [("MISSING-FILE", RECORD), ("PREMIS", RECORD)], id="missing-file"),
    pytest.param(
        lambda p: (p / "representations/rep1/data/2/extra.txt").write_text("x"),
        [("EXTRA-FILE", "representations/rep1/data/2/extra.txt")],
        id="extra-file",
    ),
    pytest.param(lambda p: (p / "notes.txt").write_text("x"), [("EXTRA-FILE", "notes.txt")], id="extra-root-file"),
    pytest.param(wrong_size, [("FIXITY", DOC)], id="wrong-size"),
    pytest.param(schema_break, [("XSD", "METS.xml")], id="mets-schema-break"),
    pytest.param(drop_attribute("/mets:mets", "OBJID"), [("CSIP1", "METS.xml")], id="no-objid"),
    pytest.param(drop_attribute("/mets:mets", "PROFILE"), [("CSIP6", "METS.xml")], id="no-profile"),
    pytest.param(drop_attribute("/mets:mets", "TYPE"), [("CSIP2", "METS.xml"), ("EHR2", "METS.xml")], id="no-type"),
    pytest.param(drop_attribute("//mets:metsHdr", "CREATEDATE"), [("CSIP7", "METS.xml")], id="no-createdate"),
    pytest.param(drop_attribute("//mets:metsHdr", "RECORDSTATUS"), [("SIP3", "METS.xml")], id="no-recordstatus"),
    pytest.param(
        drop_attribute("//mets:file[@ID='file-doc-01']", "CHECKSUM"), [("CSIP71", "METS.xml")], id="no-checksum"
    ),
    pytest.param(drop_element("//mets:agent[@OTHERTYPE='SOFTWARE']"), [("CSIP12", "METS.xml")], id="no-software-agent"),
    pytest.param(drop_element("//mets:agent[@ROLE='ARCHIVIST']"), [("SIP9", "METS.xml")], id="no-archivist"),
    pytest.param(drop_element("//mets:agent[@ROLE='PRESERVATION']"), [("SIP26", "METS.xml")], id="no-preservation"),
    pytest.param(
        drop_element("//mets:agent[@ROLE='CREATOR'][@TYPE='ORGANIZATION']"), [("SIP15", "METS.xml")], id="no-submitter"
    ),
    pytest.param(drop_element("//mets:altRecordID"), [("SIP5", "METS.xml")], id="no-agreement"),
    pytest.param(
        drop_element("//mets:agent[@ROLE='ARCHIVIST']/mets:note"), [("SIP13", "METS.xml")], id="no-archivist-code"
    ),
    pytest.param(
        drop_element("//mets:fileGrp[@USE='Schemas']"),
        [("CSIP113", "METS.xml"), ("IDREF", "METS.xml")],
        id="no-schemas-group",
    ),
    pytest.param(rep_mets_changed, [("FIXITY", REP_METS)], id="rep-mets-checksum"),
    pytest.param(rep_mets_dangling_fptr, [("IDREF", REP_METS), ("FIXITY", REP_METS)], id="rep-mets-idref"),
    pytest.param(rep_mets_schema_break, [("XSD", REP_METS)], id="rep-mets-schema-break"),
    pytest.param(rep_mets_no_size, [("CSIP69", REP_METS)], id="rep-mets-no-size"),
    pytest.param(manifest_wrong_record, [("MANIFEST", MANIFEST), ("MANIFEST", RECORD)], id="manifest-wrong-record"),
    pytest.param(manifest_schema_break, [("XSD", MANIFEST)], id="manifest-schema-break"),
    pytest.param(
        premis_digest_changed,
        [("PREMIS", "representations/rep1/data/1/record.xml"), ("FIXITY", "metadata/preservation/premis.xml")],
        id="premis-digest",
    ),
]


class TestValidatePackage:
    def test_valid_folder_passes(self, built):
        report = validate_package(built.directory)
        assert report.ok, report.to_text()
        assert (report.package_id, report.problems) == (built.package_id, [])

    def test_valid_tar_passes(self, built):
        report = validate_package(built.container)
        assert report.ok, report.to_text()

    def test_validation_fetches_nothing(self, built, monkeypatch):
        def refuse(*args, **kwargs):
            raise AssertionError("network access during validation")

        monkeypatch.setattr(socket, "getaddrinfo", refuse)
        monkeypatch.setattr(socket.socket, "connect", refuse)
        assert validate_package(built.directory).ok

    @pytest.mark.parametrize(("corrupt", "expected"), CORRUPTIONS)
    def test_corruption_is_named(self, package, corrupt, expected):
        corrupt(package)
        report = validate_package(package)
        assert not report.ok
        found = {(p.requirement, p.path) for p in report.problems}
        assert set(expected) <= found, report.to_text()

    def test_corrupt_tar_member_is_named(self, built, tmp_path):
        target = tmp_path / f"{built.package_id}.tar"
        with tarfile.open(built.container) as src, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as out:
            for member in src.getmembers():
                data = src.extractfile(member).read() if member.isfile() else None
                if member.name.endswith(ATTACHMENT):
                    data = data[:-1] + b"X"
                out.addfile(member, io.BytesIO(data) if data is not None else None)
        report = validate_package(target)
        assert ("FIXITY", ATTACHMENT) in {(p.requirement, p.path) for p in report.problems}

    def test_tar_escaping_member_is_layout_problem(self, tmp_path):
        target = tmp_path / "evil.tar"
        with tarfile.open(target, "w") as tar:
            info = tarfile.TarInfo("pkg/../../etc/passwd")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        report = validate_package(target)
        assert "LAYOUT" in {p.requirement for p in report.problems}

    @pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT], ids=["ustar", "gnu-long-name"])
    def test_undecodable_member_name_is_an_extra_file(self, built, tmp_path, fmt):
        # a name that is not UTF-8 (read back as surrogate escapes) is reported, not a crash
        target = tmp_path / f"{built.package_id}.tar"
        shutil.copyfile(built.container, target)
        with tarfile.open(target, "a", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
            info = tarfile.TarInfo(f"{built.package_id}/documentation/bad-\udcff.txt")
            info.size = 1
            if fmt == tarfile.GNU_FORMAT:  # a GNU long-name record (read by the index too)
                info.name = f"{built.package_id}/documentation/{'x' * 120}-\udcff.txt"
            tar.addfile(info, io.BytesIO(b"x"))
        report = validate_package(target)
        extra = [p for p in report.problems if p.requirement == "EXTRA-FILE"]
        assert len(extra) == 1 and extra[0].path.startswith("documentation/") and len(report.problems) == 1

    def test_folder_not_named_after_objid(self, package):
        renamed = package.rename(package.with_name("other-name"))
        assert ("CSIP1", "METS.xml") in {(p.requirement, p.path) for p in validate_package(renamed).problems}

    def test_not_a_package(self, tmp_path):
        (tmp_path / "file.txt").write_text("x")
        report = validate_package(tmp_path / "file.txt")
        assert [p.requirement for p in report.problems] == ["LAYOUT"]

    def test_record_schema_error_does_not_show_the_value(self, package):
        def change(root):
            root.find("r:patient/r:birthDate", NS).text = "HEMLIGT-VÄRDE"

        edit_xml(package / RECORD, change)
        report = validate_package(package)
        assert ("XSD", RECORD) in {(p.requirement, p.path) for p in report.problems}
        assert "HEMLIGT" not in report.to_text()


class TestReport:
    def test_report_text_and_dict(self):
        report = ValidationReport("pkg", False, [Problem("FIXITY", "a/b.xml", "SHA-256 differs")])
        assert report.to_text() == "pkg: INVALID (1 problems)\n  [FIXITY] a/b.xml: SHA-256 differs"
        assert report.to_dict() == {
            "package_id": "pkg",
            "ok": False,
            "problems": [{"requirement": "FIXITY", "path": "a/b.xml", "message": "SHA-256 differs"}],
            "raw_rows": {},
        }
        assert ValidationReport("pkg", True).to_text() == "pkg: valid"


class TestCli:
    def test_cli_valid_exits_0(self, built, capsys):
        assert main(["validate", str(built.directory)]) == 0
        assert capsys.readouterr().out.strip() == f"{built.package_id}: valid"

    def test_cli_invalid_json_exits_1(self, package, capsys):
        flip_byte(package)
        assert main(["validate", str(package), "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["ok"] is False
        assert {"requirement": "FIXITY", "path": ATTACHMENT} in [
            {k: p[k] for k in ("requirement", "path")} for p in report["problems"]
        ]

    def test_cli_as_module_exit_status(self, built, package):
        flip_byte(package)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
        for path, status in ((built.container, 0), (package, 1)):
            run = subprocess.run(
                [sys.executable, "-m", "decommission", "validate", str(path)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert run.returncode == status, run.stdout + run.stderr


class TestTarIndex:
    def test_read_index_matches_tarfile(self, built):
        index = tarindex.read_index(built.container)
        assert index is not None
        with tarfile.open(built.container) as tar:
            expected = [(m.name, m.isdir(), m.size if m.isfile() else 0) for m in tar.getmembers()]
            for member in index:
                if member.kind == "file":
                    with open(built.container, "rb") as raw:
                        raw.seek(member.offset)
                        assert raw.read(member.size) == tar.extractfile(member.name).read()
        assert [(m.name, m.kind == "dir", m.size if m.kind == "file" else 0) for m in index] == expected
        assert any(not m.name.isascii() for m in index)  # PAX path records are read

    def test_read_index_gives_up_on_a_damaged_header(self, built, tmp_path):
        data = bytearray(built.container.read_bytes())
        data[600] ^= 0xFF  # inside the second header
        damaged = tmp_path / "damaged.tar"
        damaged.write_bytes(bytes(data))
        assert tarindex.read_index(damaged) is None
        assert not validate_package(damaged).ok
