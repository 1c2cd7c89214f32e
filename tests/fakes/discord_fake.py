"""A loopback Discord: REST (login, app info, command sync, interaction callbacks, webhooks,
channel messages) and the gateway (HELLO, heartbeat ACK, IDENTIFY -> READY, GUILD_CREATE),
served by aiohttp on 127.0.0.1 so the real discord.py runs against it.

Tests inject gateway events with `dispatch()` (INTERACTION_CREATE, MESSAGE_CREATE) and read
what the bot sent from `requests` (multipart `payload_json` + `files[n]` decoded).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

_ids = itertools.count(900_000_000_000_000_001)


def snowflake() -> str:
    return str(next(_ids))


def jresp(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with Content-Type exactly application/json (discord.py checks it verbatim)."""
    h = {
        "Content-Type": "application/json",
        "X-RateLimit-Limit": "50",
        "X-RateLimit-Remaining": "49",
        "X-RateLimit-Reset-After": "1.0",
        "X-RateLimit-Bucket": "fake-bucket",
    }
    h.update(headers or {})
    return web.Response(body=json.dumps(obj).encode(), status=status, headers=h)


@dataclass
class Recorded:
    """One REST request the bot made."""

    method: str
    path: str
    query: dict[str, str]
    json: Any = None
    files: list[tuple[str, str, str, bytes]] = field(default_factory=list)  # (field, filename, content type, data)
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    #: When the request reached the fake (time.monotonic()), before its body was read: latency benchmarks compare it
    #: with the moment they dispatched the event that caused it.
    at: float = field(default_factory=time.monotonic)

    @property
    def message(self) -> dict:
        """The message part of the body (unwrapping an interaction callback's `data`)."""
        payload = self.json if isinstance(self.json, dict) else {}
        if isinstance(payload.get("data"), dict):  # interaction callback wrapper
            payload = payload["data"]
        return payload

    @property
    def embeds(self) -> list[dict]:
        return self.message.get("embeds") or []

    @property
    def content(self) -> str | None:
        return self.message.get("content")

    @property
    def components(self) -> list[dict]:
        return self.message.get("components") or []

    def buttons(self) -> list[dict]:
        return [c for row in self.components for c in row.get("components", [])]


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int
    skip: int = 0


class DiscordFake:
    """The fake server. `await fake.start()`, then point discord.py at `api_base` / `gateway_url`."""

    def __init__(self) -> None:
        self.app_id = snowflake()
        self.bot_id = self.app_id
        self.guild_id = snowflake()
        self.channel_id = snowflake()
        self.owner_id = snowflake()
        self.requests: list[Recorded] = []
        self.gateway_frames: list[dict] = []
        self.identified = asyncio.Event()
        self._ws: web.WebSocketResponse | None = None
        self._seq = 0
        self._failures: list[_Failure] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app_commands: list[dict] = []
        self.threads: list[dict] = []  # threads opened through the API (active)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> DiscordFake:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
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
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- test controls -------------------------------------------------------------------

    def fail(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 429,
        retry_after: float = 0.2,
        via: bool = True,
        times: int = 1,
        body: Any = None,
        skip: int = 0,
    ) -> None:
        """Answer `times` matching requests (after letting `skip` through) with an error (429 + Retry-After + Via by default)."""
        headers: dict[str, str] = {}
        if status == 429:
            body = body or {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
            headers = {"Retry-After": str(retry_after), "X-RateLimit-Scope": "user", "X-RateLimit-Remaining": "0"}
            if via:
                headers["Via"] = "1.1 google"
        self._failures.append(
            _Failure(
                method.upper(), re.compile(path_regex), status, body or {"message": "error", "code": 0}, headers, times, skip
            )
        )

    async def dispatch(self, event: str, data: dict) -> None:
        """Send one gateway DISPATCH (op 0) to the connected bot."""
        assert self._ws is not None, "no gateway connection"
        self._seq += 1
        await self._ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def wait_for(self, predicate: Callable[[Recorded], bool], timeout: float = 10.0, count: int = 1) -> list[Recorded]:
        """The first `count` recorded requests matching `predicate`, waiting up to `timeout` seconds."""

        def found() -> list[Recorded]:
            return [r for r in self.requests if predicate(r)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), timeout)
        return found()[:count]

    def is_answer(self, token: str) -> Callable[[Recorded], bool]:
        """An interaction's answer: the deferred response edited (PATCH @original) or a followup (POST)."""
        base = f"/webhooks/{self.app_id}/{token}"
        return lambda r: (
            (r.method == "POST" and r.path == base) or (r.method == "PATCH" and r.path == base + "/messages/@original")
        )

    def answers(self, token: str) -> list[Recorded]:
        """Every answer message to the interaction with `token`, in the order they arrived."""
        pred = self.is_answer(token)
        return [r for r in self.requests if pred(r)]

    def matching(self, method: str, path_regex: str) -> list[Recorded]:
        rx = re.compile(path_regex)
        return [r for r in self.requests if r.method == method and rx.search(r.path)]

    # --- payload builders ----------------------------------------------------------------

    def user(self, user_id: str | None = None, name: str = "trader", bot: bool = False) -> dict:
        return {
            "id": user_id or self.owner_id,
            "username": name,
            "discriminator": "0",
            "global_name": name.title(),
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
        }

    def member(self, user: dict, permissions: str = "0") -> dict:
        return {
            "user": user,
            "roles": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": permissions,
            "nick": None,
            "pending": False,
        }

    def _interaction_base(self, itype: int, *, user: dict | None, guild: bool, permissions: str) -> dict:
        user = user or self.user()
        base = {
            "id": snowflake(),
            "application_id": self.app_id,
            "type": itype,
            "token": "tok-" + snowflake(),
            "version": 1,
            "locale": "en-US",
            "attachment_size_limit": 10 * 1024 * 1024,
            "entitlements": [],
            "authorizing_integration_owners": {},
            "app_permissions": "0",
        }
        if guild:
            base.update(
                {
                    "guild_id": self.guild_id,
                    "guild_locale": "en-US",
                    "context": 0,
                    "channel_id": self.channel_id,
                    "channel": {
                        "id": self.channel_id,
                        "type": 0,
                        "guild_id": self.guild_id,
                        "name": "general",
                        "position": 0,
                        "permission_overwrites": [],
                        "nsfw": False,
                        "parent_id": None,
                    },
                    "member": self.member(user, permissions),
                }
            )
        else:
            dm_id = "5" + user["id"][1:]
            base.update(
                {
                    "context": 1,
                    "channel_id": dm_id,
                    "channel": {"id": dm_id, "type": 1, "recipients": [user], "last_message_id": None, "flags": 0},
                    "user": user,
                }
            )
        return base

    def slash(
        self,
        name: str,
        options: list[dict] | None = None,
        *,
        sub: str | None = None,
        user: dict | None = None,
        guild: bool = True,
        permissions: str = "0",
    ) -> dict:
        """INTERACTION_CREATE data for `/name [sub] options...` (options: [{"name", "type", "value"}])."""
        d = self._interaction_base(2, user=user, guild=guild, permissions=permissions)
        opts = options or []
        if sub:
            opts = [{"name": sub, "type": 1, "options": opts}]
        d["data"] = {"id": snowflake(), "name": name, "type": 1, "options": opts}
        if guild:
            d["data"]["guild_id"] = self.guild_id
        return d

    def autocomplete(self, name: str, options: list[dict], *, sub: str | None = None, user: dict | None = None) -> dict:
        d = self.slash(name, options, sub=sub, user=user)
        d["type"] = 4
        return d

    def button_click(self, custom_id: str, label: str = "Run", *, user: dict | None = None, guild: bool = True) -> dict:
        """INTERACTION_CREATE for a click on a button of a message the bot sent earlier."""
        d = self._interaction_base(3, user=user, guild=guild, permissions="0")
        d["data"] = {"custom_id": custom_id, "component_type": 2}
        d["message"] = self.message_object(
            d["channel_id"],
            {
                "content": "",
                "components": [{"type": 1, "components": [{"type": 2, "style": 2, "label": label, "custom_id": custom_id}]}],
            },
            author=self.user(self.bot_id, "coach", bot=True),
        )
        return d

    def message_create(self, content: str, *, dm: bool = False, mention: bool = False, user: dict | None = None) -> dict:
        user = user or self.user()
        mentions = [self.user(self.bot_id, "coach", bot=True)] if mention else []
        if mention:
            content = f"<@{self.bot_id}> {content}"
        channel_id = ("5" + user["id"][1:]) if dm else self.channel_id
        msg = self.message_object(channel_id, {"content": content}, author=user)
        msg["mentions"] = mentions
        if not dm:
            msg["guild_id"] = self.guild_id
            msg["member"] = {k: v for k, v in self.member(user).items() if k != "user"}
        return msg

    def message_object(self, channel_id: str, payload: dict, *, author: dict | None = None, files: list | None = None) -> dict:
        attachments = [
            {
                "id": snowflake(),
                "filename": fn,
                "size": len(data),
                "url": f"http://127.0.0.1:{self.port}/cdn/{fn}",
                "proxy_url": f"http://127.0.0.1:{self.port}/cdn/{fn}",
                "content_type": ct,
            }
            for (_, fn, ct, data) in (files or [])
        ]
        return {
            "id": snowflake(),
            "channel_id": channel_id,
            "author": author or self.user(self.bot_id, "coach", bot=True),
            "content": payload.get("content") or "",
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": payload.get("embeds") or [],
            "pinned": False,
            "type": 0,
            "components": payload.get("components") or [],
            "flags": payload.get("flags", 0),
        }

    # --- REST ---------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> Recorded:
        rec = Recorded(
            at=time.monotonic(),
            method=request.method,
            path="/" + request.match_info["tail"],
            query=dict(request.query),
            headers={k: v for k, v in request.headers.items()},
        )
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                data = await part.read()
                if part.name == "payload_json":
                    rec.json = json.loads(data)
                else:
                    rec.files.append((part.name or "", part.filename or "", part.headers.get("Content-Type", ""), bytes(data)))
        elif request.can_read_body:
            raw = await request.read()
            if raw:
                rec.json = json.loads(raw)
        return rec

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        for f in self._failures:
            if f.times > 0 and f.method == rec.method and f.pattern.search(rec.path):
                if f.skip > 0:
                    f.skip -= 1
                    continue
                f.times -= 1
                rec.status = f.status
                await self._append(rec)
                return jresp(f.body, f.status, f.headers)
        resp = self._route(rec)
        rec.status = resp.status
        await self._append(rec)
        return resp

    async def _append(self, rec: Recorded) -> None:
        async with self._changed:
            self.requests.append(rec)
            self._changed.notify_all()

    def _route(self, rec: Recorded) -> web.Response:
        p, m = rec.path, rec.method
        if m == "GET" and p == "/users/@me":
            return jresp(self.user(self.bot_id, "coach", bot=True) | {"verified": True, "mfa_enabled": False, "flags": 0})
        if m == "GET" and p == "/oauth2/applications/@me":
            return jresp(
                {
                    "id": self.app_id,
                    "name": "coach",
                    "description": "",
                    "icon": None,
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": self.user(),
                    "verify_key": "00",
                    "flags": 0,
                    "interactions_endpoint_url": None,
                }
            )
        mm = re.fullmatch(r"/applications/(\d+)(?:/guilds/(\d+))?/commands", p)
        if mm and m == "PUT":
            self.app_commands = rec.json or []
            out = [
                dict(
                    c,
                    id=snowflake(),
                    application_id=self.app_id,
                    version="1",
                    default_member_permissions=None,
                    type=c.get("type", 1),
                    dm_permission=True,
                    nsfw=False,
                )
                for c in self.app_commands
            ]
            if mm.group(2):
                for c in out:
                    c["guild_id"] = mm.group(2)
            return jresp(out)
        mm = re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", p)
        if mm and m == "POST":
            return jresp(
                {
                    "interaction": {
                        "id": mm.group(1),
                        "type": 2,
                        "activity_instance_id": None,
                        "response_message_id": None,
                        "response_message_loading": False,
                        "response_message_ephemeral": False,
                    }
                }
            )
        mm = re.fullmatch(r"/webhooks/(\d+)/([^/]+)", p)
        if mm and m == "POST":
            payload = rec.json or {}
            return jresp(self.message_object(self.channel_id, payload, files=rec.files) | {"webhook_id": mm.group(1)})
        mm = re.fullmatch(r"/webhooks/(\d+)/([^/]+)/messages/(@original|\d+)", p)
        if mm:
            if m == "DELETE":
                return web.Response(status=204)
            return jresp(self.message_object(self.channel_id, rec.json or {}, files=rec.files))
        mm = re.fullmatch(r"/channels/(\d+)/messages", p)
        if mm and m == "POST":
            return jresp(self.message_object(mm.group(1), rec.json or {}, files=rec.files))
        if re.fullmatch(r"/channels/(\d+)/typing", p) and m == "POST":
            return web.Response(status=204)
        if p == "/users/@me/channels" and m == "POST":
            rid = str((rec.json or {}).get("recipient_id"))
            return jresp({"id": "5" + rid[1:], "type": 1, "recipients": [self.user(rid)], "last_message_id": None, "flags": 0})
        mm = re.fullmatch(r"/channels/(\d+)", p)
        if mm and m == "GET":
            return jresp(
                {
                    "id": mm.group(1),
                    "type": 0,
                    "guild_id": self.guild_id,
                    "name": "general",
                    "position": 0,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "parent_id": None,
                }
            )
        mm = re.fullmatch(r"/guilds/(\d+)/threads/active", p)
        if mm and m == "GET":
            return jresp({"threads": self.threads, "members": []})
        mm = re.fullmatch(r"/channels/(\d+)/threads/archived/public", p)
        if mm and m == "GET":
            return jresp({"threads": [], "members": [], "has_more": False})
        mm = re.fullmatch(r"/channels/(\d+)/threads", p)
        if mm and m == "POST":
            t = {
                "id": snowflake(),
                "type": 11,
                "guild_id": self.guild_id,
                "parent_id": mm.group(1),
                "name": (rec.json or {}).get("name"),
                "owner_id": self.bot_id,
                "message_count": 0,
                "member_count": 1,
                "rate_limit_per_user": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": "2024-01-01T00:00:00+00:00",
                    "locked": False,
                },
            }
            self.threads.append(t)
            return jresp(t, 201)
        return jresp({"message": "Unknown route in fake", "code": 0}, 404)

    # --- gateway ------------------------------------------------------------------------

    def guild_payload(self) -> dict:
        bot_user = self.user(self.bot_id, "coach", bot=True)
        return {
            "id": self.guild_id,
            "name": "Trading Floor",
            "icon": None,
            "owner_id": self.owner_id,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "features": [],
            "emojis": [],
            "stickers": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_flags": 0,
            "nsfw_level": 0,
            "large": False,
            "unavailable": False,
            "member_count": 2,
            "roles": [
                {
                    "id": self.guild_id,
                    "name": "@everyone",
                    "permissions": "104324673",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "channels": [
                {
                    "id": self.channel_id,
                    "type": 0,
                    "name": "general",
                    "position": 0,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "parent_id": None,
                    "topic": None,
                    "last_message_id": None,
                    "rate_limit_per_user": 0,
                }
            ],
            "members": [self.member(bot_user), self.member(self.user())],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
        }

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            self.gateway_frames.append(frame)
            op = frame.get("op")
            if op == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:
                shard = (frame.get("d") or {}).get("shard")
                await self.dispatch(
                    "READY",
                    ({"shard": shard} if shard else {})  # Discord echoes the shard a sharded session identified as
                    | {
                        "v": 10,
                        "user": self.user(self.bot_id, "coach", bot=True) | {"verified": True, "mfa_enabled": False, "flags": 0},
                        "guilds": [{"id": self.guild_id, "unavailable": True}],
                        "session_id": "fake-session",
                        "resume_gateway_url": self.gateway_url,
                        "private_channels": [],
                        "relationships": [],
                        "application": {"id": self.app_id, "flags": 0},
                    },
                )
                await self.dispatch("GUILD_CREATE", self.guild_payload())
                self.identified.set()
            elif op == 6:  # RESUME
                await self.dispatch("RESUMED", {})
        return ws
