"""The runtime checks books with risk rules as prices move: a breach goes out as a `risk` alert, once a day."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.request import Ctx, Identity
from bot.risk_alerts import sweep
from bot.runtime.dispatcher import DispatchConfig
from bot.runtime.worker import Runtime, RuntimeConfig
from providers.sim import SimMarket
from storage.outbox import OutboxRow
from tests.bot.runtime.conftest import ScriptedStream
from tests.conftest import OPEN_AT, make_services, run_text

ANN = Identity(platform="discord", tenant="G1", user="U-ann", channel="C1", display_name="ann")
FAST = DispatchConfig(base_backoff=0.02, max_backoff=0.2, poll_interval=0.05)


async def say(svc, text: str):
    return await run_text(Ctx(services=svc, identity=ANN), text)


async def risk_rows(svc) -> list[OutboxRow]:
    async with svc.db() as s:
        rows = (await s.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars()
        return [r for r in rows if str(r.payload.get("event_key", "")).startswith("risk:")]


async def test_sweep_finds_a_breach_without_a_fill_and_tells_it_once(engine, settings):
    svc = await make_services(settings, engine, SimMarket(seed=0, now=lambda: OPEN_AT), lambda: OPEN_AT)
    try:
        await say(svc, "/risk 50000 1")
        await say(svc, "/risk max_position=50")
        pv = await say(svc, "/order preview TSLA buy 20")
        await say(svc, pv.actions[0].command)
        assert await sweep(svc) == 0 and await risk_rows(svc) == []
        await say(svc, "/risk max_position=5")  # the book did not change; the rule (or the price) did
        assert await sweep(svc) == 1
        (row,) = await risk_rows(svc)
        assert row.destination == "discord" and "C1" in row.target
        assert "TSLA exposure" in row.payload["reply"]["body"]
        assert await sweep(svc) == 1 and len(await risk_rows(svc)) == 1  # still broken, already told today
    finally:
        await svc.close()


async def test_the_runtime_housekeeping_runs_the_sweep(engine, settings):
    svc = await make_services(settings, engine, SimMarket(seed=0, now=lambda: OPEN_AT), lambda: OPEN_AT)
    try:
        await say(svc, "/risk 50000 1")
        pv = await say(svc, "/order preview TSLA buy 20")
        await say(svc, pv.actions[0].command)
        await say(svc, "/risk max_position=5")
        cfg = RuntimeConfig(sync_interval=0.02, risk_interval=0.05, dispatch=FAST)
        rt = Runtime(svc, clock=lambda: OPEN_AT, stream=ScriptedStream([]), config=cfg)
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run(stop))
        try:
            for _ in range(200):
                if await risk_rows(svc):
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        assert len(await risk_rows(svc)) == 1
    finally:
        await svc.close()
