"""Alerts, channel alert settings and tracked plans (the delivery outbox and the runtime's own
state are in `storage.outbox` and `storage.runtime_state`).

Everything a person owns (alerts, tracked plans) is scoped by tenant and owner; channel
settings are scoped by tenant (they belong to the workspace, changed by its admins). The
runtime reads across tenants because it serves all of them: those functions say so in their
names (`runtime_*`) and never take user input.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Update,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utc_now
from core.errors import NotFoundError, UserError
from storage.base import Base, Owned, UTCDateTime, table_of
from storage.identity import Owner, owned_by

#: Live alerts one person may hold.
MAX_ALERTS_PER_USER = 100
#: Plans one person may track at once.
MAX_TRACKED_PER_USER = 20


# ---------------------------------------------------------------------- models


class Alert(Owned, Base):
    """A person's alert: the condition, its options, where it was made, and its live state."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_status_updated", "status", "updated_at"),
        Index("ix_alerts_owner_status", "tenant_id", "owner_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24))
    #: What the person typed: the level, the signed percent, the RSI threshold.
    value: Mapped[float | None] = mapped_column(Float, default=None)
    #: The compiled level the book watches (equals value for price levels).
    level: Mapped[float] = mapped_column(Float)
    reference: Mapped[float | None] = mapped_column(Float, default=None)
    band: Mapped[float] = mapped_column(Float)
    interval: Mapped[str | None] = mapped_column(String(8), default=None)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    direction: Mapped[str | None] = mapped_column(String(8), default=None)
    plan_id: Mapped[str | None] = mapped_column(String(64), default=None)
    target_index: Mapped[int | None] = mapped_column(Integer, default=None)
    repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    cooldown_s: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    session: Mapped[str] = mapped_column(String(12), default="regular")
    note: Mapped[str] = mapped_column(String(500), default="")
    #: active, fired (one-shot done) or expired.
    status: Mapped[str] = mapped_column(String(12), default="active")
    armed_up: Mapped[bool | None] = mapped_column(Boolean, default=None)
    armed_down: Mapped[bool | None] = mapped_column(Boolean, default=None)
    fire_count: Mapped[int] = mapped_column(Integer, default=0)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_price: Mapped[float | None] = mapped_column(Float, default=None)
    platform: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The owner's platform user id (for the DM route).
    user_ref: Mapped[str] = mapped_column(String(64))
    active_from: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class ChannelSettings(Base):
    """Alert settings of one channel, or of the whole workspace (channel = ""). NULL fields inherit."""

    __tablename__ = "channel_settings"
    __table_args__ = (UniqueConstraint("tenant_id", "scope", "channel", name="uq_channel_settings_scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer, ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(64), default="")
    alerts_enabled: Mapped[bool | None] = mapped_column(Boolean, default=None)
    #: Alert families allowed: any of price, indicator, plan. NULL inherits (default: all).
    allowed_kinds: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    #: channel, thread (one per symbol) or dm.
    route: Mapped[str | None] = mapped_column(String(12), default=None)
    #: Extra sinks: [{"kind": "discord_webhook"|"slack_webhook"|"webhook", "url": ...}].
    webhooks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    #: The portfolio risk summary after each close (off unless a channel or the workspace turns it on).
    daily_summary: Mapped[bool | None] = mapped_column(Boolean, default=None)
    updated_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class TrackedPlan(Owned, Base):
    """A plan followed live: the plan itself, its lifecycle state and where its updates go."""

    __tablename__ = "tracked_plans"
    __table_args__ = (
        UniqueConstraint("owner_id", "plan_id", name="uq_tracked_plans_owner_plan"),
        Index("ix_tracked_plans_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(16))
    style: Mapped[str] = mapped_column(String(12))
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending, triggered, stopped, exited, expired, invalidated, cancelled; proposed for an un-adopted re-plan.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    platform: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(64), default=None)
    user_ref: Mapped[str] = mapped_column(String(64))
    #: After a stop-out: pending (a re-plan is being built), done, failed.
    replan_status: Mapped[str | None] = mapped_column(String(12), default=None)
    replan_of: Mapped[int | None] = mapped_column(Integer, default=None)
    next_plan_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


ACTIVE_TRACKED = ("pending", "triggered")
#: Statuses of a plan the market ended (a cancelled one was untracked by its owner instead).
FINISHED_TRACKED = ("stopped", "exited", "expired", "invalidated")


# ---------------------------------------------------------------------- alerts (owner-scoped)


async def count_active_alerts(session: AsyncSession, owner: Owner) -> int:
    """How many live alerts the owner holds."""
    q = select(func.count()).select_from(Alert).where(owned_by(Alert, owner), Alert.status == "active")
    return int((await session.execute(q)).scalar_one())


async def create_alert(session: AsyncSession, owner: Owner, /, **fields: Any) -> Alert:
    """Store a new alert for the owner, refusing one over the per-user maximum."""
    if await count_active_alerts(session, owner) >= MAX_ALERTS_PER_USER:
        raise UserError(f"you have {MAX_ALERTS_PER_USER} live alerts, the most allowed; remove some with /alert remove ID first")
    # `now` is the caller's (possibly pinned) time: the alert watches prices from then on;
    # created/updated stamps are wall time, which is what runtimes in other processes sync on
    now = fields.pop("now", None) or utc_now()
    wall = utc_now()
    row = Alert(
        tenant_id=owner.tenant_id,
        owner_id=owner.user_id,
        created_at=wall,
        updated_at=wall,
        active_from=fields.pop("active_from", now),
        **fields,
    )
    session.add(row)
    await session.flush()
    return row


async def list_alerts(session: AsyncSession, owner: Owner, symbol: str | None = None, include_done: bool = False) -> list[Alert]:
    """The owner's alerts, newest last; only live ones unless include_done."""
    q = select(Alert).where(owned_by(Alert, owner))
    if symbol:
        q = q.where(Alert.symbol == symbol)
    q = q.where(Alert.status == "active") if not include_done else q.where(Alert.status != "removed")
    return list((await session.execute(q.order_by(Alert.id))).scalars())


async def get_alert(session: AsyncSession, owner: Owner, alert_id: int) -> Alert:
    """One of the owner's alerts, or NotFoundError (another owner's id is 'not found' too)."""
    row = (
        await session.execute(select(Alert).where(owned_by(Alert, owner), Alert.id == alert_id, Alert.status != "removed"))
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no alert #{alert_id} of yours; see /alert list")
    return row


async def remove_alerts(session: AsyncSession, owner: Owner, ids: Iterable[int] | None, now: datetime | None = None) -> list[int]:
    """Remove the owner's alerts by id (all live ones when ids is None); returns the ids removed.

    Rows are marked "removed" rather than deleted, so a runtime in another process sees the
    change in its next sync.
    """
    q = select(Alert.id).where(owned_by(Alert, owner), Alert.status != "removed")
    if ids is None:
        q = q.where(Alert.status == "active")
    else:
        q = q.where(Alert.id.in_(list(ids)))
    found = [r[0] for r in await session.execute(q)]
    if found:
        await session.execute(
            update(Alert)
            .where(owned_by(Alert, owner), Alert.id.in_(found))
            .values(status="removed", updated_at=now or utc_now())
            .execution_options(synchronize_session=False)
        )
    return found


async def touch_alert(session: AsyncSession, row: Alert, now: datetime | None = None) -> None:
    """Mark an edited alert so a running runtime reloads it."""
    row.updated_at = now or utc_now()
    await session.flush()


# ---------------------------------------------------------------------- alerts (runtime)


async def runtime_active_alerts(session: AsyncSession) -> list[Alert]:
    """Every live alert of every tenant (the runtime loads its book from these)."""
    return list((await session.execute(select(Alert).where(Alert.status == "active").order_by(Alert.id))).scalars())


async def runtime_alert_versions(session: AsyncSession, since: datetime) -> list[tuple[int, datetime]]:
    """(id, updated_at) of alerts changed at or after `since`: cheap, to find what a sync must reload."""
    q = select(Alert.id, Alert.updated_at).where(Alert.updated_at >= since)
    return [(r[0], r[1]) for r in await session.execute(q)]


def save_armed(conn: Connection, states: list[dict[str, Any]], now: datetime) -> None:
    """Write many alerts' armed flags at once (re-arms): dicts with id, armed_up, armed_down."""
    if not states:
        return
    conn.execute(_armed_stmt(), [{"rid": d["id"], "up": d["armed_up"], "down": d["armed_down"], "at": now} for d in states])


# The runtime's per-batch statements are built once: building one costs more than running it.
@functools.cache
def _armed_stmt() -> Update:
    t = table_of(Alert)
    return (
        update(t)
        .where(t.c.id == bindparam("rid"))
        .values(armed_up=bindparam("up"), armed_down=bindparam("down"), updated_at=bindparam("at"))
    )


@functools.cache
def _fires_stmt() -> Update:
    t = table_of(Alert)
    return (
        update(t)
        .where(t.c.id == bindparam("rid"), t.c.fire_count == bindparam("expect"), t.c.status == "active")
        .values(
            fire_count=bindparam("n"),
            armed_up=bindparam("up"),
            armed_down=bindparam("down"),
            last_fired_at=bindparam("fired_at"),
            status=bindparam("st"),
            last_price=bindparam("px"),
            updated_at=bindparam("at"),
        )
    )


async def runtime_alerts_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, Alert]:
    ids = list(ids)
    if not ids:
        return {}
    return {a.id: a for a in (await session.execute(select(Alert).where(Alert.id.in_(ids)))).scalars()}


def record_fires(conn: Connection, fires: list[dict[str, Any]], now: datetime) -> set[int]:
    """Record fires of many alerts in one statement; returns the ids recorded.

    Each dict: id, expect (the fire count before these fires), fire_count, armed_up, armed_down,
    last_fired_at, status, last_price. An alert whose stored fire count is not `expect`, or that
    is no longer active (removed, edited to done, or recorded by another worker), is left alone.
    """
    if not fires:
        return set()
    params = [
        {
            "rid": f["id"],
            "expect": f["expect"],
            "n": f["fire_count"],
            "up": f["armed_up"],
            "down": f["armed_down"],
            "fired_at": f["last_fired_at"],
            "st": f["status"],
            "px": f["last_price"],
            "at": now,
        }
        for f in fires
    ]
    res = conn.execute(_fires_stmt(), params)
    if res.rowcount is not None and res.rowcount == len(fires):
        return {f["id"] for f in fires}
    # some did not match: find out which rows carry our write
    t = table_of(Alert)
    want = {f["id"]: f["fire_count"] for f in fires}
    rows = conn.execute(select(t.c.id, t.c.fire_count, t.c.updated_at).where(t.c.id.in_(list(want))))
    return {aid for aid, n, at in rows if n == want[aid] and at == now}


def mark_expired(conn: Connection, ids: Iterable[int], now: datetime) -> None:
    ids = list(ids)
    if ids:
        t = table_of(Alert)
        conn.execute(update(t).where(t.c.id.in_(ids), t.c.status == "active").values(status="expired", updated_at=now))


async def runtime_undated_plan_alerts(session: AsyncSession) -> list[Alert]:
    """Live alerts on a plan that carry no expiry (set before alerts ended with their plan)."""
    q = select(Alert).where(Alert.status == "active", Alert.plan_id.is_not(None), Alert.expires_at.is_(None))
    return list((await session.execute(q.order_by(Alert.id))).scalars())


def expire_plan_alerts(conn: Connection, plans: Iterable[tuple[int, int, str]], now: datetime) -> int:
    """Expire the live alerts on plans that ended: (tenant id, owner id, plan id) each; returns how many.

    Their levels mean nothing once the plan is over (stopped, exited, expired or invalidated). The
    new `updated_at` is what makes a runtime's next sync drop them from its book.
    """
    t = table_of(Alert)
    n = 0
    for tenant_id, owner_id, plan_id in plans:
        res = conn.execute(
            update(t)
            .where(t.c.tenant_id == tenant_id, t.c.owner_id == owner_id, t.c.plan_id == plan_id, t.c.status == "active")
            .values(status="expired", updated_at=now)
        )
        n += int(res.rowcount or 0)
    return n


# ---------------------------------------------------------------------- channel settings


ROUTES = ("channel", "thread", "dm")
FAMILIES = ("price", "indicator", "plan", "risk")
#: The inheritable settings of a channel (a NULL value takes the workspace's, then the default).
SETTING_NAMES = ("alerts_enabled", "allowed_kinds", "route", "webhooks", "daily_summary")


@dataclass
class EffectiveSettings:
    """A channel's settings after inheritance: channel row, then workspace row, then defaults."""

    alerts_enabled: bool = True
    allowed_kinds: list[str] = field(default_factory=lambda: list(FAMILIES))
    route: str = "channel"
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    daily_summary: bool = False
    #: Which level each value came from: "channel", "workspace" or "default".
    origin: dict[str, str] = field(default_factory=dict)


async def settings_row(session: AsyncSession, tenant_id: int, scope: str, channel: str = "") -> ChannelSettings | None:
    return (
        await session.execute(
            select(ChannelSettings).where(
                ChannelSettings.tenant_id == tenant_id, ChannelSettings.scope == scope, ChannelSettings.channel == channel
            )
        )
    ).scalar_one_or_none()


async def effective_settings(session: AsyncSession, tenant_id: int, channel: str | None) -> EffectiveSettings:
    """The settings that apply in `channel` of tenant `tenant_id`."""
    own = await settings_row(session, tenant_id, "channel", channel) if channel else None
    return merge_settings(own, await settings_row(session, tenant_id, "workspace", ""))


async def effective_settings_many(
    session: AsyncSession, keys: Iterable[tuple[int, str | None]]
) -> dict[tuple[int, str | None], EffectiveSettings]:
    """Effective settings of many (tenant, channel) pairs in one read."""
    keys = list(keys)
    if not keys:
        return {}
    rows = (await session.execute(select(ChannelSettings).where(ChannelSettings.tenant_id.in_({t for t, _ in keys})))).scalars()
    by = {(r.tenant_id, r.scope, r.channel): r for r in rows}
    return {(t, ch): merge_settings(by.get((t, "channel", ch)) if ch else None, by.get((t, "workspace", ""))) for t, ch in keys}


def merge_settings(channel_row: ChannelSettings | None, workspace_row: ChannelSettings | None) -> EffectiveSettings:
    """Inheritance: each value from the channel's row, else the workspace's, else the default."""
    eff = EffectiveSettings()
    levels = [(row, origin) for row, origin in ((channel_row, "channel"), (workspace_row, "workspace")) if row is not None]
    for name in SETTING_NAMES:
        eff.origin[name] = "default"
        for row, origin in levels:
            if getattr(row, name) is not None:
                setattr(eff, name, getattr(row, name))
                eff.origin[name] = origin
                break
    return eff


async def update_settings(
    session: AsyncSession, tenant_id: int, scope: str, channel: str, by_user: int | None, **changes: Any
) -> ChannelSettings:
    """Create or change the settings row of a channel or the workspace (admin checks happen before)."""
    if scope not in ("channel", "workspace"):
        raise UserError("scope must be channel or workspace")
    channel = "" if scope == "workspace" else channel
    row = await settings_row(session, tenant_id, scope, channel)
    if row is None:
        row = ChannelSettings(tenant_id=tenant_id, scope=scope, channel=channel)
        session.add(row)
    for k, v in changes.items():
        if k not in SETTING_NAMES:
            raise ValueError(f"unknown setting {k}")
        setattr(row, k, v)
    row.updated_by = by_user
    row.updated_at = utc_now()
    await session.flush()
    return row


# ---------------------------------------------------------------------- tracked plans


async def track(session: AsyncSession, owner: Owner, **fields: Any) -> TrackedPlan:
    """Track a plan for the owner (re-tracking the same plan id updates it)."""
    plan_id = fields["plan_id"]
    row = (
        await session.execute(select(TrackedPlan).where(owned_by(TrackedPlan, owner), TrackedPlan.plan_id == plan_id))
    ).scalar_one_or_none()
    if row is None:
        live = await session.execute(
            select(func.count())
            .select_from(TrackedPlan)
            .where(owned_by(TrackedPlan, owner), TrackedPlan.status.in_(ACTIVE_TRACKED))
        )
        if int(live.scalar_one()) >= MAX_TRACKED_PER_USER:
            raise UserError(f"you already track {MAX_TRACKED_PER_USER} plans, the most allowed; /untrack one first")
        row = TrackedPlan(tenant_id=owner.tenant_id, owner_id=owner.user_id, **fields)
        session.add(row)
    else:
        for k, v in fields.items():
            setattr(row, k, v)
        row.updated_at = fields.get("updated_at") or utc_now()
    await session.flush()
    return row


async def get_tracked(session: AsyncSession, owner: Owner, plan_id: str) -> TrackedPlan | None:
    return (
        await session.execute(select(TrackedPlan).where(owned_by(TrackedPlan, owner), TrackedPlan.plan_id == plan_id))
    ).scalar_one_or_none()


async def list_tracked(session: AsyncSession, owner: Owner, include_done: bool = False) -> list[TrackedPlan]:
    q = select(TrackedPlan).where(owned_by(TrackedPlan, owner))
    if not include_done:
        q = q.where(TrackedPlan.status.in_((*ACTIVE_TRACKED, "proposed")))
    return list((await session.execute(q.order_by(TrackedPlan.id))).scalars())


async def runtime_active_tracked(session: AsyncSession) -> list[TrackedPlan]:
    """Every plan being followed, all tenants (the runtime's tracker loads these)."""
    return list(
        (
            await session.execute(select(TrackedPlan).where(TrackedPlan.status.in_(ACTIVE_TRACKED)).order_by(TrackedPlan.id))
        ).scalars()
    )


async def runtime_tracked_changed(session: AsyncSession, since: datetime) -> list[TrackedPlan]:
    return list(
        (await session.execute(select(TrackedPlan).where(TrackedPlan.updated_at >= since).order_by(TrackedPlan.id))).scalars()
    )


async def runtime_pending_replans(session: AsyncSession) -> list[TrackedPlan]:
    """Stopped plans whose re-plan was not finished (resumed after a restart)."""
    return list(
        (
            await session.execute(select(TrackedPlan).where(TrackedPlan.replan_status == "pending").order_by(TrackedPlan.id))
        ).scalars()
    )


async def count_auto_adoptions(session: AsyncSession, owner: Owner, channel: str | None, symbol: str, since: datetime) -> int:
    """Re-plans of `symbol` the owner's auto-rearm adopted in `channel` since `since` (their state says "adopted": "auto")."""
    q = select(TrackedPlan.state).where(
        owned_by(TrackedPlan, owner),
        TrackedPlan.symbol == symbol,
        TrackedPlan.replan_of.is_not(None),
        TrackedPlan.created_at >= since,
        TrackedPlan.channel.is_(None) if channel is None else TrackedPlan.channel == channel,
    )
    return sum(1 for (state,) in await session.execute(q) if (state or {}).get("adopted") == "auto")


async def runtime_tracked_by_id(session: AsyncSession, tracked_id: int) -> TrackedPlan | None:
    return (await session.execute(select(TrackedPlan).where(TrackedPlan.id == tracked_id))).scalar_one_or_none()


def save_tracked_state(conn: Connection, tracked_id: int, state: dict[str, Any], status: str, now: datetime) -> bool:
    """Store a live plan's new lifecycle state; False when it is no longer tracked (untracked or done meanwhile).

    A stop-out also marks its re-plan pending, in the same statement, so a crash right after the
    commit still leaves the re-plan to be built on restart.
    """
    t = table_of(TrackedPlan)
    values: dict[str, Any] = {"state": state, "status": status, "updated_at": now}
    if status == "stopped":
        values["replan_status"] = "pending"
    res = conn.execute(update(t).where(t.c.id == tracked_id, t.c.status.in_(ACTIVE_TRACKED)).values(**values))
    return bool(res.rowcount)


__all__ = [
    "Alert",
    "ChannelSettings",
    "TrackedPlan",
    "EffectiveSettings",
    "MAX_ALERTS_PER_USER",
    "MAX_TRACKED_PER_USER",
    "ROUTES",
    "FAMILIES",
]
