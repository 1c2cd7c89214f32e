"""Live prices for open chart pages: one price stream, shared by every page, fanned out per symbol.

The stream is the runtime's kind (`bot.runtime.feed.build_stream`: the provider's WebSocket, the
offline market's stream, or polling quotes), opened when the first page subscribes and following
exactly the symbols pages are open on. Each subscriber gets its own small queue; a page that reads
slowly loses old prices, never the newest (only the last price matters to a chart).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from providers.feed import BarUpdate, Event, PriceStream, Tick

log = structlog.get_logger("coach.web.live")

#: Prices a page may fall behind before the oldest are dropped.
QUEUE_SIZE = 256


@dataclass(frozen=True)
class Price:
    """One price a page shows: a trade or a bar's close, with its market time."""

    symbol: str
    price: float
    size: float
    at: datetime
    source: str
    #: A bar's own high/low/open when the event was a bar (None for a trade).
    bar: BarUpdate | None = None


def as_price(ev: Event) -> Price:
    if isinstance(ev, Tick):
        return Price(ev.symbol, ev.price, ev.size, ev.at, ev.source)
    return Price(ev.symbol, ev.close, ev.volume, ev.end, ev.source, bar=ev)


class LiveHub:
    """Opens one stream lazily, subscribes the symbols pages watch, and hands each page its symbol's prices."""

    def __init__(self, make_stream: Callable[[], PriceStream]) -> None:
        self._make_stream = make_stream
        self._stream: PriceStream | None = None
        self._task: asyncio.Task[None] | None = None
        self._subs: dict[str, set[asyncio.Queue[Price]]] = {}
        #: The newest price per symbol, so a page that opens later starts with it.
        self.last: dict[str, Price] = {}
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def subscribe(self, symbol: str) -> AsyncIterator[asyncio.Queue[Price]]:
        """A queue of `symbol`'s prices while the context is open."""
        q: asyncio.Queue[Price] = asyncio.Queue(QUEUE_SIZE)
        async with self._lock:
            first = symbol not in self._subs
            self._subs.setdefault(symbol, set()).add(q)
            stream = self._ensure()
            if first:
                await stream.subscribe([symbol])
        try:
            yield q
        finally:
            async with self._lock:
                qs = self._subs.get(symbol)
                if qs is not None:
                    qs.discard(q)
                    if not qs:
                        del self._subs[symbol]
                        if self._stream is not None:
                            with contextlib.suppress(Exception):
                                await self._stream.unsubscribe([symbol])

    def _ensure(self) -> PriceStream:
        if self._stream is None:
            self._stream = self._make_stream()
            self._task = asyncio.create_task(self._pump(self._stream), name="coach-chart-live")
        return self._stream

    async def _pump(self, stream: PriceStream) -> None:
        delay = 1.0
        while True:
            try:
                async for ev in stream:
                    self.publish(as_price(ev))
                    delay = 1.0
                log.warning("chart_stream_ended", source=stream.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken stream costs pages their live prices, not the server
                log.warning("chart_stream_failed", source=stream.name, error=str(exc)[:200])
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)

    def publish(self, p: Price) -> None:
        """Hand `p` to every page open on its symbol (dropping a slow page's oldest price)."""
        prev = self.last.get(p.symbol)
        if prev is None or p.at >= prev.at:
            self.last[p.symbol] = p
        for q in self._subs.get(p.symbol, ()):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(p)

    def watching(self) -> dict[str, int]:
        """Pages open per symbol (for tests and operators)."""
        return {s: len(qs) for s, qs in self._subs.items()}

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._stream.aclose()
        self._stream = self._task = None


def runtime_stream(services: Any) -> Callable[[], PriceStream]:
    """What opens the runtime's kind of price stream for these services (see `bot.runtime.feed.build_stream`)."""

    def make() -> PriceStream:
        from bot.runtime.feed import build_stream

        return build_stream(services.stream_builder, services.market, services.clock)

    return make


__all__ = ["LiveHub", "Price", "runtime_stream"]
