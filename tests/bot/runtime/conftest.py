"""Fixtures for the runtime: a loopback webhook receiver, chat identities, scripted streams."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime

import pytest

from bot.reply import Reply
from bot.request import Ctx, Identity
from providers.feed import Event, Tick
from tests.bot.runtime.webhook_fake import WebhookFake
from tests.conftest import run_text


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # the receiver below listens on 127.0.0.1: only an operator's COACH_WEBHOOK_ALLOW_PRIVATE lets webhooks reach it
    return {"coach_webhook_allow_private": True}


@pytest.fixture
async def hook():
    fake = await WebhookFake().start()
    yield fake
    await fake.stop()


def identity(
    tenant: str = "G1", user: str = "U1", channel: str = "C1", *, platform: str = "discord", admin: bool = False
) -> Identity:
    return Identity(platform=platform, tenant=tenant, user=user, channel=channel, display_name=user, is_admin=admin)


async def say(services, text: str, **who) -> Reply:
    """Run one chat line as `who` (see identity())."""
    return await run_text(Ctx(services=services, identity=identity(**who)), text)


async def until(event: asyncio.Event, cond: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Return once `cond()` holds, checking it again each time `event` is set; fail after `timeout` seconds."""

    async def wait() -> None:
        while True:
            event.clear()  # before the check, so a set while an awaited check runs is not lost
            ok = cond()
            if inspect.isawaitable(ok):
                ok = await ok
            if ok:
                return
            await event.wait()

    await asyncio.wait_for(wait(), timeout)


class ScriptedStream:
    """A PriceStream that plays given ticks (symbol, price, at) as fast as they are read, then stays silent until closed."""

    name = "scripted"
    replayable = False

    def __init__(self, ticks: Iterable[tuple[str, float, datetime]], *, stall: bool = True) -> None:
        self.ticks = [Tick(symbol=s, price=p, size=1.0, at=at, source="scripted") for s, p, at in ticks]
        self.stall = stall
        self.symbols: set[str] = set()
        self.closed = False
        self._closing = asyncio.Event()

    async def subscribe(self, symbols) -> None:
        self.symbols |= set(symbols)

    async def unsubscribe(self, symbols) -> None:
        self.symbols -= set(symbols)

    async def aclose(self) -> None:
        self.closed = True
        self._closing.set()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[Event]:
        for t in self.ticks:
            if self.closed:
                return
            yield t
            await asyncio.sleep(0)
        if self.stall:
            await self._closing.wait()
