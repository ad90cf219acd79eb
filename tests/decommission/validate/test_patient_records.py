"""Record files read straight from a package tar by our own index: what the standard library reads, in order."""

from __future__ import annotations

import io
import tarfile

import pytest

from decommission.validate.tarindex import Unreadable, patient_folders, patient_records


def _tar(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_record_files_in_order_and_nothing_else(tmp_path):
    long_key = "p" * 120  # a name longer than a ustar header holds: a PAX path
    members = {
        "pkg/METS.xml": b"<mets/>",
        "pkg/representations/rep1/data/17/record.xml": b"<record>17</record>",
        "pkg/representations/rep1/data/17/attachments/a.pdf": b"%PDF",
        "pkg/representations/rep2/data/9/record.xml": b"<record>not rep1</record>",
        f"pkg/representations/rep1/data/{long_key}/record.xml": b"<record>long</record>" * 100,
        "pkg/representations/rep1/data/3/record.xml": b"",
    }
    path = tmp_path / "p.tar"
    _tar(path, members)
    assert list(patient_records(path)) == [
        ("17", b"<record>17</record>"),
        (long_key, b"<record>long</record>" * 100),
        ("3", b""),
    ]
    assert patient_folders(path) == sorted(["17", long_key, "3"])


def test_a_truncated_tar_is_unreadable(tmp_path):
    path = tmp_path / "p.tar"
    _tar(path, {"pkg/representations/rep1/data/17/record.xml": b"x" * 5000})
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(Unreadable):
        list(patient_records(path))
