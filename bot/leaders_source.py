"""The `leaders` scan universe: the last session's top names by dollar volume where the provider can tell, else the fixed list.

A provider that summarises a whole session in one answer (`session_volumes(day)`: Polygon's
grouped daily bars; the offline market's listed symbols) ranks the leaders; the list then
follows the market, one session at a time (the offline market's rotates deterministically).
Without one, or when it fails (not in the plan, not published yet), the fixed list of
`analytics.scan_scope.LEADERS` stands in, and the answer says which was used and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import structlog

from analytics.scan_scope import LEADERS, rank_by_dollar_volume
from analytics.sessions import EXCHANGE_TZ, session_info
from core.errors import CoachError
from providers.base import MarketData

log = structlog.get_logger("coach.leaders")

#: Fewer ranked names than this and the ranking is not trusted (a partial summary): the fixed list is used.
MIN_RANKED = 10


@dataclass(frozen=True)
class Leaders:
    """The leaders' symbols and, in words, what they are (`basis`): ranked by dollar volume, or the fixed list."""

    symbols: list[str]
    ranked: bool
    basis: str
    session: date | None = None


def summary_provider(market: MarketData) -> Any | None:
    """The configured provider that can summarise a whole session (the market itself, or the first one the router walks)."""
    if callable(getattr(market, "session_volumes", None)):
        return market
    for p in getattr(market, "providers", None) or ():
        if callable(getattr(p, "session_volumes", None)):
            return p
    return None


def last_closed_session(at: datetime) -> date:
    """The date of the most recent regular session that has closed at `at`."""
    return session_info(at).last_close.astimezone(EXCHANGE_TZ).date()


async def living_leaders(market: MarketData, at: datetime, n: int = len(LEADERS)) -> Leaders:
    """The leaders as of `at`: ranked by the last closed session's dollar volume, or the fixed list (saying why)."""
    fixed = list(LEADERS[:n])
    provider = summary_provider(market)
    if provider is None:
        return Leaders(fixed, False, f"fixed list of {len(fixed)}: {market.name} cannot rank a session by dollar volume")
    day = last_closed_session(at)
    try:
        vols = await provider.session_volumes(day)
    except CoachError as exc:
        log.info("leaders_fallback", provider=provider.name, day=day.isoformat(), reason=exc.message[:200])
        return Leaders(fixed, False, f"fixed list of {len(fixed)}: {provider.name} could not rank {day}: {exc.message}")
    ranked = rank_by_dollar_volume(vols.rows, n)
    if len(ranked) < min(MIN_RANKED, n):
        return Leaders(fixed, False, f"fixed list of {len(fixed)}: {vols.source} ranked only {len(ranked)} names on {day}")
    return Leaders(ranked, True, f"top {len(ranked)} by dollar volume on {day} ({vols.source})", day)
