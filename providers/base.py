"""The `MarketData` protocol every provider implements, and the `Bars` result it returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, runtime_checkable

import pandas as pd

from analytics.models import OptionChain, Quote


@dataclass(frozen=True)
class Bars:
    """Bars for one symbol and interval, with who served them and as of when."""

    symbol: str
    interval: str
    df: pd.DataFrame  # the bar convention: UTC DatetimeIndex, float64 open high low close volume
    as_of: datetime
    source: str

    @property
    def empty(self) -> bool:
        return bool(self.df.empty)


@runtime_checkable
class MarketData(Protocol):
    """An async source of bars, quotes, expirations and option chains.

    `at` pins "now" for providers that can answer historically (the offline market,
    replays); live providers answer for the present and may ignore it.
    """

    name: str

    async def bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> Bars:
        """Bars with stamps in [start, end], ascending. Empty frame when there are none."""
        ...

    async def quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """The latest quote at `at` (or now)."""
        ...

    async def expirations(self, symbol: str, at: datetime | None = None) -> list[date]:
        """Listed option expirations on or after `at`'s date, ascending."""
        ...

    async def chain(self, symbol: str, expiration: date, at: datetime | None = None) -> OptionChain:
        """Every contract of one expiration. Raises NotFoundError for an expiration that is not listed."""
        ...


@dataclass(frozen=True)
class SessionVolume:
    """One symbol's regular session in a market-wide daily summary: close, share volume and VWAP when given."""

    symbol: str
    close: float
    volume: float
    vwap: float | None = None


@dataclass(frozen=True)
class SessionVolumes:
    """Every symbol a provider summarises for one session (Polygon's grouped daily bars; the offline market's list)."""

    day: date
    rows: tuple[SessionVolume, ...]
    source: str
