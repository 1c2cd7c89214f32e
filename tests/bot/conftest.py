"""Fixtures shared by the bot's tests."""

from __future__ import annotations

from datetime import datetime

import pytest
from redis.asyncio import Redis

#: The machine's Redis (it runs on every machine this project is built on, CI's included).
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Invoke `coach ...` in this process against a fresh database (settings re-read from the environment).

    The same click commands a user runs, without starting an interpreter: the tests that are about the
    process itself (exit codes, pipes, a terminal) start real ones with `tests.bot.test_cli.run`.
    """
    from click.testing import CliRunner

    from bot.cli.main import build_cli
    from bot.config import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/coach.db")
    monkeypatch.setenv("COACH_OUT_DIR", str(tmp_path / "out"))
    get_settings.cache_clear()
    group = build_cli()
    yield lambda args: CliRunner().invoke(group, args, catch_exceptions=False)
    get_settings.cache_clear()


@pytest.fixture
async def redis():
    """A client of the machine's Redis; tests keep to key prefixes of their own."""
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception:  # say so plainly rather than fail somewhere inside a test
        pytest.fail(f"Redis is not answering on {REDIS_URL}")
    yield client
    await client.aclose()


class Clock:
    """A clock a test moves by hand (`clock.t = ...`)."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
def clock() -> Clock:
    """Inside a session (OPEN_AT) until the test moves it."""
    from tests.conftest import OPEN_AT

    return Clock(OPEN_AT)


@pytest.fixture
async def svc(engine, settings, clock):
    """Services on the test database and the offline market, both on `clock`."""
    from providers.sim import SimMarket
    from tests.conftest import make_services

    svc = await make_services(settings, engine, SimMarket(seed=0, now=clock), clock)
    yield svc
    await svc.close()
