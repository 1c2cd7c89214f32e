"""Fixtures for the runtime: a loopback webhook receiver, chat identities, scripted streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import datetime

import pytest

import bot.commands  # noqa: F401 - registers the commands
from bot.request import Ctx, Identity
from tests.conftest import run_text
from bot.reply import Reply
from providers.feed import Event, Tick
from tests.bot.runtime.webhook_fake import WebhookFake


@pytest.fixture
async def hook():
    fake = await WebhookFake().start()
    yield fake
    await fake.stop()


def identity(tenant: str = "G1", user: str = "U1", channel: str = "C1", *, platform: str = "discord", admin: bool = False) -> Identity:
    return Identity(platform=platform, tenant=tenant, user=user, channel=channel, display_name=user, is_admin=admin)


async def say(services, text: str, **who) -> Reply:
    """Run one chat line as `who` (see identity())."""
    return await run_text(Ctx(services=services, identity=identity(**who)), text)


class ScriptedStream:
    """A PriceStream that plays given ticks (symbol, price, at) as fast as they are read, then stays silent."""

    name = "scripted"
    replayable = False

    def __init__(self, ticks: Iterable[tuple[str, float, datetime]], *, stall: bool = True) -> None:
        self.ticks = [Tick(symbol=s, price=p, size=1.0, at=at, source="scripted") for s, p, at in ticks]
        self.stall = stall
        self.symbols: set[str] = set()
        self.closed = False
        self.done = asyncio.Event()

    async def subscribe(self, symbols) -> None:
        self.symbols |= set(symbols)

    async def unsubscribe(self, symbols) -> None:
        self.symbols -= set(symbols)

    async def aclose(self) -> None:
        self.closed = True

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[Event]:
        for t in self.ticks:
            if self.closed:
                return
            yield t
            await asyncio.sleep(0)
        self.done.set()
        while self.stall and not self.closed:
            await asyncio.sleep(0.05)
