"""Migrated test databases at the cost of a copy: Alembic runs once per test process, not once per test.

Every test that asks for a database still gets one of its own, empty and at the head revision:

- SQLite: the migrations run once, the ordinary way, into a template file; each test gets a
  byte copy of that file.
- PostgreSQL: a schema cannot be copied, so Alembic renders the migrations once as a SQL script
  (its offline mode, the script `alembic upgrade --sql` prints) and each test's private schema
  is built by running that script: one round trip instead of a full Alembic run. Before the
  first test uses it, `check_script` builds one schema each way and compares their catalogs,
  so a migration that the offline rendering gets wrong fails loudly instead of being tested
  against a schema production never has.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import alembic_config, make_engine, upgrade

#: Session settings of every test connection to PostgreSQL. A commit does not wait for the WAL to
#: reach the disk (that wait was most of a test's database time); visibility and locking are the
#: same, and only a crash of the server itself, which no test provokes, could lose a commit.
PG_SESSION = {"synchronous_commit": "off"}


# ---------------------------------------------------------------------------------------- SQLite


def build_sqlite_template(path: Path) -> Path:
    """Migrate a new SQLite file at `path` to head, the way the service does; returns `path`."""

    async def migrate() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    # Back to a rollback journal: this folds any write-ahead log into the file, so the file alone is
    # the whole database, as a brand-new one is before its engine switches it to WAL on connect.
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=DELETE")
    finally:
        con.close()
    return path


def copy_sqlite(template: Path, dest: Path) -> Path:
    """A private copy of the migrated template at `dest`; returns `dest`."""
    shutil.copyfile(template, dest)
    return dest


# ------------------------------------------------------------------------------------ PostgreSQL


def pg_dsn(url: str) -> str:
    """The libpq form of a SQLAlchemy `postgresql+asyncpg://` URL, for asyncpg itself."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def migration_script(url: str) -> str:
    """Every migration up to the heads as one SQL script (Alembic's offline mode), in its own transaction."""
    from alembic import command

    out = io.StringIO()
    cfg = alembic_config(url)
    cfg.output_buffer = out
    command.upgrade(cfg, "heads", sql=True)
    return out.getvalue()


async def create_schema(dsn: str, schema: str, script: str) -> None:
    """Create `schema` and run the migration script inside it."""
    conn = await asyncpg.connect(dsn, server_settings={**PG_SESSION, "search_path": schema})
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(script)
    finally:
        await conn.close()


async def drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn, server_settings=PG_SESSION)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


#: What a schema is made of, each query ordered so that two equal schemas give equal rows.
_CATALOG = {
    "columns": """
        SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision,
               is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2",
    "sequences": "SELECT sequence_name, data_type FROM information_schema.sequences WHERE sequence_schema = current_schema() ORDER BY 1",
    "revisions": "SELECT version_num FROM alembic_version ORDER BY 1",
}


async def catalog(dsn: str, schema: str) -> dict[str, list[tuple]]:
    """The tables, columns, constraints, indexes, sequences and revisions of `schema`, its own name left out."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        out: dict[str, list[tuple]] = {}
        for part, query in _CATALOG.items():
            rows = await conn.fetch(query)
            out[part] = [tuple(str(v).replace(f'"{schema}".', "").replace(f"{schema}.", "") for v in r) for r in rows]
        return out
    finally:
        await conn.close()


async def check_script(url: str, script: str, schemas: tuple[str, str]) -> None:
    """Fail unless the script builds exactly the schema that `storage.db.upgrade` builds."""
    dsn = pg_dsn(url)
    migrated, scripted = schemas
    try:
        conn = await asyncpg.connect(dsn, server_settings=PG_SESSION)
        try:
            await conn.execute(f'CREATE SCHEMA "{migrated}"')
        finally:
            await conn.close()
        engine = create_async_engine(url, connect_args={"server_settings": {**PG_SESSION, "search_path": migrated}})
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        await create_schema(dsn, scripted, script)
        want, got = await catalog(dsn, migrated), await catalog(dsn, scripted)
    finally:
        for schema in schemas:
            await drop_schema(dsn, schema)
    diff = {
        part: (sorted(set(want[part]) - set(got[part])), sorted(set(got[part]) - set(want[part])))
        for part in want
        if want[part] != got[part]
    }
    assert not diff, f"the offline migration script differs from an online upgrade (missing, extra): {diff}"
