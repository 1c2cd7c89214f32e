"""What a live price stream yields: trades (ticks) and minute bars, provider-neutral.

A stream is an async iterator of `Tick | BarUpdate`. The alert runtime reads it the same way
whether the events come from Polygon's WebSocket, a polling loop or the offline market.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Tick:
    """One trade print."""

    symbol: str
    price: float
    size: float
    at: datetime
    source: str


@dataclass(frozen=True)
class BarUpdate:
    """A bar for [start, end). `replaces` is True when it re-sends a bar already seen (a late trade changed it)."""

    symbol: str
    interval: str
    start: datetime
    end: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float | None
    source: str
    replaces: bool = False


Event = Tick | BarUpdate


@runtime_checkable
class PriceStream(Protocol):
    """A live feed: subscribe symbols, iterate events, close when done."""

    name: str

    async def subscribe(self, symbols: Iterable[str]) -> None: ...

    async def unsubscribe(self, symbols: Iterable[str]) -> None: ...

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def aclose(self) -> None: ...
