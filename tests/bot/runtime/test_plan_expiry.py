"""Stale plans: no tracking or alerts once a plan's sessions are over, a runtime that missed the close
still ends them, alerts end with their plan, and auto-rearm only adopts re-plans that clear its bar."""

from __future__ import annotations

from datetime import UTC, datetime

from analytics.models import Plan
from bot.runtime.replan import RearmRules, rearm_refusal
from bot.runtime.worker import Runtime, RuntimeConfig
from providers.sim_stream import SimClock, SimStream
from storage import alerts as store
from storage.identity import ensure_owner
from tests.bot.runtime.conftest import say
from tests.bot.runtime.test_runtime import CONSOLE, alert_rows, play, sim_services, webhook_channel
from tests.bot.runtime.test_tracker import FAST, T0, _propose, auto_rearm_stop_out, tsla_plan

#: The next morning, 10:30 ET: T0's intraday plans are over.
NEXT_MORNING = datetime(2024, 3, 14, 14, 30, tzinfo=UTC)


async def test_an_expired_plan_cannot_be_tracked_or_alerted_on(services):
    svc = sim_services(services, SimClock(NEXT_MORNING, speed=None))
    await _propose(svc, tsla_plan("P-OLD001", T0))
    why = "plan P-OLD001 expired Wed 2024-03-13 16:00 ET (an intraday plan lasts the session it was made for)"
    track = await say(svc, "/track P-OLD001", **CONSOLE)
    assert track.severity == "error"
    assert track.body == f"{why}, so it cannot be tracked; make a fresh one with /plan TSLA intraday"
    alert = await say(svc, "/alert add TSLA stop plan=P-OLD001", **CONSOLE)
    assert alert.severity == "error"
    assert alert.body == f"{why}, so no alerts on it; make a fresh one with /plan TSLA intraday"
    assert await alert_rows(svc) == []
    assert (await say(svc, "/tracked --all", **CONSOLE)).data["plans"] == []


async def test_a_plan_the_price_already_ran_past_cannot_be_tracked(services):
    svc = sim_services(services, SimClock(T0, speed=None))  # TSLA ~477.46
    await _propose(svc, tsla_plan("P-GONE01", T0, entry=465.0, stop=460.0, targets=(470.0, 490.0)))
    r = await say(svc, "/track P-GONE01", **CONSOLE)
    assert r.severity == "error" and "already past T1 470.00 without this plan" in r.body
    # a breakout entry above the price, stop included, is still ahead: it is tracked
    await _propose(svc, tsla_plan("P-AHEAD1", T0, entry=490.0, stop=480.0, targets=(500.0,)))
    r = await say(svc, "/track P-AHEAD1", **CONSOLE)
    assert r.severity == "success" and r.data.status == "pending"


async def test_an_alert_on_a_plan_ends_when_the_plan_does(services):
    svc = sim_services(services, SimClock(T0, speed=None))
    await _propose(svc, tsla_plan("P-LIVE01", T0))
    r = await say(svc, "/alert add TSLA stop plan=P-LIVE01", **CONSOLE)
    assert r.severity == "success", r.body
    assert r.data.expires_at == datetime(2024, 3, 13, 20, 0, tzinfo=UTC)  # the plan's session close
    # an earlier expiry the trader asks for stays
    r = await say(svc, "/alert add TSLA entry plan=P-LIVE01 expires=1h", **CONSOLE)
    assert r.data.expires_at == datetime(2024, 3, 13, 15, 40, tzinfo=UTC)


async def test_the_runtime_ends_a_plan_whose_close_it_missed_and_its_alerts_with_it(services, hook):
    # tracked late on Wednesday, far from its entry; the runtime only starts Thursday morning
    evening = datetime(2024, 3, 13, 19, 30, tzinfo=UTC)
    svc = sim_services(services, SimClock(evening, speed=None))
    await webhook_channel(svc, hook)
    await _propose(svc, tsla_plan("P-LATE01", evening, entry=600.0, stop=595.0, targets=(610.0,)))
    assert (await say(svc, "/track P-LATE01", **CONSOLE)).severity == "success"
    assert (await say(svc, "/alert add TSLA target plan=P-LATE01", **CONSOLE)).severity == "success"
    # an old alert on the plan without an expiry of its own: it still ends with the plan
    async with svc.db() as s, s.begin():
        for a in await store.runtime_active_alerts(s):
            a.expires_at = None

    clock = SimClock(NEXT_MORNING, speed=None)
    svc2 = sim_services(services, clock)
    stream = SimStream(clock, start=NEXT_MORNING, symbols=["TSLA"])
    rt = Runtime(svc2, clock=clock, stream=stream, config=RuntimeConfig(dispatch=FAST))
    rt.dispatcher.charts = False
    await rt.start()
    await play(rt, stream, datetime(2024, 3, 14, 14, 35, tzinfo=UTC))
    await rt.dispatcher.deliver_all(timeout=30)
    posted = [p for p in hook.delivered("/hook") if p.key.startswith("plan:")]
    assert [p.body["data"]["event"] for p in posted] == ["expired"]
    assert posted[0].body["data"]["at"].startswith("2024-03-13T20:00")
    assert [a.status for a in await alert_rows(svc2)] == ["expired"]
    assert rt.tracker.plans == {}


async def test_auto_rearm_leaves_a_weak_replan_to_the_trader_and_says_why(services, hook):
    services.settings = services.settings.model_copy(update={"coach_rearm_min_quality": 0.7})
    svc, rt = await auto_rearm_stop_out(services, hook, "P-WEAK01")
    assert "P-RE0001" not in {live.plan.plan_id for live in rt.tracker.plans.values()}
    (re,) = [p for p in hook.delivered("/hook") if p.key.startswith("replan:")]
    assert not re.body["data"]["adopted"]
    assert re.body["data"]["not_adopted"] == "its quality grade 60% is under the 70% auto-rearm minimum"
    assert "Not adopted automatically: its quality grade 60% is under the 70% auto-rearm minimum." in re.body["body"]
    assert re.body["actions"] == [{"label": "Adopt", "command": "/track P-RE0001", "style": "primary"}]
    listed = await say(svc, "/tracked", **CONSOLE)
    assert {p.plan_id: p.status for p in listed.data["plans"]} == {"P-RE0001": "proposed"}


def _plan(quality: float) -> Plan:
    return tsla_plan("P-RULE01", T0).model_copy(update={"quality": quality})


def test_rearm_rules_minimum_and_daily_cap():
    rules = RearmRules(min_quality=0.5, max_per_day=2)
    assert rearm_refusal(_plan(0.39), 0, rules) == "its quality grade 39% is under the 50% auto-rearm minimum"
    assert rearm_refusal(_plan(0.6), 1, rules) is None
    assert rearm_refusal(_plan(0.6), 2, rules) == "auto-rearm already adopted 2 re-plans of TSLA here today (the daily cap)"
    assert "turned off" in (rearm_refusal(_plan(0.9), 0, RearmRules(max_per_day=0)) or "")


async def test_auto_adoptions_are_counted_per_symbol_channel_and_day(services):
    async with services.db() as s, s.begin():
        owner = await ensure_owner(s, "console", "local", "me")

        async def row(pid: str, *, channel="C1", symbol="TSLA", adopted="auto", at=T0, replan_of: int | None = 1):
            state = {"state": {}, **({"adopted": adopted} if adopted else {})}
            await store.track(
                s,
                owner,
                plan_id=pid,
                symbol=symbol,
                style="intraday",
                plan={},
                state=state,
                status="pending",
                platform="console",
                channel=channel,
                user_ref="me",
                replan_of=replan_of,
                created_at=at,
                updated_at=at,
            )

        await row("P-A00001")
        await row("P-A00002")
        await row("P-A00003", adopted="")  # adopted by the trader's click
        await row("P-A00004", channel="C2")
        await row("P-A00005", symbol="NVDA")
        await row("P-A00006", at=datetime(2024, 3, 12, 15, 0, tzinfo=UTC))  # the day before
        await row("P-A00007", replan_of=None)  # tracked by hand, not a re-plan
        since = datetime(2024, 3, 13, 4, 0, tzinfo=UTC)  # midnight ET
        assert await store.count_auto_adoptions(s, owner, "C1", "TSLA", since) == 2
        assert await store.count_auto_adoptions(s, owner, "C2", "TSLA", since) == 1
        assert await store.count_auto_adoptions(s, owner, None, "TSLA", since) == 0


async def test_an_old_alert_on_a_plan_gets_the_plans_end_when_the_runtime_starts(services, hook):
    svc = sim_services(services, SimClock(T0, speed=None))
    await _propose(svc, tsla_plan("P-UNDT01", T0))
    assert (await say(svc, "/alert add TSLA stop plan=P-UNDT01", **CONSOLE)).severity == "success"
    async with svc.db() as s, s.begin():  # as alerts were stored before they ended with their plan
        for a in await store.runtime_active_alerts(s):
            a.expires_at = None
    clock = SimClock(NEXT_MORNING, speed=None)
    svc2 = sim_services(services, clock)
    stream = SimStream(clock, start=NEXT_MORNING, symbols=["TSLA"])
    rt = Runtime(svc2, clock=clock, stream=stream, config=RuntimeConfig(dispatch=FAST))
    rt.dispatcher.charts = False
    await rt.start()
    (row,) = await alert_rows(svc2)
    assert row.expires_at == datetime(2024, 3, 13, 20, 0, tzinfo=UTC)
    await play(rt, stream, datetime(2024, 3, 14, 14, 35, tzinfo=UTC))
    (row,) = await alert_rows(svc2)
    assert row.status == "expired" and row.fire_count == 0
