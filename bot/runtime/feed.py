"""Prices for the runtime: the provider's stream when it has one, else polling quotes; and whether the feed is stale.

A stale feed is told apart from a quiet market by time, not by price: while the regular
session is open, the newest event's market timestamp must keep up with the clock. If it
falls more than `stale_after` seconds behind (no events, a frozen poll, a lagging stream),
the feed is "stale"; when the stream itself fails it is "down" until it reconnects. Outside
the session the feed is "closed", which is not an error. The worker logs each change and
stores the status so `/alerts status` in any process can show it.

Streams come from `STREAM_BUILDERS` by provider name (`sim` is the offline market's
accelerated stream; providers with a WebSocket register theirs); anything else is polled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from pydantic import BaseModel

from analytics.sessions import session_info
from core.errors import CoachError
from core.retry import NO_JITTER, Backoff
from providers.feed import BarUpdate, Event, PriceStream, Tick

log = structlog.get_logger("coach.feed")


@dataclass
class FeedBatch:
    """Events read together: ticks and bars in arrival order, and how far a replayable stream got."""

    ticks: list[Tick] = field(default_factory=list)
    bars: list[BarUpdate] = field(default_factory=list)
    #: For replayable streams: every event stamped at or before this moment is in this batch or an earlier one.
    cursor: datetime | None = None
    #: time.perf_counter() when the first event of the batch arrived (for tick-to-outbox latency).
    received: float = 0.0

    def __len__(self) -> int:
        return len(self.ticks) + len(self.bars)


class FeedStatus(BaseModel):
    """The feed as /alerts status shows it."""

    source: str
    mode: str  # stream or poll
    state: str  # starting, live, stale, down, closed, idle
    symbols: int = 0
    last_event_at: datetime | None = None
    lag_s: float | None = None
    error: str | None = None


class PollingStream:
    """A `PriceStream` made by asking the market for quotes every `interval` seconds."""

    replayable = False

    def __init__(self, market: Any, *, interval: float = 5.0, concurrency: int = 8) -> None:
        self.market = market
        self.name = getattr(market, "name", "market")
        self.interval = interval
        self._sem = asyncio.Semaphore(concurrency)
        self._symbols: set[str] = set()
        self._closed = False
        self.errors = 0

    async def subscribe(self, symbols: Iterable[str]) -> None:
        self._symbols |= set(symbols)

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        self._symbols -= set(symbols)

    async def aclose(self) -> None:
        self._closed = True

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._poll()

    async def _one(self, sym: str) -> Tick | None:
        async with self._sem:
            try:
                q = await self.market.quote(sym)
            except CoachError as exc:
                self.errors += 1
                log.debug("poll_failed", symbol=sym, error=str(exc))
                return None
        return Tick(symbol=q.symbol, price=float(q.last), size=0.0, at=q.as_of, source=q.source)

    async def _poll(self) -> AsyncIterator[Event]:
        while not self._closed:
            started = time.monotonic()
            ticks = await asyncio.gather(*(self._one(s) for s in sorted(self._symbols)))
            for t in ticks:
                if t is not None:
                    yield t
            await asyncio.sleep(max(0.05, self.interval - (time.monotonic() - started)))


class Feed:
    """Reads a stream into batches for the evaluator and keeps its health."""

    def __init__(
        self,
        stream: PriceStream,
        clock: Callable[[], datetime],
        *,
        stale_after: float = 120.0,
        queue_max: int = 100_000,
        reconnect_backoff: float = 1.0,
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.stale_after = stale_after
        self.reconnect_backoff = reconnect_backoff
        self.mode = "poll" if isinstance(stream, PollingStream) else "stream"
        self._queue: asyncio.Queue[tuple[list[Event], datetime | None, float]] = asyncio.Queue(queue_max)
        self._symbols: set[str] = set()
        self.last_event_at: datetime | None = None
        self.error: str | None = None
        self._started_at: datetime | None = None
        self.events = 0

    @property
    def replayable(self) -> bool:
        return bool(getattr(self.stream, "replayable", False))

    async def set_symbols(self, symbols: Iterable[str]) -> None:
        """Follow exactly these symbols."""
        want = set(symbols)
        add, drop = want - self._symbols, self._symbols - want
        if add:
            await self.stream.subscribe(sorted(add))
        if drop:
            await self.stream.unsubscribe(sorted(drop))
        self._symbols = want

    async def run(self, stop: asyncio.Event) -> None:
        """Pump the stream into the queue until `stop`, reconnecting after failures."""
        self._started_at = self.clock()
        reconnect = Backoff(base=self.reconnect_backoff, cap=30.0, jitter=NO_JITTER)
        failures = 0
        while not stop.is_set():
            try:
                pump = asyncio.ensure_future(self._pump(stop))
                stopper = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait({pump, stopper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopper.cancel()
                    if not pump.done():
                        # stopping: a silent stream must not keep us waiting for its next event
                        pump.cancel()
                        await asyncio.gather(pump, return_exceptions=True)
                if stop.is_set():
                    break
                pump.result()
                self.error = "stream ended"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken stream is reported and reopened, never fatal
                self.error = str(exc)[:200] or exc.__class__.__name__
                log.warning("feed_down", source=self.stream.name, error=self.error)
            try:
                await asyncio.wait_for(stop.wait(), reconnect.delay(failures))
            except TimeoutError:
                pass
            failures += 1

    async def _pump(self, stop: asyncio.Event) -> None:
        slots = getattr(self.stream, "slots", None)
        if callable(slots):
            async for slot in slots():
                if stop.is_set():
                    return
                self.error = None
                await self._queue.put((list(slot.events), slot.at, time.perf_counter()))
            return
        async for ev in self.stream:
            if stop.is_set():
                return
            self.error = None
            await self._queue.put(([ev], None, time.perf_counter()))

    async def next_batch(self, timeout: float | None = None) -> FeedBatch | None:
        """Everything queued (waiting up to `timeout` for the first event); None when nothing came."""
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout) if timeout is not None else await self._queue.get()
        except TimeoutError:
            return None
        items = [first]
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        batch = FeedBatch(received=first[2])
        for events, cursor, _ in items:
            for ev in events:
                if isinstance(ev, Tick):
                    batch.ticks.append(ev)
                elif isinstance(ev, BarUpdate):
                    batch.bars.append(ev)
                at = ev.at if isinstance(ev, Tick) else ev.end
                if self.last_event_at is None or at > self.last_event_at:
                    self.last_event_at = at
            if cursor is not None:
                batch.cursor = cursor
        self.events += len(batch)
        return batch

    def status(self) -> FeedStatus:
        """live, stale, down, closed, idle or starting, judged on the clock."""
        now = self.clock()
        lag = (now - self.last_event_at).total_seconds() if self.last_event_at else None
        st = FeedStatus(
            source=self.stream.name,
            mode=self.mode,
            state="live",
            symbols=len(self._symbols),
            last_event_at=self.last_event_at,
            lag_s=lag,
            error=self.error,
        )
        try:
            market_open = session_info(now).status == "open"
        except CoachError:
            market_open = False
        if self.error and not market_open:
            st.state = "down"
        elif not market_open:
            st.state = "closed"
        elif not self._symbols:
            st.state = "idle"
        elif self.error:
            st.state = "down"
        elif lag is None:
            since = (now - self._started_at).total_seconds() if self._started_at else 0.0
            st.state = "stale" if since > self.stale_after else "starting"
        elif lag > self.stale_after:
            st.state = "stale"
        return st


#: Makes a price stream from the runtime's clock and where to resume (None: at the clock); see
#: `bot.market_setup.stream_builder`, which the composition root puts on the services.
StreamBuilder = Callable[[Callable[[], datetime], datetime | None], PriceStream]


def build_stream(
    builder: StreamBuilder | None,
    market: Any,
    clock: Callable[[], datetime],
    *,
    start: datetime | None = None,
    poll_interval: float = 5.0,
) -> PriceStream:
    """The provider's stream when it has one, else a poller of the market's quotes."""
    if builder is not None:
        return builder(clock, start)
    return PollingStream(market, interval=poll_interval)
