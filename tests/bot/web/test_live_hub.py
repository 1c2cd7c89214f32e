"""One price stream for every open chart page: subscribed while a page watches a symbol, each page its own queue."""

from __future__ import annotations

import asyncio

from bot.web.live import QUEUE_SIZE, LiveHub
from tests.bot.web.conftest import WITH_PLAN, PushStream


async def test_pages_share_one_stream_and_leave_it_when_they_close():
    stream = PushStream()
    opened: list[PushStream] = []

    def make() -> PushStream:
        opened.append(stream)
        return stream

    hub = LiveHub(make)
    async with hub.subscribe("NVDA") as a, hub.subscribe("NVDA") as b, hub.subscribe("TSLA") as c:
        assert stream.symbols == {"NVDA", "TSLA"} and hub.watching() == {"NVDA": 2, "TSLA": 1}
        stream.push("NVDA", 101.5, WITH_PLAN)
        got = await asyncio.wait_for(a.get(), 5)
        assert (got.symbol, got.price, got.at) == ("NVDA", 101.5, WITH_PLAN)
        assert (await asyncio.wait_for(b.get(), 5)).price == 101.5 and c.empty()
        assert hub.last["NVDA"].price == 101.5
    assert stream.symbols == set() and hub.watching() == {} and len(opened) == 1
    await hub.aclose()


async def test_a_slow_page_keeps_the_newest_prices():
    hub = LiveHub(PushStream)
    async with hub.subscribe("NVDA") as q:
        from bot.web.live import Price

        for i in range(QUEUE_SIZE + 10):
            hub.publish(Price("NVDA", 100.0 + i, 1.0, WITH_PLAN, "test"))
        assert q.qsize() == QUEUE_SIZE
        first = q.get_nowait()
        assert first.price == 110.0  # the ten oldest made way
    await hub.aclose()
