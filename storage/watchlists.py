"""Watchlist repository: every call is scoped to one owner, except `runtime_*` ones, which read tickers of all tenants."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import UserError
from storage.identity import Owner
from storage.models import WatchlistItem

MAX_SYMBOLS = 200


async def add(session: AsyncSession, owner: Owner, symbols: list[str], name: str = "default") -> list[str]:
    """Add symbols (already validated); returns the ones that were new."""
    existing = set(await list_symbols(session, owner, name))
    new = [s for s in dict.fromkeys(symbols) if s not in existing]
    if len(existing) + len(new) > MAX_SYMBOLS:
        raise UserError(f"a watchlist holds at most {MAX_SYMBOLS} symbols; remove some first")
    for sym in new:
        session.add(WatchlistItem(tenant_id=owner.tenant_id, owner_id=owner.user_id, name=name, symbol=sym))
    await session.flush()
    return new


async def remove(session: AsyncSession, owner: Owner, symbols: list[str], name: str = "default") -> list[str]:
    """Remove symbols; returns the ones that were there."""
    present = set(await list_symbols(session, owner, name))
    gone = [s for s in dict.fromkeys(symbols) if s in present]
    if gone:
        await session.execute(
            delete(WatchlistItem).where(
                WatchlistItem.tenant_id == owner.tenant_id,
                WatchlistItem.owner_id == owner.user_id,
                WatchlistItem.name == name,
                WatchlistItem.symbol.in_(gone),
            )
        )
    return gone


async def list_symbols(session: AsyncSession, owner: Owner, name: str = "default") -> list[str]:
    """The owner's symbols on watchlist `name`, in the order they were added."""
    rows = await session.execute(
        select(WatchlistItem.symbol)
        .where(WatchlistItem.tenant_id == owner.tenant_id, WatchlistItem.owner_id == owner.user_id, WatchlistItem.name == name)
        .order_by(WatchlistItem.added_at, WatchlistItem.id)
    )
    return [r[0] for r in rows]


async def runtime_watched_symbols(session: AsyncSession) -> list[str]:
    """Every symbol on anyone's watchlist, each once, sorted: market-wide jobs (the IV recorder) serve all tenants."""
    rows = await session.execute(select(WatchlistItem.symbol).distinct().order_by(WatchlistItem.symbol))
    return [r[0] for r in rows]
