"""The operator's endpoints: /healthz, /readyz (each check named; 503 when one fails), /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from bot import metrics
from bot.http_server import HttpServer
from bot.readiness import FEED_STATE_KEY, base_checks, database_check
from storage.db import make_engine, make_sessionmaker
from storage.runtime_state import put_state


class TcpProxy:
    """A loopback TCP relay to a real server that can be cut off (every connection dropped) and restored."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_w}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self._writers -= {writer, up_w}


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.text()


async def _readyz(port: int) -> tuple[int, dict]:
    import json

    status, text = await _get(port, "/readyz")
    return status, json.loads(text)


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)")
async def test_readyz_fails_while_the_database_is_away_and_recovers(services) -> None:
    url = make_url(os.environ["TEST_DATABASE_URL"])
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    engine = make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    via_proxy = dataclasses.replace(services, engine=engine, db=make_sessionmaker(engine))
    server = HttpServer({"database": database_check(via_proxy)})  # the bare server has no schema to read
    port = await server.start("127.0.0.1", 0)
    try:
        status, body = await _readyz(port)
        assert status == 200 and body["checks"]["database"] == {"ok": True}
        assert (await _get(port, "/healthz")) == (200, "ok")

        await proxy.cut()
        status, body = await _readyz(port)
        assert status == 503 and body["ready"] is False
        assert body["checks"]["database"]["ok"] is False and body["checks"]["database"]["error"]
        assert (await _get(port, "/healthz"))[0] == 200  # alive, just not ready

        await proxy.start()  # the same port again: the database is back
        for _ in range(50):
            status, body = await _readyz(port)
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert status == 200 and body["checks"]["database"] == {"ok": True}
    finally:
        await server.close()
        await engine.dispose()
        with contextlib.suppress(Exception):
            await proxy.cut()


async def test_readyz_names_a_stale_feed_and_metrics_serve_prometheus_text(services) -> None:
    server = HttpServer(base_checks(services))
    port = await server.start("127.0.0.1", 0)
    try:
        async with services.db() as s, s.begin():
            await put_state(s, FEED_STATE_KEY, {"source": "polygon", "state": "stale", "lag_s": 95.0})
        status, body = await _readyz(port)
        assert status == 503 and body["checks"]["database"] == {"ok": True}
        assert body["checks"]["feed"] == {"ok": False, "error": "price feed polygon is stale, last tick 95 s ago"}
        async with services.db() as s, s.begin():
            await put_state(s, FEED_STATE_KEY, {"source": "polygon", "state": "closed"})
        assert (await _readyz(port))[0] == 200  # a closed market has no ticks to be late

        metrics.ACK_SECONDS.labels(surface="slack").observe(0.02)
        status, text = await _get(port, "/metrics")
        assert status == 200
        for name in (
            "coach_command_seconds",
            "coach_ack_seconds",
            "coach_queue_depth",
            "coach_provider_request_seconds",
            "coach_provider_fallbacks_total",
            "coach_feed_age_seconds",
            "coach_alert_tick_to_outbox_seconds",
            "coach_outbox_pending",
            "coach_deliveries_total",
            "coach_llm_tokens_total",
            "coach_chart_render_seconds",
        ):
            assert f"# TYPE {name} " in text, name
        assert 'coach_ack_seconds_count{surface="slack"}' in text
    finally:
        await server.close()


def test_the_feed_key_is_the_runtimes() -> None:
    from bot.runtime.worker import FEED_KEY

    assert FEED_STATE_KEY == FEED_KEY
