"""Where outbox messages go: the Destination protocol, the registry of destination kinds, and the built-in kinds.

A destination delivers one Reply to one target and either returns (delivered) or raises:

* `core.errors.RateLimited(retry_after=seconds)` on a 429: the dispatcher waits exactly that long;
* `DeliveryError(permanent=True)` when retrying cannot help (a revoked webhook, a bad payload);
* any other exception: a transient failure, retried with backoff.

The idempotency key identifies the event; destinations that can pass it on do (the webhook
sends it as the `Idempotency-Key` header and in the body), so a receiver can drop the rare
repeat that at-least-once delivery allows.

Target strings, by kind:

    console                     anything (printed on this process's console)
    discord, slack, ...         "channel:<channel id>", "thread:<channel id>:<thread name>" (a thread per
                                symbol: the destination finds or opens it), "dm:<user id>"
    webhook, discord_webhook,
    slack_webhook               the URL (shown masked everywhere)

Surfaces register their kinds: `register_destination_kind("discord", lambda services: ...)`.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, runtime_checkable
from urllib.parse import urlsplit

import httpx

from core.errors import ConfigError, ProviderError, RateLimited
from bot.reply import Reply
from providers.http import retry_after_header

if TYPE_CHECKING:
    from bot.services import Services


@runtime_checkable
class Destination(Protocol):
    """Delivers a Reply to a target; raises RateLimited on 429 and DeliveryError when it cannot."""

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None: ...


class DeliveryError(ProviderError):
    """A delivery failed; `permanent` means retrying will not help."""

    def __init__(self, provider: str, reason: str, *, permanent: bool = False) -> None:
        super().__init__(provider, reason)
        self.permanent = permanent


DestinationFactory = Callable[["Services"], Destination]
_KINDS: dict[str, DestinationFactory] = {}
#: Kinds whose target is a URL (added by admins as extra sinks).
WEBHOOK_KINDS = ("webhook", "discord_webhook", "slack_webhook")


def register_destination_kind(kind: str, factory: DestinationFactory) -> None:
    """Make `kind` deliverable: `factory(services)` builds its destination (once per dispatcher)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", kind):
        raise ValueError(f"destination kind {kind!r} must be lower-case letters, digits and _")
    _KINDS[kind] = factory


def destination_kinds() -> list[str]:
    """Every registered kind."""
    return sorted(_KINDS)


def build_destination(kind: str, services: "Services") -> Destination:
    """The destination for `kind`, or ConfigError naming the kinds this process can deliver to."""
    factory = _KINDS.get(kind)
    if factory is None:
        raise ConfigError(f"no destination for {kind!r} in this process; available: {', '.join(destination_kinds())}")
    return factory(services)


# ---------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """A parsed chat target: where in the platform a message goes."""

    route: str  # channel, thread, dm
    id: str  # channel id or user id
    thread: str | None = None


def format_target(route: str, *, channel: str | None, user: str, thread: str | None = None) -> str:
    """The target string for a route ("channel", "thread" with a name, "dm")."""
    if route == "dm" or not channel:
        return f"dm:{user}"
    if route == "thread" and thread:
        return f"thread:{channel}:{thread}"
    return f"channel:{channel}"


def parse_target(target: str) -> Target:
    """Split a chat target string; ValueError when it is not one."""
    route, _, rest = target.partition(":")
    if route == "thread":
        cid, _, name = rest.partition(":")
        if cid and name:
            return Target("thread", cid, name)
    elif route in ("channel", "dm") and rest:
        return Target(route, rest)
    raise ValueError(f"not a chat target: {target[:60]!r}")


def mask_url(url: str) -> str:
    """A webhook URL without its secret part: scheme, host and the first path segment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<bad url>"
    segs = [s for s in parts.path.split("/") if s]
    shown = "/".join(segs[:2])
    return f"{parts.scheme}://{parts.netloc}/{shown}/…" if parts.netloc else "<bad url>"


def describe_target(kind: str, target: str) -> str:
    """A target as it may be shown to people (webhook secrets masked)."""
    return f"{kind} {mask_url(target)}" if kind in WEBHOOK_KINDS else f"{kind} {target}"


# ---------------------------------------------------------------------- console


class ConsoleDestination:
    """Prints the reply on this process's console (the offline default), images saved under the out dir."""

    def __init__(self, stream: TextIO | None = None, out_dir: Path | None = None) -> None:
        from rich.console import Console

        self.console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        self.out_dir = out_dir or Path("./out")
        self.sent: list[tuple[str, str]] = []

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None:
        from bot.surfaces.console import print_reply

        self.console.print("[dim]── pushed ──[/]")
        print_reply(reply, self.console, self.out_dir)
        self.console.print()
        self.sent.append((idempotency_key, reply.title))


# ---------------------------------------------------------------------- webhooks


def retry_after_seconds(resp: httpx.Response) -> float | None:
    """Seconds to wait from a 429: the JSON `retry_after` (Discord) or the rate-limit headers."""
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("retry_after") is not None:
            return max(0.0, float(body["retry_after"]))
    except (ValueError, TypeError):
        pass
    return retry_after_header(resp.headers)


def check_webhook_response(provider: str, url: str, resp: httpx.Response) -> None:
    """Return on 2xx; raise RateLimited on 429, DeliveryError otherwise (permanent when retrying cannot help)."""
    if 200 <= resp.status_code < 300:
        return
    if resp.status_code == 429:
        raise RateLimited(provider, f"{mask_url(url)} rate limited", retry_after=retry_after_seconds(resp))
    permanent = resp.status_code in (400, 401, 403, 404, 410, 413, 422)
    raise DeliveryError(provider, f"{mask_url(url)} answered {resp.status_code} {_short(resp.text)}".strip(), permanent=permanent)


class WebhookDestination:
    """POSTs a generic JSON rendering of the reply to a URL, with an `Idempotency-Key` header.

    Body: {"idempotency_key", "title", "body", "severity", "fields", "actions", "footer",
    "as_of", "data", "attachments": [{"filename", "mime", "size"}]}. Discord webhooks and Slack
    incoming webhooks have their own kinds, rendered as the bots render their messages
    (`bot.surfaces.destinations`).
    """

    kind = "webhook"

    def __init__(self, *, client: httpx.AsyncClient | None = None, timeout: float = 10.0) -> None:
        self._client = client
        self._own = client is None
        self.timeout = timeout

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = webhook_client(self.timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._own:
            await self._client.aclose()
            self._client = None

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None:
        if not target.startswith(("http://", "https://")):
            raise DeliveryError(self.kind, "the webhook URL is not http(s)", permanent=True)
        http = await self._http()
        try:
            resp = await http.post(target, json=generic_payload(reply, idempotency_key), headers={"Idempotency-Key": idempotency_key})
        except httpx.TimeoutException:
            raise DeliveryError(self.kind, f"{mask_url(target)} timed out") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(self.kind, f"{mask_url(target)} unreachable ({exc.__class__.__name__})") from None
        check_webhook_response(self.kind, target, resp)


def webhook_client(timeout: float = 10.0) -> httpx.AsyncClient:
    """The HTTP client webhooks are posted with: bounded time, no redirects (a webhook URL never moves)."""
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False)


def _short(text: str) -> str:
    return " ".join((text or "").split())[:120]


def generic_payload(reply: Reply, key: str) -> dict[str, Any]:
    """The generic webhook JSON body of a reply."""
    return {
        "idempotency_key": key,
        "title": reply.title,
        "body": reply.body,
        "severity": reply.severity,
        "fields": [f.model_dump() for f in reply.fields],
        "actions": [a.model_dump() for a in reply.actions],
        "footer": reply.footer(),
        "as_of": reply.as_of.isoformat() if reply.as_of else None,
        "data": reply.data_json(),
        "attachments": [{"filename": a.filename, "mime": a.mime, "size": len(a.data)} for a in reply.attachments],
    }


# ---------------------------------------------------------------------- registration of the built-in kinds


def _console_factory(services: "Services") -> Destination:
    return ConsoleDestination(out_dir=Path(services.settings.coach_out_dir))


def _platform_webhook_factory(kind: str) -> DestinationFactory:
    def build(services: "Services") -> Destination:
        # imported when first used: the rendering is the bots' own (embeds, Block Kit), which pulls in their libraries
        from bot.surfaces.destinations import platform_webhook

        return platform_webhook(kind)

    return build


register_destination_kind("console", _console_factory)
register_destination_kind("webhook", lambda services: WebhookDestination())
register_destination_kind("discord_webhook", _platform_webhook_factory("discord_webhook"))
register_destination_kind("slack_webhook", _platform_webhook_factory("slack_webhook"))


async def close_destinations(dests: dict[str, Destination]) -> None:
    """Close the destinations that hold connections."""
    for d in dests.values():
        closer = getattr(d, "aclose", None)
        if closer is not None:
            try:
                await closer()
            except Exception:  # closing must never mask the reason we are stopping
                pass
    await asyncio.sleep(0)
