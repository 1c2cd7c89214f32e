"""A live price stream for the offline market, on a clock that can run faster than the wall.

`SimClock` is market time: it starts at a chosen moment and runs `speed` times faster than
the wall clock (`speed=None` runs as fast as the stream is read: each event moves the clock
to its own stamp). `SimStream` replays `SimMarket`'s minute bars as a `providers.feed`
stream: within each minute four trades walk open -> first extreme -> second extreme -> close
(a rising minute dips first, a falling one pops first), stamped at :00, :15, :30 and :45, and
a `BarUpdate` for the minute follows at its end. Events of one moment come together in a
`Slot`, so a consumer that saves "done up to slot t" can resume after t without losing or
repeating a tick: `SimStream(start=t)` emits exactly the slots after t.

The data are SimMarket's own, so a quote or a bar read from the market at the clock's time
agrees with what the stream has shown. Closed hours have no events; with `skip_closed` the
clock jumps to the next open instead of idling through the night.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from analytics.sessions import schedule
from analytics.symbols import validate_symbol
from core.values import ns_from_utc, utc_from_ns
from providers.feed import BarUpdate, Event, Tick
from providers.sim import NAME as SIM_NAME
from providers.sim import SimMarket

_NS = 1_000_000_000
_MIN_NS = 60 * _NS
#: Trade offsets within a minute, in seconds.
TICK_OFFSETS = (0, 15, 30, 45)


class SimClock:
    """Market time from `start`, running `speed` times the wall clock; `speed=None` only moves when told to."""

    def __init__(self, start: datetime, speed: float | None = 60.0, *, skip_closed: bool = False) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if speed is not None and not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        #: Streams on this clock jump over closed hours instead of waiting through them.
        self.skip_closed = skip_closed
        self._origin = start.astimezone(UTC)
        self._wall0 = time.monotonic()

    def now(self) -> datetime:
        """The current market time."""
        if self.speed is None:
            return self._origin
        return self._origin + timedelta(seconds=(time.monotonic() - self._wall0) * self.speed)

    __call__ = now

    def set(self, at: datetime) -> None:
        """Restart market time at `at` (either direction): for starting a run, never while one is going."""
        self._origin = at.astimezone(UTC)
        self._wall0 = time.monotonic()

    def jump_to(self, at: datetime) -> None:
        """Set market time to `at` (forward only); the speed carries on from there."""
        if at > self.now():
            self._origin = at.astimezone(UTC)
            self._wall0 = time.monotonic()

    async def sleep_until(self, at: datetime) -> None:
        """Wait until market time reaches `at` (at once, moving the clock, when speed is None)."""
        if self.speed is None:
            self.jump_to(at)
            return
        while True:
            gap = (at - self.now()).total_seconds()
            if gap <= 0:
                return
            await asyncio.sleep(min(gap / self.speed, 1.0))


@dataclass(frozen=True)
class Slot:
    """Every event stamped at one moment."""

    at: datetime
    events: list[Event] = field(default_factory=list)


class SimStream:
    """The offline market as a `PriceStream`: trades and minute bars of subscribed symbols, paced by a SimClock."""

    name = SIM_NAME
    #: A SimStream can resume exactly after a saved slot time.
    replayable = True

    def __init__(
        self,
        clock: SimClock,
        *,
        seed: int = 0,
        start: datetime | None = None,
        skip_closed: bool | None = None,
        symbols: Iterable[str] = (),
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.skip_closed = clock.skip_closed if skip_closed is None else skip_closed
        self._symbols: set[str] = {validate_symbol(s) for s in symbols}
        self._after_ns = ns_from_utc(start or clock.now())
        self._closed = False
        self._bars: dict[tuple[str, int], np.ndarray] = {}
        self._changed = asyncio.Event()

    # ---- PriceStream

    async def subscribe(self, symbols: Iterable[str]) -> None:
        new = {validate_symbol(s) for s in symbols} - self._symbols
        if new:
            self._symbols |= new
            self._changed.set()

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        self._symbols -= {validate_symbol(s) for s in symbols}

    @property
    def symbols(self) -> set[str]:
        return set(self._symbols)

    async def aclose(self) -> None:
        self._closed = True
        self._changed.set()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._flat()

    async def _flat(self) -> AsyncIterator[Event]:
        async for slot in self.slots():
            for ev in slot.events:
                yield ev

    # ---- slots

    async def slots(self) -> AsyncIterator[Slot]:
        """Slots after the start time, in order, each released when the clock reaches it."""
        while not self._closed:
            at_ns, sess, minute, k = self._next_slot(self._after_ns)
            if at_ns is None:
                return  # past the calendar
            at = utc_from_ns(at_ns)
            if self.skip_closed and k == 0 and minute == 0 and self.clock.now() < at:
                # nothing trades before the open: jump instead of waiting through the night
                self.clock.jump_to(at - timedelta(microseconds=1))
            await self.clock.sleep_until(at)
            if self._closed:
                return
            symbols = sorted(self._symbols)
            self._after_ns = at_ns
            if not symbols:
                # idle: wait for a subscription (or the next slot) without spinning
                self._changed.clear()
                if self.clock.speed is None:
                    try:
                        await asyncio.wait_for(self._changed.wait(), 0.05)
                    except TimeoutError:
                        pass
                continue
            events: list[Event] = []
            for sym in symbols:
                events.extend(await self._events(sym, sess, minute, k, at))
            if events:
                yield Slot(at=at, events=events)

    def _next_slot(self, after_ns: int) -> tuple[int | None, int, int, int]:
        """(stamp, session index, minute, step) of the first slot strictly after `after_ns`.

        A session's slots are its minutes' trades at :00 :15 :30 :45 and one more at the close.
        The slot at a minute's :00 also carries the previous minute's bar; the closing slot
        carries only the last bar.
        """
        sch = schedule()
        i = int(np.searchsorted(sch.closes, after_ns, side="right"))
        if i >= len(sch.opens):
            return None, 0, 0, 0
        open_ns, close_ns = int(sch.opens[i]), int(sch.closes[i])
        if after_ns < open_ns:
            return open_ns, i, 0, 0
        n = (close_ns - open_ns) // _MIN_NS
        m, rem = divmod(after_ns - open_ns, _MIN_NS)
        for k, off in enumerate(TICK_OFFSETS):
            if off * _NS > rem and m < n:
                return open_ns + m * _MIN_NS + off * _NS, i, int(m), k
        m += 1
        if m < n:
            return open_ns + m * _MIN_NS, i, int(m), 0
        return close_ns, i, int(n), 0

    async def _session_bars(self, sym: str, sess: int) -> np.ndarray:
        """(minutes, 5) OHLCV of one session, from SimMarket (cached)."""
        key = (sym, sess)
        arr = self._bars.get(key)
        if arr is None:
            sch = schedule()
            open_dt, close_dt = utc_from_ns(int(sch.opens[sess])), utc_from_ns(int(sch.closes[sess]))
            market = SimMarket(seed=self.seed, now=lambda: close_dt)
            res = await market.bars(sym, "1m", open_dt, close_dt)
            arr = res.df[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
            if len(self._bars) > 4096:
                self._bars.clear()
            self._bars[key] = arr
        return arr

    async def _events(self, sym: str, sess: int, minute: int, k: int, at: datetime) -> list[Event]:
        bars = await self._session_bars(sym, sess)
        out: list[Event] = []
        if k == 0 and 0 < minute <= len(bars):
            o, h, l, c, v = bars[minute - 1]  # noqa: E741
            out.append(
                BarUpdate(
                    symbol=sym,
                    interval="1m",
                    start=at - timedelta(minutes=1),
                    end=at,
                    open=float(o),
                    high=float(h),
                    low=float(l),
                    close=float(c),
                    volume=float(v),
                    vwap=None,
                    source=SIM_NAME,
                )
            )
        if minute < len(bars):
            o, h, l, c, v = bars[minute]  # noqa: E741
            walk = (o, l, h, c) if c >= o else (o, h, l, c)
            out.append(Tick(symbol=sym, price=float(walk[k]), size=float(max(1.0, round(v / 4))), at=at, source=SIM_NAME))
        return out
