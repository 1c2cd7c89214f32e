"""Where the portfolio's sectors come from: Polygon's ticker details when Polygon is configured, else the shipped map.

Polygon gives a company's SIC code (`analytics.sectors.sector_of_sic` turns it into a sector);
each answer is cached a day by the Polygon client. A symbol Polygon has no code for (funds and
ETFs), or a lookup that fails (not in the plan, rate limited, unknown ticker), takes the
mapping shipped in analytics/sectors.json, so a portfolio never fails for want of a sector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog
from pydantic import BaseModel

from analytics.sectors import sector_of, sector_of_sic
from core.errors import NotFoundError, ProviderError
from providers.base import MarketData
from providers.polygon import PolygonMarket

log = structlog.get_logger("coach.sectors")

SHIPPED = "shipped mapping"
POLYGON = "polygon SIC"


class SectorLookup(BaseModel):
    """Symbol -> sector, symbol -> where it came from, and a one-line account of the sources."""

    sectors: dict[str, str]
    origin: dict[str, str]

    @property
    def source(self) -> str:
        """ "polygon SIC", "shipped mapping", or "polygon SIC (shipped mapping for SPY, QQQ)"."""
        shipped = sorted(k for k, v in self.origin.items() if v == SHIPPED)
        if len(shipped) == len(self.origin):
            return SHIPPED
        return POLYGON + (f" ({SHIPPED} for {', '.join(shipped)})" if shipped else "")


def polygon_of(market: MarketData) -> PolygonMarket | None:
    """The Polygon client among the configured market providers (the market itself or one the router walks)."""
    if isinstance(market, PolygonMarket):
        return market
    for p in getattr(market, "providers", None) or ():
        if isinstance(p, PolygonMarket):
            return p
    return None


async def resolve_sectors(market: MarketData, symbols: Iterable[str]) -> SectorLookup:
    """The sector of each of `symbols`, from Polygon where it is configured and knows, else shipped."""
    syms = sorted(set(symbols))
    polygon = polygon_of(market)

    async def one(sym: str) -> tuple[str, str]:
        if polygon is not None:
            try:
                code, _desc = await polygon.industry(sym)
            except (ProviderError, NotFoundError) as exc:
                log.info("sector_lookup_failed", symbol=sym, error=str(exc)[:200])
            else:
                sector = sector_of_sic(code)
                if sector is not None:
                    return sector, POLYGON
        return sector_of(sym), SHIPPED

    got = await asyncio.gather(*(one(s) for s in syms))
    return SectorLookup(
        sectors={s: sector for s, (sector, _) in zip(syms, got, strict=True)},
        origin={s: origin for s, (_, origin) in zip(syms, got, strict=True)},
    )
