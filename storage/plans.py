"""Plans made by /plan, /scan and re-plans: stored per tenant and owner, with a version per symbol and style.

Visibility: a plan belongs to its owner; one made in a channel (not a DM or the console) is also
visible to everyone in the same tenant, so anyone there can click "Track plan" on it. A plan made
privately (channel None) is visible to its owner only.

Versions: the n-th distinct plan an owner gets for a (symbol, style) has version n, so a re-plan
after a stop-out is version 2, 3, ... Saving the same plan (same plan id) again is a no-op that
returns the stored version: the same input gives the same plan, stored once.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from analytics.models import Plan
from core.clock import utc_now
from core.errors import UserError
from storage.base import Base, Owned
from storage.identity import Owner, owned_by

#: What can be a plan id: the planner makes "P-" + 6 characters; shorter or longer ones are simply not found.
_PLAN_ID = re.compile(r"^P-[0-9A-Z]{1,12}$")
#: How the planner writes them: "P-" and 6 Crockford base-32 characters (no I, L, O, U).
_PLAN_ID_TEXT = re.compile(r"^P-[0-9A-HJKMNP-TV-Z]{6}$")


class StoredPlan(Owned, Base):
    """One plan version, its JSON as the Plan model dumps it."""

    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("tenant_id", "owner_id", "plan_id", name="uq_plans_tenant_owner_plan"),
        Index("ix_plans_owner_symbol_style", "owner_id", "symbol", "style", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer)
    symbol: Mapped[str] = mapped_column(String(16))
    style: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(8))
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Platform channel the plan was posted in; None for DMs and the console (private).
    channel: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


def normalise_plan_id(text: str) -> str:
    """`p-1a2b3c`, `1A2B3C` or ` P-1A2B3C ` -> `P-1A2B3C`; anything else is a UserError."""
    raw = str(text or "").strip().upper()
    if not raw.startswith("P-"):
        raw = "P-" + raw
    if not _PLAN_ID.match(raw):
        shown = str(text)[:24]
        raise UserError(f"{shown!r} is not a plan id; plan ids look like P-1A2B3C (see the plan's reply)")
    return raw


async def latest_version(session: AsyncSession, owner: Owner, symbol: str, style: str) -> int:
    """The owner's highest stored version for (symbol, style); 0 when there is none."""
    q = select(func.max(StoredPlan.version)).where(
        owned_by(StoredPlan, owner), StoredPlan.symbol == symbol, StoredPlan.style == style
    )
    return int((await session.execute(q)).scalar_one() or 0)


async def latest_style(session: AsyncSession, owner: Owner, symbol: str) -> str | None:
    """The style of the owner's most recently stored plan for `symbol`; None when they have none."""
    q = (
        select(StoredPlan.style)
        .where(owned_by(StoredPlan, owner), StoredPlan.symbol == symbol)
        .order_by(StoredPlan.created_at.desc(), StoredPlan.id.desc())
        .limit(1)
    )
    return (await session.execute(q)).scalar_one_or_none()


def looks_like_plan_id(text: str) -> bool:
    """True for text written like a plan id (P-1A2B3C, any case): what /plan and /chart read as one, not as a ticker."""
    return bool(_PLAN_ID_TEXT.match(str(text or "").strip().upper()))


async def _own_row(session: AsyncSession, owner: Owner, plan_id: str) -> StoredPlan | None:
    q = select(StoredPlan).where(owned_by(StoredPlan, owner), StoredPlan.plan_id == plan_id)
    return (await session.execute(q)).scalar_one_or_none()


async def save_plan(session: AsyncSession, owner: Owner, plan: Plan, channel: str | None = None) -> Plan:
    """Store `plan` for `owner` and return it with its stored version (idempotent per plan id)."""
    existing = await _own_row(session, owner, plan.plan_id)
    if existing is not None:
        return Plan.model_validate(existing.plan)
    version = await latest_version(session, owner, plan.symbol, plan.style) + 1
    stored = plan.model_copy(update={"version": version})
    try:
        # a savepoint: losing a race to store the same plan must not abort the caller's transaction
        async with session.begin_nested():
            session.add(
                StoredPlan(
                    tenant_id=owner.tenant_id,
                    owner_id=owner.user_id,
                    plan_id=plan.plan_id,
                    version=version,
                    symbol=plan.symbol,
                    style=plan.style,
                    strategy=plan.strategy,
                    direction=plan.direction,
                    plan=stored.model_dump(mode="json"),
                    channel=str(channel)[:64] if channel else None,
                )
            )
    except IntegrityError:
        again = await _own_row(session, owner, plan.plan_id)
        if again is None:
            raise
        return Plan.model_validate(again.plan)
    return stored


async def get_plan(session: AsyncSession, owner: Owner, plan_id: str) -> Plan | None:
    """The plan with this id visible to `owner`: their own, else one shared in a channel of their tenant.

    Any text is accepted: one that cannot be a plan id simply finds nothing (None).
    """
    try:
        pid = normalise_plan_id(plan_id)
    except UserError:
        return None
    own = await _own_row(session, owner, pid)
    if own is not None:
        return Plan.model_validate(own.plan)
    q = (
        select(StoredPlan)
        .where(StoredPlan.tenant_id == owner.tenant_id, StoredPlan.plan_id == pid, StoredPlan.channel.is_not(None))
        .order_by(StoredPlan.created_at, StoredPlan.id)
        .limit(1)
    )
    row = (await session.execute(q)).scalar_one_or_none()
    return Plan.model_validate(row.plan) if row is not None else None


__all__ = [
    "StoredPlan",
    "get_plan",
    "latest_style",
    "latest_version",
    "looks_like_plan_id",
    "normalise_plan_id",
    "save_plan",
]
