"""`coach runtime`'s figures: the stop line, and the window lines SIGUSR1 prints while it keeps running."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.cli.runtime_run import WindowReport
from bot.config import Settings
from bot.runtime.worker import RuntimeStats
from providers.sim import SimMarket
from storage.db import make_engine, upgrade
from tests.bot.runtime.conftest import say
from tests.conftest import make_services

START = datetime(2024, 3, 13, 14, 0, tzinfo=UTC)  # 10:00 ET
CONSOLE = dict(platform="console", tenant="local", user="me", channel="console", admin=True)
ROOT = Path(__file__).resolve().parents[3]
_WINDOW = re.compile(
    r"coach runtime: window (\d+), [0-9.]+ s: (\d+) ticks, (\d+) alerts fired, \d+ plan events, (\d+) messages queued\."
    r" Tick to outbox: (?:p50 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms over (\d+) batches\.|(no batch queued a message\.))"
)
_STOPPED = re.compile(r"coach runtime: stopped after (\d+) ticks, (\d+) alerts fired, .* over (\d+) batches\.")


def test_a_window_counts_only_what_happened_since_the_previous_one():
    now = [100.0]
    stats = RuntimeStats()
    report = WindowReport(stats, clock=lambda: now[0])
    stats.ticks, stats.triggers, stats.messages = 40, 3, 3
    stats.latencies += [0.002, 0.004, 0.010]
    stats.samples = 3
    now[0] = 102.5
    first = report.take()
    assert first.startswith("coach runtime: window 1, 2.5 s: 40 ticks, 3 alerts fired, 0 plan events, 3 messages queued.")
    assert "p50 4.00 ms, p99 4.00 ms, max 10.00 ms over 3 batches." in first
    stats.ticks += 10  # ticks, but nothing fired
    second = report.take()
    assert "window 2, 0.0 s: 10 ticks, 0 alerts fired" in second
    assert second.endswith("Tick to outbox: no batch queued a message.")
    # the runtime trims its list to the newest samples: a window reports those it still has, never older ones
    stats.latencies[:] = [0.5, 0.001, 0.003]  # 0.5 is from before this window; two came since
    stats.samples += 2
    third = report.take()
    assert "max 3.00 ms over 2 batches." in third


def _outbox_rows(db_path: Path) -> int:
    con = sqlite3.connect(db_path, timeout=30)
    try:
        return int(con.execute("SELECT count(*) FROM outbox").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


async def test_sigusr1_prints_the_window_and_the_runtime_keeps_running(tmp_path):
    db_path = tmp_path / "report.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{db_path}", coach_provider="sim")
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    svc = await make_services(settings, engine, SimMarket(seed=0, now=lambda: START), lambda: START)
    last = (await svc.market.quote("TSLA", at=START)).last
    for k in range(-5, 6):  # repeating crosses around the price: they fire all day
        r = await say(svc, f"/alert add TSLA cross {round(last * (1 + k * 0.003), 2)} --repeat", **CONSOLE)
        assert r.severity == "success", r.body
    await svc.close()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "COACH_PROVIDER": "sim",
        "COACH_LOG_LEVEL": "INFO",
        "COACH_CHART_WORKERS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.runtime",
        "--speed",
        "1500",
        "--start",
        START.isoformat(),
        env=env,
        cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen: list[str] = []

    async def line_with(needle: str) -> str:
        assert proc.stderr is not None
        while True:
            raw = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert raw, "the runtime exited; its stderr:\n" + "\n".join(seen[-20:])
            seen.append(raw.decode(errors="replace").rstrip())
            if needle in seen[-1]:
                return seen[-1]

    try:
        await line_with("runtime_started")
        deadline = asyncio.get_running_loop().time() + 60
        while _outbox_rows(db_path) < 5:
            assert asyncio.get_running_loop().time() < deadline, "no alert fired; stderr:\n" + "\n".join(seen[-20:])
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGUSR1)
        first = _WINDOW.search(await line_with("coach runtime: window 1"))
        assert first is not None, seen[-1]
        assert int(first.group(2)) > 0 and int(first.group(3)) > 0 and int(first.group(5)) > 0
        proc.send_signal(signal.SIGUSR1)
        second = _WINDOW.search(await line_with("coach runtime: window 2"))
        assert second is not None, seen[-1]
        proc.send_signal(signal.SIGTERM)
        stopped = _STOPPED.search(await line_with("coach runtime: stopped"))
        assert stopped is not None, seen[-1]
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # the windows are parts of the whole run: the stop line counts at least what they did
    assert int(stopped.group(2)) >= int(first.group(3)) + int(second.group(3))
    assert int(stopped.group(3)) >= int(first.group(5)) + int(second.group(5) or 0)
