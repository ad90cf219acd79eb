"""The artefact store: a worker's home mirrored to a shared tree (here a second folder as ``file://``)."""

from __future__ import annotations

import hashlib

import pytest

from decommission import artefacts


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """Two workers' homes over one store; returns a function that makes a worker's home current."""
    store = tmp_path / "store"
    store.mkdir()

    def worker(name: str):
        home = tmp_path / name
        home.mkdir(exist_ok=True)
        monkeypatch.setenv("DECOMMISSION_HOME", str(home))
        monkeypatch.setenv("DECOMMISSION_ARTEFACTS", store.as_uri())
        return home

    return worker


def test_without_a_store_the_home_is_the_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    monkeypatch.delenv("DECOMMISSION_ARTEFACTS", raising=False)
    path = tmp_path / "vas" / "receipts" / "p1.json"
    assert artefacts.find(path) is None
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    assert artefacts.find(path) == path
    with artefacts.publishing(tmp_path / "vas"):
        (tmp_path / "vas" / "new.json").write_text("{}")
    assert sorted(p.name for p in (tmp_path / "vas").iterdir()) == ["new.json", "receipts"]


def test_what_one_worker_writes_another_fetches_checked_against_the_ledger_hash(homes):
    a = homes("a")
    with artefacts.publishing(a / "vas"):
        (a / "vas" / "packages").mkdir(parents=True)
        (a / "vas" / "packages" / "p1.tar").write_bytes(b"package bytes")
        (a / "vas" / "packages" / ".p1.tar.tmp").write_bytes(b"half")  # temporary: never published
    digest = hashlib.sha256(b"package bytes").hexdigest()
    name = artefacts.key(a / "vas" / "packages" / "p1.tar")
    assert name == "vas/packages/p1.tar"

    b = homes("b")
    here = artefacts.local(name)
    assert here == b / "vas" / "packages" / "p1.tar" and not here.exists()
    assert artefacts.fetch(here, digest).read_bytes() == b"package bytes"
    assert [p.name for p in artefacts.names(b / "vas" / "packages")] == ["p1.tar"]
    # a folder's files, never the folders inside it, here as in the store
    with artefacts.publishing(b / "vas"):
        (b / "vas" / "packages" / "inner").mkdir()
        (b / "vas" / "packages" / "inner" / "x.json").write_text("{}")
    assert [p.name for p in artefacts.names(homes("c") / "vas" / "packages")] == ["p1.tar"]
    homes("b")
    assert artefacts.find(b / "vas" / "packages" / "p2.tar") is None

    # a local copy that is not the recorded one is fetched again; a store copy that is not either, refused
    here.write_bytes(b"changed here")
    assert artefacts.fetch(here, digest).read_bytes() == b"package bytes"
    with pytest.raises(ValueError, match="SHA-256 differs"):
        artefacts.fetch(here, hashlib.sha256(b"something else").hexdigest())


def test_a_package_streams_from_the_store_without_a_local_copy(homes):
    a = homes("a")
    with artefacts.publishing(a / "vas"):
        (a / "vas" / "packages").mkdir(parents=True)
        (a / "vas" / "packages" / "p1.tar").write_bytes(b"x" * 1000)
    b = homes("b")
    shared = artefacts.open_shared(b / "vas" / "packages" / "p1.tar")
    assert shared.stat().st_size == 1000
    with shared.open("rb") as fh:
        assert fh.read() == b"x" * 1000
    assert not (b / "vas" / "packages" / "p1.tar").exists()
