"""A loopback Slack Web API (auth.test, chat.*, users.info, the 3-step files_upload_v2, apps.connections.open),
response URLs and a Socket Mode websocket, served by aiohttp on 127.0.0.1 for the real slack_sdk/slack-bolt.

Also signs requests the way Slack does, so tests can POST to a real Bolt HTTP endpoint.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSMsgType, web
from slack_sdk.signature import SignatureVerifier

_ts = itertools.count(1)


@dataclass
class Call:
    """One request the app made to the fake."""

    method: str  # Web API method ("chat.postMessage"), "upload", "response_url" or "ws_ack"
    body: Any = None
    raw: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


class SlackFake:
    """`await fake.start()`; `fake.api_url` is the base URL (with the trailing slash slack_sdk needs)."""

    def __init__(self, team_id: str = "T111", bot_user: str = "UBOT") -> None:
        self.team_id = team_id
        self.bot_user = bot_user
        self.calls: list[Call] = []
        self.admins: set[str] = set()
        self.not_member: set[str] = set()  # channels where chat.postMessage answers not_in_channel
        self._rate_limited: dict[str, list[int]] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._ws: web.WebSocketResponse | None = None
        self.ws_connected = asyncio.Event()
        self.port = 0
        self._files = itertools.count(1)
        self.history: dict[str, list[dict]] = {}  # channel -> posted messages, oldest first

    async def start(self) -> SlackFake:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{fid}", self._upload)
        app.router.add_post("/response/{rid}", self._response_url)
        app.router.add_get("/link", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    # --- controls --------------------------------------------------------------------------

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and Retry-After."""
        self._rate_limited[method] = [retry_after, times]

    async def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 10.0, count: int = 1) -> list[Call]:
        def found() -> list[Call]:
            return [c for c in self.calls if predicate(c)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), timeout)
        return found()[:count]

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def _add(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    # --- Web API ---------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            body = json.loads(raw or b"{}")
        else:
            body = dict(parse_qsl(raw.decode()))
        body = {**dict(request.query), **body}  # some methods (users.info, files.getUploadURLExternal) are GETs
        call = Call(method=method, body=body, raw=raw, headers=dict(request.headers))
        limited = self._rate_limited.get(method)
        if limited and limited[1] > 0:
            limited[1] -= 1
            call.status = 429
            await self._add(call)
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(limited[0])})
        await self._add(call)
        auth = request.headers.get("Authorization", "")
        if method == "auth.test":
            if not auth.startswith("Bearer xoxb-"):
                return web.json_response({"ok": False, "error": "invalid_auth"})
            return web.json_response(
                {
                    "ok": True,
                    "url": "https://fake.slack.com/",
                    "team": "Fake",
                    "user": "coach",
                    "team_id": self.team_id,
                    "user_id": self.bot_user,
                    "bot_id": "BBOT",
                    "is_enterprise_install": False,
                }
            )
        if method == "chat.postMessage":
            if body.get("channel") in self.not_member:
                return web.json_response({"ok": False, "error": "not_in_channel"})
            ts = f"{1_700_000_000 + next(_ts)}.000100"
            stored = {"type": "message", "ts": ts, "text": body.get("text"), "bot_id": "BBOT"}
            if body.get("metadata"):
                md = body["metadata"]
                stored["metadata"] = json.loads(md) if isinstance(md, str) else md
            if body.get("thread_ts"):
                stored["thread_ts"] = body["thread_ts"]
            self.history.setdefault(body.get("channel", ""), []).append(stored)
            return web.json_response(
                {
                    "ok": True,
                    "channel": body.get("channel"),
                    "ts": ts,
                    "message": {"text": body.get("text"), "ts": ts, "blocks": body.get("blocks")},
                }
            )
        if method == "chat.postEphemeral":
            return web.json_response({"ok": True, "message_ts": f"{1_700_000_000 + next(_ts)}.000200"})
        if method == "users.info":
            uid = body.get("user", "")
            return web.json_response(
                {
                    "ok": True,
                    "user": {
                        "id": uid,
                        "team_id": self.team_id,
                        "name": uid.lower(),
                        "is_admin": uid in self.admins,
                        "is_owner": False,
                        "is_primary_owner": False,
                    },
                }
            )
        if method == "files.getUploadURLExternal":
            fid = f"F{next(self._files):03d}"
            return web.json_response({"ok": True, "file_id": fid, "upload_url": f"{self.base}/upload/{fid}"})
        if method == "files.completeUploadExternal":
            files = json.loads(body.get("files", "[]"))
            return web.json_response(
                {"ok": True, "files": [{"id": f["id"], "title": f.get("title"), "name": f.get("title")} for f in files]}
            )
        if method == "conversations.history":
            msgs = list(reversed(self.history.get(body.get("channel", ""), [])))
            if str(body.get("include_all_metadata")).lower() not in ("1", "true"):
                msgs = [{k: v for k, v in m.items() if k != "metadata"} for m in msgs]
            return web.json_response({"ok": True, "messages": msgs[: int(body.get("limit", 100))], "has_more": False})
        if method == "conversations.open":
            return web.json_response({"ok": True, "channel": {"id": "D" + body.get("users", "X").lstrip("U")}})
        if method == "apps.connections.open":
            if not auth.startswith("Bearer xapp-"):
                return web.json_response({"ok": False, "error": "not_allowed_token_type"})
            return web.json_response({"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"})
        return web.json_response({"ok": True})

    async def _upload(self, request: web.Request) -> web.Response:
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        data = raw
        if ctype.startswith("multipart/"):
            # slack_sdk posts the bytes as a multipart "file" field
            data = _multipart_file(raw, ctype)
        await self._add(
            Call(
                method="upload",
                body={"fid": request.match_info["fid"], "content_type": ctype},
                raw=data,
                headers=dict(request.headers),
            )
        )
        return web.Response(text=f"OK - {len(data)}")

    async def _response_url(self, request: web.Request) -> web.Response:
        raw = await request.read()
        await self._add(Call(method="response_url", body=json.loads(raw or b"{}"), raw=raw, headers=dict(request.headers)))
        return web.Response(text="ok")

    # --- Socket Mode ------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(
            json.dumps(
                {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}, "debug_info": {"host": "fake"}}
            )
        )
        self.ws_connected.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await self._add(Call(method="ws_ack", body=json.loads(msg.data), raw=msg.data.encode()))
        return ws

    async def send_envelope(self, envelope: dict) -> None:
        assert self._ws is not None, "no Socket Mode connection"
        await self._ws.send_str(json.dumps(envelope))

    # --- payloads ---------------------------------------------------------------------------

    def trigger_id(self) -> str:
        """A fresh trigger id, as Slack gives every command and button click its own."""
        self._triggers = getattr(self, "_triggers", 0) + 1
        return f"{self._triggers}.2.{1_000_000 + self._triggers}"

    def command(self, command: str, text: str, *, user: str = "U111", channel: str = "C111") -> dict[str, str]:
        return {
            "token": "legacy",
            "team_id": self.team_id,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A1",
            "is_enterprise_install": "false",
            "response_url": f"{self.base}/response/{next(_ts)}",
            "trigger_id": self.trigger_id(),
        }

    def block_action(
        self, value: str, *, user: str = "U222", channel: str = "C111", label: str = "Run", thread_ts: str | None = None
    ) -> dict:
        message = {"type": "message", "ts": "1700000000.000100", "text": "reply", "user": self.bot_user}
        if thread_ts:
            message["thread_ts"] = thread_ts
        return {
            "type": "block_actions",
            "api_app_id": "A1",
            "token": "legacy",
            "trigger_id": self.trigger_id(),
            "team": {"id": self.team_id, "domain": "fake"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": self.team_id},
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": channel, "is_ephemeral": False},
            "channel": {"id": channel, "name": "general"},
            "message": message,
            "response_url": f"{self.base}/response/{next(_ts)}",
            "actions": [
                {
                    "type": "button",
                    "action_id": "coach_run_0",
                    "block_id": "coach_actions",
                    "text": {"type": "plain_text", "text": label},
                    "value": value,
                    "action_ts": "1700000001.0",
                }
            ],
        }

    def event(self, event: dict) -> dict:
        return {
            "token": "legacy",
            "team_id": self.team_id,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": f"Ev{next(_ts)}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [{"team_id": self.team_id, "user_id": self.bot_user, "is_bot": True}],
        }


def _multipart_file(raw: bytes, ctype: str) -> bytes:
    boundary = ctype.split("boundary=")[1].strip('"').encode()
    for part in raw.split(b"--" + boundary):
        if b"\r\n\r\n" in part and b'name="file"' in part.split(b"\r\n\r\n", 1)[0]:
            return part.split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n").removesuffix(b"--")
    return raw


def signed(
    secret: str, body: str, *, timestamp: int | None = None, content_type: str = "application/x-www-form-urlencoded"
) -> dict[str, str]:
    """Headers Slack would send with `body`, signed with `secret`."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }


def form_body(fields: dict[str, str]) -> str:
    return urlencode(fields)


def interactive_body(payload: dict) -> str:
    return urlencode({"payload": json.dumps(payload)})
