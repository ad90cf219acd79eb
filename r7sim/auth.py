"""r7sim's authentication and roles: HTTP basic auth, a submitter and an archivist.

The client sends the archive connection's login and password as HTTP basic auth (the HTTP
provider's way), so r7sim asks for exactly that. Two accounts, two roles:

- the **submitter** (the programme) opens deliveries, uploads packages and reads receipts,
  holdings and packages back;
- the **archivist** approves TEST deliveries (``POST .../approval``) and may read.

A missing or wrong credential is answered 401 (with ``WWW-Authenticate``), the right credential
for the wrong role 403. ``/healthz`` and the page ``/`` stay open: health checks and a person
looking at the stand-in need no account. Passwords are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import re
from dataclasses import dataclass, field

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("r7sim")

SUBMITTER = "submitter"
ARCHIVIST = "archivist"
#: the demo's accounts (``--submitter`` / ``--archivist`` or R7SIM_SUBMITTER / R7SIM_ARCHIVIST change them)
DEMO_SUBMITTER = ("submitter", "r7sim-submitter-demo")
DEMO_ARCHIVIST = ("archivist", "r7sim-archivist-demo")
_APPROVAL = re.compile(r"^/api/v1/deliveries/[^/]+/approval$")
_READS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Account:
    """One credential and its role; the password is left out of ``repr`` (settings get logged)."""

    login: str
    password: str = field(repr=False)
    role: str


@dataclass(frozen=True)
class Accounts:
    """The submitter's and the archivist's accounts."""

    submitter: Account
    archivist: Account

    def __post_init__(self) -> None:
        if self.submitter.login == self.archivist.login:
            raise ValueError(f"the submitter and the archivist need two logins, both are {self.submitter.login!r}")

    @classmethod
    def demo(cls) -> Accounts:
        """The demo's accounts: well known, for a local stand-in only."""
        return cls(Account(*DEMO_SUBMITTER, SUBMITTER), Account(*DEMO_ARCHIVIST, ARCHIVIST))

    def find(self, login: str, password: str) -> Account | None:
        """The account with this login and password, compared in constant time; None when none matches."""
        found = None
        for account in (self.submitter, self.archivist):
            same_login = hmac.compare_digest(account.login.encode(), login.encode())
            same_password = hmac.compare_digest(account.password.encode(), password.encode())
            if same_login and same_password:
                found = account
        return found


def parse_credential(text: str, what: str) -> tuple[str, str]:
    """Split ``LOGIN:PASSWORD`` (the password may hold colons).

    :param what: the flag or variable it came from, for the error
    :raises ValueError: no colon, or an empty login or password
    """
    login, colon, password = text.partition(":")
    if not colon or not login or not password:
        raise ValueError(f"{what} must be LOGIN:PASSWORD with neither empty")
    return login, password


def credential_default(variable: str, demo: tuple[str, str]) -> str:
    """The default of a credential flag: the environment variable if set (keeps it out of ``ps``), else the demo's."""
    return os.environ.get(variable) or ":".join(demo)


def role_needed(method: str, path: str) -> str | None:
    """The role a request needs: the archivist to approve, the submitter to write; None for a read (either)."""
    if method == "POST" and _APPROVAL.match(path):
        return ARCHIVIST
    if method in _READS:
        return None
    return SUBMITTER


def basic_credentials(header: bytes | None) -> tuple[str, str] | None:
    """Login and password of an ``Authorization: Basic`` header; None when absent or unreadable."""
    if not header:
        return None
    scheme, _, encoded = header.decode("latin-1").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, colon, password = decoded.partition(":")
    return (login, password) if colon else None


class Auth:
    """ASGI middleware: API requests need a credential, and the role their operation needs."""

    def __init__(self, app: ASGIApp, *, accounts: Accounts) -> None:
        self.app = app
        self.accounts = accounts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        given = basic_credentials(dict(scope["headers"]).get(b"authorization"))
        account = self.accounts.find(*given) if given else None
        if account is None:
            log.warning("auth: refused %s %s: %s", method, path, "a wrong credential" if given else "no credential")
            message = "a valid submitter or archivist credential (HTTP basic auth) is required"
            await _refuse(scope, receive, send, 401, "unauthorized", message)
            return
        needed = role_needed(method, path)
        if needed is not None and account.role != needed:
            log.warning("auth: refused %s %s to %s: needs the %s", method, path, account.role, needed)
            message = f"this needs the {needed}'s credential, not the {account.role}'s"
            await _refuse(scope, receive, send, 403, "forbidden", message)
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
    """Answer with an error after reading the request body, so the client hears the answer, not a reset."""
    await drain(receive)
    headers = {"WWW-Authenticate": 'Basic realm="r7sim"'} if status == 401 else None
    await JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)(scope, receive, send)


async def drain(receive: Receive) -> None:
    """Read and drop the rest of a request's body (a client still sending would otherwise see a reset)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return
