"""Where outbox messages go: the Destination protocol, the kinds a process can deliver to, and chat targets.

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

The implementations live with the surfaces that render them (`bot.surfaces.console`,
`bot.surfaces.webhooks`, `bot.surfaces.channel_destinations`); the composition root hands them to the
runtime as `DestinationKinds`, so the runtime never imports a surface.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.reply import Reply
from core.errors import ConfigError, ProviderError
from core.urls import mask_url


@runtime_checkable
class Destination(Protocol):
    """Delivers a Reply to a target; raises RateLimited on 429 and DeliveryError when it cannot."""

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None: ...


class DeliveryError(ProviderError):
    """A delivery failed; `permanent` means retrying will not help."""

    def __init__(self, provider: str, reason: str, *, permanent: bool = False) -> None:
        super().__init__(provider, reason)
        self.permanent = permanent


DestinationFactory = Callable[[], Destination]
#: Kinds whose target is a URL (added by admins as extra sinks).
WEBHOOK_KINDS = ("webhook", "discord_webhook", "slack_webhook")


class DestinationKinds:
    """The destination kinds this process can deliver to, each with the factory that builds its destination.

    The composition root fills it (console, webhooks, and Discord/Slack when their bots run here);
    the dispatcher builds each kind's destination once, when a message for it first comes up.
    """

    def __init__(self, factories: dict[str, DestinationFactory] | None = None) -> None:
        self._factories: dict[str, DestinationFactory] = {}
        for kind, factory in (factories or {}).items():
            self.add(kind, factory)

    def add(self, kind: str, factory: DestinationFactory) -> None:
        """Make `kind` deliverable (a later factory for the same kind replaces the earlier one)."""
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", kind):
            raise ValueError(f"destination kind {kind!r} must be lower-case letters, digits and _")
        self._factories[kind] = factory

    def kinds(self) -> list[str]:
        """Every deliverable kind."""
        return sorted(self._factories)

    def build(self, kind: str) -> Destination:
        """The destination for `kind`, or ConfigError naming the kinds this process can deliver to."""
        factory = self._factories.get(kind)
        if factory is None:
            raise ConfigError(f"no destination for {kind!r} in this process; available: {', '.join(self.kinds())}")
        return factory()


class PartProgress:
    """How many parts of each idempotency key were already delivered (bounded, in memory)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._done: OrderedDict[str, int] = OrderedDict()

    def get(self, key: str) -> int:
        return self._done.get(key, 0)

    def mark(self, key: str, parts: int) -> None:
        self._done[key] = parts
        self._done.move_to_end(key)
        while len(self._done) > self.size:
            self._done.popitem(last=False)


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
    """Split a chat target string (a bare id is a channel); ValueError when it is not one."""
    route, sep, rest = target.partition(":")
    if not sep and target:
        return Target("channel", target)
    if route == "thread":
        cid, _, name = rest.partition(":")
        if cid and name:
            return Target("thread", cid, name)
    elif route in ("channel", "dm") and rest:
        return Target(route, rest)
    raise ValueError(f"not a chat target: {target[:60]!r}")


def describe_target(kind: str, target: str) -> str:
    """A target as it may be shown to people or logs (webhook URLs masked: their path holds the token)."""
    return f"{kind} {mask_url(target)}" if kind in WEBHOOK_KINDS else f"{kind} {target}"


async def close_destinations(dests: Mapping[str, Destination]) -> None:
    """Close the destinations that hold connections."""
    for d in dests.values():
        closer = getattr(d, "aclose", None)
        if closer is not None:
            try:
                await closer()
            except Exception:  # closing must never mask the reason we are stopping
                pass
    await asyncio.sleep(0)
