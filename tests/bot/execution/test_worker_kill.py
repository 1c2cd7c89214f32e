"""`coach worker` as real processes on the machine's Redis: one SIGKILLed mid-job, the person still answered exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.execution.queue import QueueExecutor
from tests.bot.conftest import REDIS_URL
from tests.databases import copy_sqlite

from .conftest import job_for, person, token_of

ROOT = Path(__file__).resolve().parents[3]
#: Seconds before a silent worker's job goes to another: short, so the test does not wait half a minute.
CLAIM_IDLE = 3


async def start_worker(env: dict[str, str], ready: str = "worker_started") -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "worker", env=env, cwd=ROOT, stderr=asyncio.subprocess.PIPE, start_new_session=True
    )
    assert proc.stderr is not None
    seen: list[str] = []
    async with asyncio.timeout(60):
        while ready not in (line := (await proc.stderr.readline()).decode()):
            seen.append(line)
            if not line:  # it exited
                raise AssertionError("coach worker did not start:\n" + "".join(seen[-30:]))
    return proc


def claimed_by(db: Path, key: str) -> tuple[str, int] | None:
    with sqlite3.connect(db) as con:
        row = con.execute("SELECT worker, done FROM request_answers WHERE key = ?", (key,)).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the workers share one SQLite file of their own
async def test_a_worker_killed_mid_job_leaves_the_answer_to_another_exactly_once(
    services, redis, keys, discord, tmp_path, sqlite_template
) -> None:
    db = copy_sqlite(sqlite_template, tmp_path / "coach.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "DISCORD", "SLACK", "COACH_"))}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{db}",
        COACH_PROVIDER="sim",
        COACH_OUT_DIR=str(tmp_path / "out"),
        DISCORD_API_BASE=discord.api_base,
        COACH_QUEUE_URL=REDIS_URL,
        COACH_QUEUE_PREFIX=keys.prefix,
        COACH_QUEUE_CLAIM_IDLE=str(CLAIM_IDLE),
        PYTHONPATH=str(ROOT),
    )
    first = await start_worker(env)
    q = QueueExecutor(services.settings, per_user=3, per_tenant=100, redis=redis, keys=keys)
    wide = " ".join(f"ZK{i:03d}" for i in range(150))  # a few seconds of work: long enough to die in the middle
    job = await job_for(services, f"/scan {wide}", discord.app_id)
    await q.submit(job)
    async with asyncio.timeout(30):
        while (holder := claimed_by(db, job.key)) is None:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    await first.wait()
    assert not discord.answers(token_of(job))  # it died before answering

    second = await start_worker(env)
    try:
        [answer] = await discord.wait_for(discord.is_answer(token_of(job)), timeout=60)
        await asyncio.sleep(CLAIM_IDLE + 1.0)  # room for a duplicate to show up, were there one
        assert len(discord.answers(token_of(job))) == 1
        assert "Scan" in str(answer.json)
        now = claimed_by(db, job.key)
        assert now is not None and now[1] == 1 and now[0] != holder[0]  # answered by the second worker
        assert await redis.get(keys.user(person())) is None  # the person's in-flight count is back to zero
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.stderr is not None
        tail = (await asyncio.wait_for(second.stderr.read(), 30)).decode()
        await second.wait()
    assert "stopped after 1 requests" in tail
