"""Server logs: one JSON object per line, with the request's context, who asked hashed, and no secret."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from bot.config import Settings
from bot.logging import MODE_ENV, hash_id, setup_logging


@pytest.fixture
def server_log(monkeypatch):
    """Server-mode logging into a buffer; the previous configuration comes back afterwards."""
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    monkeypatch.delenv(MODE_ENV, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    settings = Settings(coach_log_salt="pepper", openai_api_key="sk-topsecret-123456", _env_file=None)
    setup_logging("server", settings)
    yield buf
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_every_line_is_json_with_the_request_context(server_log) -> None:
    log = structlog.get_logger("coach.test")
    with structlog.contextvars.bound_contextvars(request_id="ABCD1234", surface="discord", tenant="discord:g1", user="u42"):
        log.info("command_done", command="plan", duration=0.25)
        logging.getLogger("discord.gateway").warning("heartbeat blocked for %d seconds", 3)
    try:
        raise ValueError("boom with sk-topsecret-123456")
    except ValueError:
        log.exception("command_failed")
    done, lib, failed = lines(server_log)
    assert done["event"] == "command_done" and done["level"] == "info" and done["logger"] == "coach.test"
    assert done["request_id"] == "ABCD1234" and done["surface"] == "discord" and done["duration"] == 0.25
    assert str(done["timestamp"]).endswith("Z")
    # who asked is followable across lines but not readable
    assert done["user"] == hash_id("u42", "pepper") and len(str(done["user"])) == 12 and "u42" not in json.dumps(done)
    assert done["tenant"] == hash_id("discord:g1", "pepper")
    # a library's plain logging call comes out the same way, with the request it happened in
    assert lib["event"] == "heartbeat blocked for 3 seconds" and lib["logger"] == "discord.gateway"
    assert lib["level"] == "warning" and lib["request_id"] == "ABCD1234"
    # tracebacks are inside the JSON, secrets are not anywhere
    assert "ValueError" in str(failed["exception"]) and "sk-topsecret" not in server_log.getvalue()


def test_the_salt_changes_the_hash() -> None:
    assert hash_id("u42", "a") != hash_id("u42", "b")
    assert hash_id("u42", "a") == hash_id("u42", "a")
