"""`coach serve`'s own worker processes: a worker killed mid-job is replaced and the job answered once; a stuck one is ended."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3

import pytest

from bot.app import run_job_in_worker, start_worker_process
from bot.config import Settings
from bot.execution.fairness import InFlight
from bot.execution.local import LocalPoolExecutor
from bot.execution.runner import Budget, answer_instead
from bot.reply import Reply
from tests.databases import copy_sqlite

from .conftest import job_for, token_of

pytestmark = [pytest.mark.xdist_group("local-pool"), pytest.mark.parametrize("engine", ["sqlite"], indirect=True)]


def pool_for(services, sender, discord, tmp_path, sqlite_template, **kw) -> tuple[LocalPoolExecutor, str]:
    """Two worker processes on a SQLite file of their own, answering the loopback Discord."""
    db = copy_sqlite(sqlite_template, tmp_path / "coach.db")
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{db}",
        coach_provider="sim",
        coach_out_dir=tmp_path / "out",
        discord_api_base=discord.api_base,
    )

    async def fallback(job, message: str) -> None:
        await answer_instead(services, job, Reply.error(message), sender.deliver, worker="front")

    pool = LocalPoolExecutor(
        settings,
        2,
        InFlight(3, 100),
        start=start_worker_process,
        run=run_job_in_worker,
        preload=["bot.app"],
        fallback=fallback,
        **kw,
    )
    return pool, str(db)


def holder(db: str, key: str) -> str | None:
    with sqlite3.connect(db) as con:
        row = con.execute("SELECT worker FROM request_answers WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


async def test_a_worker_killed_mid_job_is_replaced_and_the_job_answered_once(
    services, sender, discord, tmp_path, sqlite_template
) -> None:
    pool, db = pool_for(services, sender, discord, tmp_path, sqlite_template)
    await pool.start()
    try:
        wide = " ".join(f"ZL{i:03d}" for i in range(150))
        job = await job_for(services, f"/scan {wide}", discord.app_id)
        await pool.submit(job)
        async with asyncio.timeout(30):
            while (who := holder(db, job.key)) is None:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        pid = int(who.rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)
        [answer] = await discord.wait_for(discord.is_answer(token_of(job)), timeout=90)
        await pool.drain()
        assert len(discord.answers(token_of(job))) == 1 and "Scan" in str(answer.json)
        assert holder(db, job.key) != who  # the replacement took the dead worker's claim over
        assert pool.pool.replaced >= 1 and pid not in pool.pool.pids()
        assert not pool.inflight.refusal(job.identity.identity())  # the person's count is back to zero
    finally:
        await pool.aclose()


async def test_a_job_past_its_time_limit_is_ended_and_the_person_told(
    services, sender, discord, tmp_path, sqlite_template
) -> None:
    # a /plan reports no progress, so only the wall-clock limit can end it: 10 ms is far too little for it
    pool, db = pool_for(services, sender, discord, tmp_path, sqlite_template, budget=Budget(light=0.01, heavy=0.01, margin=0.0))
    await pool.start()
    try:
        job = await job_for(services, "/plan TSLA", discord.app_id)
        await pool.submit(job)
        await pool.drain()
        [answer] = discord.answers(token_of(job))
        assert "ran past its 0 s limit and was stopped" in str(answer.json)
        assert pool.pool.replaced == 1  # the stuck worker was ended with its pool
        pool.budget = Budget()
        again = await job_for(services, "/plan AAPL", discord.app_id)
        await pool.submit(again)
        await pool.drain()
        [fine] = discord.answers(token_of(again))  # fresh workers serve the next request
        assert "AAPL" in fine.embeds[0]["title"]
    finally:
        await pool.aclose()
