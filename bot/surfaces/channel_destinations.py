"""Alert delivery into Discord and Slack, rendered exactly as the surfaces render replies.

Each class has `async def send(target, reply, idempotency_key) -> None` (the runtime's
Destination protocol) and raises `RateLimited(retry_after=...)` on a 429, `DeliveryError`
(a ProviderError; `permanent=True` when retrying cannot help) on other failures.

Targets (the runtime's convention): "channel:<id>", "thread:<channel id>:<thread name>" (found
by name, or opened), "dm:<user id>"; a bare channel id is accepted too. Webhook destinations
are in `bot.surfaces.webhooks`.

Idempotency: a reply that needs several messages is sent part by part, and the parts already
sent for a key are skipped when the same key is retried in this process. Discord channel
messages also carry a nonce derived from the key with `enforce_nonce`, so Discord itself drops
a repeat within its dedup window; Slack messages carry the key in message metadata.

"""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

import aiohttp
import discord
import structlog
from discord.utils import MISSING
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.reply import Reply
from bot.runtime.destinations import DeliveryError, PartProgress, parse_target
from bot.surfaces import render_discord, render_slack
from bot.surfaces.discord import configure_endpoints, make_view
from core.errors import ConfigError, RateLimited
from providers.http import retry_after_header

log = structlog.get_logger("coach.destinations")

#: Slack errors that no retry will fix.
SLACK_PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "invalid_blocks",
    "msg_too_long",
    "no_text",
    "restricted_action",
    "user_not_found",
    "cannot_dm_bot",
    "not_authed",
    "invalid_arguments",
    "team_access_not_granted",
    "ekm_access_denied",
}


def _nonce(key: str, part: int) -> str:
    """A Discord nonce (at most 25 characters) for part `part` of the event `key`."""
    return hashlib.sha256(f"{key}:{part}".encode()).hexdigest()[:25]


def _parse(target: str) -> tuple[str, str, str | None]:
    """(route, id, thread name) from a target string; a bare id is a channel."""
    try:
        t = parse_target(target)
    except ValueError as exc:
        raise DeliveryError("chat", str(exc), permanent=True) from None
    return t.route, t.id, t.thread


# ------------------------------------------------------------------------------------ Discord


class DiscordChannelDestination:
    """Sends replies into Discord channels, threads or DMs through discord.py's REST client.

    Pass a logged-in `discord.Client` (the running surface's) or its `HTTPClient`; or pass
    `token` and a REST-only client is logged in on first use (for a separate runtime process).
    """

    provider = "discord"
    #: 0.2 s steps to wait for a given client's login before a (retryable) failure
    login_wait_steps = 150

    def __init__(
        self,
        client_or_http: discord.Client | discord.http.HTTPClient | None = None,
        *,
        token: str | None = None,
        api_base: str | None = None,
        tz: str = "America/New_York",
    ) -> None:
        if client_or_http is None and not token:
            raise ConfigError("a Discord destination needs a client or DISCORD_TOKEN")
        self._given = client_or_http
        self._token = token
        self._api_base = api_base
        self._own_client: discord.Client | None = None
        self._login_lock = asyncio.Lock()
        self.tz = tz
        self._progress = PartProgress()
        self._channels: dict[str, str] = {}  # "dm:<user>" / "thread:<cid>:<name>" -> channel id

    async def _http(self) -> discord.http.HTTPClient:
        given = self._given
        if isinstance(given, discord.http.HTTPClient):
            return given
        if given is not None:
            # the running bot may still be logging in when the first alert is due: wait for it, briefly
            for _ in range(self.login_wait_steps):
                if given.http.token is not None:
                    break
                await asyncio.sleep(0.2)
            if given.http.token is None:
                raise DeliveryError(self.provider, "the Discord client has not logged in yet")
            return given.http
        async with self._login_lock:
            if self._own_client is None:
                if self._api_base:
                    configure_endpoints(self._api_base, None)
                discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # never joins voice
                client = discord.Client(intents=discord.Intents.none())
                try:
                    await client.login(self._token or "")
                except discord.LoginFailure:
                    await client.close()
                    raise DeliveryError(self.provider, "the bot token was refused", permanent=True) from None
                self._own_client = client
        return self._own_client.http

    async def aclose(self) -> None:
        if self._own_client is not None:
            await self._own_client.close()
            self._own_client = None

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None:
        try:
            http = await self._http()
            channel_id = await self._channel(http, target)
            messages = render_discord.render(reply, tz=self.tz)
            done = self._progress.get(idempotency_key)
            for i, m in enumerate(messages):
                if i < done:
                    continue
                params = discord.http.handle_message_parameters(
                    content=m.content or MISSING,
                    embeds=[discord.Embed.from_dict(e) for e in m.embeds] if m.embeds else MISSING,
                    files=[
                        discord.File(io.BytesIO(a.data), filename=a.filename, description=a.description or None) for a in m.files
                    ]
                    if m.files
                    else MISSING,
                    view=make_view(m.actions) or MISSING,
                    nonce=_nonce(idempotency_key, i),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
                with params:
                    await http.send_message(channel_id, params=params)
                self._progress.mark(idempotency_key, i + 1)
        except discord.RateLimited as exc:
            raise RateLimited(self.provider, "rate limited", retry_after=exc.retry_after) from None
        except discord.HTTPException as exc:
            raise _discord_failure(exc) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(self.provider, f"unreachable ({exc.__class__.__name__})") from None

    async def _channel(self, http: discord.http.HTTPClient, target: str) -> str:
        route, ident, name = _parse(target)
        if route == "channel":
            return ident
        cached = self._channels.get(target)
        if cached:
            return cached
        if route == "dm":
            data = await http.start_private_message(int(ident))
            cid = str(data["id"])
        else:
            cid = await self._thread(http, ident, name or "")
        self._channels[target] = cid
        return cid

    async def _thread(self, http: discord.http.HTTPClient, channel_id: str, name: str) -> str:
        """The thread named `name` under the channel: an active or archived one, or a new public thread."""
        name = name[:100]
        channel = await http.get_channel(int(channel_id))
        guild_id = channel.get("guild_id")  # a snowflake (str or int) on guild channels only
        if isinstance(guild_id, (str, int)) and guild_id:
            active = await http.get_active_threads(int(guild_id))
            for t in active.get("threads", []):
                if str(t.get("parent_id")) == str(channel_id) and t.get("name") == name:
                    return str(t["id"])
        try:
            archived = await http.get_public_archived_threads(int(channel_id))
            for t in archived.get("threads", []):
                if t.get("name") == name:
                    return str(t["id"])  # posting into it unarchives it
        except discord.Forbidden:
            pass  # without Read Message History we cannot look; a new thread is the fallback
        created = await http.start_thread_without_message(int(channel_id), name=name, auto_archive_duration=1440, type=11)
        return str(created["id"])


def _discord_failure(exc: discord.HTTPException) -> Exception:
    if exc.status == 429:
        return RateLimited("discord", "rate limited", retry_after=retry_after_header(getattr(exc.response, "headers", None)))
    permanent = exc.status in (400, 401, 403, 404, 413)
    return DeliveryError("discord", f"HTTP {exc.status}: {str(exc.text)[:120]}", permanent=permanent)


# -------------------------------------------------------------------------------------- Slack


class SlackChannelDestination:
    """Sends replies into Slack channels, named threads or DMs with the Web API (blocks, then files)."""

    provider = "slack"

    def __init__(self, web_client: AsyncWebClient, *, tz: str = "America/New_York", history_limit: int = 200) -> None:
        self.client = web_client
        self.tz = tz
        self.history_limit = history_limit
        self._progress = PartProgress()
        self._places: dict[str, tuple[str, str | None]] = {}

    async def aclose(self) -> None:
        session = getattr(self.client, "session", None)
        if session is not None and not session.closed:
            await session.close()

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None:
        try:
            channel, thread_ts = await self._place(target)
            messages = render_slack.render(reply, tz=self.tz)
            meta = {"event_type": "coach_delivery", "event_payload": {"idempotency_key": idempotency_key}}
            done = self._progress.get(idempotency_key)
            part = 0
            for m in messages:
                if part >= done:
                    kw: dict[str, Any] = {
                        "channel": channel,
                        "text": m.text,
                        "blocks": m.blocks,
                        "metadata": meta,
                        "unfurl_links": False,
                        "unfurl_media": False,
                    }
                    if thread_ts:
                        kw["thread_ts"] = thread_ts
                    await self.client.chat_postMessage(**kw)
                    self._progress.mark(idempotency_key, part + 1)
                part += 1
            for att in reply.attachments:
                if part >= done:
                    up: dict[str, Any] = {
                        "channel": channel,
                        "file": att.data,
                        "filename": att.filename,
                        "title": att.description or att.filename,
                    }
                    if thread_ts:
                        up["thread_ts"] = thread_ts
                    await self.client.files_upload_v2(**up)
                    self._progress.mark(idempotency_key, part + 1)
                part += 1
        except SlackApiError as exc:
            raise _slack_failure(exc) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(self.provider, f"unreachable ({exc.__class__.__name__})") from None

    async def _place(self, target: str) -> tuple[str, str | None]:
        """(channel id, thread ts) for a target, opening the DM or the named thread when needed."""
        route, ident, name = _parse(target)
        if route == "channel":
            return ident, None
        cached = self._places.get(target)
        if cached:
            return cached
        if route == "dm":
            resp = await self.client.conversations_open(users=ident)
            place: tuple[str, str | None] = (resp["channel"]["id"], None)
        else:
            place = (ident, await self._thread(ident, name or ""))
        self._places[target] = place
        return place

    async def _thread(self, channel: str, name: str) -> str:
        """The ts of the parent message of thread `name` in `channel`: found by its metadata, or posted now."""
        try:
            hist = await self.client.conversations_history(channel=channel, limit=self.history_limit, include_all_metadata=True)
            messages: list[dict[str, Any]] = hist.get("messages", [])
            for msg in messages:
                md = msg.get("metadata") or {}
                if md.get("event_type") == "coach_thread" and (md.get("event_payload") or {}).get("name") == name:
                    return str(msg["ts"])
        except SlackApiError as exc:
            # without the history scope we cannot find an old thread; opening a new one still delivers
            log.warning("slack_thread_lookup_failed", error=exc.response.get("error"), channel=channel)
        resp = await self.client.chat_postMessage(
            channel=channel,
            text=f"*{render_slack.escape(name)}*",
            metadata={"event_type": "coach_thread", "event_payload": {"name": name}},
        )
        return str(resp["ts"])


def _slack_failure(exc: SlackApiError) -> Exception:
    resp = exc.response
    status = getattr(resp, "status_code", None)
    error = resp.get("error") if resp is not None else None
    if status == 429 or error == "ratelimited":
        return RateLimited("slack", "rate limited", retry_after=retry_after_header(getattr(resp, "headers", None)))
    return DeliveryError("slack", f"{error or status}", permanent=error in SLACK_PERMANENT)
