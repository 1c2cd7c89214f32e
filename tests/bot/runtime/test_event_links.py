"""What the runtime pushes links to the live chart (a fired alert opens its symbol, a plan's transition opens that
plan) and carries the freshness badge of the price that caused it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.request import Ctx
from bot.runtime.dispatcher import DispatchConfig
from bot.runtime.messages import payload_to_reply
from bot.runtime.worker import Runtime, RuntimeConfig
from providers.sim_stream import SimClock, SimStream
from tests.bot.runtime.conftest import ScriptedStream, identity, say, until
from tests.bot.runtime.test_runtime import CONSOLE, outbox, play, sim_services
from tests.bot.runtime.test_tracker import T0, _propose, tsla_plan
from tests.bot.web.conftest import PUBLIC, SECRET, signer, token_of
from tests.conftest import OPEN_AT

FAST = DispatchConfig(base_backoff=0.02, max_backoff=0.2, poll_interval=0.05)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"coach_public_url": PUBLIC, "coach_link_secret": SECRET}


def chart_links(row) -> list[str]:
    return [a["url"] for a in row.payload["reply"]["actions"] if a.get("url")]


async def test_alerts_and_plan_transitions_link_to_the_owners_live_chart(services, monkeypatch):
    monkeypatch.setenv("COACH_CHART_WORKERS", "0")
    clock = SimClock(T0, speed=None)
    svc = sim_services(services, clock)
    price = await say(svc, "/alert add TSLA above 483", **CONSOLE)
    rsi = await say(svc, "/alert add TSLA rsi_below 50 interval=15m", **CONSOLE)
    assert price.severity == rsi.severity == "success", (price.body, rsi.body)
    await _propose(svc, tsla_plan("P-LINK01", T0))
    tracked = await say(svc, "/track P-LINK01", **CONSOLE)
    assert tracked.severity == "success", tracked.body
    async with svc.db() as s:
        owner = await Ctx(services=svc, identity=identity(**CONSOLE)).owner(s)

    stream = SimStream(clock, start=T0)
    rt = Runtime(svc, clock=clock, stream=stream, config=RuntimeConfig(dispatch=FAST))
    await rt.start()
    await play(rt, stream, T0 + timedelta(hours=5), per_batch=5)  # batches of seconds, as a live runtime's
    rows = await outbox(svc)

    fired = {r.key.split("@")[0]: r for r in rows if r.kind == "alert"}
    (url,) = chart_links(fired[f"alert:{price.data.id}:1"])
    scope = signer().verify(token_of(url), T0 + timedelta(hours=1))
    assert (scope.tenant_id, scope.user_id, scope.symbol, scope.plan_id) == (owner.tenant_id, owner.user_id, "TSLA", None)
    assert scope.intervals == ("5m", "1h", "1D")
    # an indicator alert opens on its own interval first
    (url,) = chart_links(fired[f"alert:{rsi.data.id}:1"])
    assert signer().verify(token_of(url), T0 + timedelta(hours=1)).intervals == ("15m", "5m", "1h", "1D")

    # the offline market's stream is live: every push says so in its footer
    pushed = [payload_to_reply(r.payload) for r in rows if r.kind in ("alert", "plan")]
    assert pushed and all(p.freshness.kind == "live" for p in pushed)
    assert all(p.footer().startswith("🟢 live") for p in pushed)

    transitions = [r for r in rows if r.kind == "plan"]
    assert [r.payload["reply"]["data"]["event"] for r in transitions][:2] == ["triggered", "target"]
    for row in transitions:
        (url,) = chart_links(row)
        scope = signer().verify(token_of(url), T0 + timedelta(hours=1))
        assert (scope.tenant_id, scope.user_id, scope.symbol) == (owner.tenant_id, owner.user_id, "TSLA")
        assert (scope.plan_id, scope.version) == ("P-LINK01", 1)
        assert scope.intervals == ("5m", "15m", "1h")


async def test_without_links_configured_no_message_carries_one(services):
    svc = sim_services(services, SimClock(T0, speed=None))
    svc.settings = svc.settings.model_copy(update={"coach_public_url": None})
    r = await say(svc, "/alert add TSLA above 483", **CONSOLE)
    assert r.severity == "success"
    stream = SimStream(svc.clock, start=T0)
    rt = Runtime(svc, clock=svc.clock, stream=stream, config=RuntimeConfig(dispatch=FAST))
    await rt.start()
    await play(rt, stream, datetime(2024, 3, 13, 15, 0, tzinfo=UTC))
    fired = [r for r in await outbox(svc) if r.kind == "alert"]
    assert fired and all(chart_links(r) == [] for r in fired)


async def test_an_alert_fired_by_a_delayed_quote_says_how_old_it_is(services):
    """A feed 16 minutes behind (a delayed data plan): the alert still fires, and its badge says delayed 16 min."""
    clock = SimClock(OPEN_AT - timedelta(minutes=30), speed=None)
    svc = sim_services(services, clock)
    r = await say(svc, "/alert add TSLA above 450", **CONSOLE)  # made before the prices below
    assert r.severity == "success", r.body
    clock.set(OPEN_AT)
    late = OPEN_AT - timedelta(minutes=16)
    stream = ScriptedStream([("TSLA", 440.0, late - timedelta(minutes=1)), ("TSLA", 455.0, late)])
    rt = Runtime(svc, clock=clock, stream=stream, config=RuntimeConfig(sync_interval=0.05, dispatch=FAST))
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run(stop))
    try:
        await until(rt.batch_done, lambda: rt.stats.ticks == 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    (row,) = [r for r in await outbox(svc) if r.kind == "alert"]
    reply = payload_to_reply(row.payload)
    assert reply.freshness.kind == "delayed" and reply.freshness.age_seconds == 16 * 60
    assert reply.footer().startswith("🟡 delayed 16 min")
