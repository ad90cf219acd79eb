"""The package container: members as tarfile reads them, sizes and digests of the bytes written."""

from __future__ import annotations

import array
import hashlib
import tarfile

from decommission.package.container import PackageWriter


def _writer(tmp_path, **kwargs):
    root = tmp_path / "pkg"
    root.mkdir()
    return PackageWriter(root, tmp_path / "pkg.tar", name="pkg", mtime=0, max_bytes=2**30, **kwargs)


def test_parts_of_any_item_width_are_counted_in_bytes(tmp_path):
    wide = memoryview(array.array("H", [0x4142, 0x4344]))  # 2 items, 4 bytes
    expected = b"head-" + wide.tobytes() + b"-tail"
    out = _writer(tmp_path, directory=True)
    written = out.add("data/file.bin", [b"head-", wide, memoryview(b"-tail")])
    tar = out.close()
    assert written.size == len(expected)
    assert written.sha256 == hashlib.sha256(expected).hexdigest()
    assert (tmp_path / "pkg" / "data" / "file.bin").read_bytes() == expected
    with tarfile.open(tmp_path / "pkg.tar") as archive:
        assert archive.extractfile("pkg/data/file.bin").read() == expected
    assert tar.sha256 == hashlib.sha256((tmp_path / "pkg.tar").read_bytes()).hexdigest()


def test_a_large_tar_leaves_the_page_cache_and_keeps_its_bytes(tmp_path):
    out = _writer(tmp_path, directory=False)
    block = bytes(range(256)) * 4096  # 1 MiB
    for i in range(20):  # past two drop-behind windows
        out.add(f"data/{i:02d}.bin", [block])
    tar = out.close()
    data = (tmp_path / "pkg.tar").read_bytes()
    assert tar.size == len(data) and tar.sha256 == hashlib.sha256(data).hexdigest()
    with tarfile.open(tmp_path / "pkg.tar") as archive:
        assert [archive.extractfile(f"pkg/data/{i:02d}.bin").read() == block for i in range(20)] == [True] * 20
