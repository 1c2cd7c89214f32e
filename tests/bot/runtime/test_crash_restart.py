"""`coach runtime` as a real process, SIGKILLed repeatedly while ticks trigger alerts, then restarted.

What "exactly once" means here: delivery is at-least-once and every message carries its
event's idempotency key. The loopback receiver records RAW posts (it does not dedupe). After
the last restart we require:

* no loss: every event an uninterrupted alert book fires over the same ticks was delivered;
* no phantom and no double fire: the events recorded in the database are exactly those, each once;
* after dedupe by key each event appears once, and raw repeats (a post that landed just before a
  kill, sent again after the restart) number at most the kills.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from analytics.alertbook import AlertBook
from bot.config import Settings
from bot.runtime.evaluator import rule_from_row
from core.values import ns_from_utc
from providers.feed import Tick
from providers.sim import SimMarket
from providers.sim_stream import SimClock, SimStream
from storage import alerts as store
from storage.db import make_engine, upgrade
from tests.bot.runtime.conftest import say
from tests.conftest import make_services

START = datetime(2024, 3, 13, 14, 0, tzinfo=UTC)  # 10:00 ET
CLOSE = datetime(2024, 3, 13, 20, 0, tzinfo=UTC)
SPEED = 1500  # six market hours in ~15 s of wall time
CONSOLE = dict(platform="console", tenant="local", user="me", channel="console", admin=True)
ROOT = Path(__file__).resolve().parents[3]
KILLS = 4


async def _setup(db_path: Path, hook) -> set[str]:
    """Alerts on three symbols spread over the day's path; returns the events an uninterrupted book fires."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{db_path}", coach_provider="sim", coach_webhook_allow_private=True)
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    svc = await make_services(settings, engine, SimMarket(seed=0, now=lambda: START), lambda: START)
    await say(svc, f"/settings webhook add {hook.url('/crash')}", **CONSOLE)
    full = SimMarket(seed=0, now=lambda: CLOSE)
    for sym in ("TSLA", "AAPL", "NVDA"):
        df = (await full.bars(sym, "1m", START, CLOSE)).df
        first = float(df["open"].iloc[0])
        for minute in range(20, 360, 34):
            lv = round(float(df["close"].iloc[minute]), 2)
            kind = "above" if lv > first else "below"
            r = await say(svc, f"/alert add {sym} {kind} {lv} expires=eod", **CONSOLE)
            assert r.severity == "success", r.body
        mid = round(float(df["close"].median()), 2)
        r = await say(svc, f"/alert add {sym} cross {mid} --repeat cooldown=5m expires=eod", **CONSOLE)
        assert r.severity == "success", r.body
    async with svc.db() as s:
        rows = await store.runtime_active_alerts(s)
    await svc.close()
    book = AlertBook()
    for row in rows:
        book.add(rule_from_row(row))
    expected: set[str] = set()
    stream = SimStream(SimClock(START, speed=None), start=START, symbols=["TSLA", "AAPL", "NVDA"])
    async for slot in stream.slots():
        for e in slot.events:
            if isinstance(e, Tick):
                expected |= {f"alert:{t.rule_id}:{t.fire_count}" for t in book.evaluate(e.symbol, e.price, ns_from_utc(e.at))}
        if slot.at >= CLOSE:
            break
    return expected


def _spawn(env: dict, log: Path) -> subprocess.Popen:
    """`python -m bot.runtime` is `coach runtime` without loading every other command first (a faster start)."""
    out = open(log, "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "bot.runtime", "--speed", str(SPEED), "--start", START.isoformat()],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=out,
        start_new_session=True,
        cwd=str(ROOT),
    )


def _db_state(db_path: Path) -> tuple[str | None, int]:
    con = sqlite3.connect(db_path, timeout=30)
    try:
        row = con.execute("SELECT value FROM runtime_state WHERE key = 'runtime:cursor:sim'").fetchone()
        pending = con.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    except sqlite3.OperationalError:
        return None, 0
    finally:
        con.close()
    import json

    return (json.loads(row[0])["at"] if row else None), int(pending)


def _events_in_db(db_path: Path) -> list[str]:
    con = sqlite3.connect(db_path, timeout=30)
    try:
        keys = [r[0] for r in con.execute("SELECT key FROM outbox WHERE kind = 'alert' AND destination = 'webhook'")]
    finally:
        con.close()
    return [k.split("@")[0] for k in keys]


async def test_sigkill_and_restart_deliver_every_alert_once(tmp_path, hook):
    db_path = tmp_path / "crash.db"
    expected = await _setup(db_path, hook)
    assert len(expected) >= 20, "the scenario should fire plenty of alerts"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "COACH_PROVIDER": "sim",
        "COACH_WORKER_ID": "crash-test",
        "COACH_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
        "COACH_LOG_LEVEL": "INFO",
        "COACH_CHART_WORKERS": "0",
    }
    log = tmp_path / "runtime.log"
    rng = random.Random(7)
    kills = 0
    cursors: list[str | None] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 150
    # kill it while it works: once a run has committed progress, SIGKILL it 0.2-1.2 s later
    while kills < KILLS:
        before = _db_state(db_path)[0]
        proc = _spawn(env, log)
        while _db_state(db_path)[0] == before and proc.poll() is None:
            assert loop.time() < deadline, f"no progress; log tail:\n{log.read_text()[-3000:]}"
            await asyncio.sleep(0.05)
        assert proc.poll() is None, f"the runtime exited by itself; log tail:\n{log.read_text()[-3000:]}"
        await asyncio.sleep(rng.uniform(0.2, 1.2))
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        kills += 1
        cursors.append(_db_state(db_path)[0])
        if cursors[-1] and datetime.fromisoformat(cursors[-1]) >= CLOSE:
            break
    assert len(set(cursors)) == len(cursors), f"every run should have made progress: {cursors}"
    # the last run goes to the close and empties the outbox, then stops cleanly
    proc = _spawn(env, log)
    try:
        while True:
            assert loop.time() < deadline, f"runtime did not finish; log tail:\n{log.read_text()[-3000:]}"
            cursor, pending = _db_state(db_path)
            if cursor and datetime.fromisoformat(cursor) >= CLOSE and pending == 0:
                break
            await asyncio.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), 20)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, log.read_text()[-3000:]

    recorded = _events_in_db(db_path)
    assert len(recorded) == len(set(recorded)), "an alert fire was recorded twice"
    assert set(recorded) == expected, "fires differ from an uninterrupted run"

    posts = hook.delivered("/crash")
    assert all(p.key for p in posts), "every post carries its idempotency key"
    # the receiver dedupes by key: each event must then appear exactly once (a digest lists the events it covers)
    unique = {p.key: p for p in posts}
    events: list[str] = []
    for post in unique.values():
        covers = (post.body.get("data") or {}).get("covers")
        events += [c.split("@")[0] for c in covers] if covers else [post.key.split("@")[0]]
    counts = Counter(events)
    assert set(counts) == expected, "lost or phantom deliveries"
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    # raw repeats: one in-flight message per channel can land just before a kill and be sent again after it
    repeats = len(posts) - len(unique)
    print(f"crash test: {kills} kills, {len(expected)} events, {len(posts)} posts, {len(unique)} distinct, cursors {cursors}")
    assert repeats <= kills, f"{repeats} repeated posts for {kills} kills"
