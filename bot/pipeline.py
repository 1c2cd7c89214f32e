"""Turn text or a parsed invocation into a Reply, mapping every error to a short reply."""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable

import structlog
from pydantic import BaseModel

import bot.commands  # noqa: F401 - registers every command module
from core.errors import ConfigError, ProviderError, UserError
from bot.request import Ctx
from bot.registry import MAX_TEXT, REGISTRY, Command, Registry
from bot.reply import Reply

log = structlog.get_logger("coach.dispatch")

#: Handles text that is not a /command (the LLM coach or the rule-based intent parser).
FreeTextHandler = Callable[[Ctx, str], Awaitable[Reply]]


async def invoke(ctx: Ctx, cmd: Command, args: BaseModel) -> Reply:
    """Run one command, turning errors into replies. Never raises."""
    return await guarded(ctx, cmd.name, lambda: _run(ctx, cmd, args))


async def _run(ctx: Ctx, cmd: Command, args: BaseModel) -> Reply:
    if cmd.admin and not ctx.identity.is_admin:
        raise UserError(f"/{cmd.name} is for server/workspace admins only")
    return await cmd.handler(ctx, args)


async def guarded(ctx: Ctx, what: str, fn: Callable[[], Awaitable[Reply]]) -> Reply:
    """Await `fn`, mapping UserError/ProviderError/ConfigError to replies and bugs to a reference id."""
    try:
        return await fn()
    except UserError as exc:
        return Reply.error(exc.message)
    except ProviderError as exc:
        log.warning("provider_error", provider=exc.provider, reason=exc.reason, request_id=ctx.request_id, command=what)
        if exc.transient:
            return Reply.error(f"data provider {exc.provider} failed: {exc.reason}. Try again shortly.", title="Data unavailable")
        return Reply.error(f"data provider {exc.provider} cannot serve this: {exc.reason}. Trying again will not help; "
                           "the operator can configure another provider (COACH_PROVIDER).", title="Data unavailable")
    except ConfigError as exc:
        log.error("config_error", error=exc.message, request_id=ctx.request_id, command=what)
        return Reply.error(f"the service is misconfigured ({exc.message}); tell the operator. (ref {ctx.request_id})", title="Service problem")
    except Exception:
        log.exception("command_failed", request_id=ctx.request_id, command=what)
        return Reply.error(f"something went wrong (ref {ctx.request_id})", title="Something went wrong")


def parse_invocation(text: str, registry: Registry = REGISTRY) -> tuple[Command, BaseModel]:
    """Parse `/name args...` into a command and its validated arguments, or raise UserError."""
    if len(text) > MAX_TEXT:
        raise UserError(f"message too long ({len(text)} characters); keep it under {MAX_TEXT}")
    body = text.strip().lstrip("/")
    try:
        words = shlex.split(body)
    except ValueError:
        # an apostrophe in free text ("/ask what's the IV?") is not a quote: commands whose
        # last field takes free text get plain words; others hear about the quotes
        words = body.split()
        cmd, rest = registry.resolve(words)
        if not any(s.greedy for s in cmd.arg_specs()):
            raise UserError("unbalanced quotes in the command") from None
        return cmd, cmd.parse_tokens(rest)
    cmd, rest = registry.resolve(words)
    return cmd, cmd.parse_tokens(rest)


async def run_text(ctx: Ctx, text: str, free_text: FreeTextHandler | None = None, registry: Registry = REGISTRY) -> Reply:
    """Answer one line: a /command, or free text for the coach. Never raises."""
    text = _clean(text)
    if not text:
        return Reply.error("empty message; type /help for the commands")
    if text.startswith("/"):
        async def _go() -> Reply:
            cmd, args = parse_invocation(text, registry)
            return await _run(ctx, cmd, args)

        return await guarded(ctx, text.split()[0][:32], _go)
    handler = free_text or ctx.services.extras.get("free_text")
    if handler is None:
        return Reply(title="Commands start with /", body="I answer commands like `/quote TSLA` or `/watch add NVDA`. Type /help for the list.")
    if len(text) > MAX_TEXT:
        return Reply.error(f"message too long ({len(text)} characters); keep it under {MAX_TEXT}")
    return await guarded(ctx, "free_text", lambda: handler(ctx, text))


def _clean(text: str) -> str:
    """Strip control characters (binary junk) while keeping ordinary unicode text."""
    if not isinstance(text, str):
        return ""
    return "".join(ch for ch in text if ch in "\t\n" or (ch.isprintable())).strip()
