"""The Slack surface (slack-bolt AsyncApp): `/coach <command> args`, per-command slash commands, buttons, mentions, DMs.

- `/coach plan TSLA` (and `/plan TSLA` when that slash command is configured in the app)
  goes through the request pipeline (`bot.pipeline`). What cannot run (bad input, over the
  rate limit, not an admin) is answered privately in the acknowledgement itself; the rest is
  acknowledged at once and answered when it has run.
- Replies are Block Kit (header, sections, fields, context with sources and as_of, actions)
  posted with chat.postMessage; charts follow with files_upload_v2 into the same channel or
  thread. Where the app is not a member of the conversation the reply goes through the
  command's response URL instead (without files, and saying so).
- Buttons carry their invocation in `value`; a click runs it for the person who clicked.
- `app_mention` and DM `message` events go through the pipeline as a line of text (a
  /command, or free text for the coach).
- HTTP mode checks request signatures with SLACK_SIGNING_SECRET, refuses malformed
  timestamps quietly and runs each signed request once (`bot.surfaces.slack_requests`; the
  memory of signatures is shared through Redis when COACH_QUEUE_URL is set); Socket Mode uses
  SLACK_APP_TOKEN. SLACK_API_URL points slack_sdk at another Web API (tests use a fake).
- Replies escape everything they show (`bot.surfaces.render_slack`): text someone typed never
  becomes a live `<!channel>` or mention.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from typing import Any

import structlog
from aiohttp import web
from pydantic import SecretStr
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler, AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.config import Settings
from bot.execution.jobs import Job, SlackRoute
from bot.pipeline import Admitted, Invocation
from bot.readiness import Check, cached
from bot.reply import Reply
from bot.request import Identity, current_request_id
from bot.services import Services
from bot.surfaces.identity import SlackAdmins, slack_identity
from bot.surfaces.render_slack import ACTION_PREFIX, LINK_PREFIX, SlackMessage, WhoAsked, escape, render
from bot.surfaces.slack_requests import MemorySeen, RedisSeen, SeenRequests, SlackRequestGuard, Verdict
from bot.surfaces.symbols import RecentSymbols, symbols_in
from core.clock import utc_now
from core.errors import ConfigError

log = structlog.get_logger("coach.slack")

DEFAULT_API_URL = "https://slack.com/api/"
UMBRELLA = "/coach"
NOT_A_MEMBER = ("not_in_channel", "channel_not_found")


def api_url(value: str | None) -> str:
    """The Web API base URL with the trailing slash slack_sdk needs (it joins method names onto it)."""
    url = (value or DEFAULT_API_URL).strip()
    return url if url.endswith("/") else url + "/"


def web_client(s: Settings, *, retries: int = 2) -> AsyncWebClient:
    """An AsyncWebClient for SLACK_BOT_TOKEN that waits out 429s (Retry-After) and retries dropped connections."""
    if not s.slack_bot_token:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    return AsyncWebClient(
        token=s.slack_bot_token.get_secret_value(),
        base_url=api_url(s.slack_api_url),
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
        ],
    )


def unescape(text: str) -> str:
    """Slack's &amp; &lt; &gt; escapes back to characters (for reading what was typed; replies escape again).

    Only the three escapes Slack makes: any other entity someone typed stays as they typed it.
    """
    return (text or "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class SlackSurface:
    """Serves the services' commands on Slack: `run()` (Socket Mode, or HTTP after `listen_on`), then `close()`."""

    name = "slack"

    def __init__(
        self,
        services: Services,
        *,
        client: AsyncWebClient | None = None,
        umbrella: str = UMBRELLA,
        seen: SeenRequests | None = None,
    ) -> None:
        s = services.settings
        self.services = services
        self.pipeline = services.pipeline
        if services.executor is None:
            raise ConfigError("the Slack surface needs an executor for its requests")
        self.executor = services.executor
        self.client = client or web_client(s)
        self.replier = SlackReplier(self.client)
        self.umbrella = umbrella
        self.admins = SlackAdmins()
        self.recent = RecentSymbols()
        secret = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else ""
        self.guard = SlackRequestGuard(secret, seen if seen is not None else seen_requests(services))
        self.app = AsyncApp(
            client=self.client,
            signing_secret=secret,  # never read from elsewhere; empty means HTTP requests are all refused
            process_before_response=False,
            raise_error_for_unhandled_request=False,
        )
        self.app.command(re.compile(r"^/.+"))(self._on_command)
        self.app.action(re.compile(rf"^{ACTION_PREFIX}"))(self._on_action)
        self.app.action(re.compile(rf"^{LINK_PREFIX}"))(self._on_link)
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.error(self._on_error)
        self._runner: web.AppRunner | None = None
        self._socket: Any = None
        self.port: int | None = None
        self._listen: tuple[str, int] | None = None
        #: Set when Slack's route lives on the service's shared HTTP server (`mount_http`) rather than its own.
        self._mounted = False
        self._closed = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------

    def listen_on(self, host: str, port: int) -> None:
        """Serve HTTP mode on this address when run (Socket Mode otherwise)."""
        self._listen = (host, port)

    @property
    def http_listen(self) -> tuple[str, int] | None:
        """The address HTTP mode serves on, or None in Socket Mode."""
        return self._listen

    def mount_http(self, app: web.Application, path: str = "/slack/events") -> None:
        """Serve Slack's requests on `path` of the service's HTTP server (HTTP mode only)."""
        if self._listen is None:
            return
        app.router.add_post(path, self._http_request)
        self._mounted = True

    def readiness(self) -> dict[str, Check]:
        """Slack answers auth.test with this token (asked at most once a minute)."""

        async def check() -> str | None:
            await self.client.auth_test()
            return None

        return {"slack": cached(check, 60.0)}

    async def run(self) -> None:
        """Connect (Socket Mode) or listen (HTTP mode), then serve until closed."""
        if self._mounted:
            if not self.services.settings.slack_signing_secret:
                raise ConfigError("Slack HTTP mode needs SLACK_SIGNING_SECRET (or use Socket Mode with SLACK_APP_TOKEN)")
            await self.verify()
        elif self._listen is not None:
            await self.start_http(*self._listen)
        else:
            await self.start_socket()
        await self._closed.wait()

    async def verify(self) -> dict[str, Any]:
        """Check the bot token with auth.test (raises SlackApiError when Slack refuses it); returns team and bot ids."""
        resp = await self.client.auth_test()
        log.info("slack_authenticated", team=resp.get("team_id"), bot_user=resp.get("user_id"))
        return dict(resp.data) if isinstance(resp.data, dict) else {}

    async def start_http(self, host: str = "0.0.0.0", port: int = 3000, path: str = "/slack/events") -> int:
        """Serve Slack's requests (commands, events, interactivity) on `path`; returns the bound port."""
        if not self.services.settings.slack_signing_secret:
            raise ConfigError("Slack HTTP mode needs SLACK_SIGNING_SECRET (or use Socket Mode with SLACK_APP_TOKEN)")
        await self.verify()
        app = web.Application()

        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        app.router.add_post(path, self._http_request)
        app.router.add_get("/healthz", healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("slack_http_listening", host=host, port=self.port, path=path)
        return self.port

    async def start_socket(self, app_token: str | None = None) -> None:
        """Connect in Socket Mode (no public URL needed)."""
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        s = self.services.settings
        token = app_token or (s.slack_app_token.get_secret_value() if s.slack_app_token else None)
        if not token:
            raise ConfigError("Slack Socket Mode needs SLACK_APP_TOKEN (xapp-...)")
        await self.verify()
        self._socket = AsyncSocketModeHandler(self.app, token)
        await self._socket.connect_async()
        log.info("slack_socket_mode_connected")

    async def close(self) -> None:
        self._closed.set()
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _http_request(self, request: web.Request) -> web.Response:
        """One request from Slack: checked (signature, timestamp, first time seen), then Bolt's."""
        verdict = await self.guard.check(await request.read(), request.headers)
        if verdict is Verdict.INVALID:
            return web.json_response({"error": "invalid request"}, status=401)
        if verdict is Verdict.REPEAT:
            return web.Response(status=200)  # received, not run again (see bot.surfaces.slack_requests)
        if verdict is Verdict.UNAVAILABLE:
            return web.Response(status=503)
        bolt_response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    # --- identity ---------------------------------------------------------------------------

    async def identity(
        self, *, team_id: str, user_id: str, channel_id: str | None, name: str | None = None, channel_type: str | None = None
    ) -> Identity:
        """The caller with their admin flag looked up (users.info, cached): for free text, whose tools depend on it."""
        is_admin = await self.admins.is_admin(self.client, team_id, user_id)
        return slack_identity(
            team_id=team_id,
            user_id=user_id,
            channel_id=channel_id,
            display_name=name,
            is_admin=is_admin,
            channel_type=channel_type,
        )

    def quick_identity(self, *, team_id: str, user_id: str, channel_id: str | None, name: str | None = None) -> Identity:
        """The caller without a Slack call: admin rights are looked up only if the command needs them."""
        ident = slack_identity(team_id=team_id, user_id=user_id, channel_id=channel_id, display_name=name, is_admin=False)

        async def lookup() -> bool:
            return await self.admins.is_admin(self.client, team_id, user_id)

        return dataclasses.replace(ident, admin_lookup=lookup)

    # --- listeners --------------------------------------------------------------------------

    async def _on_command(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        name = command.get("command", "")
        text = unescape(command.get("text", "")).strip()
        if name == self.umbrella:
            line = "/" + text.lstrip("/") if text else "/help"
        else:
            line = f"{name} {text}".strip()
        ident = self.quick_identity(
            team_id=command.get("team_id", ""),
            user_id=command.get("user_id", ""),
            channel_id=command.get("channel_id"),
            name=command.get("user_name"),
        )
        ctx = self.pipeline.request(self.services, ident)
        admitted = await self.pipeline.admit(ctx, Invocation.line(line))
        if isinstance(admitted, Admitted):
            busy = await self.executor.busy(ident)
            if busy is not None:
                admitted = Reply.error(busy, title="One moment")
        if not isinstance(admitted, Admitted):
            await ack(response_type="ephemeral", text=escape(admitted.body))
            return
        await ack()
        metrics.ACK_SECONDS.labels(surface="slack").observe(time.perf_counter() - ctx.born)
        route = SlackRoute(
            channel=command.get("channel_id"),
            response_url=_secret(command.get("response_url")),
            user=ident.user,
            asked=line[:200],
        )
        await self._submit(admitted, route, key=f"slack:{command.get('trigger_id') or ctx.request_id}")

    async def _on_link(self, ack: AsyncAck) -> None:
        """A link button was clicked: Slack opened its page; the click only needs acknowledging."""
        await ack()

    async def _on_action(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user = body.get("user") or {}
        team = (body.get("team") or {}).get("id") or user.get("team_id", "")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or (body.get("container") or {}).get("thread_ts")
        invocation = action.get("value") or ""
        ident = self.quick_identity(
            team_id=team, user_id=user.get("id", ""), channel_id=channel, name=user.get("username") or user.get("name")
        )
        ctx = self.pipeline.request(self.services, ident)
        admitted = await self.pipeline.admit(ctx, Invocation.line(invocation))
        if isinstance(admitted, Admitted):
            busy = await self.executor.busy(ident)
            if busy is not None:
                admitted = Reply.error(busy, title="One moment")
        if not isinstance(admitted, Admitted):
            await respond(response_type="ephemeral", replace_original=False, text=escape(admitted.body))
            return
        label = (action.get("text") or {}).get("text") or "a button"
        route = SlackRoute(
            channel=channel,
            thread_ts=thread_ts,
            response_url=_secret(body.get("response_url")),
            user=ident.user,
            asked=invocation[:200],
            clicked=str(label)[:80],
        )
        await self._submit(admitted, route, key=f"slack:{body.get('trigger_id') or ctx.request_id}")

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        bot_user = context.get("bot_user_id") or ""
        text = re.sub(rf"<@{re.escape(bot_user)}(\|[^>]*)?>", " ", event.get("text", "")) if bot_user else event.get("text", "")
        thread_ts = event.get("thread_ts") or event.get("ts")
        await self._free_text(event, body, unescape(text).strip(), thread_ts=thread_ts)

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        # only direct messages from people: channel chatter, edits and bot posts are not for the coach
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        await self._free_text(event, body, unescape(event.get("text", "")).strip(), thread_ts=event.get("thread_ts"))

    async def _free_text(self, event: dict[str, Any], body: dict[str, Any], text: str, *, thread_ts: str | None) -> None:
        team = event.get("team") or body.get("team_id", "")
        user, channel = event.get("user", ""), event.get("channel", "")
        ident = await self.identity(team_id=team, user_id=user, channel_id=channel, channel_type=event.get("channel_type"))
        ctx = self.pipeline.request(self.services, ident)
        admitted = await self.pipeline.admit(ctx, Invocation.line(text or "/help"))
        if isinstance(admitted, Admitted):
            busy = await self.executor.busy(ident)
            if busy is not None:
                admitted = Reply.error(busy, title="One moment")
        # an error here cannot be private to one message in a DM or thread, so it is posted like any reply
        if not isinstance(admitted, Admitted):
            reply = admitted.model_copy(update={"ephemeral": False}) if ident.dm else admitted
            await self.replier.post(reply, channel=channel, thread_ts=thread_ts, user=user, request_id=ctx.request_id)
            return
        route = SlackRoute(channel=channel, thread_ts=thread_ts, user=user, public_errors=ident.dm)
        key = event.get("client_msg_id") or f"{channel}:{event.get('ts')}"
        await self._submit(admitted, route, key=f"slack:{key}")

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("slack_listener_failed", request_id=current_request_id(), error=repr(error), exc_info=error)

    # --- handing over ---------------------------------------------------------------------------

    async def _submit(self, admitted: Admitted, route: SlackRoute, *, key: str) -> None:
        """Hand an admitted request to the executor; its worker posts the answer."""
        job = Job.of(admitted, route, key=key, now=utc_now())
        if admitted.args is not None:
            self.recent.add(admitted.ctx.identity, symbols_in(admitted.args))
        await self.executor.submit(job)


def seen_requests(services: Services) -> SeenRequests:
    """Where signatures are remembered: Redis when fronts share COACH_QUEUE_URL's, else this process."""
    return RedisSeen(services.redis) if services.redis is not None else MemorySeen()


def _secret(value: object) -> SecretStr | None:
    return SecretStr(value) if isinstance(value, str) and value else None


class SlackReplier:
    """Posts a reply into Slack: Block Kit messages and uploaded files, or privately when it is an error.

    Where the app is not a member of the conversation, the reply goes through the command's
    response URL instead (without files, and saying so). Used by the surface and by workers.
    """

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post(
        self,
        reply: Reply,
        *,
        channel: str | None,
        thread_ts: str | None,
        user: str,
        respond: AsyncRespond | None = None,
        who: WhoAsked | None = None,
        request_id: str = "-",
    ) -> None:
        """Deliver a reply: privately when it is an error, else as messages + uploaded files; `who` asked for it."""
        ref = request_id
        messages = render(reply, who=who)
        try:
            if reply.ephemeral:
                await self._post_private(messages, channel=channel, thread_ts=thread_ts, user=user, respond=respond)
                return
            await post_reply(self.client, reply, channel=channel or "", thread_ts=thread_ts, messages=messages)
        except SlackApiError as exc:
            err = exc.response.get("error") if exc.response is not None else None
            if err in NOT_A_MEMBER and respond is not None:
                # the app is not in this conversation: answer through the response URL, which needs no membership
                for m in messages:
                    await respond(response_type="in_channel", replace_original=False, text=m.text, blocks=m.blocks)
                if reply.attachments:
                    await respond(
                        response_type="ephemeral",
                        replace_original=False,
                        text="Invite me to this channel (`/invite @coach`) to get the chart image here.",
                    )
                return
            log.error("slack_post_failed", error=err, request_id=ref)
            await self._tell_failure(respond, ref)
        except Exception:  # a dropped connection or a bug: logged with the reference the person sees
            log.exception("slack_post_failed", request_id=ref)
            await self._tell_failure(respond, ref)

    async def _tell_failure(self, respond: AsyncRespond | None, ref: str) -> None:
        if respond is None:
            return
        try:
            await respond(
                response_type="ephemeral", replace_original=False, text=f"something went wrong sending the reply (ref {ref})"
            )
        except Exception:  # the response URL is gone too; the log has the details
            log.warning("slack_respond_failed", request_id=ref)

    async def _post_private(
        self, messages: list[SlackMessage], *, channel: str | None, thread_ts: str | None, user: str, respond: AsyncRespond | None
    ) -> None:
        for m in messages:
            if respond is not None:
                await respond(response_type="ephemeral", replace_original=False, text=m.text, blocks=m.blocks)
            else:
                await self.client.chat_postEphemeral(
                    channel=channel or "", user=user, text=m.text, blocks=m.blocks, thread_ts=thread_ts
                )


async def post_reply(
    client: AsyncWebClient,
    reply: Reply,
    *,
    channel: str,
    thread_ts: str | None = None,
    messages: list[SlackMessage] | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[str]:
    """Post a reply's messages, then upload its files into the same channel/thread; returns the message timestamps."""
    stamps: list[str] = []
    for m in messages if messages is not None else render(reply):
        kw: dict[str, Any] = {
            "channel": channel,
            "text": m.text,
            "blocks": m.blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            kw["thread_ts"] = thread_ts
        if metadata:
            kw["metadata"] = metadata
        resp = await client.chat_postMessage(**kw)
        stamps.append(resp.get("ts", ""))
    for att in reply.attachments:
        up: dict[str, Any] = {
            "channel": channel,
            "file": att.data,
            "filename": att.filename,
            "title": att.description or att.filename,
        }
        if thread_ts:
            up["thread_ts"] = thread_ts
        await client.files_upload_v2(**up)
    return stamps
