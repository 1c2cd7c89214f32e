"""Shared fixtures: databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set) and services."""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import Settings
from storage.db import make_engine, make_sessionmaker, upgrade

PG_URL = os.environ.get("TEST_DATABASE_URL")

#: A pinned moment inside a regular session (Wednesday 2024-03-13 11:00 ET).
OPEN_AT = datetime(2024, 3, 13, 15, 0, tzinfo=timezone.utc)

DB_PARAMS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=DB_PARAMS)
async def engine(request, tmp_path):
    """A migrated, empty database: a SQLite file, or a private schema on the PostgreSQL server."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite+aiosqlite:///{tmp_path}/test.db")
        await upgrade(eng)
        yield eng
        await eng.dispose()
        return
    schema = "t_" + secrets.token_hex(6)
    admin = create_async_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = create_async_engine(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        await upgrade(eng)
        yield eng
    finally:
        await eng.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
def sessionmaker(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/coach.db", coach_provider="sim", coach_out_dir=tmp_path / "out")


@pytest.fixture
async def services(engine, tmp_path):
    """Services on the test database, the offline market and a clock pinned inside a session."""
    from bot.services import Services
    from providers.sim import SimMarket

    s = Settings(database_url="sqlite+aiosqlite:///:memory:", coach_provider="sim", coach_out_dir=tmp_path / "out")
    svc = Services(settings=s, market=SimMarket(seed=0), engine=engine, db=make_sessionmaker(engine), clock=lambda: OPEN_AT)
    yield svc
