"""Where outbox messages go: the Destination protocol, the registry of destination kinds, and the built-in kinds.

A destination delivers one Reply to one target and either returns (delivered) or raises:

* `analytics.errors.RateLimited(retry_after=seconds)` on a 429: the dispatcher waits exactly that long;
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
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, runtime_checkable
from urllib.parse import urlsplit

import httpx

from analytics.errors import ConfigError, ProviderError, RateLimited
from bot.reply import Reply

if TYPE_CHECKING:
    from bot.context import Services


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


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds to wait from a 429: the JSON `retry_after` (Discord) or the Retry-After header (seconds or a date)."""
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("retry_after") is not None:
            return max(0.0, float(body["retry_after"]))
    except (ValueError, TypeError):
        pass
    header = resp.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                when = parsedate_to_datetime(header)
                return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())
            except (TypeError, ValueError):
                return None
    return None


class WebhookDestination:
    """POSTs a JSON rendering of the reply to a URL (generic, Discord webhook or Slack incoming webhook).

    Generic body: {"idempotency_key", "title", "body", "severity", "fields", "actions", "footer",
    "as_of", "data", "attachments": [{"filename", "mime", "size"}]} with an `Idempotency-Key`
    header. Discord webhooks get content + an embed (and the chart as `files[0]`), Slack
    incoming webhooks get text + Block Kit blocks (they cannot carry files).
    """

    def __init__(self, kind: str = "webhook", *, client: httpx.AsyncClient | None = None, timeout: float = 10.0) -> None:
        if kind not in WEBHOOK_KINDS:
            raise ValueError(f"unknown webhook kind {kind!r}")
        self.kind = kind
        self._client = client
        self._own = client is None
        self.timeout = timeout

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._own:
            await self._client.aclose()
            self._client = None

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None:
        if not target.startswith(("http://", "https://")):
            raise DeliveryError(self.kind, "the webhook URL is not http(s)", permanent=True)
        http = await self._http()
        headers = {"Idempotency-Key": idempotency_key}
        try:
            if self.kind == "discord_webhook":
                resp = await self._post_discord(http, target, reply, headers)
            elif self.kind == "slack_webhook":
                resp = await http.post(target, json=slack_payload(reply), headers=headers)
            else:
                resp = await http.post(target, json=generic_payload(reply, idempotency_key), headers=headers)
        except httpx.TimeoutException:
            raise DeliveryError(self.kind, f"{mask_url(target)} timed out") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(self.kind, f"{mask_url(target)} unreachable ({exc.__class__.__name__})") from None
        if resp.status_code == 429:
            raise RateLimited(self.kind, f"{mask_url(target)} rate limited", retry_after=_retry_after(resp))
        if 200 <= resp.status_code < 300:
            return
        detail = _short(resp.text)
        permanent = resp.status_code in (400, 401, 403, 404, 410, 413, 422)
        raise DeliveryError(self.kind, f"{mask_url(target)} answered {resp.status_code} {detail}".strip(), permanent=permanent)

    async def _post_discord(self, http: httpx.AsyncClient, url: str, reply: Reply, headers: dict) -> httpx.Response:
        payload = discord_payload(reply)
        images = [a for a in reply.attachments if a.mime in ("image/png", "image/jpeg", "image/gif", "image/webp")][:1]
        params = {"wait": "true"}
        if not images:
            return await http.post(url, params=params, json=payload, headers=headers)
        att = images[0]
        payload["attachments"] = [{"id": 0, "filename": att.filename}]
        if payload.get("embeds"):
            payload["embeds"][0]["image"] = {"url": f"attachment://{att.filename}"}
        return await http.post(
            url, params=params, data={"payload_json": json.dumps(payload)},
            files={"files[0]": (att.filename, att.data, att.mime)}, headers=headers,
        )


def _short(text: str) -> str:
    return " ".join((text or "").split())[:120]


_COLORS = {"info": 0x3498DB, "success": 0x2ECC71, "warning": 0xF1C40F, "error": 0xE74C3C}


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


def discord_payload(reply: Reply) -> dict[str, Any]:
    """A Discord webhook body: title as content, one embed within Discord's limits, no mentions."""
    embed: dict[str, Any] = {
        "title": reply.title[:256],
        "description": reply.body[:4096],
        "color": _COLORS.get(reply.severity, 0x3498DB),
        "fields": [{"name": f.name[:256], "value": (f.value or "—")[:1024], "inline": f.inline} for f in reply.fields[:25]],
    }
    foot = reply.footer()
    if reply.actions:
        foot = (foot + " · " if foot else "") + " · ".join(f"{a.label}: {a.command}" for a in reply.actions)
    if foot:
        embed["footer"] = {"text": foot[:2048]}
    if reply.as_of:
        embed["timestamp"] = reply.as_of.isoformat()
    # all embed text together must stay under 6000 characters
    total = len(embed["title"]) + len(embed["description"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    if total > 5800:
        embed["description"] = embed["description"][: max(0, 4096 - (total - 5800))]
    return {"content": reply.title[:2000], "embeds": [embed], "allowed_mentions": {"parse": []}}


def slack_payload(reply: Reply) -> dict[str, Any]:
    """A Slack incoming-webhook body: fallback text plus Block Kit sections."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": reply.title[:150]}}]
    if reply.body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": reply.body[:3000]}})
    if reply.fields:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{f.name[:100]}*\n{(f.value or '—')[:1900]}"} for f in reply.fields[:10]
        ]})
    ctx = reply.footer()
    if reply.actions:
        ctx = (ctx + " · " if ctx else "") + " · ".join(f"{a.label}: `{a.command}`" for a in reply.actions)
    if ctx:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": ctx[:3000]}]})
    return {"text": f"{reply.title}\n{reply.body}"[:3000], "blocks": blocks}


# ---------------------------------------------------------------------- registration of the built-in kinds


def _console_factory(services: "Services") -> Destination:
    return ConsoleDestination(out_dir=Path(services.settings.coach_out_dir))


register_destination_kind("console", _console_factory)
for _kind in WEBHOOK_KINDS:
    register_destination_kind(_kind, lambda services, _k=_kind: WebhookDestination(_k))


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
