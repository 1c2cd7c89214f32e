"""A loopback webhook receiver (aiohttp on 127.0.0.1) that records every POST, duplicates included.

Per path it can answer like the real services do:
- "ok": 200 (Discord answers 200 + a message with ?wait=true, Slack 200 "ok"; generic JSON receivers 200);
- ("429", share, retry_after): that share of calls gets 429 with Discord's body
  {"message": "You are being rate limited.", "retry_after": s, "global": false} and a Retry-After header;
- ("status", code): always that status (500 for an outage, 404 for a revoked webhook).

Each recorded post keeps the path, the Idempotency-Key header, the JSON body, the status sent and
the loop time, so tests can check order, retry_after and exactly-once after dedupe.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Post:
    path: str
    key: str | None
    body: Any
    status: int
    at: float


@dataclass
class WebhookFake:
    seed: int = 0
    modes: dict[str, Any] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)

    async def start(self) -> WebhookFake:
        self._rng = random.Random(self.seed)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        try:
            body: Any = json.loads(raw) if "json" in ctype else raw.decode(errors="replace")
        except ValueError:
            body = raw.decode(errors="replace")
        mode = self.modes.get(path, "ok")
        status = 200
        if isinstance(mode, tuple) and mode[0] == "429" and self._rng.random() < mode[1]:
            status = 429
        elif isinstance(mode, tuple) and mode[0] == "status":
            status = mode[1]
        self.posts.append(Post(path, request.headers.get("Idempotency-Key"), body, status, asyncio.get_running_loop().time()))
        if status == 429:
            retry = mode[2]
            return web.Response(
                status=429,
                body=json.dumps({"message": "You are being rate limited.", "retry_after": retry, "global": False}).encode(),
                headers={"Content-Type": "application/json", "Retry-After": str(retry)},
            )
        if status >= 400:
            return web.Response(status=status, text="no_service" if status == 404 else "server error")
        return web.Response(status=200, text="ok")

    def delivered(self, path: str | None = None) -> list[Post]:
        """Posts answered 2xx (optionally on one path), in arrival order."""
        return [p for p in self.posts if p.status < 300 and (path is None or p.path == path)]
