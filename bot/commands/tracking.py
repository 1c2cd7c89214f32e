"""Live plans: /track, /untrack and /tracked.

A tracked plan is followed by the runtime tick by tick (pending, triggered, each target,
stopped, exited or expired); each transition is posted into the channel it was tracked in,
and a stop-out brings a re-plan with an Adopt button (or adopted at once with auto-rearm).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, BeforeValidator, Field

if TYPE_CHECKING:
    from analytics.lifecycle import PlanState

from bot.args import ArgsModel
from bot.commands.alerts import check_channel, find_plan
from bot.registry import command
from bot.removals import must_confirm, propose
from bot.reply import Reply, ReplyField
from bot.request import Ctx
from core.clock import utc_now
from core.errors import NotFoundError, UserError
from core.values import ns_from_utc
from storage import alerts as store
from storage.alerts import TrackedPlan
from storage.identity import get_user

# The plan lifecycle, the runtime's face, plans and the renderers (numpy, pandas) are imported where
# they are used: declaring the commands, as a chat front does to validate arguments, loads none of them.


def _on_off(v: object) -> object:
    if isinstance(v, str):
        w = v.strip().lower()
        if w in ("on", "yes", "true", "1", "enable", "enabled"):
            return True
        if w in ("off", "no", "false", "0", "disable", "disabled"):
            return False
    return v


OnOff = Annotated[bool, BeforeValidator(_on_off)]


class TrackedView(BaseModel):
    plan_id: str
    symbol: str
    direction: str
    style: str
    status: str
    entry: float
    stop: float
    targets: list[float]
    targets_hit: int
    last_price: float | None = None
    replan_of: int | None = None
    next_plan_id: str | None = None


def tracked_view(row: TrackedPlan) -> TrackedView:
    from analytics.lifecycle import PlanState
    from analytics.models import Plan
    from bot.runtime.api import state_from_json

    st = (
        state_from_json(row.state["state"])
        if "state" in (row.state or {})
        else PlanState.from_plan(Plan.model_validate(row.plan))
    )
    return TrackedView(
        plan_id=row.plan_id,
        symbol=row.symbol,
        direction=st.direction,
        style=row.style,
        status=row.status,
        entry=st.entry,
        stop=st.stop,
        targets=list(st.targets),
        targets_hit=st.targets_hit,
        last_price=st.last_price,
        replan_of=row.replan_of,
        next_plan_id=row.next_plan_id,
    )


class TrackArgs(ArgsModel):
    plan_id: str = Field(description="the plan id from a /plan reply, e.g. P-1A2B3C")
    stop: str | None = Field(None, description="move the stop of a tracked plan: be (break-even) or a price")


@command(
    "track",
    "Follow a plan live: entry, targets, stop or expiry are posted here as they happen.",
    TrackArgs,
    acts=True,
    result="bot.commands.tracking:TrackedView",
    examples=("/track P-1A2B3C", "/track P-1A2B3C stop=be"),
    tool_hint="Starts (or updates) live tracking of a stored plan; transitions are pushed to this channel.",
)
async def track(ctx: Ctx, a: TrackArgs) -> Reply:
    from analytics import lifecycle
    from analytics.lifecycle import PlanState
    from analytics.plan_window import expired_reason
    from bot.runtime.api import state_from_json, state_to_json
    from renderers.text import fmt_price
    from storage import plans as plan_store

    pid = plan_store.normalise_plan_id(a.plan_id)
    now = ctx.now()
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        row = await store.get_tracked(s, owner, pid)
        if a.stop is not None:
            if row is None or row.status not in store.ACTIVE_TRACKED:
                raise UserError(f"plan {pid} is not being tracked; /track {pid} first")
            st = state_from_json(row.state["state"])
            new_stop = st.entry if a.stop.strip().lower() in ("be", "breakeven", "break-even", "entry") else _price(a.stop)
            try:
                st, _ = lifecycle.move_stop(st, new_stop, ns_from_utc(now))
            except ValueError as exc:
                raise UserError(str(exc)) from None
            row.state = {**row.state, "state": state_to_json(st)}
            row.updated_at = utc_now()
            v = tracked_view(row)
            return Reply(
                title=f"{pid}: stop moved to {fmt_price(new_stop)}",
                body=f"{v.symbol} {v.direction} plan, {v.status}.",
                severity="success",
                data=v,
            )
        if row is not None and row.status in store.ACTIVE_TRACKED:
            v = tracked_view(row)
            return Reply(title=f"Already tracking {pid}", body=f"{v.symbol} {v.direction}: {v.status}.", data=v)
        plan = await find_plan(s, owner, pid)
        if plan is None:
            raise NotFoundError(f"no plan {pid} of yours; make one with /plan SYMBOL and track the id it shows")
        expired = expired_reason(plan, now)
        if expired:
            raise UserError(f"{expired}, so it cannot be tracked; make a fresh one with /plan {plan.symbol} {plan.style}")
        await check_channel(ctx, s, owner, "plan")
        state = PlanState.from_plan(plan)
    q = await ctx.market.quote(plan.symbol, at=now)
    stale = _moved_past(state, q.last)
    if stale:
        raise UserError(
            f"{plan.symbol} is at {fmt_price(q.last)}, {stale}; make a fresh one with /plan {plan.symbol} {plan.style}"
        )
    state, events = lifecycle.observe(state, [q.last], ns_from_utc(now))
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        row = await store.track(
            s,
            owner,
            plan_id=pid,
            symbol=plan.symbol,
            style=plan.style,
            plan=plan.model_dump(mode="json"),
            state={"state": state_to_json(state), "sessions": 0},
            status=state.status,
            platform=ctx.identity.platform,
            channel=ctx.identity.channel,
            user_ref=ctx.identity.user,
            updated_at=utc_now(),
        )
        v = tracked_view(row)
    what = "live (the entry is at the price)" if v.status == "triggered" else "waiting for the entry"
    body = (
        f"{plan.symbol} {plan.direction} from {fmt_price(plan.entry)}, stop {fmt_price(plan.stop)}, "
        f"targets {', '.join(fmt_price(t) for t in v.targets)}; last {fmt_price(q.last)}: {what}.\n"
        "Transitions (entry, each target, stop, expiry) will be posted here with a chart."
    )
    return Reply(title=f"Tracking {pid}", body=body, severity="success", as_of=q.as_of, data=v)


def _moved_past(state: PlanState, last: float) -> str | None:
    """Why a plan not yet entered is stale at `last`: the price already ran past T1 (the move it was for happened).

    A price on the stop's side of a breakout entry is not stale: the entry is still ahead of it.
    """
    from renderers.text import fmt_price

    if state.targets and state.sign * (last - state.targets[0]) >= 0:
        return f"already past T1 {fmt_price(state.targets[0])} without this plan: the move it was for has happened"
    return None


def _price(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise UserError(f"stop {text[:20]!r} is not a price; give a number or be (break-even)") from None
    if not math.isfinite(p) or p <= 0:
        raise UserError("the stop must be a positive price")
    return p


class UntrackArgs(ArgsModel):
    plan_id: str = Field(description="the plan id")


@command("untrack", "Stop following a plan.", UntrackArgs, examples=("/untrack P-1A2B3C",), acts=True)
async def untrack(ctx: Ctx, a: UntrackArgs) -> Reply:
    from storage import plans as plan_store

    pid = plan_store.normalise_plan_id(a.plan_id)
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        row = await store.get_tracked(s, owner, pid)
        if row is None or row.status not in (*store.ACTIVE_TRACKED, "proposed"):
            raise NotFoundError(f"you are not tracking {pid}; see /tracked")
        # one plan stops directly, but a coach turn that already removed something only proposes
        proposing = must_confirm(ctx, 1)
        if not proposing:
            row.status = "cancelled"
            row.updated_at = utc_now()
        line = f"{pid} {row.symbol} {row.style}: {row.status}"
    if proposing:
        return await propose(ctx, "tracked", [pid], [line])
    return Reply(title=f"Stopped tracking {pid}", body="No more updates for it.", data={"plan_id": pid, "status": "cancelled"})


class TrackedArgs(ArgsModel):
    auto_rearm: OnOff | None = Field(
        None,
        description="on: after a stop-out, adopt the re-plan at once; off: ask with an Adopt button",
        json_schema_extra={"brief": "adopt re-plans at once after a stop-out"},
    )
    all: bool = Field(False, description="include finished plans")


@command(
    "tracked",
    "Your tracked plans, and your auto-rearm setting (adopt re-plans at once after a stop-out).",
    TrackedArgs,
    acts=lambda a: a.auto_rearm is not None,
    examples=("/tracked", "/tracked auto_rearm=on"),
)
async def tracked(ctx: Ctx, a: TrackedArgs) -> Reply:
    from renderers.text import fmt_price

    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        user = await get_user(s, owner)
        if a.auto_rearm is not None:
            user.settings = {**(user.settings or {}), "auto_rearm": bool(a.auto_rearm)}
        auto = bool((user.settings or {}).get("auto_rearm"))
        rows = await store.list_tracked(s, owner, include_done=a.all)
        views = [tracked_view(r) for r in rows]
    lines = [f"Auto-rearm: {'on' if auto else 'off'}" + (" (changed)" if a.auto_rearm is not None else "")]
    for v in views:
        extra = f" → re-plan {v.next_plan_id}" if v.next_plan_id else ""
        lines.append(
            f"• {v.plan_id} {v.symbol} {v.direction}: {v.status}, entry {fmt_price(v.entry)}, stop {fmt_price(v.stop)}, "
            f"{v.targets_hit}/{len(v.targets)} targets{extra}"
        )
    if not views:
        lines.append("No tracked plans. Track one with /track PLAN_ID.")
    return Reply(
        title="Tracked plans",
        body="\n".join(lines),
        data={"auto_rearm": auto, "plans": views},
        fields=[ReplyField(name="Tracked", value=str(len(views)))],
    )
