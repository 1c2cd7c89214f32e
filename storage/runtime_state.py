"""The runtime's own key/value state: the leader lease, the feed cursor, heartbeat and feed health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utc_now
from storage.base import Base, UTCDateTime, dialect_insert, rowcount, table_of


class RuntimeState(Base):
    """Service-level key/value state of the runtime: leader lease, feed cursor and health."""

    __tablename__ = "runtime_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


async def get_state(session: AsyncSession, key: str) -> dict[str, Any] | None:
    row = await session.get(RuntimeState, key)
    return dict(row.value) if row is not None else None


async def put_state(session: AsyncSession, key: str, value: dict[str, Any], now: datetime | None = None) -> None:
    await session.run_sync(lambda ss: upsert_state(ss.connection(), key, value, now or utc_now()))


def upsert_state(conn: Connection, key: str, value: dict[str, Any], now: datetime) -> None:
    """Set a runtime state value in one statement (insert or update, safe against a concurrent writer)."""
    t = table_of(RuntimeState)
    stmt = dialect_insert(conn.dialect.name)(t).values(key=key, value=value, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": now}))


async def acquire_lease(session: AsyncSession, key: str, holder: str, ttl: float, now: datetime | None = None) -> bool:
    """Take or renew a lease: true when `holder` owns `key` until now + ttl (another holder's live lease wins)."""
    now = now or utc_now()
    until = now + timedelta(seconds=ttl)
    row = await session.get(RuntimeState, key, with_for_update=True)
    if row is None:
        session.add(RuntimeState(key=key, value={"holder": holder, "until": until.isoformat()}, updated_at=now))
        await session.flush()
        return True
    cur = row.value or {}
    held_until = _parse_iso(cur.get("until"))
    if cur.get("holder") not in (None, holder) and held_until is not None and held_until > now:
        return False
    res = await session.execute(
        update(RuntimeState)
        .where(RuntimeState.key == key, RuntimeState.updated_at == row.updated_at)
        .values(value={"holder": holder, "until": until.isoformat()}, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(res) > 0


async def release_lease(session: AsyncSession, key: str, holder: str) -> None:
    row = await session.get(RuntimeState, key)
    if row is not None and (row.value or {}).get("holder") == holder:
        row.value = {"holder": None, "until": None}
        row.updated_at = utc_now()
        await session.flush()


def _parse_iso(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
