"""Tests of the packager: layout, METS/PREMIS content, determinism, atomic writes, refusals."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import tarfile
import unicodedata
from pathlib import Path

import pytest
from lxml import etree

from decommission.errors import PackageError
from decommission.package import mets, partition, records, sip
from decommission.package.premis import PREMIS_NS
from decommission.validate.validator import validate_package
from tests.decommission.fixtures import ATTACHMENT_NAME, PDF, expected_counts, make_context, sample_rows, write_mapped

PKG = "vas-LO-2025-01-p0003"
NS = {"mets": mets.METS_NS, "xlink": mets.XLINK_NS, "csip": mets.CSIP_NS, "premis": PREMIS_NS, "r": records.NS}


def build(tmp_path: Path, rows: dict | None = None, out: str = "out", **changes) -> sip.PackageResult:
    return sip.build_package(
        mapped=write_mapped(tmp_path / "mapped", rows),
        context=make_context(tmp_path / "docs", **changes),
        partition_id="3",
        out_dir=tmp_path / out,
    )


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> sip.PackageResult:
    return build(tmp_path_factory.mktemp("sip"))


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


class TestPackageId:
    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (("vas", "LO-2025-01", "3", "NEW"), "vas-LO-2025-01-p0003"),
            (("vas", "LO-2025-01", "0003", "SUPPLEMENT"), "vas-LO-2025-01-p0003"),
            (("vas", "LO-2025-01", "3", "TEST"), "vas-LO-2025-01-p0003-test"),
            (("Växjö lab", "RA 13-2011/5329", "p7", "NEW"), "Vaxjo-lab-RA-13-2011-5329-p7"),
        ],
        ids=["digits", "zero-padded", "test", "unsafe-chars"],
    )
    def test_package_id(self, args, expected):
        assert sip.package_id(*args) == expected

    def test_package_id_refuses_unknown_status(self):
        with pytest.raises(PackageError, match="record_status 'DELETE' is not one of"):
            sip.package_id("vas", "LO", "1", "DELETE")

    def test_package_id_refuses_empty_part(self):
        with pytest.raises(PackageError, match="system_id '///' leaves nothing usable"):
            sip.package_id("///", "LO", "1", "NEW")


class TestSafeFilename:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            (ATTACHMENT_NAME, "Remiss_från_vårdcentralen_Åsa.pdf"),
            (unicodedata.normalize("NFD", "Röntgen.pdf"), "Röntgen.pdf"),
            ("../../etc/passwd", "passwd"),
            ("C:\\temp\\svar 19121212-1212.txt", "svar.txt"),
            ("remiss_191212121212.pdf", "remiss.pdf"),
            ("CON.txt", "file_CON.txt"),
            ("", "file"),
            (None, "file"),
        ],
        ids=["swedish", "nfd", "traversal", "windows-pnr", "pnr", "reserved", "empty", "none"],
    )
    def test_safe_filename(self, name, expected):
        assert sip.safe_filename(name, "file") == expected
        assert unicodedata.is_normalized("NFC", sip.safe_filename(name, "file"))


class TestBuildPackage:
    def test_build_package_layout(self, result):
        assert (result.package_id, result.patients) == (PKG, 4)
        names = set(files_of(result.directory))
        assert {
            "METS.xml",
            "metadata/descriptive/patients.xml",
            "metadata/preservation/premis.xml",
            "representations/rep1/METS.xml",
            "representations/rep1/data/2/record.xml",
            "schemas/mets.xsd",
            "schemas/xlink.xsd",
            "schemas/premis.xsd",
            "schemas/record.xsd",
            "schemas/DILCISExtensionMETS.xsd",
            "schemas/DILCISExtensionSIPMETS.xsd",
            "documentation/Leveransöverenskommelse_VAS.txt",
            "documentation/mapping-vas.yaml",
            "representations/rep1/data/2/attachments/Remiss_från_vårdcentralen_Åsa.pdf",
            "representations/rep1/data/2/attachments/Remiss_från_vårdcentralen_Åsa-2.pdf",
            "representations/rep1/data/10/attachments/attachment-1.txt",
        } <= names
        assert result.file_count == len(names)
        assert not list(result.directory.parent.glob(".*"))

    def test_build_package_counts(self, result):
        assert result.counts == expected_counts()
        record_counts = [records.count_entities(p) for p in result.directory.rglob("record.xml")]
        assert {name: sum(c[name] for c in record_counts) for name in result.counts} == result.counts

    def test_build_package_attachment_bytes(self, result):
        path = result.directory / "representations/rep1/data/2/attachments/Remiss_från_vårdcentralen_Åsa.pdf"
        assert path.read_bytes() == PDF

    def test_build_package_no_personal_id_in_any_path(self, result):
        ids = [p["personal_id"] for p in sample_rows()["patient"]]
        paths = [p.relative_to(result.directory).as_posix() for p in result.directory.rglob("*")]
        with tarfile.open(result.container) as tar:
            paths += tar.getnames()
        digits = ["".join(c for c in p if c.isdigit()) for p in paths]
        assert not [p for p in digits if any(i[-10:] in p for i in ids)]

    def test_build_package_root_mets(self, result):
        root = etree.parse(str(result.directory / "METS.xml")).getroot()
        schema = mets.mets_schema()
        assert schema.validate(root), schema.error_log
        assert (root.get("OBJID"), root.get("TYPE"), root.get("PROFILE")) == (
            PKG,
            "Other",  # the CSIP 2.1.0 vocabulary term (docs/packaging.md)
            "https://earksip.dilcis.eu/profile/E-ARK-SIP.xml",
        )
        assert root.get(f"{{{mets.CSIP_NS}}}OTHERTYPE") == "Patient Medical Records"
        # citsehpj_v2_0 is not in the CSIP 2.1.0 vocabulary: OTHER + OTHERCONTENTINFORMATIONTYPE (CSIP4, CSIP5)
        assert root.get(f"{{{mets.CSIP_NS}}}CONTENTINFORMATIONTYPE") == "OTHER"
        assert root.get(f"{{{mets.CSIP_NS}}}OTHERCONTENTINFORMATIONTYPE") == "citsehpj_v2_0"
        header = root.find("mets:metsHdr", NS)
        assert (header.get("CREATEDATE"), header.get("RECORDSTATUS")) == ("2025-03-01T12:00:00Z", "NEW")
        assert header.get(f"{{{mets.CSIP_NS}}}OAISPACKAGETYPE") == "SIP"
        agents = [(a.get("ROLE"), a.get("TYPE"), a.findtext("mets:name", namespaces=NS)) for a in header]
        assert agents[:4] == [
            ("CREATOR", "OTHER", "decommission"),
            ("ARCHIVIST", "ORGANIZATION", "Region Norrbotten"),
            ("CREATOR", "ORGANIZATION", "Region Norrbotten, FVIS-programmet"),
            ("PRESERVATION", "ORGANIZATION", "R7 e-Arkiv"),
        ]
        assert header.findtext("mets:altRecordID[@TYPE='SUBMISSIONAGREEMENT']", namespaces=NS) == "LO-2025-01"
        assert root.find("mets:structMap[@LABEL='CSIP']/mets:div/mets:div/mets:mptr", NS) is not None

    @pytest.mark.parametrize("document", ["METS.xml", "representations/rep1/METS.xml"], ids=["root", "rep"])
    def test_build_package_every_file_entry_complete_and_true(self, result, document):
        root = etree.parse(str(result.directory / document)).getroot()
        base = (result.directory / document).parent
        entries = root.xpath("//mets:file | //mets:mdRef", namespaces=NS)
        assert entries
        for entry in entries:
            located = entry if entry.tag.endswith("mdRef") else entry.find("mets:FLocat", NS)
            href = located.get(f"{{{mets.XLINK_NS}}}href")
            data = (base / href).read_bytes()
            assert entry.get("CHECKSUMTYPE") == "SHA-256"
            assert entry.get("CHECKSUM") == hashlib.sha256(data).hexdigest()
            assert entry.get("SIZE") == str(len(data))
            assert entry.get("MIMETYPE") and entry.get("CREATED") == "2025-03-01T12:00:00Z"

    def test_build_package_premis(self, result):
        tree = etree.parse(str(result.directory / "metadata/preservation/premis.xml"))
        events = tree.xpath("//premis:event/premis:eventType/text()", namespaces=NS)
        assert events == ["extraction", "transformation", "validation", "information package creation"]
        assert tree.xpath("//premis:agent/premis:agentVersion/text()", namespaces=NS) == ["0.1.0"]
        objects = tree.xpath(
            "//premis:object[premis:objectIdentifier/premis:objectIdentifierType='filepath']", namespaces=NS
        )
        data_files = [p for p in result.directory.glob("representations/rep1/data/**/*") if p.is_file()]
        assert len(objects) == len(data_files) == 7

    def test_build_package_protected_identity_neutral_file_names(self, result):
        folder = result.directory / "representations/rep1/data/10"
        assert [p.name for p in (folder / "attachments").iterdir()] == ["attachment-1.txt"]
        record = etree.parse(str(folder / "record.xml"))
        assert record.findtext(".//r:attachment/r:path", namespaces=NS) == "attachments/attachment-1.txt"
        assert record.findtext(".//r:attachment/r:filename", namespaces=NS) == "../../etc/191212121212 röntgen.txt"

    def test_build_package_manifest_and_protected_identity(self, result):
        tree = etree.parse(str(result.directory / "metadata/descriptive/patients.xml"))
        assert tree.xpath("//r:patient/@key", namespaces=NS) == ["1", "2", "3", "10"]
        protected = tree.xpath("//r:patient[r:accessRestrictions/@protectedIdentity='true']/@key", namespaces=NS)
        assert protected == ["10"]

    def test_build_package_tar_is_deterministic_pax(self, result):
        data = result.container.read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (result.sha256, result.size)
        with tarfile.open(result.container) as tar:
            members = tar.getmembers()
            assert tar.format == tarfile.PAX_FORMAT
        names = [m.name for m in members]
        assert names[0] == PKG and names[-1] == f"{PKG}/METS.xml" and len(set(names)) == len(names)
        assert all(n == PKG or n.startswith(f"{PKG}/") for n in names)
        # every folder comes before anything inside it; the tree on disk is the same as the tar's
        seen = set()
        for member in members:
            assert member.name == PKG or member.name.rsplit("/", 1)[0] in seen, member.name
            seen.add(member.name)
        on_disk = {f"{PKG}/{p.relative_to(result.directory).as_posix()}" for p in result.directory.rglob("*")}
        assert on_disk | {PKG} == set(names)
        stamp = int(dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC).timestamp())
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(stamp, 0, 0, "", "")}

    def test_build_package_byte_identical_rebuild(self, tmp_path, result):
        again = build(tmp_path)
        assert files_of(again.directory) == files_of(result.directory)
        assert again.container.read_bytes() == result.container.read_bytes()
        assert again.sha256 == result.sha256

    def test_build_package_rerun_replaces(self, tmp_path):
        first = build(tmp_path)
        (first.directory / "stray.txt").write_text("left over")
        second = build(tmp_path)
        assert not (second.directory / "stray.txt").exists()
        assert second.sha256 == first.sha256
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [PKG, f"{PKG}.tar"]

    def test_build_package_xml_illegal_char_fails_cleanly(self, tmp_path):
        good = build(tmp_path)
        rows = sample_rows()
        rows["document"][1]["text"] = "HEMLIG\x0bTEXT"
        with pytest.raises(PackageError, match="document 'D1': column 'text'") as caught:
            build(tmp_path, rows)
        assert "HEMLIG" not in str(caught.value)
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [PKG, f"{PKG}.tar"]
        assert good.container.read_bytes() and (good.directory / "METS.xml").exists()

    def test_build_package_test_status_has_own_id(self, tmp_path):
        assert build(tmp_path, record_status="TEST").package_id == f"{PKG}-test"

    def test_build_package_refuses_key_holding_personal_id(self, tmp_path):
        rows = {"patient": [dict(sample_rows()["patient"][0], patient_key="191212121212")]}
        with pytest.raises(PackageError, match="patient #1: patient_key holds the personal id") as caught:
            build(tmp_path, rows)
        assert "1212" not in str(caught.value)

    def test_build_package_refuses_unsafe_folder_key(self, tmp_path):
        rows = {"patient": [dict(sample_rows()["patient"][0], patient_key="../x")]}
        with pytest.raises(PackageError, match="patient #1: patient_key is not usable as a folder name"):
            build(tmp_path, rows)

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"created": dt.datetime(2025, 3, 1, 12)}, "tz-aware UTC"),
            ({"documentation": ()}, "CSIP60"),
            ({"profile_version": "9.9"}, "profile_version '9.9'"),
            ({"region_id": ""}, "context.region_id is empty"),
        ],
        ids=["naive-created", "no-documentation", "unknown-profile", "empty-region-id"],
    )
    def test_build_package_refuses_bad_context(self, tmp_path, changes, message):
        context = dataclasses.replace(make_context(tmp_path / "docs"), **changes)
        with pytest.raises(PackageError, match=message):
            sip.build_package(
                mapped=write_mapped(tmp_path / "m"), context=context, partition_id="1", out_dir=tmp_path / "out"
            )

    def test_build_package_profile_version_2_2_0(self, tmp_path):
        result = build(tmp_path, profile_version="2.2.0")
        root = etree.parse(str(result.directory / "METS.xml")).getroot()
        assert root.get("PROFILE") == "https://earksip.dilcis.eu/profile/E-ARK-SIP-v2-2-0.xml"
        assert validate_package(result.container).ok


class TestHashingWriter:
    def test_hashing_writer_hashes_what_it_writes(self, tmp_path):
        with open(tmp_path / "f", "wb") as raw:
            writer = sip.HashingWriter(raw)
            writer.write(b"ab")
            writer.write(memoryview(b"c"))
        assert (writer.size, writer.sha256, writer.tell()) == (3, hashlib.sha256(b"abc").hexdigest(), 3)


class TestBounds:
    def test_build_package_refuses_more_patients_than_allowed(self, tmp_path):
        with pytest.raises(PackageError, match=r"holds 4 patients, more than a package may hold \(3\)"):
            build(tmp_path, max_patients=3)
        assert list((tmp_path / "out").iterdir()) == []

    def test_build_package_stops_at_byte_limit_and_leaves_nothing(self, tmp_path):
        with pytest.raises(PackageError, match="exceeds its limit of 20000 bytes"):
            build(tmp_path, max_bytes=20_000)
        assert list((tmp_path / "out").iterdir()) == []

    def test_build_package_tar_only_gives_the_same_tar(self, tmp_path, result):
        context = make_context(tmp_path / "docs")
        only = sip.build_package(
            mapped=write_mapped(tmp_path / "m"),
            context=context,
            partition_id="3",
            out_dir=tmp_path / "t",
            directory=False,
        )
        assert only.directory is None and not (tmp_path / "t" / PKG).exists()
        assert [p.name for p in (tmp_path / "t").iterdir()] == [f"{PKG}.tar"]
        assert (only.sha256, only.file_count) == (result.sha256, result.file_count)
        assert validate_package(only.container).ok

    def test_build_package_chunked_partition_gives_the_same_bytes(self, tmp_path, result, monkeypatch):
        """A partition spread over chunk files on disk (bounded memory) packs to the same bytes."""
        monkeypatch.setattr(partition, "CHUNK_PATIENTS", 1)
        again = build(tmp_path)
        assert again.sha256 == result.sha256
        assert not list((tmp_path / "out").glob(".*"))
