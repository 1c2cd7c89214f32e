"""The `coach` CLI and console as a user runs them: real processes, pipes and a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

COACH = [sys.executable, "-m", "bot.cli"]
ROOT = Path(__file__).resolve().parents[2]


def run(args, tmp_path, stdin=None, env_extra=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "DISCORD", "SLACK", "POLYGON", "TRADIER"))}
    env.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/coach.db",
            "COACH_OUT_DIR": str(tmp_path / "out"),
            "COACH_LOG_FILE": str(tmp_path / "coach.log"),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(env_extra or {})
    return subprocess.run(COACH + args, input=stdin, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=timeout)


AS_OF = "2024-03-13T11:00:00-04:00"


def test_quote_json_is_deterministic_with_as_of(tmp_path):
    a = run(["quote", "TSLA", "--json", "--as-of", AS_OF], tmp_path)
    b = run(["quote", "tsla", "--as-of", AS_OF, "--json"], tmp_path)
    assert a.returncode == 0, a.stderr
    data = json.loads(a.stdout)
    assert data["symbol"] == "TSLA" and data["source"] == "sim"
    assert data["as_of"].startswith("2024-03-13T14:59") or data["as_of"].startswith("2024-03-13T15:00")
    assert data["bid"] < data["ask"]
    assert a.stdout == b.stdout


USER_ERRORS = [
    (["quote", "TS;LA"], "invalid symbol"),
    (["quote", ""], "symbol is empty"),
    (["quote", "A" * 50], "invalid symbol"),
    (["quote", "ТСЛА"], "invalid symbol"),
    (["bars", "TSLA", "7m"], "unknown interval"),
    (["quote", "TSLA", "--as-of", "2099-01-01T00:00:00Z"], "future"),
    (["quote", "TSLA", "--as-of", "last tuesday"], "malformed"),
    (["watch", "add"], "missing symbols"),
]


def _one_error_line(stdout: str, stderr: str, needle: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert "Traceback" not in stderr + stdout


@pytest.mark.parametrize("args,needle", USER_ERRORS)
def test_user_errors_are_one_line_exit_2(cli, args, needle):
    r = cli(args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    _one_error_line(r.stdout, r.stderr, needle)


#: One real process per way a user error leaves the CLI: a registry twin's parser (with a non-ASCII
#: argument through argv and stderr), the --as-of option, a hand-written command. The other inputs
#: leave the same ways; the in-process test above checks each of them.
@pytest.mark.parametrize("args,needle", [USER_ERRORS[3], USER_ERRORS[6], USER_ERRORS[7]])
def test_user_errors_exit_a_real_process_with_code_2_and_one_line(tmp_path, args, needle):
    r = run(args, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    _one_error_line(r.stdout, r.stderr, needle)


def test_unreachable_database_is_one_line(tmp_path):
    r = run(["watch", "list"], tmp_path, env_extra={"DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/x"})
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect to database" in lines[0] and "DATABASE_URL" in lines[0]
    assert "Traceback" not in r.stderr


def test_watchlist_survives_restart_and_piped_chat_answers_each_line(tmp_path):
    """One piped chat between two processes: it edits the watchlist they share, and bad lines do not stop it."""
    assert run(["watch", "add", "TSLA", "NVDA"], tmp_path).returncode == 0
    lines = "/watch remove NVDA\n/quote TSLA\n/quote TS;LA\n\x00\x01junk\n/session\n/watch add BRK.B\n"
    r = run(["chat", "--as-of", AS_OF], tmp_path, stdin=lines)
    assert r.returncode == 0, r.stderr
    assert "Removed NVDA" in r.stdout
    assert "TSLA" in r.stdout and "invalid symbol" in r.stdout and "NYSE open" in r.stdout
    assert "Commands start with /" in r.stdout or "coach" in r.stdout.lower()
    assert "Traceback" not in r.stdout + r.stderr
    listed = run(["watch", "list", "--json"], tmp_path)
    assert json.loads(listed.stdout)["watchlist"] == ["TSLA", "BRK.B"]  # the line after the bad ones ran too


def test_chat_at_a_terminal(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "DISCORD", "SLACK"))}
    env.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/coach.db",
            "COACH_LOG_FILE": str(tmp_path / "coach.log"),
            "PYTHONPATH": str(ROOT),
            "TERM": "dumb",
        }
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(COACH + ["chat"], stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env, close_fds=True)
    os.close(slave)
    out = b""

    def read_until(marker: bytes, timeout: float = 60) -> None:
        nonlocal out
        end = time.time() + timeout
        while marker not in out and time.time() < end:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    return

    try:
        read_until(b"coach> ")
        os.write(master, b"/quote TSLA\n")
        read_until(b"data: quote: sim")
        os.write(master, b"quit\n")
        proc.wait(timeout=30)
    finally:
        proc.kill()
        os.close(master)
    text = out.decode(errors="replace")
    assert "type /help" in text and "TSLA" in text and "Bid" in text
    assert proc.returncode == 0


def test_demo_exits_zero(tmp_path):
    r = run(["demo"], tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Watchlist" in r.stdout and "invalid symbol" in r.stdout


def test_help_lists_commands(tmp_path):
    r = run(["--help"], tmp_path)
    assert r.returncode == 0
    for word in ("chat", "demo", "db", "quote", "watch"):
        assert word in r.stdout


def test_db_upgrade(tmp_path):
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    r = run(["db", "upgrade"], tmp_path)
    assert r.returncode == 0
    assert r.stdout.strip().endswith("at revision " + ", ".join(sorted(heads)))


def test_coach_worker_says_in_one_line_what_it_needs(tmp_path):
    no_queue = run(["worker"], tmp_path)
    assert no_queue.returncode == 1 and "set COACH_QUEUE_URL" in no_queue.stderr
    bad = run(["worker"], tmp_path, env_extra={"COACH_QUEUE_URL": "redis://127.0.0.1:6379/0", "COACH_QUEUE_PREFIX": "a b"})
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "COACH_QUEUE_PREFIX" in bad.stderr
