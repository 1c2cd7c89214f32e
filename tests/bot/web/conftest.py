"""The chart page on an aiohttp test server: the offline market, a settable clock, a price stream the test feeds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Settings
from bot.request import Ctx, Identity
from bot.web.chart_page import add_chart_page
from bot.web.links import LinkSigner
from bot.web.live import LiveHub
from providers.feed import Event, Tick
from tests.conftest import run_text

SECRET = "test-link-secret-" + "x" * 40
PUBLIC = "http://coach.test"
#: Thursday 2024-03-14 10:15 ET: NVDA has an opening-range breakout plan in the offline market.
WITH_PLAN = datetime(2024, 3, 14, 14, 15, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path) -> Settings:
    """The test settings with chart links on."""
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/coach.db",
        coach_provider="sim",
        coach_out_dir=tmp_path / "out",
        coach_public_url=PUBLIC,
        coach_link_secret=SECRET,
    )


class PushStream:
    """A PriceStream whose trades the test pushes, the way a provider's WebSocket delivers them."""

    name = "pushed"
    replayable = False

    def __init__(self) -> None:
        self.symbols: set[str] = set()
        self.subscribed = asyncio.Event()
        self._q: asyncio.Queue[Event | None] = asyncio.Queue()

    async def subscribe(self, symbols: Iterable[str]) -> None:
        self.symbols |= set(symbols)
        self.subscribed.set()

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        self.symbols -= set(symbols)

    async def aclose(self) -> None:
        self._q.put_nowait(None)

    def push(self, symbol: str, price: float, at: datetime, size: float = 100.0) -> None:
        self._q.put_nowait(Tick(symbol=symbol, price=price, size=size, at=at, source=self.name))

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[Event]:
        while (ev := await self._q.get()) is not None:
            if ev.symbol in self.symbols:
                yield ev


def ident(user: str = "U1", tenant: str = "G1", channel: str | None = "C1") -> Identity:
    return Identity(platform="discord", tenant=tenant, user=user, channel=channel, display_name=user)


async def plan_link(svc, clock, user: str = "U1", tenant: str = "G1", channel: str | None = "C1"):
    """The reply of `/plan NVDA` at WITH_PLAN, for `user` of `tenant`."""
    clock.t = WITH_PLAN
    reply = await run_text(Ctx(services=svc, identity=ident(user, tenant, channel)), "/plan NVDA --no-chart")
    assert reply.data.plan is not None and reply.data.chart_url
    return reply


@pytest.fixture
def stream() -> PushStream:
    return PushStream()


@pytest.fixture
async def page(svc, stream) -> AsyncIterator[TestClient]:
    """A test server with the chart page mounted the way `coach serve` mounts it, on the test's stream."""
    app = web.Application()
    assert add_chart_page(app, svc, hub=LiveHub(lambda: stream))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


def signer() -> LinkSigner:
    return LinkSigner(SECRET, base_url=PUBLIC, ttl=7 * 86400)


def token_of(url: str) -> str:
    assert url.startswith(PUBLIC + "/chart/")
    return url.rsplit("/", 1)[1]
