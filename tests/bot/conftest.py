"""Fixtures shared by the bot's tests."""

from __future__ import annotations

import pytest


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
