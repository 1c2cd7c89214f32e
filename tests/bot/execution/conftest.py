"""The execution tier's fixtures: the machine's real Redis under a key prefix of each test's own, and jobs to run."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.execution.jobs import DiscordInteractionRoute, Job
from bot.execution.queue import Keys
from bot.pipeline import Admitted, Invocation
from bot.request import Identity
from bot.surfaces.replies import ReplySender
from core.clock import utc_now
from tests.fakes.discord_fake import DiscordFake


@pytest.fixture
async def keys(redis: Redis) -> AsyncIterator[Keys]:
    """A queue of this test's own in the shared Redis, removed afterwards."""
    k = Keys("test:q:" + secrets.token_hex(4))
    yield k
    async for name in redis.scan_iter(match=f"{k.prefix}:*"):
        await redis.delete(name)


@pytest.fixture
async def discord() -> AsyncIterator[DiscordFake]:
    fake = await DiscordFake().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sender(services, discord: DiscordFake) -> AsyncIterator[ReplySender]:
    """Answers go to the loopback Discord, over its REST API, as a worker sends them."""
    s = ReplySender(services.settings.model_copy(update={"discord_api_base": discord.api_base}))
    yield s
    await s.aclose()


def person(user: str = "U1", tenant: str = "G1") -> Identity:
    return Identity(platform="discord", tenant=tenant, user=user, channel="C1", display_name=user)


async def job_for(services, line: str, app_id: str, *, who: Identity | None = None, token: str | None = None) -> Job:
    """The job a Discord front makes of `line` typed as a slash command (its interaction token is its key)."""
    ctx = services.pipeline.request(services, who or person())
    admitted = await services.pipeline.admit(ctx, Invocation.line(line), limit=False)
    assert isinstance(admitted, Admitted), admitted
    token = token or "tok-" + secrets.token_hex(6)
    route = DiscordInteractionRoute(application_id=app_id, token=SecretStr(token))
    return Job.of(admitted, route, key=f"discord:{token}", now=utc_now())


def token_of(job: Job) -> str:
    assert isinstance(job.route, DiscordInteractionRoute)
    return job.route.token.get_secret_value()
