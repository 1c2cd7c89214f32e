"""Polygon (Massive) stocks WebSocket as a `providers.feed.PriceStream`.

Connect, read `connected`, send `auth`, subscribe to `AM.`/`T.` channels only after
`auth_success`; frames are JSON arrays of events; a minute bar re-sent with the same `s` is a
replacement, not a new bar. Reconnects with backoff and re-subscribes; `auth_failed` is final.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from analytics.symbols import validate_symbol
from core.retry import Backoff
from core.values import to_float
from providers.feed import BarUpdate, Event, Tick
from providers.http import AuthFailed, ProviderUnavailable, one_line
from providers.polygon import NAME, WS_URL, ns_to_dt

log = logging.getLogger("coach.providers.polygon.stream")


class StreamAuthFailed(AuthFailed):
    """The stream refused the key (`auth_failed`): reconnecting would not help."""


class PolygonStream:
    """Polygon's stocks WebSocket as an async iterator of `Tick` / `BarUpdate` events.

    >>> stream = PolygonStream(key)
    >>> await stream.subscribe(["AAPL", "MSFT"])
    >>> async for event in stream: ...
    """

    name = NAME

    def __init__(
        self,
        api_key: str,
        *,
        url: str = WS_URL,
        channels: Iterable[str] = ("AM", "T"),
        reconnect: bool = True,
        max_backoff: float = 30.0,
        open_timeout: float = 10.0,
        connect: Callable[..., Any] | None = None,
    ) -> None:
        self._key = api_key
        self.url = url
        self.channels = tuple(channels)
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        # 0.5 s doubling to `max_backoff`, spread by +-50 % so many clients dropped together do not return together
        self._reconnect = Backoff(base=0.5, cap=max_backoff, jitter=(0.5, 1.5))
        self.open_timeout = open_timeout
        self._connect = connect
        self._symbols: set[str] = set()
        self._ws: Any = None
        self._closed = False
        self._authed = False
        self._seen: dict[str, int] = {}  # symbol -> last AM window start (ms)
        self.connects = 0

    def _params(self, symbols: Iterable[str]) -> str:
        return ",".join(f"{ch}.{s}" for s in sorted(symbols) for ch in self.channels)

    async def subscribe(self, symbols: Iterable[str]) -> None:
        """Add symbols; sent at once when connected and authenticated, else on (re)connect."""
        new = {validate_symbol(s) for s in symbols} - self._symbols
        self._symbols |= new
        if new and self._ws is not None and self._authed:
            await self._ws.send(json.dumps({"action": "subscribe", "params": self._params(new)}))

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = {validate_symbol(s) for s in symbols} & self._symbols
        self._symbols -= gone
        if gone and self._ws is not None and self._authed:
            await self._ws.send(json.dumps({"action": "unsubscribe", "params": self._params(gone)}))

    async def aclose(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _open(self) -> Any:
        import websockets

        connect = self._connect or websockets.connect
        ws = await asyncio.wait_for(connect(self.url, open_timeout=self.open_timeout, max_size=2**22), self.open_timeout + 1)
        self.connects += 1
        self._authed = False
        # the server greets with `connected`; authenticate, and only after auth_success subscribe
        await ws.send(json.dumps({"action": "auth", "params": self._key}))
        while not self._authed:
            raw = await asyncio.wait_for(ws.recv(), self.open_timeout)
            for ev in _frame_events(raw):
                if ev.get("ev") != "status":
                    continue
                st = ev.get("status")
                if st == "auth_success":
                    self._authed = True
                elif st == "auth_failed":
                    await ws.close()
                    raise StreamAuthFailed(NAME, f"stream refused the key ({one_line(ev.get('message'))})")
                elif st in ("max_connections", "error"):
                    await ws.close()
                    raise ProviderUnavailable(NAME, f"stream: {one_line(ev.get('message') or st)}")
        if self._symbols:
            await ws.send(json.dumps({"action": "subscribe", "params": self._params(self._symbols)}))
        return ws

    async def _events(self) -> AsyncIterator[Event]:
        import websockets

        failures = 0
        while not self._closed:
            try:
                self._ws = await self._open()
                failures = 0
                async for raw in self._ws:
                    for ev in _frame_events(raw):
                        out = self._event(ev)
                        if out is not None:
                            yield out
                if self._closed:
                    return
                log.info("polygon stream closed by the server; reconnecting")
            except StreamAuthFailed:
                raise
            except (TimeoutError, OSError, websockets.WebSocketException, ProviderUnavailable) as exc:
                if self._closed:
                    return
                if not self.reconnect:
                    raise ProviderUnavailable(NAME, f"stream lost ({exc.__class__.__name__})") from None
                log.info(
                    "polygon stream lost (%s); reconnecting in %.1fs", exc.__class__.__name__, self._reconnect.ceiling(failures)
                )
            finally:
                ws, self._ws = self._ws, None
                if ws is not None:
                    await ws.close()
            if not self.reconnect:
                return
            await asyncio.sleep(self._reconnect.delay(failures))
            failures += 1

    def _event(self, ev: dict[str, Any]) -> Event | None:
        kind = ev.get("ev")
        sym = ev.get("sym")
        if not isinstance(sym, str):
            return None
        try:
            if kind == "T":
                at = ns_to_dt(ev.get("t"))
                price = to_float(ev.get("p"))
                if at is None or price is None:
                    return None
                return Tick(symbol=sym, price=price, size=to_float(ev.get("s")) or 0.0, at=at, source=NAME)
            if kind in ("AM", "A"):
                s, e = int(ev["s"]), int(ev["e"])
                start, end = ns_to_dt(s), ns_to_dt(e)
                if start is None or end is None:  # a zero or negative stamp is no window: no bar to report
                    return None
                key = f"{kind}:{sym}"
                prev = self._seen.get(key)
                replaces = prev is not None and s <= prev
                if prev is None or s > prev:
                    self._seen[key] = s
                return BarUpdate(
                    symbol=sym,
                    interval="1m" if kind == "AM" else "1s",
                    start=start,
                    end=end,
                    open=float(ev["o"]),
                    high=float(ev["h"]),
                    low=float(ev["l"]),
                    close=float(ev["c"]),
                    volume=float(ev.get("v") or 0.0),
                    vwap=to_float(ev.get("vw")),
                    source=NAME,
                    replaces=replaces,
                )
        except (KeyError, TypeError, ValueError):
            log.debug("polygon stream: skipped a malformed %s event", kind)
        return None


def _frame_events(raw: Any) -> list[dict[str, Any]]:
    """The events of one frame (a JSON array; a lone object is tolerated); junk yields nothing."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        log.debug("polygon stream: a frame was not JSON")
        return []
    if isinstance(data, dict):
        data = [data]
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
