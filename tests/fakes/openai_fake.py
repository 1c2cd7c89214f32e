"""A loopback OpenAI-compatible server: `POST /v1/chat/completions`, plain JSON and streaming SSE.

Each test scripts the responses in order (a tool-call response, then the final message,
or an HTTP error) and afterwards reads `requests`: the JSON bodies the real SDK sent.

    fake = FakeOpenAI()
    base_url = await fake.start()            # http://127.0.0.1:<port>/v1
    fake.tool_calls(("call_1", "quote", {"symbol": "TSLA"}))
    fake.text("TSLA is at 586.46.")
    ... run the client ...
    fake.requests[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", ...}
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Scripted = dict[str, Any]


@dataclass
class Recorded:
    """One request as the server received it."""

    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeOpenAI:
    """The server; script responses with `text`, `tool_calls`, `error` or `respond`."""

    model: str = "fake-model"
    script: deque[Scripted | Callable[[dict[str, Any]], Scripted]] = field(default_factory=deque)
    recorded: list[Recorded] = field(default_factory=list)
    #: Response used when the script is empty (None: answer 500 "script exhausted").
    fallback: Scripted | Callable[[dict[str, Any]], Scripted] | None = None
    _runner: web.AppRunner | None = None
    _counter: int = 0

    # --- scripting ----------------------------------------------------------------------

    def text(self, content: str, *, usage: tuple[int, int] = (50, 20), delay: float = 0.0) -> None:
        self.script.append({"kind": "text", "content": content, "usage": usage, "delay": delay})

    def tool_calls(self, *calls: tuple[str, str, Any], usage: tuple[int, int] = (60, 15), content: str | None = None) -> None:
        """Calls as (id, name, arguments): a dict is JSON-encoded, a str is sent as is (malformed on purpose)."""
        self.script.append({"kind": "tools", "calls": calls, "usage": usage, "content": content})

    def error(self, status: int, message: str = "error", headers: dict[str, str] | None = None) -> None:
        self.script.append({"kind": "error", "status": status, "message": message, "headers": headers or {}})

    def respond(self, fn: Callable[[dict[str, Any]], Scripted]) -> None:
        """A response computed from the request body (returns one of the scripted dicts)."""
        self.script.append(fn)

    @staticmethod
    def make_text(content: str, usage: tuple[int, int] = (50, 20)) -> Scripted:
        return {"kind": "text", "content": content, "usage": usage, "delay": 0.0}

    @staticmethod
    def make_tool_calls(*calls: tuple[str, str, Any], usage: tuple[int, int] = (60, 15)) -> Scripted:
        return {"kind": "tools", "calls": calls, "usage": usage, "content": None}

    # --- reading what was sent -------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.recorded]

    # --- server ---------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.recorded.append(Recorded(body=body, headers={k.lower(): v for k, v in request.headers.items()}))
        item = self.script.popleft() if self.script else self.fallback
        if item is None:
            return _error(500, "script exhausted", {})
        if callable(item):
            item = item(body)
        if item["kind"] == "error":
            return _error(item["status"], item["message"], item["headers"])
        if item.get("delay"):
            await asyncio.sleep(item["delay"])
        self._counter += 1
        cid = f"chatcmpl-{self._counter}"
        if body.get("stream"):
            return await self._stream(request, item, cid, body)
        return web.json_response(self._completion(item, cid))

    def _message(self, item: Scripted) -> tuple[dict[str, Any], str]:
        if item["kind"] == "text":
            return {"role": "assistant", "content": item["content"]}, "stop"
        calls = [
            {
                "id": cid,
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
            for cid, name, args in item["calls"]
        ]
        return {"role": "assistant", "content": item.get("content"), "tool_calls": calls}, "tool_calls"

    def _completion(self, item: Scripted, cid: str) -> dict[str, Any]:
        message, finish = self._message(item)
        p, c = item["usage"]
        return {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "finish_reason": finish, "logprobs": None, "message": message}],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        }

    async def _stream(self, request: web.Request, item: Scripted, cid: str, body: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

        if item["kind"] == "text":
            await send({"role": "assistant", "content": ""})
            text = item["content"]
            for i in range(0, len(text), 7):  # small pieces, as servers stream them
                await send({"content": text[i : i + 7]})
            await send({}, "stop")
        else:
            for idx, (call_id, name, args) in enumerate(item["calls"]):
                raw = args if isinstance(args, str) else json.dumps(args)
                first = {"index": idx, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                await send({"role": "assistant", "tool_calls": [first]} if idx == 0 else {"tool_calls": [first]})
                for i in range(0, len(raw), 5):
                    await send({"tool_calls": [{"index": idx, "function": {"arguments": raw[i : i + 5]}}]})
            await send({}, "tool_calls")
        if (body.get("stream_options") or {}).get("include_usage"):
            p, c = item["usage"]
            usage = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model,
                "choices": [],
                "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
            }
            await resp.write(f"data: {json.dumps(usage)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _error(status: int, message: str, headers: dict[str, str]) -> web.Response:
    payload = {"error": {"message": message, "type": "fake_error", "param": None, "code": None}}
    return web.Response(status=status, body=json.dumps(payload).encode(), headers={"Content-Type": "application/json", **headers})
