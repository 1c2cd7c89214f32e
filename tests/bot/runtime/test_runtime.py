"""The runtime end to end in one process: sim stream -> alert book -> one transaction -> outbox -> webhook."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from analytics.alertbook import AlertBook
from bot.app import rebase
from bot.runtime.dispatcher import DispatchConfig
from bot.runtime.evaluator import rule_from_row
from bot.runtime.feed import Feed, FeedBatch
from bot.runtime.worker import FEED_KEY, Runtime, RuntimeConfig
from bot.services import Services
from core.values import ns_from_utc
from providers.feed import BarUpdate, Tick
from providers.sim import SimMarket
from providers.sim_stream import SimClock, SimStream
from storage import alerts as store
from storage.outbox import outbox_rows
from storage.runtime_state import get_state
from tests.bot.runtime.conftest import ScriptedStream, say, until

T0 = datetime(2024, 3, 13, 14, 30, tzinfo=UTC)  # 10:30 ET, a Wednesday: TSLA ~476.65, ~484.5 by 10:59, ~469 by 11:25
ET = timezone(timedelta(hours=-4))
CONSOLE = dict(platform="console", tenant="local", user="me", channel="console", admin=True)
FAST = DispatchConfig(base_backoff=0.02, max_backoff=0.2, poll_interval=0.05)


def sim_services(services: Services, clock) -> Services:
    """The test services on a market that lives at the given clock."""
    return rebase(services, market=SimMarket(seed=0, now=clock), clock=clock)


async def webhook_channel(svc, hook):
    r = await say(svc, f"/settings webhook add {hook.url('/hook')}", **CONSOLE)
    assert r.severity != "error", r.body


async def play(runtime: Runtime, stream: SimStream, until: datetime, per_batch: int = 30) -> int:
    """Feed slots to the runtime, `per_batch` slots per transaction (as the worker drains its queue), until `until`."""
    n = 0
    batch = FeedBatch(received=time.perf_counter())
    async for slot in stream.slots():
        batch.ticks += [e for e in slot.events if isinstance(e, Tick)]
        batch.bars += [e for e in slot.events if isinstance(e, BarUpdate)]
        batch.cursor = slot.at
        n += 1
        if n % per_batch == 0 or slot.at >= until:
            await runtime.process(batch)
            batch = FeedBatch(received=time.perf_counter())
        if slot.at >= until:
            break
    return n


def sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def delivered_events(hook, path="/hook") -> list[str]:
    """Event keys the receiver got, digests expanded into the events they cover (duplicates kept)."""
    out = []
    for p in hook.delivered(path):
        covers = (p.body.get("data") or {}).get("covers") if isinstance(p.body, dict) else None
        out.extend(c.split("@")[0] for c in covers) if covers else out.append(p.key.split("@")[0])
    return out


async def outbox(svc):
    async with svc.db() as s:
        return await outbox_rows(s)


async def alert_rows(svc):
    async with svc.db() as s:
        from sqlalchemy import select

        return list((await s.execute(select(store.Alert).order_by(store.Alert.id))).scalars())


async def test_trigger_is_written_with_its_outbox_rows_and_delivered(services, hook):
    clock = SimClock(T0, speed=None)
    svc = sim_services(services, clock)
    await webhook_channel(svc, hook)
    r1 = await say(svc, "/alert add TSLA above 483 breakout", **CONSOLE)
    r2 = await say(svc, "/alert add TSLA below 470 --repeat cooldown=10m", **CONSOLE)
    assert r1.severity == "success" and r2.severity == "success"
    stream = SimStream(clock, start=T0)
    rt = Runtime(svc, clock=clock, stream=stream, config=RuntimeConfig(dispatch=FAST))
    queued_before = sample("coach_alert_tick_to_outbox_seconds_count")
    sent_before = sample("coach_deliveries_total", kind="webhook", result="ok")
    await rt.start()
    await play(rt, stream, T0 + timedelta(hours=1))
    await rt.dispatcher.deliver_all(timeout=10)
    # the operator's metrics saw the same: batches that queued messages, and the webhook deliveries
    assert sample("coach_alert_tick_to_outbox_seconds_count") - queued_before == rt.stats.samples > 0
    assert sample("coach_deliveries_total", kind="webhook", result="ok") - sent_before == len(hook.delivered("/hook"))
    rows = await outbox(svc)
    keys = sorted(r.key.split("@")[0] for r in rows if r.destination == "webhook" and r.kind == "alert")
    a1, a2 = r1.data.id, r2.data.id
    assert f"alert:{a1}:1" in keys and f"alert:{a2}:1" in keys
    assert all(r.status in ("delivered", "digested") for r in rows)
    assert {r.destination for r in rows} == {"console", "webhook"}
    posted = {p.key.split("@")[0]: p.body for p in hook.delivered("/hook")}
    first = posted[f"alert:{a1}:1"]
    assert first["title"] == "TSLA above 483.00" and first["data"]["price"] >= 483.0
    assert "breakout" in first["body"]
    by_id = {a.id: a for a in await alert_rows(svc)}
    assert by_id[a1].status == "fired" and by_id[a1].fire_count == 1
    assert by_id[a2].status == "active" and by_id[a2].fire_count >= 1
    assert rt.stats.latencies and max(rt.stats.latencies) < 1.0


async def test_restart_after_an_uncommitted_batch_fires_once(services, hook):
    """A batch evaluated but never committed (the process died) is replayed after a restart: one row per fire, none lost."""
    clock = SimClock(T0, speed=None)
    svc = sim_services(services, clock)
    await webhook_channel(svc, hook)
    ids = []
    for level in (478, 480, 482, 484):
        ids.append((await say(svc, f"/alert add TSLA above {level}", **CONSOLE)).data.id)
    ids.append((await say(svc, "/alert add TSLA cross 479 --repeat cooldown=1m", **CONSOLE)).data.id)

    # what an uninterrupted book fires over the same ticks
    book = AlertBook()
    for row in await alert_rows(svc):
        book.add(rule_from_row(row))
    expected = set()
    ref = SimStream(SimClock(T0, speed=None), start=T0, symbols=["TSLA"])
    async for slot in ref.slots():
        for e in slot.events:
            if isinstance(e, Tick):
                expected |= {f"alert:{t.rule_id}:{t.fire_count}" for t in book.evaluate("TSLA", e.price, ns_from_utc(e.at))}
        if slot.at >= T0 + timedelta(minutes=45):
            break
    assert len(expected) >= 4

    # run 1: commit some batches, then evaluate one more and "die" before its transaction
    stream = SimStream(clock, start=T0)
    rt = Runtime(svc, clock=clock, stream=stream, config=RuntimeConfig(dispatch=FAST))
    await rt.start()
    await play(rt, stream, T0 + timedelta(minutes=12))
    async for slot in stream.slots():
        await rt.evaluator.process(FeedBatch(ticks=[e for e in slot.events if isinstance(e, Tick)], cursor=slot.at))
        if slot.at >= T0 + timedelta(minutes=20):
            break  # ...the process is killed here: nothing of these eight minutes was written
    async with svc.db() as s:
        cursor = datetime.fromisoformat((await get_state(s, "runtime:cursor:sim"))["at"])
    assert cursor <= T0 + timedelta(minutes=12, seconds=1)

    # run 2: a fresh process resumes right after the cursor
    clock2 = SimClock(cursor, speed=None)
    svc2 = sim_services(services, clock2)
    rt2 = Runtime(svc2, clock=clock2, config=RuntimeConfig(dispatch=FAST), stream_factory=lambda at: SimStream(clock2, start=at))
    await rt2.start()
    await play(rt2, rt2.feed.stream, T0 + timedelta(minutes=45))
    await rt2.dispatcher.deliver_all(timeout=10)
    rows = [r for r in await outbox(svc2) if r.destination == "webhook" and r.kind == "alert"]
    got = [r.key.split("@")[0] for r in rows]
    assert len(got) == len(set(got)), "a fire was recorded twice"
    assert set(got) == expected
    seen = delivered_events(hook)
    assert sorted(seen) == sorted(expected)


def _et(h, m, s=0):
    return datetime(2024, 3, 13, h, m, s, tzinfo=ET)


async def test_runtime_hysteresis_cooldown_expiry_session(services, hook):
    clock = SimClock(_et(7, 0), speed=None)
    svc = sim_services(services, clock)
    await webhook_channel(svc, hook)
    # made at 07:00 ET, with the previous close as the reference (TSLA ~591, AAPL ~207, NVDA ~88)
    hover = (await say(svc, "/alert add TSLA above 600 --repeat cooldown=0", **CONSOLE)).data.id
    cool = (await say(svc, "/alert add TSLA above 610 --repeat cooldown=10m", **CONSOLE)).data.id
    gone = (await say(svc, "/alert add NVDA above 90 expires=2024-03-13T09:40:00-04:00", **CONSOLE)).data.id
    regular = (await say(svc, "/alert add AAPL above 215", **CONSOLE)).data.id
    extended = (await say(svc, "/alert add AAPL above 215 session=extended", **CONSOLE)).data.id
    ticks = []
    # pre-market: AAPL crosses 215 at 08:00 (only the extended alert may fire) and is still above at the open
    ticks += [("AAPL", 214.0, _et(7, 59)), ("AAPL", 216.0, _et(8, 0)), ("AAPL", 216.5, _et(9, 30, 30))]
    # TSLA oscillating around 600 inside the band fires once
    ticks += [("TSLA", 595.0, _et(9, 31))]
    ticks += [("TSLA", p, _et(9, 32, i)) for i, p in enumerate([600.01, 599.99, 600.2, 599.8, 600.3, 599.5, 600.0])]
    ticks += [("TSLA", 605.0, _et(9, 33))]
    # 610 with a 10 minute cooldown: crosses at 09:35, 09:37 (consumed) and 09:50
    ticks += [
        ("TSLA", 611.0, _et(9, 35)),
        ("TSLA", 605.0, _et(9, 36)),
        ("TSLA", 612.0, _et(9, 37)),
        ("TSLA", 605.0, _et(9, 38)),
        ("TSLA", 612.0, _et(9, 50)),
    ]
    # NVDA above 90 only after the alert expired at 09:40
    ticks += [("NVDA", 88.0, _et(9, 39)), ("NVDA", 91.0, _et(9, 51))]
    stream = ScriptedStream(ticks)
    rt = Runtime(svc, clock=clock, stream=stream, config=RuntimeConfig(dispatch=FAST))
    await rt.start()
    for sym, p, at in ticks:
        await rt.process(FeedBatch(ticks=[Tick(sym, p, 1.0, at, "scripted")], received=time.perf_counter()))
    await rt.dispatcher.deliver_all(timeout=10)
    fired: dict[int, list[datetime]] = {}
    for r in await outbox(svc):
        if r.destination == "webhook" and r.kind == "alert":
            aid = int(r.key.split(":")[1])
            fired.setdefault(aid, []).append(r.event_at)
    assert fired[extended] == [_et(8, 0)]
    assert fired[regular] == [_et(9, 30, 30)]  # waited for the session, fired at its first tick
    # one fire for the whole oscillation (599.5 never reaches the re-arm level 599.40)
    assert fired[hover] == [_et(9, 32, 0)]
    assert fired[cool] == [_et(9, 35), _et(9, 50)]
    assert gone not in fired
    by_id = {a.id: a for a in await alert_rows(svc)}
    assert by_id[gone].status == "expired"
    assert by_id[cool].fire_count == 2 and by_id[hover].fire_count == 1


async def test_stale_feed_is_reported_not_mistaken_for_a_quiet_market(services):
    clock = SimClock(_et(10, 0), speed=None)
    svc = sim_services(services, clock)
    await say(svc, "/alert add TSLA above 650", **CONSOLE)
    stream = ScriptedStream([("TSLA", 600.0, _et(10, 0)), ("TSLA", 600.0, _et(10, 1))])  # then silence
    rt = Runtime(svc, clock=clock, stream=stream, config=RuntimeConfig(sync_interval=0.05, stale_after=120, dispatch=FAST))
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run(stop))
    await until(rt.batch_done, lambda: rt.stats.ticks == 2)
    assert rt.feed.status().state == "live"
    clock.set(_et(10, 1, 30))  # a quiet minute is not stale
    assert rt.feed.status().state == "live"
    clock.set(_et(10, 5))
    assert rt.feed.status().state == "stale"

    async def recorded_stale() -> bool:
        async with svc.db() as s:
            return (await get_state(s, FEED_KEY))["state"] == "stale"

    await until(rt.heartbeat_written, recorded_stale)  # a heartbeat records it
    assert sample("coach_feed_age_seconds", source=stream.name) >= 120  # and the gauge the stale-feed alert reads
    assert sample("coach_outbox_pending") == 0  # nothing fired: nothing waits
    status = await say(svc, "/alerts status", **CONSOLE)
    assert status.data.feed["state"] == "stale" and "stale" in status.body and status.severity == "error"
    clock.set(_et(16, 30))  # after the close silence is normal
    assert rt.feed.status().state == "closed"
    stop.set()
    await asyncio.wait_for(task, 10)
    async with svc.db() as s:
        assert (await get_state(s, FEED_KEY))["state"] in ("stale", "closed")


async def test_feed_counts_a_polling_market_as_a_stream():
    clock = SimClock(_et(11, 0), speed=None)
    from bot.runtime.feed import PollingStream

    poll = PollingStream(SimMarket(seed=0, now=clock), interval=0.01)
    feed = Feed(poll, clock, stale_after=120)
    await feed.set_symbols(["AAPL", "NVDA"])
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    batch = await feed.next_batch(timeout=5)
    stop.set()
    await poll.aclose()
    await asyncio.wait_for(task, 5)
    assert batch and {t.symbol for t in batch.ticks} <= {"AAPL", "NVDA"}
    assert feed.status().state == "live" and feed.mode == "poll"
    clock.set(_et(11, 10))  # the market's quotes stopped moving for ten minutes while open
    assert feed.status().state == "stale"


async def test_only_one_runtime_leads(services):
    clock = SimClock(_et(10, 0), speed=None)
    svc = sim_services(services, clock)
    cfg_a = RuntimeConfig(lease_ttl=0.6, sync_interval=0.1, worker_id="A", dispatch=FAST)
    cfg_b = RuntimeConfig(lease_ttl=0.6, sync_interval=0.1, worker_id="B", dispatch=FAST)
    a = Runtime(svc, clock=clock, stream=ScriptedStream([]), config=cfg_a)
    b = Runtime(svc, clock=clock, stream=ScriptedStream([]), config=cfg_b)
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    ta = asyncio.create_task(a.run(stop_a))
    await asyncio.wait_for(a.ready.wait(), 5)
    tb = asyncio.create_task(b.run(stop_b))
    await asyncio.wait_for(b.standing_by.wait(), 5)  # b asked for the lease and was refused
    assert a.leader and not b.leader
    stop_a.set()
    await asyncio.wait_for(ta, 5)
    await asyncio.wait_for(b.ready.wait(), 5)
    assert b.leader
    stop_b.set()
    await asyncio.wait_for(tb, 5)


@pytest.mark.parametrize("kind,arg", [("rsi_above", "60"), ("ema_cross_down", "")])
async def test_bar_alert_fires_on_a_completed_bar(services, hook, kind, arg):
    clock = SimClock(T0, speed=None)
    svc = sim_services(services, clock)
    await webhook_channel(svc, hook)
    rep = await say(svc, f"/alert add TSLA {kind} {arg}".strip(), **CONSOLE)
    assert rep.severity == "success", rep.body
    stream = SimStream(clock, start=T0)
    rt = Runtime(svc, clock=clock, stream=stream, config=RuntimeConfig(dispatch=FAST))
    await rt.start()
    await play(rt, stream, T0 + timedelta(hours=5))
    rows = [r for r in await outbox(svc) if r.destination == "webhook"]
    assert len(rows) == 1, "the condition should have been met once in the session"
    at = rows[0].event_at
    assert (at - datetime(2024, 3, 13, 13, 30, tzinfo=UTC)).total_seconds() % 300 == 0, "fires on a 5m bar close"
    from analytics.alertbook import bar_metric

    m = SimMarket(seed=0, now=lambda: at)
    df = (await m.bars("TSLA", "5m", at - timedelta(days=5), at)).df
    metric, params = ("rsi", {"period": 14}) if kind == "rsi_above" else ("ema_diff_bps", {"fast": 9, "slow": 21})
    now_v, before_v = bar_metric(metric, params, df), bar_metric(metric, params, df.iloc[:-1])
    if kind == "rsi_above":
        assert now_v >= 60
    else:
        assert now_v <= 0 < before_v + 5.0  # crossed below (re-armed by the band above)
