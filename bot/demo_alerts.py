"""The alerts step of `coach demo`: an alert firing, a tracked plan stopping out and re-planning, on an accelerated clock.

The step picks a past session of the offline market where the planner's plan (made by the
real `/plan`) still waits for its entry when it is tracked, is triggered and then stopped out
within a few hours, and the planner has a next plan at the stop-out: it replays each
candidate's minutes through the pure lifecycle first, so the demo stays true whatever the
strategies find on a given day. Then it types the commands into the console (with the time
pinned to that moment), runs the real runtime on a clock 1800 times faster than the wall
(the console destination prints what is pushed), and shows /alerts status and /tracked (and
takes the re-plan's Adopt) at the market time the runtime stopped.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from analytics import lifecycle
from analytics.lifecycle import PlanState
from analytics.models import Plan
from bot.app import rebase
from bot.request import Ctx
from bot.services import Services
from bot.surfaces.console import ConsoleDestination, chat, console_identity
from core.clock import Clock
from core.values import ns_from_utc
from providers.sim import SimMarket
from providers.sim_stream import SimClock, SimStream
from storage.outbox import outbox_pending_count

#: Moments tried in order (UTC; 10:30 to 12:30 ET on a few March 2024 sessions) and symbols.
CANDIDATE_TIMES = [
    datetime(2024, 3, d, h, m, tzinfo=UTC)
    for d in (13, 14, 15, 12, 11)
    for h, m in ((14, 30), (15, 0), (15, 30), (16, 0), (16, 30))
]
CANDIDATE_SYMBOLS = ("TSLA", "NVDA", "AMD", "AAPL", "META")
#: Market time the runtime is given to show the stop-out and the re-plan.
WINDOW = timedelta(hours=3)
SPEED = 1800.0


@dataclass
class Scenario:
    at: datetime
    plan: Plan
    stop_at: datetime
    alert_kind: str
    alert_level: float
    target_first: bool


def _frozen(moment: datetime) -> Clock:
    """A clock that always answers `moment`."""
    return lambda: moment


def _walk(df: pd.DataFrame) -> list[tuple[datetime, float]]:
    """The trades SimStream shows for these minutes (open, first extreme, second extreme, close)."""
    out: list[tuple[datetime, float]] = []
    for ts, o, h, l, c in zip(df.index, df["open"], df["high"], df["low"], df["close"]):  # noqa: E741
        base = ts.to_pydatetime()
        walk = (o, l, h, c) if c >= o else (o, h, l, c)
        out += [(base + timedelta(seconds=15 * k), float(p)) for k, p in enumerate(walk)]
    return out


async def find_scenario(services: Services, identity: Any) -> Scenario | None:
    """The first candidate whose plan waits for its entry, triggers, stops out inside the window and gets a re-plan."""
    from bot.planning import make_plan

    for at in CANDIDATE_TIMES:
        market = SimMarket(seed=services.settings.coach_seed, now=_frozen(at + WINDOW))
        for sym in CANDIDATE_SYMBOLS:
            then = rebase(services, market=SimMarket(seed=services.settings.coach_seed, now=_frozen(at)), clock=_frozen(at))
            outcome = await make_plan(Ctx(services=then, identity=identity, as_of=at), sym, "intraday")
            plan = outcome.result.plan
            if plan is None:
                continue
            df = (await market.bars(sym, "1m", at, at + WINDOW)).df
            walk = _walk(df)
            if not walk:
                continue
            # as /track sees it: a plan whose entry is at the price is live at once, and no "entry touched" is pushed
            quote = await then.market.quote(sym, at=at)
            state, _ = lifecycle.observe(PlanState.from_plan(plan), [quote.last], ns_from_utc(at))
            if state.status != "pending":
                continue
            stop_at, target_first = None, False
            for t, p in walk:
                state, events = lifecycle.observe(state, [p], ns_from_utc(t))
                if any(e.kind == "target" for e in events):
                    target_first = True
                if state.status == "stopped":
                    stop_at = t
                    break
                if state.done:
                    break
            if stop_at is None or stop_at - at < timedelta(minutes=20) or stop_at > at + WINDOW - timedelta(minutes=30):
                continue
            # an alert the price reaches before the stop-out: the far end of the first half of the path
            first = [p for t, p in walk if t < at + (stop_at - at) / 2]
            start = walk[0][1]
            hi, lo = max(first), min(first)
            if hi - start >= start - lo:
                kind, level = "above", round(start + 0.8 * (hi - start), 2)
            else:
                kind, level = "below", round(start - 0.8 * (start - lo), 2)
            if abs(level - start) < 0.02:
                continue
            # the re-planner plans as of the stop-out: the demo shows its Adopt only when that finds a setup
            stopped = rebase(
                services, market=SimMarket(seed=services.settings.coach_seed, now=_frozen(stop_at)), clock=_frozen(stop_at)
            )
            if (await make_plan(Ctx(services=stopped, identity=identity, as_of=stop_at), sym, "intraday")).result.plan is None:
                continue
            return Scenario(at=at, plan=plan, stop_at=stop_at, alert_kind=kind, alert_level=level, target_first=target_first)
    return None


async def run_alerts_demo(services: Services, out: Any = None) -> int:
    """Run the step on the demo's services (its database and chart service); returns the chat lines answered."""
    from bot.runtime.worker import Runtime, RuntimeConfig
    from storage import alerts as store

    console = Console(file=out, highlight=False, soft_wrap=True)
    identity = console_identity()
    console.print("[dim]> # alerts and live plans: finding a past session where a plan stops out...[/]")
    scenario = await find_scenario(services, identity)
    if scenario is None:
        console.print("[yellow]No plan stopped out in the candidate sessions; the alerts step is skipped.[/]")
        return 0
    at, plan = scenario.at, scenario.plan
    frozen = SimClock(at, speed=None)
    pinned = rebase(services, market=SimMarket(seed=services.settings.coach_seed, now=frozen), clock=frozen)
    local = at.astimezone(timezone(timedelta(hours=-4)))
    console.print(f"[dim]> # the offline market at {local:%Y-%m-%d %H:%M} ET: an alert, a plan, and tracking it live[/]")
    lines = [
        f"/alert add {plan.symbol} {scenario.alert_kind} {scenario.alert_level:.2f} momentum check",
        f"/plan {plan.symbol} intraday",
        f"/track {plan.plan_id}",
    ]
    answered = await chat(pinned, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out, identity=identity)

    clock = SimClock(at, speed=SPEED, skip_closed=True)
    live = rebase(services, market=SimMarket(seed=services.settings.coach_seed, now=clock), clock=clock)
    console.print(f"[dim]> # the runtime runs the session {SPEED:g}x faster than the wall clock; what it pushes appears below[/]")
    runtime = Runtime(
        live,
        clock=clock,
        stream_factory=lambda cursor: SimStream(clock, seed=services.settings.coach_seed, start=at),
        config=RuntimeConfig(sync_interval=0.2, worker_id="demo"),
        destinations={"console": ConsoleDestination(stream=out, out_dir=Path(services.settings.coach_out_dir))},
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    try:
        while loop.time() < deadline and clock.now() < at + WINDOW:
            await asyncio.sleep(0.2)
            if runtime.replanner.done:
                async with services.db() as s:
                    if await outbox_pending_count(s) == 0:
                        break
    finally:
        stopped_at = clock.now()
        stop.set()
        await asyncio.wait_for(task, 60)
    console.print(
        f"[dim]> # runtime stopped at {stopped_at.astimezone(timezone(timedelta(hours=-4))):%H:%M} ET market time: "
        f"{runtime.stats.triggers} alert(s) fired, {runtime.stats.plan_events} plan event(s), "
        f"{runtime.dispatcher.stats.delivered} message(s) delivered[/]"
    )
    after = ["/alerts status", "/tracked --all"]
    async with services.db() as s:
        stopped = [
            t for t in await store.runtime_tracked_changed(s, datetime(2000, 1, 1, tzinfo=UTC)) if t.plan_id == plan.plan_id
        ]
    if stopped and stopped[0].next_plan_id:
        after.append(f"/track {stopped[0].next_plan_id}")  # the Adopt button's command
    # the trader answers the pushes when they came: at the market time the runtime stopped, not at the step's start
    later = SimClock(stopped_at, speed=None)
    after_svc = rebase(services, market=SimMarket(seed=services.settings.coach_seed, now=later), clock=later)
    answered += await chat(after_svc, stdin=io.StringIO("\n".join(after) + "\n"), stdout=out, identity=identity)
    return answered
