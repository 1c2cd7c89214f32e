"""Fixtures shared by the bot's tests."""

from __future__ import annotations

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
