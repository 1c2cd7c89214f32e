"""Answers to HTTP API requests, handed from the process that ran the request to the front that holds the connection.

The worker that runs an API request (a local worker process, a `coach worker` on another machine,
or the front itself) writes the HTTP status and JSON body here under the request's job key; the
front waiting on that key takes the row (reads and deletes it) and answers. A row nobody took (the
client went away) is dropped by `purge`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UTCDateTime, dialect_insert, rowcount, table_of


class ApiAnswer(Base):
    """One API request's answer, waiting for its front."""

    __tablename__ = "api_answers"
    __table_args__ = (Index("ix_api_answers_created_at", "created_at"),)

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


async def put(session: AsyncSession, key: str, status: int, body: dict[str, Any], now: datetime) -> None:
    """Store the answer of `key` (a second answer to the same key is ignored: the first one stands)."""
    t = table_of(ApiAnswer)
    ins = dialect_insert(session.get_bind().dialect.name)(t).values(key=key, status=status, body=body, created_at=now)
    await session.execute(ins.on_conflict_do_nothing(index_elements=["key"]))


async def take(session: AsyncSession, key: str) -> tuple[int, dict[str, Any]] | None:
    """The answer of `key`, removed from the table; None while there is none."""
    row = (await session.execute(select(ApiAnswer.status, ApiAnswer.body).where(ApiAnswer.key == key))).one_or_none()
    if row is None:
        return None
    await session.execute(delete(ApiAnswer).where(ApiAnswer.key == key))
    return int(row[0]), dict(row[1])


async def purge(session: AsyncSession, before: datetime) -> int:
    """Drop answers stored before `before` that no front took; returns how many."""
    return rowcount(await session.execute(delete(ApiAnswer).where(ApiAnswer.created_at < before)))
