"""Where an event goes: the channel's settings (enabled, allowed families, route) and its extra webhooks."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.destinations import format_target
from storage.alerts import EffectiveSettings, effective_settings_many
from storage.outbox import NewMessage

Key = tuple[int, str | None]


@dataclass(frozen=True)
class Sink:
    """One delivery: a destination kind and its target."""

    destination: str
    target: str

    @property
    def tag(self) -> str:
        """A short stable id of this sink, used in idempotency keys."""
        return hashlib.sha1(f"{self.destination}|{self.target}".encode()).hexdigest()[:10]


def private_channel(platform: str, channel: str | None) -> bool:
    """True for a direct message inside a workspace others share: a Slack DM (its channel id starts with D).

    A Discord DM lives in a tenant of its own (`dm-<user id>`) and the console is the operator's, so
    whatever settings apply there were made by the one person who reads them; a Slack DM inherits
    its workspace's settings, which admins make for channels everyone reads.
    """
    return platform == "slack" and (channel or "").startswith("D")


@dataclass(frozen=True)
class Origin:
    """Where something was set up: the platform, its tenant row, the channel and the person's platform id."""

    tenant_id: int
    platform: str
    channel: str | None
    user_ref: str

    @property
    def private(self) -> bool:
        """Set up in a DM of a shared workspace: its events go back into that DM only."""
        return private_channel(self.platform, self.channel)


def sinks_for(origin: Origin, settings: EffectiveSettings, family: str, symbol: str | None) -> list[Sink]:
    """The sinks of an event of `family` about `symbol`, or none when the channel does not take it."""
    if not settings.alerts_enabled or family not in settings.allowed_kinds:
        return []
    if origin.private:
        # what was said in a DM is answered in that DM: never a workspace webhook, a route or a thread elsewhere
        return [Sink(origin.platform, format_target("channel", channel=origin.channel, user=origin.user_ref))]
    out: list[Sink] = []
    if origin.platform == "console":
        out.append(Sink("console", "console"))
    else:
        out.append(
            Sink(origin.platform, format_target(settings.route, channel=origin.channel, user=origin.user_ref, thread=symbol))
        )
    for hook in settings.webhooks or []:
        kind, url = hook.get("kind"), hook.get("url")
        if kind and url:
            out.append(Sink(str(kind), str(url)))
    return out


class SettingsCache:
    """Effective settings per (tenant, channel); kept `ttl` seconds (None: for the life of the object).

    The runtime keeps one with a few seconds' ttl, so a settings change applies within that time
    and a burst of triggers does not read the same settings row again and again. Its housekeeping
    calls `refresh` every second, which re-reads, in one query, the entries past half their ttl:
    a trigger on its way to the outbox then finds its channel's settings in memory and only a
    channel never seen before costs a read.
    """

    def __init__(self, ttl: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        #: Seconds on a monotonic scale; injectable so a test can age entries without waiting.
        self.clock = clock
        self._cache: dict[Key, tuple[float, EffectiveSettings]] = {}

    def fresh(self, tenant_id: int, channel: str | None) -> EffectiveSettings | None:
        """The cached settings when still within the ttl, else None."""
        hit = self._cache.get((tenant_id, channel))
        if hit is None or (self.ttl is not None and self.clock() - hit[0] > self.ttl):
            return None
        return hit[1]

    async def get(self, session: AsyncSession, tenant_id: int, channel: str | None) -> EffectiveSettings:
        key = (tenant_id, channel)
        return self.fresh(*key) or (await self.load(session, [key]))[key]

    async def load(self, session: AsyncSession, keys: Iterable[Key]) -> dict[Key, EffectiveSettings]:
        """Read the settings of these (tenant, channel) pairs in one query; returns them."""
        now = self.clock()
        read = await effective_settings_many(session, set(keys))
        if len(self._cache) + len(read) > 10_000:
            self._cache.clear()
        for key, eff in read.items():
            self._cache[key] = (now, eff)
        return read

    async def refresh(self, session: AsyncSession) -> int:
        """Re-read the entries past half their ttl; returns how many."""
        if self.ttl is None:
            return 0
        due = self.clock() - self.ttl / 2
        keys = [k for k, (at, _) in self._cache.items() if at <= due]
        if keys:
            await self.load(session, keys)
        return len(keys)


async def route(
    session: AsyncSession, origin: Origin, family: str, symbol: str | None, cache: SettingsCache | None = None
) -> list[Sink]:
    """Sinks for an event, reading the channel's settings."""
    settings = await (cache or SettingsCache()).get(session, origin.tenant_id, origin.channel)
    return sinks_for(origin, settings, family, symbol)


async def route_many(db: Any, cache: SettingsCache, events: list[tuple[Origin, str, str | None]]) -> list[list[Sink]]:
    """Sinks of many (origin, family, symbol) events; one read for the channels not in the cache, none when all are."""
    missing = {(o.tenant_id, o.channel) for o, _, _ in events if cache.fresh(o.tenant_id, o.channel) is None}
    loaded: dict[Key, EffectiveSettings] = {}
    if missing:
        async with db() as session:
            loaded = await cache.load(session, missing)
    return [
        sinks_for(
            origin, cache.fresh(origin.tenant_id, origin.channel) or loaded[(origin.tenant_id, origin.channel)], family, symbol
        )
        for origin, family, symbol in events
    ]


def fan_out(
    sinks: Iterable[Sink],
    *,
    key: str,
    kind: str,
    payload: dict[str, Any],
    tenant_id: int,
    owner_id: int | None,
    at: datetime,
) -> list[NewMessage]:
    """One outbox message per sink for one event, keyed `{key}@{sink tag}`: the event is queued once per sink."""
    return [
        NewMessage(
            tenant_id=tenant_id,
            owner_id=owner_id,
            key=f"{key}@{s.tag}",
            kind=kind,
            destination=s.destination,
            target=s.target,
            payload=payload,
            event_at=at,
        )
        for s in sinks
    ]
