"""Engines, session factories and schema upgrades. Sessions are always passed in explicitly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from core.errors import ConfigError
from core.urls import mask_url

if TYPE_CHECKING:  # alembic loads only when the schema is upgraded
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; SQLite gets WAL, foreign keys and a busy timeout, and its folder is created."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL is not a database URL; accepted: sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db"
        ) from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_async_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError, ModuleNotFoundError) as exc:
        raise ConfigError(
            f"DATABASE_URL {mask_url(url)} uses an unsupported driver ({exc.__class__.__name__}); "
            "accepted: sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    _pragma(dbapi_conn, "foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000")


def _pragma(dbapi_conn: DBAPIConnection, *settings: str) -> None:
    cur = dbapi_conn.cursor()
    for setting in settings:
        cur.execute(f"PRAGMA {setting}")
    cur.close()


def sqlite_sync_engine(engine: AsyncEngine) -> Engine | None:
    """A blocking twin of a file SQLite engine (same file, same pragmas) for latency-bound writes; None otherwise.

    Through the async driver each statement is several hops between the event loop and the
    driver's thread; a transaction run whole inside one thread costs the loop a single wait.
    Its commits never checkpoint the WAL (a checkpoint inside a commit is a 10-20 ms stall):
    whoever uses it runs `checkpoint` from time to time instead, on another connection.
    PostgreSQL and in-memory SQLite (a different database per connection) get None.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    sync = create_engine(
        url.set(drivername="sqlite"), connect_args={"timeout": 30, "check_same_thread": False}, pool_size=2, max_overflow=0
    )

    def pragmas(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        _sqlite_pragmas(dbapi_conn, record)
        _pragma(dbapi_conn, "wal_autocheckpoint=0")

    event.listen(sync, "connect", pragmas)
    return sync


def checkpoint(sync: Engine) -> None:
    """Copy what the WAL holds into the database file without waiting for readers or blocking writers."""
    with sync.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory; callers open `async with factory() as s, s.begin(): ...`."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


#: Tries of an upgrade that ran into another process's (see `upgrade`).
UPGRADE_ATTEMPTS = 5


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    """Bring the schema to `revision` (all heads by default). Raises ConfigError when the database is unreachable."""
    from alembic import command

    cfg = alembic_config()

    def _run(sync_conn: Connection) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    for attempt in range(UPGRADE_ATTEMPTS):
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_run)
            return
        except (TimeoutError, OperationalError, DBAPIError, OSError) as exc:
            # processes starting together (a front and its workers) may migrate at once: the loser finds
            # the winner's tables ("already exists") or its lock; once the winner is done there is nothing left to do
            racing = "already exists" in str(exc) or "locked" in str(exc) or "duplicate" in str(exc).lower()
            if racing and attempt + 1 < UPGRADE_ATTEMPTS:
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            raise ConfigError(
                f"cannot connect to database {mask_url(str(engine.url))}: {_reason(exc)}; check DATABASE_URL"
            ) from None


async def current_revisions(engine: AsyncEngine) -> set[str]:
    """Revisions the database is at (empty for a fresh database)."""
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return {r[0] for r in rows}
    except (OperationalError, DBAPIError):
        return set()


def _reason(exc: BaseException) -> str:
    msg = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = msg[0] if msg else exc.__class__.__name__
    return first[:200]
