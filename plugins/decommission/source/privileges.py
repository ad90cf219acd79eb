"""Whether the source login could change the legacy database: read-only in a way no statement undoes.

A read-only transaction is a setting of the session: ``COMMIT`` ends it and the next statement
may write, if the login may. What a login may do is the database's to enforce, so preflight
reads it from PostgreSQL's catalogue: a superuser (or a role it can become) may do anything;
otherwise every table, view and foreign table of the source schema is checked for INSERT,
UPDATE, DELETE and TRUNCATE, and the schema for CREATE, for the login and every role it is a
member of (it could ``SET ROLE`` to any of them). SQLite sources are opened read-only by the
operating system (``mode=ro``) with ATTACH disabled (:mod:`decommission.source.database`), so a
statement cannot write through them either.
"""

from __future__ import annotations

from typing import Any

#: the privileges that change a table's rows
WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")

_QUERY = """
WITH member AS (
    SELECT r.oid, r.rolname, r.rolsuper FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER')
)
SELECT m.rolname, 'SUPERUSER', NULL FROM member m WHERE m.rolsuper
UNION ALL
SELECT m.rolname, 'CREATE', n.nspname
  FROM member m CROSS JOIN pg_namespace n
 WHERE n.nspname = %(schema)s AND has_schema_privilege(m.oid, n.oid, 'CREATE')
UNION ALL
SELECT m.rolname, p.privilege, c.relname
  FROM member m
 CROSS JOIN pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN unnest(%(writes)s::text[]) AS p(privilege)
 WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND has_table_privilege(m.oid, c.oid, p.privilege)
ORDER BY 1, 2, 3
"""


def postgres_write_access(conn: Any, schema: str | None) -> list[str]:
    """What the connection's login could change in ``schema`` (``public`` if None), one sentence per role and kind.

    Names only roles, privileges and tables (the catalogue's names, never a row). Empty when the
    login can only read.
    """
    cur = conn.cursor()
    try:
        cur.execute(_QUERY, {"schema": schema or "public", "writes": list(WRITES)})
        rows = cur.fetchall()
    finally:
        cur.close()
    return describe(rows, schema or "public")


def describe(rows: list[tuple[str, str, str | None]], schema: str) -> list[str]:
    """Sentences from (role, privilege, object) rows of the catalogue query."""
    by_role: dict[str, dict[str, list[str]]] = {}
    for role, privilege, name in rows:
        by_role.setdefault(role, {}).setdefault(privilege, []).append(name or "")
    superusers = [role for role, privileges in by_role.items() if "SUPERUSER" in privileges]
    if superusers:  # a superuser counts as a member of every role: the rest says nothing more
        return [f"role '{role}' is a superuser: it may change anything" for role in superusers]
    out = []
    for role, privileges in by_role.items():
        if "CREATE" in privileges:
            out.append(f"role '{role}' may CREATE objects in schema '{schema}'")
        tables: dict[str, list[str]] = {}
        for privilege in WRITES:
            for table in privileges.get(privilege, []):
                tables.setdefault(table, []).append(privilege)
        for table, held in sorted(tables.items()):
            out.append(f"role '{role}' may {', '.join(held)} on {schema}.{table}")
    return out
