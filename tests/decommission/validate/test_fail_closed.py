"""The validator fails closed: a hostile or broken tar, header or XML document, a file of many GiB,
a spent time budget, is a finding with a reason, never an exception, a hang or a memory blow-up.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from lxml import etree

from decommission.package import sip
from decommission.validate import tarindex, xmlsafe
from decommission.validate.limits import Limits
from decommission.validate.validator import ValidationReport, validate_package
from tests.decommission.fixtures import make_context, write_mapped

ROOT = Path(__file__).resolve().parents[3]
RECORD = "representations/rep1/data/3/record.xml"
REP_METS = "representations/rep1/METS.xml"
ATTACHMENT = "representations/rep1/data/10/attachments/attachment-1.txt"
PREMIS = "metadata/preservation/premis.xml"
MANIFEST = "metadata/descriptive/patients.xml"
GIB = 1 << 30


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> sip.PackageResult:
    base = tmp_path_factory.mktemp("fail-closed")
    return sip.build_package(
        mapped=write_mapped(base / "mapped"),
        context=make_context(base / "docs"),
        partition_id="3",
        out_dir=base / "out",
    )


@pytest.fixture
def folder(built: sip.PackageResult, tmp_path: Path) -> Path:
    """A private copy of the package folder, free to corrupt."""
    return Path(shutil.copytree(built.directory, tmp_path / built.package_id))


def validate_within(path: Path, seconds: float = 60, limits: Limits | None = None) -> ValidationReport:
    """Validate in a thread and fail the test, rather than hang it, when it does not finish in time."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["report"] = validate_package(path, limits)
        except BaseException as exc:  # noqa: BLE001 (the test reports whatever escaped)
            outcome["raised"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"validation of {path.name} did not finish within {seconds} s"
    assert "raised" not in outcome, f"validation raised {outcome.get('raised')!r}"
    report = outcome["report"]
    assert isinstance(report, ValidationReport)
    return report


def findings(report: ValidationReport) -> set[tuple[str, str]]:
    return {(p.requirement, p.path) for p in report.problems}


def only_problem(report: ValidationReport) -> tuple[str, str, str]:
    assert not report.ok and len(report.problems) == 1, report.to_text()
    problem = report.problems[0]
    return problem.requirement, problem.path, problem.message


# ---------------------------------------------------------------------------------------- tars
def header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime = size, kind, 1_700_000_000
    return info.tobuf(tarfile.USTAR_FORMAT)


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def with_pax(records: bytes, declared: int | None = None) -> bytes:
    """A tar of one folder and one file whose PAX header holds ``records`` (its size field says ``declared``)."""
    pax = header("pkg/././@PaxHeader", len(records) if declared is None else declared, tarfile.XHDTYPE)
    return (
        header("pkg/", 0, tarfile.DIRTYPE)
        + pax
        + padded(records)
        + header("pkg/METS.xml", 1)
        + padded(b"x")
        + b"\0" * 1024
    )


def with_size_field(field: bytes) -> bytes:
    """A tar whose member's size field holds ``field`` (checksum recomputed, so only the size is wrong)."""
    head = bytearray(header("pkg/METS.xml", 1))
    head[124:136] = field.ljust(12, b"\0")[:12]
    head[148:156] = b" " * 8
    head[148:156] = b"%06o\0 " % sum(head)
    return bytes(head) + padded(b"x") + b"\0" * 1024


BAD_TARS = [
    pytest.param(with_pax(b"-5 path=pkg/METS.xml\n"), "a record without a length", id="pax-negative-length"),
    pytest.param(with_pax(b"0 path=x\n"), "a record length of 0 does not fit", id="pax-zero-length"),
    pytest.param(with_pax(b"99999999999999999999 path=x\n"), "does not fit", id="pax-absurd-length"),
    pytest.param(with_pax(b"500 path=x\n"), "a record length of 500 does not fit", id="pax-length-past-header"),
    pytest.param(with_pax(b"path=x\n"), "a record without a length", id="pax-no-length"),
    pytest.param(with_pax(b"11 path=x\n", declared=4 * GIB), "an extended header of 4294967296 bytes", id="pax-4gib"),
    pytest.param(with_size_field(b"\xff" + b"\xff" * 11), "negative size", id="size-negative-base256"),
    pytest.param(with_size_field(b"-0000000001"), "size is not a number", id="size-negative-octal"),
    pytest.param(with_size_field(b"00000000x12"), "size is not a number", id="size-letters"),
    pytest.param(with_size_field(b"77777777777"), "ends past the end of the tar", id="size-past-the-end"),
    pytest.param(b"", "neither a folder, a tar nor a zip", id="empty-file"),
    pytest.param(header("pkg/METS.xml", 0)[:300], "neither a folder, a tar nor a zip", id="short-header"),
]


class TestMalformedTar:
    @pytest.mark.parametrize(("data", "reason"), BAD_TARS)
    def test_a_malformed_header_is_one_finding_with_its_reason(self, tmp_path, data, reason):
        target = tmp_path / "bad.tar"
        target.write_bytes(data)
        requirement, path, message = only_problem(validate_within(target, seconds=10))
        assert (requirement, path) == ("LAYOUT", "bad.tar")
        assert reason in message

    @pytest.mark.parametrize(
        ("cut", "reason"),
        [
            pytest.param(lambda data, member: member + 100, "without its end marker", id="inside-a-header"),
            pytest.param(lambda data, member: member + 512 + 10, "ends past the end", id="inside-a-member"),
            pytest.param(lambda data, member: len(data.rstrip(b"\0")) + 511 & ~511, "end marker", id="before-end"),
        ],
    )
    def test_a_truncated_tar_is_a_finding(self, built, tmp_path, cut, reason):
        data = built.container.read_bytes()
        record = next(m for m in tarindex.iter_index(built.container) if m.name.endswith(RECORD))
        target = tmp_path / "truncated.tar"
        target.write_bytes(data[: cut(data, record.offset - 512)])
        requirement, _path, message = only_problem(validate_within(target, seconds=10))
        assert requirement == "LAYOUT" and "truncated" in message and reason in message

    def test_a_damaged_header_is_a_finding(self, built, tmp_path):
        data = bytearray(built.container.read_bytes())
        record = next(m for m in tarindex.iter_index(built.container) if m.name.endswith(RECORD))
        data[record.offset - 512 + 20] ^= 0x41  # inside the member's name: the checksum no longer matches
        target = tmp_path / "damaged.tar"
        target.write_bytes(bytes(data))
        _requirement, _path, message = only_problem(validate_within(target, seconds=10))
        assert "is damaged (its checksum is wrong)" in message

    def test_index_refuses_with_the_reason(self, tmp_path):
        target = tmp_path / "bad.tar"
        target.write_bytes(with_pax(b"-5 path=x\n"))
        with pytest.raises(tarindex.Unreadable, match="PAX header at byte 512: a record without a length"):
            list(tarindex.iter_index(target))
        assert tarindex.read_index(target) is None

    def test_compressed_tar_is_refused_with_a_reason(self, built, tmp_path):
        target = tmp_path / "package.tar.gz"
        with tarfile.open(target, "w:gz") as tar:
            tar.add(built.directory, arcname=built.package_id)
        _requirement, _path, message = only_problem(validate_within(target))
        assert "compressed tar is not read" in message

    @pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu-long-names", "pax"])
    def test_tars_written_by_tarfile_are_read(self, built, tmp_path, fmt):
        target = tmp_path / f"{built.package_id}.tar"
        with tarfile.open(target, "w", format=fmt) as tar:
            tar.add(built.directory, arcname=built.package_id)
        report = validate_within(target)
        assert report.ok, report.to_text()


# ---------------------------------------------------------------------------------------- XML
def insert_doctype(path: Path, doctype: str, entity_in: str | None = None) -> None:
    """Put a DOCTYPE after the XML declaration; ``entity_in``: an element whose first text gets ``&x;``."""
    text = path.read_text(encoding="utf-8")
    declaration, rest = text.split("\n", 1)
    if entity_in is not None:
        at = rest.index(">", rest.index(f"<{entity_in}")) + 1
        rest = rest[:at] + "&x;" + rest[at:]
    path.write_text(f"{declaration}\n{doctype}\n{rest}", encoding="utf-8")


DOCTYPES = [
    pytest.param('<!DOCTYPE mets:mets SYSTEM "http://example.invalid/mets.dtd">', None, id="external-dtd"),
    pytest.param('<!DOCTYPE mets:mets PUBLIC "-//x//METS//EN" "mets.dtd">', None, id="public-dtd"),
    pytest.param('<!DOCTYPE mets:mets [<!ENTITY x "entity text">]>', "mets:name", id="internal-entity"),
    pytest.param('<!DOCTYPE mets:mets [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "mets:name", id="external-entity"),
    pytest.param(
        '<!DOCTYPE mets:mets [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY x "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
        "mets:name",
        id="entity-expansion",
    ),
    pytest.param('<!DOCTYPE mets:mets [<!ENTITY % p SYSTEM "http://example.invalid/p.dtd"> %p;]>', None, id="pe"),
]


class TestXml:
    @pytest.mark.parametrize("container", ["folder", "tar"])
    @pytest.mark.parametrize(("doctype", "entity_in"), DOCTYPES)
    def test_a_root_mets_with_a_doctype_is_refused(self, folder, tmp_path, doctype, entity_in, container):
        insert_doctype(folder / "METS.xml", doctype, entity_in)
        target = folder
        if container == "tar":
            target = tmp_path / f"{folder.name}.tar"
            with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
                tar.add(folder, arcname=folder.name)
        report = validate_within(target)
        assert not report.ok
        assert [p.message for p in report.problems if p.path == "METS.xml"] == [
            "refused: it has a DOCTYPE: DTDs and entities are refused"
        ]

    @pytest.mark.parametrize(
        ("rel", "root_tag", "entity_in"),
        [
            pytest.param(REP_METS, "mets:mets", "mets:name", id="representation-mets"),
            pytest.param(PREMIS, "premis", "premis:objectIdentifierType", id="premis"),
            pytest.param(MANIFEST, "patientManifest", "givenName", id="manifest"),
            pytest.param(RECORD, "record", "givenName", id="record"),
        ],
    )
    def test_any_document_with_an_entity_is_refused(self, folder, rel, root_tag, entity_in):
        insert_doctype(folder / rel, f'<!DOCTYPE {root_tag} [<!ENTITY x "entity text">]>', entity_in)
        report = validate_within(folder)
        assert ("XML", rel) in findings(report), report.to_text()
        assert "entity text" not in report.to_text()

    @pytest.mark.parametrize("rel", ["METS.xml", REP_METS, PREMIS, MANIFEST, RECORD])
    @pytest.mark.parametrize("keep", [0.3, 0.95], ids=["cut-early", "cut-late"])
    def test_a_truncated_document_is_not_well_formed(self, folder, rel, keep, monkeypatch):
        # lxml's iterparse with a schema ends silently at a truncated document: it must not pass
        monkeypatch.setattr(xmlsafe, "WHOLE", 0)  # record files streamed too
        data = (folder / rel).read_bytes()
        (folder / rel).write_bytes(data[: int(len(data) * keep)])
        report = validate_within(folder)
        # the schema may object first (to the element cut in two): either way a finding on the file
        assert {("XML", rel), ("XSD", rel)} & findings(report), report.to_text()

    def test_an_undefined_entity_is_not_well_formed(self, folder):
        text = (folder / "METS.xml").read_text(encoding="utf-8")
        (folder / "METS.xml").write_text(text.replace("<mets:name>", "<mets:name>&undefined;", 1), encoding="utf-8")
        report = validate_within(folder)
        assert [(p.requirement, p.message.split(" (")[0]) for p in report.problems] == [("XML", "not well-formed XML")]

    def test_an_external_entity_naming_a_fifo_is_never_opened(self, folder, tmp_path):
        # reading a FIFO with no writer blocks for ever: the validator must finish all the same
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        insert_doctype(folder / "METS.xml", f'<!DOCTYPE mets:mets [<!ENTITY x SYSTEM "file://{fifo}">]>', "mets:name")
        report = validate_within(folder, seconds=20)
        assert ("XML", "METS.xml") in findings(report)

    def test_a_fifo_in_the_package_folder_is_a_finding(self, folder):
        os.mkfifo(folder / "documentation" / "pipe")
        report = validate_within(folder, seconds=20)
        assert ("LAYOUT", "documentation/pipe") in findings(report)

    def test_a_large_record_is_stream_parsed_with_the_same_verdicts(self, built, folder, monkeypatch):
        monkeypatch.setattr(xmlsafe, "WHOLE", 0)  # every record file streamed, as one over 1 MiB would be
        assert validate_within(built.container).ok
        text = (folder / RECORD).read_text(encoding="utf-8")
        (folder / RECORD).write_text(text.replace("<birthDate>", "<birthDate>HEMLIGT", 1), encoding="utf-8")
        report = validate_within(folder)
        assert ("XSD", RECORD) in findings(report) and "HEMLIGT" not in report.to_text()


class TestGuard:
    """libxml2 holds a whole tag, comment or section before it parses it: the guard bounds that."""

    @pytest.mark.parametrize(
        ("document", "refusal"),
        [
            pytest.param(
                b"<a " + b"".join(b'x%d="1" ' % i for i in range(300_000)) + b"/>",
                (xmlsafe.Refused, "attributes"),
                id="many-attributes",
            ),
            pytest.param(
                b"<a><!--" + b"x" * (40 << 20) + b"--></a>", (xmlsafe.Refused, "without an element"), id="comment"
            ),
            pytest.param(
                b"<a><?pi " + b"x" * (40 << 20) + b"?></a>",
                (xmlsafe.Refused, "without an element"),
                id="processing-instruction",
            ),
            pytest.param(
                # a '<' in a value resets the attribute count; libxml2 stops at it
                b"<a " + b"".join(b'x%d="1" y%d="<" ' % (i, i) for i in range(300_000)) + b"/>",
                (etree.XMLSyntaxError, "Unescaped '<' not allowed"),
                id="attributes-with-lt",
            ),
        ],
    )
    def test_a_construct_beyond_the_bounds_is_refused(self, document, refusal):
        kind, reason = refusal
        with pytest.raises(kind, match=reason):
            for _event in xmlsafe.iterparse(io.BytesIO(document), None, lambda: None, events=("end",)):
                pass

    def test_a_document_longer_than_the_window_passes(self):
        element = b"<b x='1'>" + b"text &amp; more " * 64 + b"</b>"  # about 1 kB
        data = b"<a>" + element * ((xmlsafe.WINDOW >> 10) + 8_000) + b"</a>"  # 40 MB, one element at a time
        count = 0
        for _event, parsed in xmlsafe.iterparse(io.BytesIO(data), None, lambda: None, events=("end",)):
            count += 1
            xmlsafe.free(parsed)
        assert len(data) > xmlsafe.WINDOW and count == (xmlsafe.WINDOW >> 10) + 8_001


# ---------------------------------------------------------------------------------------- sizes, time, memory
def sparse_tar(source: Path, target: Path, huge: dict[str, int]) -> None:
    """Copy a package tar, giving each member named in ``huge`` that many bytes of zeros, not written:
    a hole in the file (a multi-GiB member costs no disk and no time to make)."""
    with tarfile.open(source) as tar, target.open("wb") as out:
        for member in tar.getmembers():
            rel = member.name.split("/", 1)[1] if "/" in member.name else ""
            data = tar.extractfile(member).read() if member.isfile() else b""
            if rel in huge:
                member.size = huge[rel]
                out.write(member.tobuf(tarfile.PAX_FORMAT))
                out.seek(member.size, os.SEEK_CUR)
                out.write(b"\0" * (-member.size % 512))
            else:
                member.size = len(data)
                out.write(member.tobuf(tarfile.PAX_FORMAT) + padded(data))
        out.write(b"\0" * 1024)


CHILD = """
import json, sys, time
from pathlib import Path
from decommission.validate.validator import Limits, validate_package
started = time.monotonic()
report = validate_package(Path(sys.argv[1]), Limits(**json.loads(sys.argv[2])))
seconds = time.monotonic() - started
# VmHWM, not resource.getrusage: ru_maxrss inherits the high-water mark of the process that
# forked this one (pytest, some hundred MB), VmHWM belongs to this address space alone
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
problems = [[p.requirement, p.path, p.message] for p in report.problems]
print(json.dumps({"ok": report.ok, "problems": problems, "seconds": seconds, "peak_mb": peak / 1024}))
"""


def validate_in_child(path: Path, **limits: float) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), json.dumps(limits)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def set_size_in_rep_mets(folder: Path, rel: str, size: int) -> None:
    """Declare ``size`` for a data file in the representation METS (so the validator must hash all of it)."""
    path = folder / REP_METS
    href = rel.removeprefix("representations/rep1/")
    text = path.read_text(encoding="utf-8")
    at = text.index(f'xlink:href="{href}"')
    start = text.rindex("<mets:file ", 0, at)
    size_at = text.index('SIZE="', start) + len('SIZE="')
    end = text.index('"', size_at)
    path.write_text(text[:size_at] + str(size) + text[end:], encoding="utf-8")


class TestSizeTimeMemory:
    @pytest.mark.parametrize(
        ("huge", "expected"),
        [
            pytest.param(
                RECORD,
                {("FIXITY", RECORD), ("PREMIS", RECORD), ("XML", RECORD)},
                id="record-file",  # parsed as a stream: stops at the first zero byte
            ),
            pytest.param(REP_METS, {("FIXITY", REP_METS), ("XML", REP_METS)}, id="representation-mets"),
            pytest.param("documentation/huge.bin", {("EXTRA-FILE", "documentation/huge.bin")}, id="extra-file"),
        ],
    )
    def test_a_multi_gib_member_leaves_memory_flat(self, built, tmp_path, huge, expected):
        target = tmp_path / f"{built.package_id}.tar"
        if huge == "documentation/huge.bin":
            shutil.copyfile(built.container, target)
            with tarfile.open(target, "a", format=tarfile.PAX_FORMAT) as tar:
                tar.addfile(tarfile.TarInfo(f"{built.package_id}/{huge}"), io.BytesIO(b""))
        sparse_tar(target if target.exists() else built.container, tmp_path / "sparse.tar", {huge: 3 * GIB})
        assert (tmp_path / "sparse.tar").stat().st_blocks * 512 < 200 << 20  # a hole, not 3 GiB on disk

        result = validate_in_child(tmp_path / "sparse.tar")

        assert not result["ok"]
        assert expected <= {(r, p) for r, p, _m in result["problems"]}, result["problems"]
        assert result["peak_mb"] < 250, result  # the old validator read the 3 GiB member whole
        assert result["seconds"] < 30, result

    def test_a_member_over_the_size_limit_is_refused_before_reading(self, built, tmp_path):
        sparse_tar(built.container, tmp_path / "sparse.tar", {RECORD: 3 * GIB})
        result = validate_in_child(tmp_path / "sparse.tar", max_member_bytes=GIB)
        assert result["problems"] == [
            ["LIMIT", RECORD, f"{3 * GIB} bytes: larger than the limit of {GIB} bytes per file"]
        ]

    def test_an_xml_document_over_its_limit_is_not_parsed(self, built):
        report = validate_within(built.container, limits=Limits(max_xml_bytes=10_000))
        assert ("LIMIT", PREMIS) in findings(report)
        assert all(p.requirement == "LIMIT" for p in report.problems if p.path == PREMIS)

    def test_the_time_budget_ends_validation_with_a_finding(self, built, folder, tmp_path):
        set_size_in_rep_mets(folder, ATTACHMENT, 3 * GIB)  # the size matches: it must be hashed in full
        repacked = tmp_path / "repacked.tar"
        with tarfile.open(repacked, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(folder, arcname=folder.name)
        sparse_tar(repacked, tmp_path / "sparse.tar", {ATTACHMENT: 3 * GIB})
        started = time.monotonic()
        result = validate_in_child(tmp_path / "sparse.tar", seconds=1.0)
        assert result["problems"][-1] == [
            "LIMIT",
            "sparse.tar",
            "validation took longer than its budget of 1 s and was stopped",
        ]
        assert result["seconds"] < 5 and time.monotonic() - started < 60

    def test_findings_are_capped_and_the_rest_counted(self, folder):
        for i in range(12):
            (folder / "documentation" / f"extra-{i:02}.txt").write_text("x")
        report = validate_within(folder, limits=Limits(max_findings=5))
        assert [p.requirement for p in report.problems] == ["EXTRA-FILE"] * 5 + ["LIMIT"]
        assert report.problems[-1].message == "7 more problems are not listed"


class TestFailClosed:
    def test_an_unforeseen_exception_is_a_finding_not_a_pass(self, built, monkeypatch):
        def broken(*_args: object) -> None:
            raise KeyError("Ring pat 19890616-7294")

        monkeypatch.setattr("decommission.validate.validator.check_premis", broken)
        report = validate_within(built.container)
        requirement, path, message = only_problem(report)
        assert (requirement, path) == ("INTERNAL", built.container.name)
        assert message.startswith("validation stopped by an unexpected KeyError at test_fail_closed.py:")
        assert "19890616" not in report.to_text()  # an exception's text may hold data: never shown

    @pytest.mark.parametrize(
        ("environ", "expected"),
        [
            pytest.param({}, Limits(), id="defaults"),
            pytest.param(
                {"DECOMMISSION_VALIDATE_SECONDS": "90", "DECOMMISSION_VALIDATE_MAX_MEMBER_BYTES": "1000"},
                Limits(seconds=90, max_member_bytes=1000),
                id="set",
            ),
        ],
    )
    def test_limits_from_the_environment(self, environ, expected):
        assert Limits.from_env(environ) == expected

    @pytest.mark.parametrize(
        ("environ", "match"),
        [
            pytest.param({"DECOMMISSION_VALIDATE_SECONDS": "soon"}, "must be a number", id="not-a-number"),
            pytest.param({"DECOMMISSION_VALIDATE_MAX_XML_BYTES": "0"}, "must be positive", id="zero"),
        ],
    )
    def test_a_wrong_limit_is_refused(self, environ, match):
        with pytest.raises(ValueError, match=match):
            Limits.from_env(environ)
