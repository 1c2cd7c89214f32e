"""Answers delivered where a job says, over the platform's REST API, from whichever process ran the job.

- A Discord interaction (slash command, button): its webhook, which needs no bot login. The
  first message edits the deferred "thinking…" response (`PATCH …/messages/@original`), so
  delivering the same answer twice shows it once; further messages are followups. A private
  answer (an error) goes as an ephemeral followup and the public "thinking…" is removed.
- A Discord channel (a DM or a mention): a message in that channel with the bot token, as a
  reply to the person's message.
- Slack: Block Kit messages and uploaded files in the channel or thread, through the command's
  response URL where the app is not a member, privately when the answer is an error.

A 429 waits as long as the platform says, a 5xx or a dropped connection is tried again with
backoff; an expired interaction (Discord answers 404 once its 15 minutes are over) or a revoked
token is dropped with one log line: no retry can deliver it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import structlog
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.config import Settings
from bot.execution.jobs import ApiRoute, DiscordInteractionRoute, DiscordMessageRoute, Route, SlackRoute
from bot.reply import Reply
from bot.runtime.destinations import DeliveryError
from bot.surfaces import render_discord
from bot.surfaces.render_discord import DiscordMessage
from bot.surfaces.render_slack import WhoAsked
from bot.surfaces.slack import SlackReplier, web_client
from bot.surfaces.webhooks import check_webhook_response
from bot.web.results import AnswerSink, http_answer
from core.errors import RateLimited
from core.retry import Backoff

log = structlog.get_logger("coach.replies")

DEFAULT_DISCORD_API = "https://discord.com/api/v10"
#: Discord's flag for a message only the person who asked sees.
EPHEMERAL = 1 << 6
#: Tries per message before the delivery fails (and the job is delivered again by its queue).
ATTEMPTS = 4
#: The longest 429 wait honoured in place; longer ones fail the delivery, to be retried later.
MAX_WAIT = 30.0


class ReplySender:
    """Delivers replies along job routes; one per process, holding its HTTP clients."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        backoff: Backoff | None = None,
        api_answers: AnswerSink | None = None,
    ) -> None:
        """`api_answers` stores HTTP API answers for the front that waits for them (`bot.web.results.answer_sink`)."""
        self.settings = settings
        self.api_answers = api_answers
        self.api = (settings.discord_api_base or DEFAULT_DISCORD_API).rstrip("/")
        self._http = http
        self._own_http = http is None
        self._slack: SlackReplier | None = None
        self.backoff = backoff or Backoff(base=0.5, cap=8.0)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0), follow_redirects=False)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._own_http:
            await self._http.aclose()
            self._http = None

    async def deliver(self, route: Route, reply: Reply, key: str) -> None:
        """Deliver `reply` along `route`; a delivery no retry can make is logged and dropped (not raised)."""
        try:
            if isinstance(route, DiscordInteractionRoute):
                await self._discord_interaction(route, reply)
            elif isinstance(route, DiscordMessageRoute):
                await self._discord_message(route, reply)
            elif isinstance(route, ApiRoute):
                await self._api_answer(route, reply, key)
            else:
                await self._slack_reply(route, reply, key)
        except DeliveryError as exc:
            if not exc.permanent:
                raise
            log.warning("reply_dropped", route=route.kind, reason=exc.reason, key=key)

    async def _api_answer(self, route: ApiRoute, reply: Reply, key: str) -> None:
        if self.api_answers is None:
            raise DeliveryError("api", "this process keeps no HTTP API answers", permanent=True)
        status, body = http_answer(reply, route.command, route.request_id, images=route.images)
        await self.api_answers(key, status, body)

    # ------------------------------------------------------------------ Discord

    async def _discord_interaction(self, route: DiscordInteractionRoute, reply: Reply) -> None:
        base = f"{self.api}/webhooks/{route.application_id}/{route.token.get_secret_value()}"
        messages = render_discord.render(reply)
        if reply.ephemeral:
            for m in messages:
                await self._discord_send("POST", base, m, params={"wait": "true"}, flags=EPHEMERAL)
            # the deferred "thinking…" message is public: remove it so only the private answer remains
            await self._discord_call("DELETE", f"{base}/messages/@original", missing_ok=True)
            return
        for i, m in enumerate(messages):
            if i == 0:
                await self._discord_send("PATCH", f"{base}/messages/@original", m)
            else:
                await self._discord_send("POST", base, m, params={"wait": "true"})

    async def _discord_message(self, route: DiscordMessageRoute, reply: Reply) -> None:
        token = self.settings.discord_token
        if token is None:
            raise DeliveryError("discord", "DISCORD_TOKEN is not set", permanent=True)
        headers = {"Authorization": f"Bot {token.get_secret_value()}"}
        url = f"{self.api}/channels/{route.channel_id}/messages"
        for i, m in enumerate(render_discord.render(reply)):
            extra = (
                {"message_reference": {"message_id": route.reply_to, "fail_if_not_exists": False}}
                if (i == 0 and route.reply_to)
                else {}
            )
            await self._discord_send("POST", url, m, headers=headers, extra=extra)

    async def _discord_send(
        self,
        method: str,
        url: str,
        m: DiscordMessage,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        flags: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        payload, files = m.request(flags=flags)
        payload.update(extra or {})
        if files:
            await self._discord_call(
                method, url, params=params, headers=headers, data={"payload_json": json.dumps(payload)}, files=files
            )
        else:
            await self._discord_call(method, url, params=params, headers=headers, json_body=payload)

    async def _discord_call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        missing_ok: bool = False,
    ) -> None:
        for attempt in range(ATTEMPTS):
            try:
                resp = await self.http.request(
                    method, url, params=params, headers=headers, json=json_body, data=data, files=files
                )
            except httpx.HTTPError as exc:
                if attempt + 1 == ATTEMPTS:
                    raise DeliveryError("discord", f"unreachable ({exc.__class__.__name__})") from None
                await asyncio.sleep(self.backoff.delay(attempt))
                continue
            if missing_ok and resp.status_code == 404:
                return
            try:
                check_webhook_response("discord", url, resp)
                return
            except RateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else self.backoff.delay(attempt)
                if attempt + 1 == ATTEMPTS or wait > MAX_WAIT:
                    raise DeliveryError("discord", "rate limited") from None
                await asyncio.sleep(wait)
            except DeliveryError as exc:
                if exc.permanent or attempt + 1 == ATTEMPTS:
                    raise
                await asyncio.sleep(self.backoff.delay(attempt))

    # ------------------------------------------------------------------ Slack

    async def _slack_reply(self, route: SlackRoute, reply: Reply, key: str) -> None:
        if self._slack is None:
            self._slack = SlackReplier(web_client(self.settings))
        respond = AsyncRespond(response_url=route.response_url.get_secret_value()) if route.response_url else None
        if route.public_errors:
            reply = reply.model_copy(update={"ephemeral": False})
        await self._slack.post(
            reply,
            channel=route.channel,
            thread_ts=route.thread_ts,
            user=route.user,
            respond=respond,
            who=WhoAsked(route.user, route.asked, route.clicked) if route.asked else None,
            request_id=key,
        )
