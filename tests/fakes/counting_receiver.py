"""A loopback HTTP receiver (aiohttp on 127.0.0.1) that counts every hit, whatever the method or path.

It answers 200 "ok", or a given status and body, or a 302 to `location`; `hits` and `hosts` (the
Host header of each hit) let a test prove that something did, or never did, arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class CountingReceiver:
    status: int = 200
    body: str = "ok"
    location: str | None = None
    hits: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    async def start(self) -> CountingReceiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.hits.append(f"{request.method} {request.path}")
        self.hosts.append(request.headers.get("Host", ""))
        if self.location:
            return web.Response(status=302, headers={"Location": self.location})
        return web.Response(status=self.status, text=self.body)
