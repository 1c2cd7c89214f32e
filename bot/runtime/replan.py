"""After a stop-out: build the next plan in the background and post it with an Adopt button (or adopt it at once).

The stop-out's transaction marked the tracked plan `replan_status = pending`; this module
finishes that job: it asks the planner (`bot.planning.make_plan`) for the symbol and style
at the runtime's current time, then in one transaction stores the new plan (tracked at once
when the owner's `auto_rearm` setting is on, otherwise as a `proposed` row the Adopt button,
`/track NEW_ID`, turns into a tracked one), marks the job done and queues the message (key
`replan:<tracked id>`). Jobs left pending by a crash are resumed on start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from analytics.intervals import STYLE_INTERVALS
from analytics.lifecycle import PlanState
from analytics.models import Plan
from analytics.sessions import EXCHANGE_TZ
from bot.request import Ctx, Identity
from bot.runtime.messages import replan_reply, reply_to_payload
from bot.runtime.routing import Origin, fan_out, private_channel, route
from bot.runtime.tracker import state_to_json
from bot.runtime.txn import Writer
from bot.web.links import event_link, link_signer
from core.clock import utc_now
from core.errors import CoachError
from core.values import utc_from_ns
from storage import alerts as store
from storage import plans as plan_store
from storage.identity import Owner, owner_rows
from storage.outbox import enqueue

log = structlog.get_logger("coach.replan")

Planner = Callable[[Ctx, str, str | None], Any]


def default_planner() -> Planner:
    """`bot.planning.make_plan`: what /plan uses."""
    from bot.planning import make_plan

    return make_plan


class Replanner:
    """Runs re-plan jobs in the background, one per stopped plan."""

    def __init__(
        self,
        services: Any,
        clock: Callable[[], datetime],
        *,
        planner: Planner | None = None,
        on_queued: Callable[[], None] | None = None,
        writer: Writer | None = None,
    ) -> None:
        self.services = services
        self.writer = writer or Writer(services)
        self.clock = clock
        self.planner = planner
        self.on_queued = on_queued
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self.done: list[int] = []

    def start(self, tracked_id: int) -> None:
        """Begin the job for `tracked_id` unless it is already running."""
        if tracked_id in self._tasks:
            return
        task = asyncio.create_task(self._run(tracked_id))
        self._tasks[tracked_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(tracked_id, None))

    async def resume(self) -> int:
        """Start the jobs a previous run left pending; returns how many."""
        async with self.services.db() as s:
            rows = await store.runtime_pending_replans(s)
        for row in rows:
            self.start(row.id)
        return len(rows)

    async def wait(self, timeout: float = 30.0) -> None:
        """Wait for the running jobs (for shutdown and tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=timeout)

    def _settings(self) -> RearmRules:
        settings = getattr(self.services, "settings", None)
        if settings is None:
            return RearmRules()
        return RearmRules(min_quality=float(settings.coach_rearm_min_quality), max_per_day=int(settings.coach_rearm_max_per_day))

    async def _run(self, tracked_id: int) -> None:
        try:
            await self._replan(tracked_id)
        except Exception:
            log.exception("replan_failed", tracked_id=tracked_id)
            async with self.writer.tx() as s:
                row = await store.runtime_tracked_by_id(s, tracked_id)
                if row is not None and row.replan_status == "pending":
                    row.replan_status = "failed"
                    row.updated_at = utc_now()

    async def _replan(self, tracked_id: int) -> None:
        async with self.services.db() as s:
            row = await store.runtime_tracked_by_id(s, tracked_id)
            if row is None or row.replan_status != "pending":
                return
            rows = await owner_rows(s, Owner(tenant_id=row.tenant_id, user_id=row.owner_id))
        if rows is None:
            return
        tenant, user = rows
        auto = bool((user.settings or {}).get("auto_rearm"))
        planner = self.planner or default_planner()
        # plan as of the stop-out (not "now"): the same stop-out gives the same re-plan, even after a restart
        # or on an accelerated clock; never later than the clock
        stopped_ns = ((row.state or {}).get("state") or {}).get("exit_at_ns")
        now = self.clock()
        if stopped_ns:
            now = min(now, utc_from_ns(int(stopped_ns)))
        plan, reason = None, None
        # the planner runs as the plan's owner, in the plan's channel, at the runtime's market time; a plan tracked in a
        # DM (or the console) re-plans privately, so the new plan is stored for its owner only, as /plan there stores it
        ident = Identity(
            platform=row.platform,
            tenant=tenant.external_id,
            user=user.external_id,
            channel=row.channel,
            display_name=user.display_name,
            dm=_direct_message(row.platform, tenant.external_id, row.channel),
        )
        ctx = Ctx(services=self.services, identity=ident, as_of=now)
        try:
            outcome = await planner(ctx, row.symbol, row.style)
            result = getattr(outcome, "result", outcome)
            plan, reason = result.plan, result.reason
        except CoachError as exc:
            reason = f"planning failed: {exc}"
        owner = Owner(tenant_id=row.tenant_id, user_id=row.owner_id)
        origin = Origin(tenant_id=row.tenant_id, platform=row.platform, channel=row.channel, user_ref=row.user_ref)
        async with self.writer.tx() as s:
            row = await store.runtime_tracked_by_id(s, tracked_id)
            if row is None or row.replan_status != "pending":
                return
            adopted = False
            not_adopted: str | None = None
            if plan is not None:
                # the planner stores what it makes; saving again is a no-op that also covers other planners
                plan = await plan_store.save_plan(s, owner, plan, None if ident.dm else row.channel)
                exists = await store.get_tracked(s, owner, plan.plan_id)
                if exists is None:
                    if auto:
                        since = _day_start(now)
                        done_today = await store.count_auto_adoptions(s, owner, row.channel, row.symbol, since)
                        not_adopted = rearm_refusal(plan, done_today, self._settings())
                    adopted = auto and not_adopted is None
                    state: dict[str, Any] = {"state": state_to_json(PlanState.from_plan(plan)), "sessions": 0}
                    if adopted:
                        state["adopted"] = "auto"
                    await store.track(
                        s,
                        owner,
                        plan_id=plan.plan_id,
                        symbol=plan.symbol,
                        style=plan.style,
                        plan=plan.model_dump(mode="json"),
                        state=state,
                        status="pending" if adopted else "proposed",
                        platform=row.platform,
                        channel=row.channel,
                        user_ref=row.user_ref,
                        replan_of=row.id,
                        created_at=utc_now(),
                        updated_at=utc_now(),
                    )
            row.replan_status = "done"
            row.next_plan_id = plan.plan_id if plan is not None else None
            row.updated_at = utc_now()
            reply = replan_reply(
                plan,
                previous_plan_id=row.plan_id,
                adopted=adopted,
                reason=reason,
                at=now,
                symbol=row.symbol,
                not_adopted=not_adopted,
                chart_url=_chart_url(self.services, owner, plan, self.clock()),
            )
            sinks = await route(s, origin, "plan", row.symbol)
            key = f"replan:{row.id}"
            payload = reply_to_payload(reply, event_key=key)
            messages = fan_out(
                sinks, key=key, kind="replan", payload=payload, tenant_id=row.tenant_id, owner_id=row.owner_id, at=now
            )
            await enqueue(s, messages)
        self.done.append(tracked_id)
        log.info("replanned", tracked_id=tracked_id, plan_id=plan.plan_id if plan else None, adopted=adopted)
        if self.on_queued:
            self.on_queued()


def _chart_url(services: Any, owner: Owner, plan: Plan | None, now: datetime) -> str | None:
    """The re-plan's live chart link for its owner, when chart links are configured."""
    if plan is None:
        return None
    signer = link_signer(services.settings)
    intervals = tuple(STYLE_INTERVALS[plan.style])
    return event_link(signer, owner.tenant_id, owner.user_id, plan.symbol, intervals, now, (plan.plan_id, plan.version))


def _day_start(at: datetime) -> datetime:
    """Midnight of `at`'s exchange-time day: the daily cap counts per trading day."""
    local = at.astimezone(EXCHANGE_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


@dataclass(frozen=True)
class RearmRules:
    """What auto-rearm requires of a re-plan before adopting it by itself."""

    min_quality: float = 0.5
    max_per_day: int = 2


def rearm_refusal(plan: Plan, adopted_today: int, rules: RearmRules) -> str | None:
    """Why auto-rearm does not adopt `plan` (one sentence for the message), or None when it does.

    A re-plan right after a stop-out is where a weak setup does the most harm: below the minimum
    quality grade, or past the day's cap for the symbol in this channel, it waits for the trader's click.
    """
    if plan.quality < rules.min_quality:
        return f"its quality grade {plan.quality:.0%} is under the {rules.min_quality:.0%} auto-rearm minimum"
    if adopted_today >= rules.max_per_day:
        if rules.max_per_day == 0:
            return "auto-rearm adoptions are turned off by the operator (a daily cap of 0)"
        n = rules.max_per_day
        return f"auto-rearm already adopted {n} re-plan{'s' if n != 1 else ''} of {plan.symbol} here today (the daily cap)"
    return None


def _direct_message(platform: str, tenant: str, channel: str | None) -> bool:
    """Whether a tracked plan's channel is a private conversation, as the chat surfaces tell it for requests."""
    # the console is the operator's own; a Discord DM has a tenant of its own (`dm-<user id>`); a Slack DM's id starts with D
    return (
        platform == "console"
        or not channel
        or (platform == "discord" and tenant.startswith("dm-"))
        or private_channel(platform, channel)
    )
