"""The one request pipeline: every way in passes here, in this order.

    identity -> request id -> rate limit -> admin check -> argument validation -> handler -> error mapping -> Reply

Discord (slash commands, buttons, DMs, mentions), Slack (commands, buttons, mentions, DMs), the
console, the CLI twins and the coach's tool calls all call it. A surface only turns platform
input into an `Identity` and an `Invocation`, and renders the `Reply`.

The pipeline has two halves so that a chat front can answer before it acknowledges:

- `request` + `admit` are cheap (no handler, no I/O but a platform's admin lookup for an
  admin-only command): they give the request its id, take a rate-limit token, check admin rights
  and validate the arguments. A request that cannot run is answered at once with an error Reply
  (privately, where the platform allows it).
- `execute` runs the handler of an admitted request and maps every error to a Reply: a
  `UserError` to its message, a `ProviderError` to what failed and whether trying again helps,
  a `ConfigError` to "tell the operator", anything else to "something went wrong (ref ...)" with
  the traceback in the log. It never raises.

`handle` does both, for surfaces that have nothing to do in between.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pydantic import BaseModel

from bot import metrics
from bot.freshness import stamp as stamp_freshness
from bot.ratelimit import Limiter
from bot.registry import MAX_TEXT, Command, Registry
from bot.reply import Reply
from bot.request import Ctx, Identity, new_request_id
from bot.services import Services
from core.errors import ConfigError, ProviderError, UserError

log = structlog.get_logger("coach.pipeline")

#: Handles text that is not a /command: the LLM coach, or the rule-based intent parser.
FreeTextHandler = Callable[[Ctx, str], Awaitable[Reply]]

#: Platforms whose people share the service and so are rate limited (the console is the operator's own).
LIMITED_PLATFORMS = frozenset({"discord", "slack"})

#: Who counts as an admin, as people on each platform know it.
ADMIN_WORDING = {
    "discord": "members with Manage Server",
    "slack": "workspace admins",
}


@dataclass(frozen=True)
class Invocation:
    """What a surface asks for: a line of text, or a command by name with argument values.

    A line starting with `/` is a command (`/plan TSLA swing`); any other line is free text for
    the coach. Values come from platforms that parse options themselves (Discord's slash options,
    the model's tool-call JSON, the CLI's options).
    """

    text: str | None = None
    command: str | None = None
    values: Mapping[str, Any] | None = None

    @classmethod
    def line(cls, text: str) -> Invocation:
        return cls(text=text)

    @classmethod
    def call(cls, command: str, values: Mapping[str, Any] | None = None) -> Invocation:
        return cls(command=command, values=dict(values or {}))

    def label(self) -> str:
        """A short name for logs: the command, or "free_text"."""
        if self.command:
            return self.command
        text = (self.text or "").strip()
        return text.split()[0][:32] if text.startswith("/") else "free_text"


@dataclass
class Admitted:
    """A request that passed the front checks and is ready to run."""

    ctx: Ctx
    #: The command to run, or None for free text (`text`) for the coach.
    command: Command | None
    args: BaseModel | None = None
    text: str = ""


class Pipeline:
    """Runs requests for the commands of `registry`, rate limited per person by `limiter`."""

    def __init__(self, registry: Registry, limiter: Limiter) -> None:
        self.registry = registry
        self.limiter = limiter

    # ------------------------------------------------------------------ the front half

    def request(
        self, services: Services, identity: Identity, *, as_of: datetime | None = None, request_id: str | None = None
    ) -> Ctx:
        """The context of a new request: its identity, pinned time and id (born here unless the caller carries one).

        The id is bound to this task's log context, so every line logged while the front handles the
        request carries it (each Discord event, Slack request and console line runs in its own context).
        """
        ctx = Ctx(services=services, identity=identity, as_of=as_of, request_id=request_id or new_request_id())
        bind_request(ctx.request_id, identity)
        return ctx

    async def admit(self, ctx: Ctx, invocation: Invocation, *, limit: bool = True) -> Admitted | Reply:
        """Rate limit, admin check and validation: an `Admitted` request, or the error Reply to answer at once.

        `limit=False` is for requests inside a request that already took its token (the coach's
        tool calls within one message).
        """
        if limit and ctx.identity.platform in LIMITED_PLATFORMS:
            ident = ctx.identity
            wait = await self.limiter.acquire((ident.platform, ident.tenant, ident.user))
            if wait:
                return _front_error(ctx, Reply.error(self.limiter.message(wait), title="Slow down"), "rate_limited")
        try:
            if invocation.command is not None:
                cmd = self.registry.commands.get(invocation.command)
                if cmd is None:
                    raise UserError(f"unknown command /{invocation.command[:32]}; try /help")
                await self._check_admin(ctx, cmd)
                return Admitted(ctx, cmd, cmd.validate(dict(invocation.values or {})))
            text = clean_text(invocation.text or "")
            if not text:
                raise UserError("empty message; type /help for the commands")
            if len(text) > MAX_TEXT:
                raise UserError(f"message too long ({len(text)} characters); keep it under {MAX_TEXT}")
            if not text.startswith("/"):
                return Admitted(ctx, None, text=text)
            cmd, rest = self._resolve(text)
            await self._check_admin(ctx, cmd)
            return Admitted(ctx, cmd, cmd.parse_tokens(rest))
        except UserError as exc:
            return _front_error(ctx, Reply.error(exc.message), "rejected")

    def parse_line(self, text: str) -> tuple[Command, BaseModel]:
        """The command a `/name args...` line names and its validated arguments, or UserError."""
        cmd, rest = self._resolve(text)
        return cmd, cmd.parse_tokens(rest)

    def _resolve(self, text: str) -> tuple[Command, list[str]]:
        body = text.strip().lstrip("/")
        try:
            return self.registry.resolve(shlex.split(body))
        except ValueError:
            # an apostrophe in free text ("/ask what's the IV?") is not a quote: commands whose
            # last field takes free text get plain words; others hear about the quotes
            cmd, rest = self.registry.resolve(body.split())
            if not any(s.greedy for s in cmd.arg_specs()):
                raise UserError("unbalanced quotes in the command") from None
            return cmd, rest

    @staticmethod
    async def _check_admin(ctx: Ctx, cmd: Command) -> None:
        ident = ctx.identity
        if not cmd.admin or ident.is_admin:
            return
        if ident.admin_lookup is not None and await ident.admin_lookup():
            ctx.identity = dataclasses.replace(ident, is_admin=True, admin_lookup=None)
            return
        who = ADMIN_WORDING.get(ident.platform, "server or workspace admins")
        raise UserError(f"/{cmd.name} is for admins only ({who})")

    # ------------------------------------------------------------------ the back half

    async def execute(self, admitted: Admitted) -> Reply:
        """Run an admitted request; every error becomes a Reply. Never raises."""
        ctx, cmd = admitted.ctx, admitted.command
        what = cmd.name if cmd is not None else "free_text"
        ident = ctx.identity
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(
            request_id=ctx.request_id, command=what, surface=ident.platform, tenant=ident.tenant, user=ident.user
        ):
            reply = await self._run(ctx, admitted, what)
            seconds = time.perf_counter() - started
            if ctx.model_turn is None:  # a tool call of the coach is part of its turn, counted as the turn
                metrics.COMMAND_SECONDS.labels(
                    command=what, surface=ident.platform, outcome=metrics.outcome_of(reply.error_kind)
                ).observe(seconds)
            log.info("command_done", duration=round(seconds, 4), outcome=metrics.outcome_of(reply.error_kind))
            return reply

    async def _run(self, ctx: Ctx, admitted: Admitted, what: str) -> Reply:
        cmd = admitted.command
        try:
            if cmd is not None:
                return stamp_freshness(await cmd.handler(ctx, admitted.args), ctx)
            handler = ctx.services.free_text
            if handler is None:
                return Reply(
                    title="Commands start with /",
                    body="I answer commands like `/quote TSLA` or `/watch add NVDA`. Type /help for the list.",
                )
            return stamp_freshness(await handler(ctx, admitted.text), ctx)
        except Exception as exc:  # every error becomes a reply; bugs are logged with the reference people see
            return error_reply(exc, ctx.request_id, what)

    async def handle(self, ctx: Ctx, invocation: Invocation, *, limit: bool = True) -> Reply:
        """Admit and execute one request. Never raises."""
        admitted = await self.admit(ctx, invocation, limit=limit)
        if isinstance(admitted, Reply):
            return admitted
        return await self.execute(admitted)


def error_reply(exc: BaseException, request_id: str, what: str) -> Reply:
    """The Reply for an error raised while serving a request, sorted by who must act."""
    if isinstance(exc, UserError):
        return Reply.error(exc.message)
    if isinstance(exc, ProviderError):
        log.warning("provider_error", provider=exc.provider, reason=exc.reason, request_id=request_id, command=what)
        if exc.transient:
            return Reply.error(
                f"data provider {exc.provider} failed: {exc.reason}. Try again shortly.",
                title="Data unavailable",
                kind="provider",
            )
        return Reply.error(
            f"data provider {exc.provider} cannot serve this: {exc.reason}. Trying again will not help; "
            "the operator can configure another provider (COACH_PROVIDER).",
            title="Data unavailable",
            kind="provider",
        )
    if isinstance(exc, ConfigError):
        log.error("config_error", error=exc.message, request_id=request_id, command=what)
        return Reply.error(
            f"the service is misconfigured ({exc.message}); tell the operator. (ref {request_id})",
            title="Service problem",
            kind="config",
        )
    log.error("command_failed", request_id=request_id, command=what, exc_info=exc)
    return Reply.error(f"something went wrong (ref {request_id})", title="Something went wrong", kind="bug")


def _front_error(ctx: Ctx, reply: Reply, event: str) -> Reply:
    log.info("request_" + event, request_id=ctx.request_id, surface=ctx.identity.platform, reason=reply.body[:200])
    return reply


def bind_request(request_id: str, identity: Identity) -> None:
    """Make every log line of this context carry the request id, its surface and who asked (hashed in the log)."""
    structlog.contextvars.bind_contextvars(
        request_id=request_id, surface=identity.platform, tenant=identity.tenant, user=identity.user
    )


def clean_text(text: str) -> str:
    """Strip control characters (binary junk) while keeping ordinary unicode text."""
    if not isinstance(text, str):
        return ""
    return "".join(ch for ch in text if ch in "\t\n" or ch.isprintable()).strip()
