"""The runtime drops answer claims no platform could still be waiting for, and keeps the recent ones."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.runtime.dispatcher import DispatchConfig
from bot.runtime.worker import Runtime, RuntimeConfig
from core.clock import utc_now
from providers.sim import SimMarket
from storage import answers
from storage.answers import RequestAnswer
from tests.bot.runtime.conftest import ScriptedStream
from tests.conftest import OPEN_AT, make_services

FAST = DispatchConfig(base_backoff=0.02, max_backoff=0.2, poll_interval=0.05)


async def keys(svc) -> set[str]:
    async with svc.db() as s:
        return set((await s.execute(select(RequestAnswer.key))).scalars())


async def claim(svc, key: str, age: timedelta) -> None:
    async with svc.db() as s, s.begin():
        assert await answers.claim(s, key, "w1", utc_now() - age, stale=60.0)


async def test_housekeeping_purges_claims_older_than_a_day(engine, settings):
    svc = await make_services(settings, engine, SimMarket(seed=0, now=lambda: OPEN_AT), lambda: OPEN_AT)
    try:
        await claim(svc, "discord:old", timedelta(days=3))
        await claim(svc, "slack:yesterday", timedelta(hours=25))
        await claim(svc, "discord:recent", timedelta(minutes=5))
        cfg = RuntimeConfig(sync_interval=0.02, purge_interval=3_600.0, dispatch=FAST)
        rt = Runtime(svc, clock=lambda: OPEN_AT, stream=ScriptedStream([]), config=cfg)
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run(stop))
        try:
            for _ in range(200):  # the first housekeeping round purges, whatever the interval
                if await keys(svc) == {"discord:recent"}:
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        assert await keys(svc) == {"discord:recent"}
        # a claim made since is kept, and purging again finds nothing older
        await claim(svc, "api:new", timedelta(0))
        assert await rt.purge_answers() == 0
        assert await keys(svc) == {"discord:recent", "api:new"}
    finally:
        await svc.close()
