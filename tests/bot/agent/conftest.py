"""Fixtures for the coach: a loopback OpenAI-compatible server and agents built on the real SDK."""

from __future__ import annotations

import pytest

from bot.agent.client import ChatModel
from bot.agent.loop import Agent
from bot.config import Settings
from bot.request import Ctx, Identity
from tests.conftest import with_commands
from tests.fakes.openai_fake import FakeOpenAI


@pytest.fixture
async def fake():
    server = FakeOpenAI()
    server.base_url = await server.start()
    yield server
    await server.close()


def agent_settings(base_url: str, **overrides) -> Settings:
    values = dict(
        database_url="sqlite+aiosqlite:///:memory:",
        openai_api_key=None,
        openai_base_url=base_url,
        openai_model="fake-model",
        coach_llm_timeout=5.0,
        coach_llm_retries=2,
        coach_agent_max_steps=6,
        coach_daily_token_budget=200_000,
        coach_memory_tokens=2_000,
        coach_llm_stream=False,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def make_agent(fake):
    made: list[Agent] = []

    def build(sleep=None, **overrides) -> Agent:
        settings = agent_settings(fake.base_url, **overrides)
        kwargs = {}
        if sleep is not None:
            kwargs["sleep"] = sleep
        agent = Agent(ChatModel.from_settings(settings), settings, **kwargs)
        made.append(agent)
        return agent

    yield build
    for a in made:
        await a.aclose()


def ctx_for(
    services,
    user: str = "U1",
    *,
    tenant: str = "G1",
    channel: str | None = "C1",
    dm: bool = False,
    admin: bool = False,
    registry=None,
) -> Ctx:
    """A Discord caller's context; with `registry`, on services that serve those commands instead."""
    if registry is not None:
        services = with_commands(services, registry)
    return Ctx(
        services=services, identity=Identity(platform="discord", tenant=tenant, user=user, channel=channel, dm=dm, is_admin=admin)
    )
