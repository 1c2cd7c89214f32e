"""The chart page on an aiohttp test server (the offline market, a settable clock, a price stream the test feeds),
and the HTTP API on coach serve's HTTP server with keys and a client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from bot.config import Settings
from bot.http_server import HttpServer
from bot.request import Ctx, Identity
from bot.web.api import ApiSurface
from bot.web.chart_page import add_chart_page
from bot.web.links import LinkSigner
from bot.web.live import LiveHub
from core.clock import utc_now
from providers.feed import Event, Tick
from storage import api_keys
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


# ---------------------------------------------------------------------------------------- the HTTP API


@pytest.fixture
async def api(services):
    """coach serve's HTTP server with the API surface mounted, on a free loopback port; yields its base URL."""
    server = HttpServer({})
    ApiSurface(services, "127.0.0.1", 0).mount_http(server.app)
    port = await server.start("127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}"
    await server.close()


async def make_key(services, *, scope: api_keys.Scope = "read", admin: bool = False, name: str = "k", user: str = "U1") -> str:
    async with services.db() as s, s.begin():
        key, _ = await api_keys.create_key(
            s, name=name, platform="discord", tenant="G1", user=user, scope=scope, admin=admin, now=utc_now()
        )
    return key


async def call(
    base: str, path: str, body: Any = None, *, key: str | None = None, raw: bytes | None = None, method: str = "POST"
) -> tuple[int, CIMultiDict[str], Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        headers["Content-Type"] = "application/json"
    async with aiohttp.ClientSession() as http, http.request(method, base + path, data=data, headers=headers) as r:
        text = await r.text()
        return r.status, CIMultiDict(r.headers), json.loads(text) if text else None
