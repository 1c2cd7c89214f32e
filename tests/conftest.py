"""Shared fixtures: databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set) and services."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.config import Settings
from storage.db import make_engine, make_sessionmaker
from tests.databases import (
    PG_SESSION,
    build_sqlite_template,
    check_script,
    copy_sqlite,
    create_schema,
    drop_schema,
    migration_script,
    pg_dsn,
)

PG_URL = os.environ.get("TEST_DATABASE_URL")

#: A pinned moment inside a regular session (Wednesday 2024-03-13 11:00 ET).
OPEN_AT = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)

DB_PARAMS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated to head once per test process (read only: tests get copies)."""
    return build_sqlite_template(tmp_path_factory.mktemp("db-template") / "migrated.db")


@pytest.fixture(scope="session")
def pg_script() -> str | None:
    """The migrations as one SQL script for PostgreSQL schemas, checked against an online upgrade once."""
    if not PG_URL:
        return None
    script = migration_script(PG_URL)
    tag = secrets.token_hex(4)
    asyncio.run(check_script(PG_URL, script, (f"t_{tag}_online", f"t_{tag}_script")))
    return script


@pytest.fixture(params=DB_PARAMS)
async def engine(request, tmp_path, sqlite_template, pg_script) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database of this test's own: a SQLite file, or a private schema on the PostgreSQL server."""
    if request.param == "sqlite":
        db = copy_sqlite(sqlite_template, tmp_path / "test.db")
        eng = make_engine(f"sqlite+aiosqlite:///{db}")
        yield eng
        await eng.dispose()
        return
    dsn, schema = pg_dsn(PG_URL), "t_" + secrets.token_hex(6)
    await create_schema(dsn, schema, pg_script)
    eng = create_async_engine(PG_URL, connect_args={"server_settings": {**PG_SESSION, "search_path": schema}})
    try:
        yield eng
    finally:
        await eng.dispose()
        await drop_schema(dsn, schema)


@pytest.fixture
def sessionmaker(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/coach.db", coach_provider="sim", coach_out_dir=tmp_path / "out")


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Settings the `services` of a test directory differ in (a conftest there overrides this)."""
    return {}


@pytest.fixture
async def services(engine, tmp_path, settings_overrides):
    """Services on the test database, the offline market and a clock pinned inside a session."""
    from providers.sim import SimMarket

    s = Settings(
        _env_file=None,
        database_url="sqlite+aiosqlite:///:memory:",
        coach_provider="sim",
        coach_out_dir=tmp_path / "out",
        **settings_overrides,
    )
    svc = await make_services(s, engine, SimMarket(seed=0), lambda: OPEN_AT)
    yield svc
    await svc.close()


async def make_services(settings: Settings, engine, market, clock):
    """Services built by the composition root on an already migrated engine; charts drawn in a thread."""
    from bot.app import build_services

    return await build_services(settings, engine=engine, market=market, clock=clock, migrate=False, chart_workers=0, workers=0)


def with_commands(services, registry=None, limiter=None):
    """The same services serving `registry` (rate limited by `limiter`) through a pipeline of their own.

    Answers go out with the services' settings as they are now (tests point them at loopback fakes
    after the services were built), from jobs run in this process.
    """
    import dataclasses

    from bot.execution.fairness import InFlight
    from bot.execution.local import InlineExecutor
    from bot.pipeline import Pipeline
    from bot.ratelimit import RateLimiter
    from bot.surfaces.replies import ReplySender

    registry = registry or services.registry
    pipeline = Pipeline(registry, limiter or RateLimiter(services.settings.coach_rate_per_minute))
    svc = dataclasses.replace(services, registry=registry, pipeline=pipeline, replies=ReplySender(services.settings), closers=[])
    s = services.settings
    svc.executor = InlineExecutor(svc, svc.replies.deliver, InFlight(s.coach_user_concurrency, s.coach_tenant_concurrency))
    services.closers.append(svc.replies.aclose)
    return svc


async def run_text(ctx, text: str, registry=None):
    """One line through the request pipeline, as a chat surface sends it (the test's identity and time)."""
    import dataclasses

    from bot.pipeline import Invocation

    if registry is not None:
        ctx = dataclasses.replace(ctx, services=with_commands(ctx.services, registry))
    return await ctx.services.pipeline.handle(ctx, Invocation.line(text))
