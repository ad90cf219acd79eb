"""r7sim's accounts, roles and fault settings without a server: parsing, who may do what, which request is which."""

from __future__ import annotations

import base64
import json

import pytest

from decommission import embedded
from r7sim.auth import (
    ARCHIVIST,
    DEMO_SUBMITTER,
    SUBMITTER,
    Account,
    Accounts,
    basic_credentials,
    parse_credential,
    role_needed,
)
from r7sim.faults import operation_of
from r7sim.settings import Settings


def basic(text: str) -> bytes:
    return b"Basic " + base64.b64encode(text.encode())


class TestCredentials:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            pytest.param(basic("submitter:pw"), ("submitter", "pw"), id="basic"),
            pytest.param(basic("a:pass:with:colons"), ("a", "pass:with:colons"), id="colons-in-password"),
            pytest.param(b"bAsIc " + base64.b64encode(b"a:b"), ("a", "b"), id="scheme-any-case"),
            pytest.param(None, None, id="none"),
            pytest.param(b"Bearer abc", None, id="other-scheme"),
            pytest.param(b"Basic %%%", None, id="not-base64"),
            pytest.param(basic("no-colon"), None, id="no-colon"),
        ],
    )
    def test_basic_credentials(self, header, expected):
        assert basic_credentials(header) == expected

    def test_parse_credential(self):
        assert parse_credential("region:pw:1", "--submitter") == ("region", "pw:1")
        with pytest.raises(ValueError, match="--archivist must be LOGIN:PASSWORD with neither empty"):
            parse_credential("archivist:", "--archivist")

    def test_accounts_find_by_login_and_password(self):
        accounts = Accounts(Account("s", "p1", SUBMITTER), Account("a", "p2", ARCHIVIST))
        assert accounts.find("s", "p1").role == SUBMITTER
        assert accounts.find("a", "p2").role == ARCHIVIST
        assert accounts.find("s", "p2") is None and accounts.find("a", "p1") is None

    def test_one_login_cannot_hold_both_roles(self):
        with pytest.raises(ValueError, match="need two logins, both are 'x'"):
            Accounts(Account("x", "p1", SUBMITTER), Account("x", "p2", ARCHIVIST))

    def test_passwords_stay_out_of_repr(self):
        assert "r7sim-submitter-demo" not in repr(Accounts.demo())

    def test_the_embedded_demo_connection_uses_r7sims_demo_submitter(self):
        connection = json.loads(embedded.demo_archive_connection(8700))
        assert (connection["login"], connection["password"]) == DEMO_SUBMITTER
        assert connection["extra"]["allow_insecure_http"] is True


class TestRoles:
    @pytest.mark.parametrize(
        ("method", "path", "role"),
        [
            pytest.param("POST", "/api/v1/deliveries/d-1/approval", ARCHIVIST, id="approve"),
            pytest.param("PUT", "/api/v1/deliveries/d-1", SUBMITTER, id="open-delivery"),
            pytest.param("PATCH", "/api/v1/packages/p-1/upload", SUBMITTER, id="chunk"),
            pytest.param("POST", "/api/v1/packages/p-1/upload/complete", SUBMITTER, id="complete"),
            pytest.param("GET", "/api/v1/deliveries/d-1", None, id="read-either"),
            pytest.param("HEAD", "/api/v1/packages/p-1/upload", None, id="head-either"),
        ],
    )
    def test_role_needed(self, method, path, role):
        assert role_needed(method, path) == role


class TestOperations:
    @pytest.mark.parametrize(
        ("method", "path", "operation"),
        [
            pytest.param("PUT", "/api/v1/deliveries/d-1", "open_delivery", id="open-delivery"),
            pytest.param("GET", "/api/v1/deliveries/d-1", "delivery", id="delivery"),
            pytest.param("POST", "/api/v1/deliveries/d-1/approval", "approval", id="approval"),
            pytest.param("PUT", "/api/v1/packages/p-1/upload", "open_upload", id="open-upload"),
            pytest.param("PATCH", "/api/v1/packages/p-1/upload", "chunk", id="chunk"),
            pytest.param("POST", "/api/v1/packages/p-1/upload/complete", "complete", id="complete"),
            pytest.param("GET", "/api/v1/packages/p-1/receipt", "receipt", id="receipt"),
            pytest.param("GET", "/api/v1/packages/p-1", "package", id="package"),
            pytest.param("GET", "/api/v1/packages/p-1/records/k", "record", id="record"),
            pytest.param("DELETE", "/api/v1/packages/p-1", None, id="none"),
        ],
    )
    def test_operation_of(self, method, path, operation):
        assert operation_of(method, path) == operation

    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            pytest.param({"drip": ["chunks"]}, "unknown operations chunks", id="unknown-operation"),
            pytest.param({"malformed": ["xml:chunk"]}, "malformed takes KIND:OPERATION", id="unknown-kind"),
            pytest.param({"malformed": ["html"]}, "malformed takes KIND:OPERATION", id="no-operation"),
            pytest.param({"busy_status": 500}, "busy_status must be 429 or 503", id="busy-status"),
            pytest.param({"busy": -1}, "busy must not be negative", id="busy-negative"),
        ],
    )
    def test_bad_fault_settings_are_refused(self, settings, message):
        with pytest.raises(ValueError, match=message):
            Settings(**settings)
