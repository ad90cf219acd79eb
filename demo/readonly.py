"""A SELECT-only login for a demo source on PostgreSQL: how a region should let the programme read a legacy database.

``SET TRANSACTION READ ONLY`` is a setting the session could undo with a statement of its own; a
login that holds no privilege to write cannot write whatever it sends. The demo and the tests
read their PostgreSQL sources through such a login, so preflight's privilege check
(``decommission.source.privileges``) passes on the real path; with the owner's login it would
name every table the login could change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit


def reader_role(schema: str) -> str:
    return f"{schema}_reader"


def create_reader(
    dsn: str, schema: str, password: str | None = None, *, name: str | None = None, also: tuple[str, ...] = ()
) -> str:
    """Create (or reset) ``<schema>_reader``: LOGIN, USAGE on the schema, SELECT on its tables; return its URL.

    :param dsn: a URL of a login that may create roles (the schema's owner or a superuser)
    :param password: the role's password, when the server asks for one (the tests' server trusts 127.0.0.1)
    :param name: another name for the role
    :param also: further schemas the role may read the same way (a system of several schemas)
    """
    import psycopg
    from psycopg import sql

    name = name or reader_role(schema)
    role, s = sql.Identifier(name), sql.Identifier(schema)
    with psycopg.connect(dsn, autocommit=True) as db:
        exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateObject):  # another process made it meanwhile
                db.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT").format(role))
        if password is not None:
            db.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password)))
        for each in (s, *(sql.Identifier(other) for other in also)):
            db.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(each, role))
            db.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(each, role))
    url = urlsplit(dsn)
    netloc = f"{name}{':' + password if password else ''}@{url.hostname}" + (f":{url.port}" if url.port else "")
    return urlunsplit(url._replace(netloc=netloc))


def drop_reader(dsn: str, schema: str, *, name: str | None = None) -> None:
    """Remove the role and what was granted to it (in the database of ``dsn``)."""
    import psycopg
    from psycopg import sql

    name = name or reader_role(schema)
    role = sql.Identifier(name)
    with psycopg.connect(dsn, autocommit=True) as db:
        if db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            db.execute(sql.SQL("DROP OWNED BY {}").format(role))
            db.execute(sql.SQL("DROP ROLE {}").format(role))


@contextlib.contextmanager
def reader_connection(dsn: str, schema: str) -> Iterator[str]:
    """A SELECT-only login on ``schema`` for the block (its URL); dropped after."""
    try:
        yield create_reader(dsn, schema)
    finally:
        drop_reader(dsn, schema)
