"""Daily ATM implied volatility per symbol: the history IV rank and percentile are computed from.

Market data, not anyone's own data: rows are shared by every tenant and carry no owner.
One row per (symbol, date); recording the same day again replaces that day's value,
so the last recording of a session (after the close) is the one kept.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, Integer, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utc_now
from storage.base import Base, dialect_insert, table_of


class IVHistory(Base):
    """One symbol's 30-day constant-maturity ATM IV on one session date."""

    __tablename__ = "iv_history"
    __table_args__ = (UniqueConstraint("symbol", "date", name="uq_iv_history_symbol_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(16))
    date: Mapped[date] = mapped_column(Date)
    atm_iv_30d: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)


async def record(session: AsyncSession, symbol: str, day: date, atm_iv_30d: float, source: str, recorded_at: datetime) -> None:
    """Store (or replace) the value of `symbol` on `day`."""
    if not (atm_iv_30d > 0) or atm_iv_30d != atm_iv_30d:
        raise ValueError(f"atm_iv_30d must be a positive number, got {atm_iv_30d!r}")
    latest = {"atm_iv_30d": float(atm_iv_30d), "source": source[:64], "recorded_at": recorded_at}
    conn = await session.connection()
    stmt = dialect_insert(conn.dialect.name)(table_of(IVHistory)).values(symbol=symbol, date=day, **latest)
    await session.execute(stmt.on_conflict_do_update(index_elements=["symbol", "date"], set_=latest))


async def history(session: AsyncSession, symbol: str, start: date, end: date) -> list[tuple[date, float]]:
    """(date, atm_iv_30d) of `symbol` with start <= date <= end, oldest first."""
    rows = await session.execute(
        select(IVHistory.date, IVHistory.atm_iv_30d)
        .where(IVHistory.symbol == symbol, IVHistory.date >= start, IVHistory.date <= end)
        .order_by(IVHistory.date)
    )
    return [(r[0], float(r[1])) for r in rows]


async def recorded_symbols(session: AsyncSession) -> list[str]:
    """Every symbol with at least one stored day, each once, sorted."""
    rows = await session.execute(select(IVHistory.symbol).distinct().order_by(IVHistory.symbol))
    return [r[0] for r in rows]
