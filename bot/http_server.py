"""The HTTP server of `coach serve`: `/healthz`, `/readyz`, `/metrics`, and Slack's requests in HTTP mode.

One aiohttp server per process, whatever surfaces run: Slack HTTP mode mounts its route on it
rather than opening a second port.

    /healthz   200 "ok" while the process answers at all (liveness)
    /readyz    200 or 503 with JSON naming each check and why it failed (`bot.readiness`)
    /metrics   Prometheus text: this process's counts, or every worker's in multiprocess mode
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from bot import metrics
from bot.readiness import CHECK_TIMEOUT, Check, base_checks, run_checks

log = structlog.get_logger("coach.http")

if TYPE_CHECKING:
    from bot.services import Services


class HttpServer:
    """Serves the operator's endpoints, plus whatever routes surfaces add to `app` before `start`."""

    def __init__(self, checks: dict[str, Check], refresh: Callable[[], Awaitable[None]] | None = None) -> None:
        """`refresh` brings gauges that are read on demand (the queue's depth) up to date before each scrape."""
        self.checks = checks
        self.refresh = refresh
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on `host:port` (0: any free port); returns the bound port."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("http_listening", host=host, port=self.port)
        return self.port

    async def run(self, host: str, port: int) -> None:
        """Listen until cancelled (a serve part)."""
        await self.start(host, port)
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, _: web.Request) -> web.Response:
        verdicts = await run_checks(self.checks)
        ready = all(v is None for v in verdicts.values())
        body = {"ready": ready, "checks": {n: {"ok": v is None, **({"error": v} if v else {})} for n, v in verdicts.items()}}
        if not ready:
            log.warning("not_ready", failed={n: v for n, v in verdicts.items() if v})
        return web.Response(status=200 if ready else 503, text=json.dumps(body), content_type="application/json")

    async def _metrics(self, _: web.Request) -> web.Response:
        if self.refresh is not None:
            try:
                await asyncio.wait_for(self.refresh(), CHECK_TIMEOUT)
            except Exception:  # a gauge left as it was is better than no metrics
                log.warning("metrics_refresh_failed", exc_info=True)
        data, content_type = await asyncio.to_thread(metrics.render)
        # aiohttp wants the charset apart from the media type
        media, _sep, params = content_type.partition(";")
        charset = params.split("charset=")[-1].strip() if "charset=" in params else None
        return web.Response(body=data, content_type=media.strip(), charset=charset)


async def start_endpoints(services: Services, *, host: str, port: int | None) -> HttpServer | None:
    """For `coach worker` and `coach runtime`: the same endpoints on `port` (else COACH_HTTP_PORT); None when neither is set."""
    port = port if port is not None else services.settings.coach_http_port
    if port is None:
        return None
    server = HttpServer(base_checks(services))
    await server.start(host, port)
    return server
