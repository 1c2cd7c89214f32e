"""Where an event goes: the channel's settings (enabled, allowed families, route) and its extra webhooks."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.destinations import format_target
from storage.alerts import EffectiveSettings, effective_settings


@dataclass(frozen=True)
class Sink:
    """One delivery: a destination kind and its target."""

    destination: str
    target: str

    @property
    def tag(self) -> str:
        """A short stable id of this sink, used in idempotency keys."""
        return hashlib.sha1(f"{self.destination}|{self.target}".encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Origin:
    """Where something was set up: the platform, its tenant row, the channel and the person's platform id."""

    tenant_id: int
    platform: str
    channel: str | None
    user_ref: str


def sinks_for(origin: Origin, settings: EffectiveSettings, family: str, symbol: str | None) -> list[Sink]:
    """The sinks of an event of `family` about `symbol`, or none when the channel does not take it."""
    if not settings.alerts_enabled or family not in settings.allowed_kinds:
        return []
    out: list[Sink] = []
    if origin.platform == "console":
        out.append(Sink("console", "console"))
    else:
        out.append(Sink(origin.platform, format_target(settings.route, channel=origin.channel, user=origin.user_ref, thread=symbol)))
    for hook in settings.webhooks or []:
        kind, url = hook.get("kind"), hook.get("url")
        if kind and url:
            out.append(Sink(str(kind), str(url)))
    return out


class SettingsCache:
    """Effective settings per (tenant, channel); kept `ttl` seconds (None: for the life of the object).

    The runtime keeps one with a few seconds' ttl, so a settings change applies within that time
    and a burst of triggers does not read the same settings row again and again.
    """

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl
        self._cache: dict[tuple[int, str | None], tuple[float, EffectiveSettings]] = {}

    async def get(self, session: AsyncSession, tenant_id: int, channel: str | None) -> EffectiveSettings:
        key = (tenant_id, channel)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is None or (self.ttl is not None and now - hit[0] > self.ttl):
            if len(self._cache) > 10_000:
                self._cache.clear()
            hit = self._cache[key] = (now, await effective_settings(session, tenant_id, channel))
        return hit[1]


async def route(session: AsyncSession, origin: Origin, family: str, symbol: str | None, cache: SettingsCache | None = None) -> list[Sink]:
    """Sinks for an event, reading the channel's settings."""
    settings = await (cache or SettingsCache()).get(session, origin.tenant_id, origin.channel)
    return sinks_for(origin, settings, family, symbol)
