"""Live plans through the runtime: transitions posted with a chart, break-even, stop-out, re-plan with Adopt or auto-rearm."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics.models import Plan, PlanResult, Target
from bot.runtime.dispatcher import DispatchConfig
from bot.runtime.worker import Runtime, RuntimeConfig
from providers.sim_stream import SimClock, SimStream
from storage import plans as plan_store
from storage.identity import ensure_owner
from tests.bot.runtime.conftest import say
from tests.bot.runtime.test_runtime import CONSOLE, outbox, play, sim_services, webhook_channel

T0 = datetime(2024, 3, 13, 14, 40, tzinfo=UTC)  # TSLA ~477.46, runs to ~484.5 by 10:59 ET, then drops to ~467 by 11:26
FAST = DispatchConfig(base_backoff=0.02, max_backoff=0.2, poll_interval=0.05)


def tsla_plan(plan_id: str, at: datetime, *, entry=476.5, stop=472.0, targets=(482.5, 495.0), direction="long") -> Plan:
    return Plan(
        plan_id=plan_id,
        symbol="TSLA",
        style="intraday",
        strategy="pullback",
        direction=direction,
        interval="5m",
        entry=entry,
        stop=stop,
        targets=[Target(price=t, rr=abs(t - entry) / abs(entry - stop), reason="level") for t in targets],
        quality=0.6,
        quality_factors={"trend": 0.6},
        confluence=["vwap"],
        invalidation="a 5m close below the stop",
        as_of=at,
        session="open",
        sources=["bars: sim"],
    )


@dataclass
class Outcome:
    result: PlanResult


class StandInPlanner:
    """Plays the planner's part (bot.planning.make_plan's contract): a short after the stop-out, at the clock's time."""

    def __init__(self) -> None:
        self.calls = []

    async def __call__(self, ctx, symbol, style):
        at = ctx.now()
        q = await ctx.market.quote(symbol, at=at)
        self.calls.append((symbol, style, at))
        plan = tsla_plan(
            f"P-RE{len(self.calls):04d}",
            at,
            entry=round(q.last + 0.5, 2),
            stop=round(q.last + 4.5, 2),
            targets=(round(q.last - 6, 2), round(q.last - 12, 2)),
            direction="short",
        )
        return Outcome(
            PlanResult(symbol=symbol, style=style, as_of=at, session={}, sources=["bars: sim"], plan=plan, reason=None)
        )


async def _propose(svc, plan: Plan):
    """Store a plan where /plan stores its plans (a hand-made plan, so the test does not depend on the strategies)."""
    async with svc.db() as s, s.begin():
        owner = await ensure_owner(s, "console", "local", "me")
        await plan_store.save_plan(s, owner, plan)


def _events(rows, prefix="plan:"):
    return [r for r in rows if r.destination == "webhook" and r.key.startswith(prefix)]


async def test_tracked_plan_posts_transitions_then_replans(services, hook, monkeypatch):
    monkeypatch.setenv("COACH_CHART_WORKERS", "0")
    clock = SimClock(T0, speed=None)
    svc = sim_services(services, clock)
    await webhook_channel(svc, hook)
    await _propose(svc, tsla_plan("P-TEST01", T0))
    r = await say(svc, "/track P-TEST01", **CONSOLE)
    assert r.severity == "success" and r.data.status == "pending", r.body

    planner = StandInPlanner()
    stream = SimStream(clock, start=T0)
    rt = Runtime(svc, clock=clock, stream=stream, planner=planner, config=RuntimeConfig(dispatch=FAST))
    await rt.start()
    await play(rt, stream, datetime(2024, 3, 13, 15, 0, tzinfo=UTC))
    await rt.dispatcher.deliver_all(timeout=60)
    posted = [p for p in hook.delivered("/hook") if p.key.startswith("plan:")]
    assert [p.body["data"]["event"] for p in posted] == ["triggered", "target"]
    t1 = posted[1].body
    assert t1["data"]["suggest_stop"] == 476.5 and "break-even" in t1["body"]
    assert {"label": "Move stop to break-even", "command": "/track P-TEST01 stop=be", "style": "primary"} in t1["actions"]
    assert t1["attachments"] and t1["attachments"][0]["mime"] == "image/png", "the transition carries an updated chart"

    # the trader takes the suggestion; the runtime picks the change up on its next sync
    moved = await say(svc, "/track P-TEST01 stop=be", **CONSOLE)
    assert moved.severity == "success" and moved.data.stop == 476.5
    await rt.sync()
    # to just after the 11:14 ET stop-out: the re-plan is adopted while its entry is still ahead (later, TSLA has
    # already fallen through its T1 and /track refuses it as stale)
    await play(rt, stream, datetime(2024, 3, 13, 15, 16, tzinfo=UTC))
    await rt.replanner.wait()
    await rt.dispatcher.deliver_all(timeout=60)
    posted = [p for p in hook.delivered("/hook") if p.key.startswith(("plan:", "replan:"))]
    kinds = [p.body["data"].get("event") or "replan" for p in posted]
    assert kinds == ["triggered", "target", "stopped", "replan"]
    stop = posted[2].body["data"]
    assert stop["price"] == 476.5 and stop["r"] == pytest.approx(0.0) and "break-even" in posted[2].body["body"]
    re = posted[3].body
    assert re["data"]["previous_plan_id"] == "P-TEST01" and not re["data"]["adopted"]
    assert re["actions"] == [{"label": "Adopt", "command": "/track P-RE0001", "style": "primary"}]
    assert planner.calls and planner.calls[0][0] == "TSLA" and planner.calls[0][2] > T0

    # Adopt = the button's command
    adopted = await say(svc, "/track P-RE0001", **CONSOLE)
    assert adopted.severity == "success" and adopted.data.status == "pending"
    listed = await say(svc, "/tracked --all", **CONSOLE)
    by_id = {p.plan_id: p for p in listed.data["plans"]}
    assert by_id["P-TEST01"].status == "stopped" and by_id["P-TEST01"].next_plan_id == "P-RE0001"
    assert by_id["P-RE0001"].replan_of is not None
    keys = [r.key for r in _events(await outbox(svc), "plan:")]
    assert len(keys) == len(set(keys))


async def auto_rearm_stop_out(services, hook, plan_id: str) -> tuple[Any, Runtime]:
    """Auto-rearm on; a tracked TSLA long stopped out in full in the 11:00 ET drop; its re-plan built, synced, delivered."""
    clock = SimClock(T0, speed=None)
    svc = sim_services(services, clock)
    await webhook_channel(svc, hook)
    await say(svc, "/tracked auto_rearm=on", **CONSOLE)
    await _propose(svc, tsla_plan(plan_id, T0, targets=(495.0, 500.0)))  # no target before the drop: a full stop-out
    await say(svc, f"/track {plan_id}", **CONSOLE)
    stream = SimStream(clock, start=T0)
    rt = Runtime(svc, clock=clock, stream=stream, planner=StandInPlanner(), config=RuntimeConfig(dispatch=FAST))
    rt.dispatcher.charts = False
    await rt.start()
    await play(rt, stream, datetime(2024, 3, 13, 16, 0, tzinfo=UTC))
    await rt.replanner.wait()
    await rt.sync()
    await rt.dispatcher.deliver_all(timeout=30)
    return svc, rt


async def test_auto_rearm_adopts_the_replan_at_once(services, hook):
    _, rt = await auto_rearm_stop_out(services, hook, "P-TEST02")
    assert "P-RE0001" in {live.plan.plan_id for live in rt.tracker.plans.values()}, "adopted plans are tracked at once"
    re = [p for p in hook.delivered("/hook") if p.key.startswith("replan:")]
    assert len(re) == 1 and re[0].body["data"]["adopted"] and "Adopted automatically" in re[0].body["body"]
    stopped = [
        p.body["data"] for p in hook.delivered("/hook") if p.key.startswith("plan:") and p.body["data"]["event"] == "stopped"
    ]
    assert stopped and stopped[0]["r"] == pytest.approx(-1.0)


async def test_pending_intraday_plan_expires_at_the_close(services, hook):
    clock = SimClock(datetime(2024, 3, 13, 19, 30, tzinfo=UTC), speed=None)
    svc = sim_services(services, clock)
    await webhook_channel(svc, hook)
    await _propose(svc, tsla_plan("P-TEST03", clock.now(), entry=600.0, stop=595.0, targets=(610.0,)))
    await say(svc, "/track P-TEST03", **CONSOLE)
    stream = SimStream(clock, start=clock.now())
    rt = Runtime(svc, clock=clock, stream=stream, config=RuntimeConfig(dispatch=FAST))
    rt.dispatcher.charts = False
    await rt.start()
    await play(rt, stream, datetime(2024, 3, 13, 20, 0, tzinfo=UTC))
    await rt.dispatcher.deliver_all(timeout=30)
    (p,) = [p for p in hook.delivered("/hook") if p.key.startswith("plan:")]
    assert p.body["data"]["event"] == "expired" and "close" in p.body["body"]
    assert p.body["data"]["at"].startswith("2024-03-13T20:00")


async def test_untrack_stops_updates(services, hook):
    clock = SimClock(T0, speed=None)
    svc = sim_services(services, clock)
    await webhook_channel(svc, hook)
    await _propose(svc, tsla_plan("P-TEST04", T0))
    await say(svc, "/track P-TEST04", **CONSOLE)
    r = await say(svc, "/untrack P-TEST04", **CONSOLE)
    assert r.severity != "error"
    stream = SimStream(clock, start=T0, symbols=["TSLA"])  # TSLA ticks keep coming; nothing follows them
    rt = Runtime(svc, clock=clock, stream=stream, config=RuntimeConfig(dispatch=FAST))
    await rt.start()
    assert rt.tracker.plans == {}
    await play(rt, stream, T0 + timedelta(minutes=30))
    assert _events(await outbox(svc)) == []
    assert (await say(svc, "/untrack P-TEST04", **CONSOLE)).severity == "error"


async def test_plan_untracked_while_the_runtime_follows_it_posts_nothing_and_is_not_replanned(services, hook):
    """/untrack lands between the runtime's syncs: its stop-out finds the row no longer tracked."""
    clock = SimClock(T0, speed=None)
    svc = sim_services(services, clock)
    await webhook_channel(svc, hook)
    await _propose(svc, tsla_plan("P-TEST05", T0, targets=(495.0, 500.0)))  # stops out in the 11:00 drop
    await say(svc, "/track P-TEST05", **CONSOLE)
    planner = StandInPlanner()
    stream = SimStream(clock, start=T0)
    rt = Runtime(svc, clock=clock, stream=stream, planner=planner, config=RuntimeConfig(dispatch=FAST))
    await rt.start()
    assert len(rt.tracker.plans) == 1
    assert (await say(svc, "/untrack P-TEST05", **CONSOLE)).severity != "error"  # no rt.sync(): the book still has it
    await play(rt, stream, datetime(2024, 3, 13, 16, 0, tzinfo=UTC))
    await rt.replanner.wait()
    assert rt.stats.plan_events > 0, "the runtime did see the plan's transitions"
    assert _events(await outbox(svc)) == [] and planner.calls == []
    listed = await say(svc, "/tracked --all", **CONSOLE)
    (row,) = listed.data["plans"]
    assert row.status == "cancelled" and row.next_plan_id is None
