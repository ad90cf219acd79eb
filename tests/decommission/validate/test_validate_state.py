"""The validator's file table: the dict and the database give the same answers, and a spill keeps everything."""

from __future__ import annotations

import pytest

from decommission.validate.package_source import PackageSource
from decommission.validate.state import FileTable, MemoryFileTable

PATHS = ["b/record.xml", "a/ä.txt", "METS.xml", "a/z.txt", "\udcff-undecodable"]


def _filled(table):
    for i, path in enumerate(PATHS):
        assert table.add(path, f"pkg/{path}", i * 512, i)
    assert not table.add("METS.xml", "elsewhere")  # a second file of the same name is refused
    table.mark("a/z.txt", "referenced")
    table.mark("METS.xml", "described")
    table.mark("no/such/file", "listed")  # marking an absent file changes nothing
    table.set_digest("b/record.xml", 7, "ab" * 32)
    table.add_ids([("grp-1",), ("file-1",)], [("file-1", "FILEID", 3), ("file-9", "FILEID", 4), ("grp-0", "ADMID", 5)])
    table.add_ids([], [("file-9", "DMDID", 9)])  # a reference keeps its first place
    return table


def _answers(table):
    return {
        "len": len(table),
        "order": list(table),
        "unreferenced": list(table.unmarked("referenced")),
        "contains": ["METS.xml" in table, "nope" in table, 3 in table],
        "entry": table["a/ä.txt"],
        "marked": [table.marked("METS.xml", "described"), table.marked("METS.xml", "listed")],
        "digest": [table.digest("b/record.xml"), table.digest("a/z.txt")],
        "dangling": list(table.dangling()),
        "ids": [table.has_id("grp-1"), table.has_id("grp-0")],
    }


def test_the_dict_and_the_database_agree_and_a_spill_keeps_everything():
    memory, disk = _filled(MemoryFileTable()), _filled(FileTable())
    expected = _answers(disk)
    assert expected["order"] == sorted(PATHS, key=lambda p: p.encode("utf-8", "surrogateescape"))
    assert expected["dangling"] == [("file-9", "FILEID", 4), ("grp-0", "ADMID", 5)]
    assert _answers(memory) == expected
    spilled = memory.spill()
    assert isinstance(spilled, FileTable) and _answers(spilled) == expected
    with pytest.raises(KeyError):
        memory["a/ä.txt"]  # the spilled table is empty: nothing is kept twice
    with pytest.raises(ValueError):
        spilled.mark("METS.xml", "unknown-mark")
    with pytest.raises(ValueError):
        MemoryFileTable().marked("METS.xml", "unknown-mark")


def test_a_large_package_moves_its_file_table_to_disk(tmp_path, monkeypatch):
    monkeypatch.setattr("decommission.validate.package_source.MEMORY_FILES", 3)
    small, large = tmp_path / "small" / "pkg", tmp_path / "large" / "pkg"
    for folder, files in ((small, 3), (large, 5)):
        folder.mkdir(parents=True)
        for i in range(files):
            (folder / f"f{i}.txt").write_text("x")
    kinds = {}
    for folder in (small, large):
        source = PackageSource(folder, [])
        kinds[folder.parent.name] = (type(source.files).__name__, len(source.files))
        source.close()
    assert kinds == {"small": ("MemoryFileTable", 3), "large": ("FileTable", 5)}
