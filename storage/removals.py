"""Removals waiting for their owner's confirmation: the exact items a bulk removal would take, for a short while.

The coach never removes more than one thing on its own: a bulk removal it asks for is stored here
as a proposal (the kind of thing, the exact ids or symbols, and an expiry) and only the owner's
confirmation, `/confirm RM-...` behind the proposal's button, carries it out. Confirming first
*claims* the row with one conditional UPDATE (proposed and unexpired -> confirmed), so a double
click or a replayed button removes at most once.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import JSON, Index, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, Owned, UTCDateTime, rowcount
from storage.identity import Owner, owned_by

#: How long a proposal may be confirmed.
CONFIRM_TTL = timedelta(minutes=10)

Claim = Literal["claimed", "expired", "used"]


class PendingRemoval(Owned, Base):
    """One proposed removal: what would go, until when it may be confirmed, and whether it was."""

    __tablename__ = "pending_removals"
    __table_args__ = (Index("ix_pending_removals_owner_expires", "tenant_id", "owner_id", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(16), unique=True)
    #: alerts, watchlist, journal or tracked.
    kind: Mapped[str] = mapped_column(String(16))
    #: The exact alert ids, symbols, entry ids or plan ids listed to the owner.
    items: Mapped[list[Any]] = mapped_column(JSON)
    #: proposed or confirmed.
    status: Mapped[str] = mapped_column(String(12), default="proposed")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


def new_token() -> str:
    """`RM-` and 8 hex digits: short enough for any platform's button id, too many to guess."""
    return "RM-" + secrets.token_hex(4).upper()


async def propose(
    session: AsyncSession, owner: Owner, kind: str, items: list[Any], now: datetime, ttl: timedelta = CONFIRM_TTL
) -> PendingRemoval:
    """Store a proposal the owner may confirm until `now + ttl` (and drop the owner's long-expired ones)."""
    now = now.astimezone(UTC)
    await session.execute(
        delete(PendingRemoval).where(owned_by(PendingRemoval, owner), PendingRemoval.expires_at < now - timedelta(days=1))
    )
    row = PendingRemoval(
        tenant_id=owner.tenant_id,
        owner_id=owner.user_id,
        token=new_token(),
        kind=kind,
        items=list(items),
        status="proposed",
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    await session.flush()
    return row


async def get_owned(session: AsyncSession, owner: Owner, token: str) -> PendingRemoval | None:
    """The owner's proposal `token`; None when there is none or it is someone else's (the two are not told apart)."""
    q = select(PendingRemoval).where(owned_by(PendingRemoval, owner), PendingRemoval.token == token.strip().upper())
    return (await session.execute(q)).scalar_one_or_none()


async def claim(session: AsyncSession, row: PendingRemoval, now: datetime) -> Claim:
    """Mark the proposal confirmed, atomically: "claimed" when this call did it, else why not ("expired", "used")."""
    now = now.astimezone(UTC)
    result = await session.execute(
        update(PendingRemoval)
        .where(
            PendingRemoval.id == row.id,
            PendingRemoval.owner_id == row.owner_id,
            PendingRemoval.tenant_id == row.tenant_id,
            PendingRemoval.status == "proposed",
            PendingRemoval.expires_at > now,
        )
        .values(status="confirmed", confirmed_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) == 1:
        return "claimed"
    await session.refresh(row)
    return "expired" if row.status == "proposed" else "used"
