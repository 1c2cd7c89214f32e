"""The delivery outbox: messages waiting for their destinations, each with an idempotency key.

A trigger inserts its rows in the same transaction that records it (`insert_outbox`); the
dispatcher reads each channel's head in order and marks rows delivered, retried, failed or
folded into a digest. Rows carry their tenant, so `/alerts status` shows one workspace only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Insert, Integer, String, UniqueConstraint, and_, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utc_now
from storage.base import Base, UTCDateTime, dialect_insert, rowcount, table_of


class OutboxRow(Base):
    """One message to deliver to one destination; the idempotency key makes a redelivery recognisable."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("key", name="uq_outbox_key"),
        Index("ix_outbox_status_channel", "status", "channel_key"),
        Index("ix_outbox_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer, ForeignKey("tenants.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"), default=None)
    key: Mapped[str] = mapped_column(String(200))
    #: alert, plan, replan, test, digest.
    kind: Mapped[str] = mapped_column(String(16))
    destination: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(500))
    #: Order is kept within one channel key (destination + target).
    channel_key: Mapped[str] = mapped_column(String(540))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending, delivered, failed (gave up), digested (folded into a digest row).
    status: Mapped[str] = mapped_column(String(12), default="pending")
    #: Position in the channel's order; a digest takes its first member's place.
    seq: Mapped[int | None] = mapped_column(Integer, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)
    digest_id: Mapped[int | None] = mapped_column(Integer, default=None)
    event_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


@dataclass
class NewMessage:
    """A message to enqueue: who it belongs to, where it goes, what it says, and its idempotency key."""

    tenant_id: int
    key: str
    kind: str
    destination: str
    target: str
    payload: dict[str, Any]
    owner_id: int | None = None
    event_at: datetime | None = None


def channel_key(destination: str, target: str) -> str:
    """The ordering group of a destination + target."""
    return f"{destination}|{target}"[:540]


def insert_outbox(conn: Connection, messages: Iterable[NewMessage], now: datetime) -> int:
    """Insert messages into the outbox, skipping keys already there; returns how many were new."""
    rows = [
        {
            "tenant_id": m.tenant_id,
            "owner_id": m.owner_id,
            "key": m.key[:200],
            "kind": m.kind,
            "destination": m.destination,
            "target": m.target[:500],
            "channel_key": channel_key(m.destination, m.target),
            "payload": m.payload,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "event_at": m.event_at or now,
            "created_at": now,
        }
        for m in messages
    ]
    if not rows:
        return 0
    # one statement for any number of rows (executemany): compiled once, then served from the cache
    # RETURNING: only inserted rows come back, the count every driver agrees on (executemany rowcounts differ)
    return len(conn.execute(_outbox_insert(conn.dialect.name), rows).all())


async def enqueue(session: AsyncSession, messages: Iterable[NewMessage], now: datetime | None = None) -> int:
    """Insert messages into the outbox, skipping keys already there; returns how many were new."""
    messages = list(messages)
    return await session.run_sync(lambda ss: insert_outbox(ss.connection(), messages, now or utc_now()))


@functools.cache
def _outbox_insert(dialect: str) -> Insert:
    insert = dialect_insert(dialect)
    t = table_of(OutboxRow)
    return insert(t).on_conflict_do_nothing(index_elements=["key"]).returning(t.c.id)


_ORDER = func.coalesce(OutboxRow.seq, OutboxRow.id)


async def outbox_heads(session: AsyncSession) -> list[OutboxRow]:
    """The first pending row of every channel (the only one that may be sent: order per channel)."""
    firsts = (
        select(OutboxRow.channel_key, func.min(_ORDER).label("first"))
        .where(OutboxRow.status == "pending")
        .group_by(OutboxRow.channel_key)
        .subquery()
    )
    q = (
        select(OutboxRow)
        .join(firsts, and_(OutboxRow.channel_key == firsts.c.channel_key, _ORDER == firsts.c.first))
        .where(OutboxRow.status == "pending")
    )
    return list((await session.execute(q)).scalars())


async def outbox_row(session: AsyncSession, row_id: int) -> OutboxRow | None:
    """The outbox row with this id, or None when it is gone."""
    return await session.get(OutboxRow, row_id)


async def outbox_channel_queue(session: AsyncSession, key: str, limit: int) -> list[OutboxRow]:
    """Pending rows of one channel in order."""
    q = select(OutboxRow).where(OutboxRow.channel_key == key, OutboxRow.status == "pending").order_by(_ORDER).limit(limit)
    return list((await session.execute(q)).scalars())


async def outbox_mark_delivered_many(session: AsyncSession, row_ids: list[int], now: datetime | None = None) -> None:
    """Mark several rows delivered in one statement."""
    if row_ids:
        await session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(row_ids))
            .values(status="delivered", delivered_at=now or utc_now(), last_error=None)
            .execution_options(synchronize_session=False)
        )


async def outbox_mark_retry(session: AsyncSession, row_id: int, at: datetime, error: str, count_attempt: bool = True) -> None:
    values: dict[str, Any] = {"next_attempt_at": at, "last_error": error[:300]}
    if count_attempt:
        values["attempts"] = OutboxRow.attempts + 1
    await session.execute(
        update(OutboxRow).where(OutboxRow.id == row_id).values(**values).execution_options(synchronize_session=False)
    )


async def outbox_mark_failed(session: AsyncSession, row_id: int, error: str) -> None:
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id)
        .values(status="failed", attempts=OutboxRow.attempts + 1, last_error=error[:300])
        .execution_options(synchronize_session=False)
    )


async def outbox_fold_digest(
    session: AsyncSession, members: list[OutboxRow], digest: NewMessage, now: datetime | None = None
) -> int | None:
    """Replace `members` (pending, same channel, in order) by one digest row placed where the first was; returns its id."""
    first = members[0]
    order = first.seq if first.seq is not None else first.id
    inserted = await enqueue(session, [digest], now=now)
    if not inserted:
        return None
    row = (await session.execute(select(OutboxRow).where(OutboxRow.key == digest.key[:200]))).scalar_one()
    row.seq = order
    ids = [m.id for m in members]
    res = await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_(ids), OutboxRow.status == "pending")
        .values(status="digested", digest_id=row.id)
        .execution_options(synchronize_session=False)
    )
    if rowcount(res) != len(ids):
        raise RuntimeError("outbox rows changed while folding a digest")
    await session.flush()
    return row.id


@dataclass
class ChannelHealth:
    """Delivery figures of one destination channel, for /alerts status."""

    destination: str
    target: str
    pending: int = 0
    failed: int = 0
    delivered: int = 0
    retrying: int = 0
    last_error: str | None = None
    oldest_pending_at: datetime | None = None


async def outbox_summary(session: AsyncSession, tenant_id: int) -> list[ChannelHealth]:
    """Per destination channel of one tenant: pending, retrying, failed and delivered counts and the last error."""
    q = (
        select(
            OutboxRow.destination,
            OutboxRow.target,
            OutboxRow.status,
            func.count(),
            func.min(OutboxRow.created_at),
            func.max(OutboxRow.attempts),
        )
        .where(OutboxRow.tenant_id == tenant_id, OutboxRow.status != "digested")
        .group_by(OutboxRow.destination, OutboxRow.target, OutboxRow.status)
    )
    out: dict[tuple[str, str], ChannelHealth] = {}
    for dest, target, status, n, oldest, max_attempts in await session.execute(q):
        h = out.setdefault((dest, target), ChannelHealth(dest, target))
        if status == "pending":
            h.pending += n
            h.oldest_pending_at = oldest
            if max_attempts:
                h.retrying += 1
        elif status == "failed":
            h.failed += n
        elif status == "delivered":
            h.delivered += n
    errs = await session.execute(
        select(OutboxRow.destination, OutboxRow.target, OutboxRow.last_error)
        .where(OutboxRow.tenant_id == tenant_id, OutboxRow.last_error.is_not(None), OutboxRow.status.in_(("pending", "failed")))
        .order_by(OutboxRow.id.desc())
        .limit(200)
    )
    for dest, target, err in errs:
        seen = out.get((dest, target))
        if seen is not None and seen.last_error is None:
            seen.last_error = err
    return sorted(out.values(), key=lambda h: (-h.failed, -h.pending, h.destination, h.target))


async def outbox_rows(session: AsyncSession, tenant_id: int | None = None, status: str | None = None) -> list[OutboxRow]:
    """Outbox rows in order (of one tenant and/or status): for status views and tests."""
    q = select(OutboxRow)
    if tenant_id is not None:
        q = q.where(OutboxRow.tenant_id == tenant_id)
    if status is not None:
        q = q.where(OutboxRow.status == status)
    return list((await session.execute(q.order_by(_ORDER))).scalars())


async def outbox_status_counts(session: AsyncSession) -> dict[str, int]:
    """How many outbox rows are in each status (pending, delivered, failed, ...)."""
    rows = await session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
    return {str(status): int(n) for status, n in rows.all()}


async def outbox_pending_count(session: AsyncSession) -> int:
    return int(
        (await session.execute(select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "pending"))).scalar_one()
    )
