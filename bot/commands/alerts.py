"""Alerts: /alert add|list|remove|edit (the runtime's health, /alerts status|test, is in `alerts_health`).

Alerts are stored per person (tenant + owner) with the channel they were made in; the runtime
(`coach runtime`, or inside `coach serve`) evaluates them and delivers through the outbox.
Live plans are in `tracking`, the channels' alert settings (admins) in `settings`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from analytics.alert_kinds import INDICATOR_KINDS, KINDS, PLAN_KINDS, kind_category
from analytics.intervals import interval_minutes
from bot.args import ArgsModel, IntervalArg, SymbolArg
from bot.registry import command
from bot.removals import must_confirm, propose
from bot.reply import Reply
from bot.request import Ctx
from core.errors import NotFoundError, UserError
from storage import alerts as store
from storage.alerts import Alert
from storage.identity import Owner

# The alert book, the session calendar, the runtime's face, plans and the renderers (numpy, pandas) are
# imported where they are used: declaring the commands, as a chat front does to validate arguments,
# loads none of them.
if TYPE_CHECKING:
    from analytics.models import Plan

#: A level further than this from the last price (as a ratio either way) is refused as absurd.
MAX_LEVEL_RATIO = 2.0
MAX_PCT = 50.0
MAX_EXPIRY = timedelta(days=366)
MAX_COOLDOWN = timedelta(days=7)
DEFAULT_COOLDOWN = "15m"

_KIND_ALIASES = {
    "over": "above",
    "gt": "above",
    ">": "above",
    "under": "below",
    "lt": "below",
    "<": "below",
    "crosses": "cross",
    "crossing": "cross",
    "%": "pct",
    "percent": "pct",
    "move": "pct",
    "pct_move": "pct",
    "rsi>": "rsi_above",
    "rsi<": "rsi_below",
    "ema_up": "ema_cross_up",
    "ema_down": "ema_cross_down",
    "vwap_up": "vwap_reclaim",
    "vwap_down": "vwap_loss",
    "target_hit": "target",
    "stop_hit": "stop",
}


def _kind(v: object) -> object:
    if isinstance(v, str):
        k = v.strip().lower().replace("-", "_")
        return _KIND_ALIASES.get(k, k)
    return v


AlertKind = Annotated[Literal[KINDS], BeforeValidator(_kind)]  # type: ignore[valid-type]
SessionFilter = Annotated[
    Literal["regular", "extended"], BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v)
]
Note = Field("", max_length=300, description="a note shown with the alert", json_schema_extra={"greedy": True})


# ---------------------------------------------------------------------- parsing helpers


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|wk|wks)?\s*$", re.I)
_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "wk": 604800,
    "wks": 604800,
}


def parse_duration(text: str, what: str, default_unit: str = "m") -> timedelta:
    """ "90s", "15m", "2h", "3d", "1w" (a bare number counts `default_unit`s) -> timedelta, or UserError."""
    m = _DURATION.match(str(text))
    if not m:
        raise UserError(f"{what} {str(text)[:20]!r} is not a duration; use e.g. 90s, 15m, 2h, 3d")
    return timedelta(seconds=float(m.group(1)) * _UNITS[(m.group(2) or default_unit).lower()])


def parse_expiry(text: str, now: datetime) -> datetime:
    """When an alert expires: a duration from now (2h, 3d), eod (today's close), a date (its close) or an ISO time."""
    from analytics.sessions import EXCHANGE_TZ

    t = str(text).strip()
    low = t.lower()
    if low in ("eod", "close", "today"):
        return _session_close_on_or_after(now)
    if _DURATION.match(t) and not re.fullmatch(r"\d{4}", t):
        return now + parse_duration(t, "expires", default_unit="h")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            day = datetime.fromisoformat(t).date()
            return _session_close_on_or_after(datetime.combine(day, time(9, 30), EXCHANGE_TZ))
        at = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"expires {t[:30]!r} not understood; use 2h, 3d, eod, 2024-06-21 or an ISO time with offset") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=EXCHANGE_TZ)  # a wall time means exchange time
    return at.astimezone(UTC)


def _session_close_on_or_after(at: datetime) -> datetime:
    from analytics.sessions import sessions_between

    sch = sessions_between(at - timedelta(days=1), at + timedelta(days=10))
    for close in sch.closes:
        close_dt = datetime.fromtimestamp(int(close) / 1e9, tz=UTC)
        if close_dt >= at:
            return close_dt
    return at + timedelta(days=1)


# ---------------------------------------------------------------------- views


class AlertView(BaseModel):
    """An alert as commands return it."""

    id: int
    symbol: str
    kind: str
    condition: str
    level: float
    value: float | None = None
    interval: str | None = None
    plan_id: str | None = None
    repeat: bool
    cooldown_s: int
    expires_at: datetime | None = None
    session: str
    note: str = ""
    status: str
    fire_count: int
    last_fired_at: datetime | None = None
    last_price: float | None = None
    channel: str | None = None
    created_at: datetime


def view(a: Alert) -> AlertView:
    from bot.runtime.api import describe_condition

    return AlertView(
        id=a.id,
        symbol=a.symbol,
        kind=a.kind,
        condition=describe_condition(a.kind, a.level, a.value, a.interval, a.params),
        level=a.level,
        value=a.value,
        interval=a.interval,
        plan_id=a.plan_id,
        repeat=a.repeat,
        cooldown_s=a.cooldown_s,
        expires_at=a.expires_at,
        session=a.session,
        note=a.note,
        status=a.status,
        fire_count=a.fire_count,
        last_fired_at=a.last_fired_at,
        last_price=a.last_price,
        channel=a.channel,
        created_at=a.created_at,
    )


def _options(a: AlertView) -> str:
    from renderers.text import fmt_time

    opts = ["repeats, cooldown " + _fmt_dur(a.cooldown_s) if a.repeat else "one-shot"]
    opts.append("extended hours too" if a.session == "extended" else "regular hours")
    if a.expires_at:
        opts.append(f"expires {fmt_time(a.expires_at)}")
    if a.fire_count:
        opts.append(f"fired {a.fire_count}×")
    if a.status != "active":
        opts.append(a.status)
    return ", ".join(opts)


def _line(a: AlertView) -> str:
    note = f" — {a.note}" if a.note else ""
    return f"#{a.id} {a.symbol} {a.condition} ({_options(a)}){note}"


def _fmt_dur(seconds: int) -> str:
    if seconds % 86400 == 0 and seconds:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


async def check_channel(ctx: Ctx, session: Any, owner: Owner, family: str) -> store.EffectiveSettings:
    """This channel's settings, or a UserError when it does not take alerts of `family`."""
    eff = await store.effective_settings(session, owner.tenant_id, ctx.identity.channel)
    if not eff.alerts_enabled:
        raise UserError("alerts are turned off in this channel by an admin; ask one to run /settings alerts on")
    if family not in eff.allowed_kinds:
        raise UserError(
            f"{family} alerts are not allowed in this channel; allowed here: {', '.join(eff.allowed_kinds) or 'none'}"
        )
    return eff


# ---------------------------------------------------------------------- plans lookup


async def find_plan(session: Any, owner: Owner, plan_id: str) -> Plan | None:
    """A plan visible to the owner by id: from the plan store (plans made by /plan and re-plans), else a tracked one."""
    from analytics.models import Plan
    from storage import plans as plan_store

    plan = await plan_store.get_plan(session, owner, plan_id)
    if plan is not None:
        return plan
    row = await store.get_tracked(session, owner, plan_id)
    return Plan.model_validate(row.plan) if row is not None else None


def _plan_id(text: str) -> str:
    """The canonical plan id (P-1A2B3C) or a UserError saying what one looks like."""
    from storage import plans as plan_store

    return plan_store.normalise_plan_id(text)


# ---------------------------------------------------------------------- /alert add


class AlertAddArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. TSLA")
    kind: AlertKind = Field(
        description="above, below, cross, pct, rsi_above, rsi_below, ema_cross_up, ema_cross_down, "
        "vwap_reclaim, vwap_loss, or a plan event: entry, stop, target, invalidation"
    )
    value: float | None = Field(
        None,
        description="the price level; the percent for pct (+2 or -3); the RSI threshold",
        json_schema_extra={"brief": "price level; percent for pct; RSI level"},
    )
    note: str = Note
    plan: str | None = Field(None, description="plan id for plan events, e.g. P-1A2B3C")
    # `rare`: grouped under `more` in the coach's lean tool schema (bot.agent.schemas)
    target: int = Field(1, ge=1, le=10, description="which target for kind=target (1 = T1)", json_schema_extra={"rare": True})
    ref: float | None = Field(
        None, gt=0, description="reference price for pct (default: the last price)", json_schema_extra={"rare": True}
    )
    interval: IntervalArg = Field("5m", description="bar interval of indicator alerts")
    period: int = Field(14, ge=2, le=100, description="RSI period", json_schema_extra={"rare": True})
    fast: int = Field(9, ge=2, le=200, description="fast EMA period", json_schema_extra={"rare": True})
    slow: int = Field(21, ge=3, le=400, description="slow EMA period", json_schema_extra={"rare": True})
    repeat: bool = Field(False, description="fire every time (after the cooldown), not just once")
    cooldown: str | None = Field(
        None, description="for repeating alerts: quiet time after a fire, e.g. 15m, 1h", json_schema_extra={"rare": True}
    )
    expires: str | None = Field(
        None, description="2h, 3d, eod, a date (its close) or an ISO time", json_schema_extra={"rare": True}
    )
    session: SessionFilter = Field(
        "regular", description="regular hours only, or extended (pre/post too)", json_schema_extra={"rare": True}
    )


@command(
    "alert add",
    "Set an alert: price above/below/cross, % move, RSI, EMA cross, VWAP reclaim/loss, or a plan event.",
    AlertAddArgs,
    acts=True,
    result="bot.commands.alerts:AlertView",
    examples=(
        "/alert add TSLA above 250 breakout",
        "/alert add NVDA pct -3 --repeat cooldown=1h",
        "/alert add SPY rsi_above 70 interval=15m",
        "/alert add TSLA stop plan=P-1A2B3C",
    ),
    tool_hint="Returns the stored alert (id, condition, options). Alerts are pushed to this channel when they fire.",
)
async def alert_add(ctx: Ctx, a: AlertAddArgs) -> Reply:
    from analytics.alertbook import build_rule
    from renderers.text import fmt_price, fmt_time

    now = ctx.now()
    family = kind_category(a.kind)
    sym = a.symbol
    fields: dict[str, Any] = {"symbol": sym, "kind": a.kind, "session": a.session, "note": a.note.strip()}
    # options first: they fail fast and cost nothing
    cooldown_s = 0
    if a.cooldown is not None:
        if not a.repeat:
            raise UserError("a cooldown only applies to repeating alerts; add --repeat")
        cd = parse_duration(a.cooldown, "cooldown")
        if cd > MAX_COOLDOWN:
            raise UserError("cooldown must be at most 7d")
        cooldown_s = int(cd.total_seconds())
    elif a.repeat:
        cooldown_s = int(parse_duration(DEFAULT_COOLDOWN, "cooldown").total_seconds())
    expires_at = None
    if a.expires:
        expires_at = parse_expiry(a.expires, now)
        if expires_at <= now:
            raise UserError(f"expiry {fmt_time(expires_at)} is already past; give a later time (e.g. 2h, eod, a future date)")
        if expires_at - now > MAX_EXPIRY:
            raise UserError("expiry must be within a year")
    fields.update(repeat=a.repeat, cooldown_s=cooldown_s, expires_at=expires_at)

    warn = ""
    last: float | None = None
    if a.kind in PLAN_KINDS:
        if not a.plan:
            raise UserError(f"a {a.kind} alert needs the plan: add plan=PLAN_ID")
        pid = _plan_id(a.plan)
        async with ctx.tx() as s:
            owner = await ctx.owner(s)
            plan = await find_plan(s, owner, pid)
        if plan is None:
            raise NotFoundError(f"no plan {pid} of yours; make one with /plan {sym}")
        if plan.symbol != sym:
            raise UserError(f"plan {pid} is for {plan.symbol}, not {sym}")
        from analytics import plan_window

        expired = plan_window.expired_reason(plan, now)
        if expired:
            raise UserError(f"{expired}, so no alerts on it; make a fresh one with /plan {sym} {plan.style}")
        # an alert on a plan ends with the plan: its levels mean nothing after that
        plan_end = plan_window.expires_at(plan)
        if fields["expires_at"] is None or plan_end < fields["expires_at"]:
            fields["expires_at"] = plan_end
        if a.kind == "entry":
            level = plan.entry
        elif a.kind in ("stop", "invalidation"):
            level = plan.stop
        else:
            targets = sorted((t.price for t in plan.targets), key=lambda p: p if plan.direction == "long" else -p)
            if a.target > len(targets):
                raise UserError(f"plan {pid} has {len(targets)} target(s); use target=1..{len(targets)}")
            level = targets[a.target - 1]
        fields.update(
            value=level,
            direction=plan.direction,
            plan_id=pid,
            target_index=a.target if a.kind == "target" else None,
            interval=plan.interval if a.kind == "invalidation" else None,
        )
    elif a.kind in INDICATOR_KINDS:
        if a.kind in ("rsi_above", "rsi_below"):
            if a.value is None or not 1 <= a.value <= 99:
                raise UserError("an RSI alert needs a threshold between 1 and 99, e.g. /alert add SPY rsi_above 70")
            fields["value"] = a.value
            params: dict[str, Any] = {"period": a.period}
        elif a.kind.startswith("ema"):
            if a.fast >= a.slow:
                raise UserError(f"the fast EMA ({a.fast}) must be shorter than the slow one ({a.slow})")
            params = {"fast": a.fast, "slow": a.slow}
        else:
            params = {}
        if interval_minutes(a.interval) >= 1440 and a.kind.startswith("vwap"):
            raise UserError("VWAP is a session average: use an intraday interval (1m to 4h)")
        fields.update(interval=a.interval, params=params)
    else:
        q = await ctx.market.quote(sym, at=now)
        last = q.last
        if a.kind == "pct":
            if a.value is None or a.value == 0 or abs(a.value) > MAX_PCT:
                raise UserError(
                    f"a pct alert needs a move between -{MAX_PCT:g} and +{MAX_PCT:g} percent, not 0; e.g. pct +2 or pct -3"
                )
            fields.update(value=a.value, reference=a.ref or last)
        else:
            if a.value is None:
                raise UserError(f"an {a.kind} alert needs a price level, e.g. /alert add {sym} {a.kind} {fmt_price(last)}")
            fields["value"] = a.value
    rule = build_rule(
        a.kind,
        id=0,
        symbol=sym,
        value=fields.get("value"),
        reference=fields.get("reference"),
        direction=fields.get("direction"),
        interval=fields.get("interval"),
        params=fields.get("params"),
    )
    if not (math.isfinite(rule.level) and (rule.metric != "price" or rule.level > 0)):
        raise UserError("the level must be a positive price")
    if rule.metric in ("price", "close"):
        if last is None:
            last = (await ctx.market.quote(sym, at=now)).last
        ratio = rule.level / last if last else math.inf
        if not (1 / MAX_LEVEL_RATIO <= ratio <= MAX_LEVEL_RATIO):
            lo, hi = last / MAX_LEVEL_RATIO, last * MAX_LEVEL_RATIO
            raise UserError(
                f"{fmt_price(rule.level)} is absurdly far from {sym}'s last price {fmt_price(last)}; "
                f"give a level between {fmt_price(lo)} and {fmt_price(hi)}"
            )
        if rule.metric == "price":
            rule.initial_armed(last)
            if any(rule.armed(sd) is False for sd in rule.sides) and a.kind != "cross" and a.kind != "entry":
                warn = (
                    f"{sym} is already {'above' if rule.sides == ('up',) else 'below'} {fmt_price(rule.level)} "
                    f"(last {fmt_price(last)}): this fires on the next cross."
                )
    fields.update(
        level=rule.level, band=rule.band, armed_up=rule.armed_up, armed_down=rule.armed_down, params=fields.get("params") or {}
    )
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        await check_channel(ctx, s, owner, family)
        row = await store.create_alert(
            s,
            owner,
            platform=ctx.identity.platform,
            channel=ctx.identity.channel,
            user_ref=ctx.identity.user,
            now=now,
            **fields,
        )
        v = view(row)
    body = [f"#{v.id}: {v.symbol} {v.condition}."]
    if last is not None:
        dist = (rule.level / last - 1) * 100 if rule.metric in ("price", "close") else None
        body.append(f"Last {fmt_price(last)}" + (f" ({dist:+.2f}% away)." if dist is not None else "."))
    if warn:
        body.append(warn)
    opts = _options(v)
    body.append(opts[0].upper() + opts[1:] + ".")
    if v.plan_id:
        body.append(f"It ends with plan {v.plan_id}.")
    if v.note:
        body.append(f"Note: {v.note}")
    return Reply(title=f"Alert set on {sym}", body="\n".join(body), severity="success", as_of=now, data=v)


# ---------------------------------------------------------------------- /alert list, remove, edit


class AlertListArgs(ArgsModel):
    symbol: SymbolArg | None = Field(None, description="only this symbol")
    all: bool = Field(False, description="include fired and expired alerts")


@command(
    "alert list",
    "Your alerts (live ones; --all for fired and expired too).",
    AlertListArgs,
    examples=("/alert list", "/alert list TSLA --all"),
)
async def alert_list(ctx: Ctx, a: AlertListArgs) -> Reply:
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        rows = await store.list_alerts(s, owner, a.symbol, include_done=a.all)
        views = [view(r) for r in rows]
    if not views:
        hint = "No alerts" + (f" on {a.symbol}" if a.symbol else "") + ". Set one with `/alert add TSLA above 250`."
        return Reply(title="Alerts", body=hint, data={"alerts": []})
    return Reply(title=f"Alerts ({len(views)})", body="\n".join(_line(v) for v in views), data={"alerts": views})


def _ids(v: object) -> object:
    if isinstance(v, (list, tuple)):
        v = ",".join(str(x) for x in v)
    return str(v) if isinstance(v, (int, float)) else v


class AlertRemoveArgs(ArgsModel):
    ids: Annotated[str, BeforeValidator(_ids)] = Field(description="alert id(s) like 3 or 3,5, or all")


@command(
    "alert remove", "Remove alerts by id (or all).", AlertRemoveArgs, examples=("/alert remove 3", "/alert remove all"), acts=True
)
async def alert_remove(ctx: Ctx, a: AlertRemoveArgs) -> Reply:
    text = a.ids.strip().lower().lstrip("#")
    if text == "all":
        ids = None
    else:
        try:
            ids = [int(x.strip().lstrip("#")) for x in re.split(r"[,\s]+", text) if x.strip()]
        except ValueError:
            raise UserError(f"{a.ids[:30]!r} is not a list of alert ids; e.g. 3 or 3,5 or all") from None
        if not ids:
            raise UserError("give alert id(s) like 3 or 3,5, or all")
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        rows = await store.list_alerts(s, owner, include_done=ids is not None)
        if ids is not None:
            rows = [r for r in rows if r.id in set(ids)]
        # the coach's model only proposes "all" or several: the person confirms exactly this list
        proposal = [_line(view(r)) for r in rows] if must_confirm(ctx, len(rows), everything=ids is None) else None
        removed = [] if proposal is not None else await store.remove_alerts(s, owner, [r.id for r in rows])
    missing = [i for i in (ids or []) if i not in {r.id for r in rows}]
    if ids is not None and not rows:
        raise NotFoundError(f"no alert {', '.join('#' + str(i) for i in ids)} of yours; see /alert list")
    if proposal is not None:
        reply = await propose(ctx, "alerts", [r.id for r in rows], proposal)
        if missing:
            reply.body += f"\nNot found: {', '.join('#' + str(i) for i in missing)}."
        return reply
    body = f"Removed {', '.join('#' + str(i) for i in removed)}." if removed else "You had no live alerts."
    if missing:
        body += f" Not found: {', '.join('#' + str(i) for i in missing)}."
    return Reply(title="Alerts", body=body, data={"removed": removed})


class AlertEditArgs(ArgsModel):
    id: int = Field(ge=1, description="the alert id")
    value: float | None = Field(None, description="new level / percent / threshold")
    note: str | None = Field(None, max_length=300, description="new note")
    repeat: bool | None = Field(None, description="--repeat or --no-repeat", json_schema_extra={"brief": "fire every time"})
    cooldown: str | None = Field(None, description="new cooldown, e.g. 30m", json_schema_extra={"rare": True})
    expires: str | None = Field(None, description="new expiry (2h, eod, a date) or never", json_schema_extra={"rare": True})
    session: SessionFilter | None = Field(None, description="regular or extended", json_schema_extra={"rare": True})


@command(
    "alert edit",
    "Change an alert's level, note, repeat, cooldown, expiry or session.",
    AlertEditArgs,
    acts=True,
    result="bot.commands.alerts:AlertView",
    examples=("/alert edit 3 value=255", "/alert edit 3 --repeat cooldown=30m", "/alert edit 3 expires=never"),
)
async def alert_edit(ctx: Ctx, a: AlertEditArgs) -> Reply:
    from analytics.alertbook import build_rule, price_band
    from renderers.text import fmt_price, fmt_time

    now = ctx.now()
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        row = await store.get_alert(s, owner, a.id)
        if row.status != "active":
            raise UserError(f"alert #{a.id} is {row.status}; set a new one with /alert add")
        changed = []
        if a.value is not None:
            if row.kind in PLAN_KINDS or row.kind in ("ema_cross_up", "ema_cross_down", "vwap_reclaim", "vwap_loss"):
                raise UserError(f"a {row.kind} alert has no value to edit; remove it and add a new one")
            if row.kind in ("rsi_above", "rsi_below") and not 1 <= a.value <= 99:
                raise UserError("an RSI threshold must be between 1 and 99")
            if row.kind == "pct" and (a.value == 0 or abs(a.value) > MAX_PCT):
                raise UserError(f"a pct move must be between -{MAX_PCT:g} and +{MAX_PCT:g} percent, not 0")
            rule = build_rule(
                row.kind,
                id=row.id,
                symbol=row.symbol,
                value=a.value,
                reference=row.reference,
                interval=row.interval,
                params=row.params,
            )
            if rule.metric == "price":
                last = (await ctx.market.quote(row.symbol, at=now)).last
                ratio = rule.level / last
                if not (1 / MAX_LEVEL_RATIO <= ratio <= MAX_LEVEL_RATIO):
                    raise UserError(f"{fmt_price(rule.level)} is absurdly far from {row.symbol}'s last price {fmt_price(last)}")
                rule.initial_armed(last)
            row.value, row.level, row.band = a.value, rule.level, rule.band if rule.metric != "price" else price_band(rule.level)
            row.armed_up, row.armed_down = rule.armed_up, rule.armed_down
            changed.append("level")
        if a.note is not None:
            row.note = a.note.strip()
            changed.append("note")
        if a.repeat is not None:
            row.repeat = a.repeat
            if a.repeat and not row.cooldown_s:
                row.cooldown_s = int(parse_duration(DEFAULT_COOLDOWN, "cooldown").total_seconds())
            changed.append("repeat")
        if a.cooldown is not None:
            if not row.repeat:
                raise UserError("a cooldown only applies to repeating alerts; add --repeat")
            cd = parse_duration(a.cooldown, "cooldown")
            if cd > MAX_COOLDOWN:
                raise UserError("cooldown must be at most 7d")
            row.cooldown_s = int(cd.total_seconds())
            changed.append("cooldown")
        if a.expires is not None:
            if a.expires.strip().lower() in ("never", "none", "off"):
                row.expires_at = None
            else:
                exp = parse_expiry(a.expires, now)
                if exp <= now:
                    raise UserError(f"expiry {fmt_time(exp)} is already past")
                if exp - now > MAX_EXPIRY:
                    raise UserError("expiry must be within a year")
                row.expires_at = exp
            changed.append("expiry")
        if a.session is not None:
            row.session = a.session
            changed.append("session")
        if not changed:
            raise UserError("nothing to change; give value=, note=, --repeat, cooldown=, expires= or session=")
        await store.touch_alert(s, row)
        v = view(row)
    return Reply(title=f"Alert #{v.id} updated", body=_line(v), severity="success", data=v)
