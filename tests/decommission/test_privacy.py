"""Keyed hashes need a secret key: none, or a short one, stops a delivery; the demo key is named wherever it is used."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from decommission.privacy import HashKeyError, current_key, keyed_hash


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("DECOMMISSION_HASH_KEY", "DECOMMISSION_HASH_KEY_FILE", "DECOMMISSION_ALLOW_DEMO_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


class TestHashKey:
    def test_no_key_outside_the_demo_is_refused(self, no_key: pytest.MonkeyPatch) -> None:
        with pytest.raises(HashKeyError, match="no hash key: set DECOMMISSION_HASH_KEY_FILE"):
            keyed_hash("19121212-1212")

    def test_a_short_key_is_refused(self, no_key: pytest.MonkeyPatch) -> None:
        no_key.setenv("DECOMMISSION_HASH_KEY", secrets.token_hex(16))
        with pytest.raises(HashKeyError, match="holds 16 bytes; at least 32"):
            current_key()

    def test_a_key_from_a_secret_file(self, no_key: pytest.MonkeyPatch, tmp_path: Path) -> None:
        key = secrets.token_hex(32)
        (tmp_path / "hash_key").write_text(key + "\n")
        no_key.setenv("DECOMMISSION_HASH_KEY_FILE", str(tmp_path / "hash_key"))
        assert current_key().value == bytes.fromhex(key) and not current_key().demo
        no_key.setenv("DECOMMISSION_HASH_KEY", key)
        no_key.delenv("DECOMMISSION_HASH_KEY_FILE")
        assert keyed_hash("x") == keyed_hash("x", key=bytes.fromhex(key))

    def test_the_demo_key_only_when_allowed_and_named(self, no_key: pytest.MonkeyPatch) -> None:
        no_key.setenv("DECOMMISSION_ALLOW_DEMO_KEY", "1")
        key = current_key()
        assert key.demo and key.describe() == {"id": key.id, "demo": True}

    def test_the_key_id_differs_per_key_and_hides_it(self, no_key: pytest.MonkeyPatch) -> None:
        ids = set()
        for _ in range(2):
            value = secrets.token_hex(32)
            no_key.setenv("DECOMMISSION_HASH_KEY", value)
            ids.add(current_key().id)
            assert current_key().id not in value
        assert len(ids) == 2


def test_preflight_refuses_to_start_without_a_key(no_key: pytest.MonkeyPatch) -> None:
    from decommission import stages
    from tests.submit_task import make_run

    with pytest.raises(HashKeyError):
        stages.preflight(make_run())  # before the source is touched: its connection is not even set
