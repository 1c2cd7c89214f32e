"""Which requests have been answered: the guard that makes a job delivered twice answer once.

A worker claims a job's key before it answers (`claim`), and a second worker, or the same job
delivered again after a crash, finds the claim and does not answer again. A claim older than
`stale` seconds whose answer was never recorded (`done`) belonged to a worker that died while
answering: it may be taken over. Old rows are dropped by `purge`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Boolean, Index, String, delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UTCDateTime, dialect_insert, rowcount, table_of


class RequestAnswer(Base):
    """One request's answer: who is answering it since when, and whether the answer went out."""

    __tablename__ = "request_answers"
    __table_args__ = (Index("ix_request_answers_claimed_at", "claimed_at"),)

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    worker: Mapped[str] = mapped_column(String(96))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done: Mapped[bool] = mapped_column(Boolean, default=False)


async def claim(session: AsyncSession, key: str, worker: str, now: datetime, *, stale: float) -> bool:
    """True when this worker may answer `key`: nobody claimed it, or a claim without an answer went stale."""
    t = table_of(RequestAnswer)
    ins = dialect_insert(session.get_bind().dialect.name)(t).values(key=key, worker=worker, claimed_at=now, done=False)
    if rowcount(await session.execute(ins.on_conflict_do_nothing(index_elements=["key"]))):
        return True
    taken = await session.execute(
        update(t)
        .where(t.c.key == key, t.c.done.is_(False), t.c.claimed_at < now - timedelta(seconds=stale))
        .values(worker=worker, claimed_at=now)
    )
    return rowcount(taken) > 0


async def keep(session: AsyncSession, key: str, worker: str, now: datetime) -> bool:
    """Renew this worker's claim on `key` just before it answers; False when another worker took it over meanwhile."""
    t = table_of(RequestAnswer)
    renewed = await session.execute(
        update(t).where(t.c.key == key, t.c.worker == worker, t.c.done.is_(False)).values(claimed_at=now)
    )
    return rowcount(renewed) > 0


async def done(session: AsyncSession, key: str) -> None:
    """Record that `key`'s answer went out."""
    t = table_of(RequestAnswer)
    await session.execute(update(t).where(t.c.key == key).values(done=True))


async def release(session: AsyncSession, key: str, worker: str) -> None:
    """Give up a claim without an answer (the job failed before answering and will be tried again)."""
    t = table_of(RequestAnswer)
    await session.execute(delete(t).where(t.c.key == key, t.c.worker == worker, t.c.done.is_(False)))


async def purge(session: AsyncSession, before: datetime) -> int:
    """Drop claims older than `before` (every platform stopped accepting their answers long ago); returns how many."""
    t = table_of(RequestAnswer)
    return rowcount(await session.execute(delete(t).where(t.c.claimed_at < before)))
