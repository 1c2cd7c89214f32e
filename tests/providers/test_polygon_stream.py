"""PolygonStream against a loopback WebSocket server speaking Polygon's stocks protocol."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import websockets

from providers.feed import BarUpdate, PriceStream, Tick
from providers.polygon_stream import PolygonStream, StreamAuthFailed

KEY = "pk_stream_SECRET"
AM = {
    "ev": "AM",
    "sym": "AAPL",
    "v": 4110,
    "av": 9470157,
    "op": 172.0,
    "vw": 172.1,
    "o": 172.05,
    "c": 172.2,
    "h": 172.3,
    "l": 172.0,
    "a": 171.9,
    "z": 685,
    "s": 1710340200000,
    "e": 1710340260000,
}
TRADE = {
    "ev": "T",
    "sym": "MSFT",
    "x": 4,
    "i": "12345",
    "z": 3,
    "p": 414.125,
    "s": 100,
    "c": [0, 12],
    "t": 1710340201784,
    "q": 3681328,
}


class FakePolygonWS:
    """Greets, checks auth, refuses subscriptions before auth_success, then plays `script` per connection."""

    def __init__(self, scripts: list[list], key: str = KEY) -> None:
        self.scripts = scripts
        self.key = key
        self.received: list[list[dict]] = []
        self.subscribed_before_auth = False
        self.server = None
        self._got = asyncio.Event()

    async def handler(self, ws) -> None:
        conn = len(self.received)
        self.received.append([])
        script = self.scripts[min(conn, len(self.scripts) - 1)]
        await ws.send(json.dumps([{"ev": "status", "status": "connected", "message": "Connected Successfully"}]))
        authed = False
        try:
            async for raw in ws:
                msg = json.loads(raw)
                self.received[conn].append(msg)
                self._got.set()
                if msg.get("action") == "auth":
                    if msg.get("params") != self.key:
                        await ws.send(json.dumps([{"ev": "status", "status": "auth_failed", "message": "authentication failed"}]))
                        await ws.close()
                        return
                    authed = True
                    await ws.send(json.dumps([{"ev": "status", "status": "auth_success", "message": "authenticated"}]))
                elif msg.get("action") == "subscribe":
                    if not authed:
                        self.subscribed_before_auth = True
                    await ws.send(
                        json.dumps([{"ev": "status", "status": "success", "message": f"subscribed to: {msg['params']}"}])
                    )
                    for step in script:
                        if step == "drop":
                            await ws.close(code=1011)
                            return
                        await ws.send(step if isinstance(step, str) else json.dumps(step))
        except websockets.ConnectionClosed:
            pass

    async def until(self, cond: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return once `cond()` holds, checking again after each message received."""

        async def wait() -> None:
            while not cond():
                self._got.clear()
                await self._got.wait()

        await asyncio.wait_for(wait(), timeout)

    async def __aenter__(self) -> FakePolygonWS:
        self.server = await websockets.serve(self.handler, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/stocks"


async def take(stream: PolygonStream, n: int) -> list:
    out = []

    async def go() -> None:
        async for ev in stream:
            out.append(ev)
            if len(out) >= n:
                return

    await asyncio.wait_for(go(), 5)
    return out


async def test_auth_then_subscribe_and_events_from_arrays_with_am_replacement():
    bar2 = dict(AM, c=172.25, v=4200)  # same window start: a late trade changed the bar
    nxt = dict(AM, s=1710340260000, e=1710340320000)
    frame = [AM, TRADE]  # one frame, two events
    unstamped = dict(AM, s=0, e=0)  # a bar without a window is skipped, not reported with no start
    async with FakePolygonWS([[frame, [bar2], "not json", [{"ev": "AM", "sym": "AAPL"}], [unstamped], [nxt]]]) as srv:
        stream = PolygonStream(KEY, url=srv.url, reconnect=False)
        assert isinstance(stream, PriceStream)
        await stream.subscribe(["aapl", "MSFT"])
        events = await take(stream, 4)
        await stream.aclose()
    msgs = srv.received[0]
    assert msgs[0] == {"action": "auth", "params": KEY}
    assert msgs[1] == {"action": "subscribe", "params": "AM.AAPL,T.AAPL,AM.MSFT,T.MSFT"}
    assert not srv.subscribed_before_auth
    first, tick, again, second = events
    assert isinstance(first, BarUpdate) and not first.replaces and first.interval == "1m"
    assert first.start == datetime(2024, 3, 13, 14, 30, tzinfo=UTC) and first.close == 172.2 and first.volume == 4110
    assert isinstance(tick, Tick) and tick.symbol == "MSFT" and tick.price == 414.125 and tick.size == 100
    assert tick.at == datetime.fromtimestamp(1710340201.784, tz=UTC)
    assert isinstance(again, BarUpdate) and again.replaces and again.close == 172.25  # replacement, not a new bar
    assert isinstance(second, BarUpdate) and not second.replaces


async def test_reconnects_after_a_drop_and_resubscribes():
    async with FakePolygonWS([[[TRADE], "drop"], [[dict(TRADE, p=415.0)]]]) as srv:
        stream = PolygonStream(KEY, url=srv.url, max_backoff=0.05)
        await stream.subscribe(["MSFT"])
        events = await take(stream, 2)
        await stream.aclose()
    assert [e.price for e in events] == [414.125, 415.0]
    assert stream.connects == 2
    assert srv.received[1][:2] == [{"action": "auth", "params": KEY}, {"action": "subscribe", "params": "AM.MSFT,T.MSFT"}]


async def test_subscribe_while_connected_sends_only_the_new_symbols():
    async with FakePolygonWS([[[TRADE]]]) as srv:
        stream = PolygonStream(KEY, url=srv.url, reconnect=False, channels=("T",))
        await stream.subscribe(["MSFT"])
        got: list = []
        first = asyncio.Event()

        async def consume() -> None:
            async for ev in stream:
                got.append(ev)
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 5)
        await stream.subscribe(["MSFT", "NVDA"])
        await stream.unsubscribe(["MSFT"])

        def changes() -> list[dict]:
            return [m for m in srv.received[0] if m.get("action") in ("subscribe", "unsubscribe")]

        await srv.until(lambda: len(changes()) >= 3)
        await stream.aclose()
        await asyncio.wait_for(task, 5)
    sent = changes()
    assert sent == [
        {"action": "subscribe", "params": "T.MSFT"},
        {"action": "subscribe", "params": "T.NVDA"},
        {"action": "unsubscribe", "params": "T.MSFT"},
    ]


async def test_auth_failed_is_final_and_names_the_provider():
    async with FakePolygonWS([[]], key="other") as srv:
        stream = PolygonStream(KEY, url=srv.url)
        await stream.subscribe(["AAPL"])
        with pytest.raises(StreamAuthFailed) as ei:
            await take(stream, 1)
    assert str(ei.value).startswith("polygon: stream refused the key") and KEY not in str(ei.value)
    assert len(srv.received) == 1  # no reconnect storm on a bad key
