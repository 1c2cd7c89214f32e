"""Fixtures that run the real discord.py and slack-bolt against loopback fakes."""

from __future__ import annotations

import asyncio
import contextlib
import io

import pytest
from PIL import Image
from pydantic import Field, SecretStr

from bot.app import command_registry
from bot.args import ArgsModel, SymbolArg
from bot.registry import Registry
from bot.reply import Action, Attachment, Reply, ReplyField
from tests.conftest import with_commands
from tests.fakes.discord_fake import DiscordFake


def png_bytes(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (20, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


class SymArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker")


class NoArgs(ArgsModel):
    pass


class SizeArgs(ArgsModel):
    size: int = Field(9000, ge=1, le=200_000, description="body length")
    fields: int = Field(40, ge=0, le=200, description="number of fields")
    actions: int = Field(3, ge=0, le=40, description="number of actions")


def extended_registry() -> Registry:
    """The real commands plus a few that produce the shapes surfaces must render (chart, long, failing, admin)."""
    reg = Registry(commands=dict(command_registry().commands))

    @reg.command("chartdemo", "A reply with a chart and buttons.", SymArgs, tool=False)
    async def chartdemo(ctx, a: SymArgs) -> Reply:
        return Reply(
            title=f"{a.symbol} long setup",
            body="Entry on a reclaim of VWAP.",
            direction="long",
            fields=[ReplyField(name="Entry", value="101.20"), ReplyField(name="Stop", value="99.80")],
            attachments=[Attachment(filename="chart.png", data=png_bytes(), description="plan chart")],
            actions=[
                Action(label="Quote", command=f"/quote {a.symbol}", style="primary"),
                Action(label="Watch", command=f"/watch add {a.symbol}"),
            ],
            sources=["bars: sim"],
            as_of=ctx.now(),
            data={"symbol": a.symbol},
        )

    @reg.command("longreply", "A reply longer than any single message.", SizeArgs, tool=False)
    async def longreply(ctx, a: SizeArgs) -> Reply:
        words = " ".join(f"w{i}" for i in range(a.size // 6))
        return Reply(
            title="Long " + "T" * 300,
            body=words,
            fields=[ReplyField(name=f"F{i}", value=f"value-{i} " + "x" * 900) for i in range(a.fields)],
            actions=[Action(label=f"A{i}", command=f"/quote SYM{i}") for i in range(a.actions)],
            sources=["test"],
            as_of=ctx.now(),
        )

    @reg.command("boom", "Always fails with a bug.", NoArgs, tool=False)
    async def boom(ctx, a: NoArgs) -> Reply:
        raise RuntimeError("internal detail that must not leak")

    @reg.command("adminonly", "Only for admins.", NoArgs, tool=False, admin=True)
    async def adminonly(ctx, a: NoArgs) -> Reply:
        return Reply(title="admin ok", data={"tenant": ctx.identity.tenant})

    return reg


@pytest.fixture
async def discord_fake():
    fake = await DiscordFake().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def start_discord(services, discord_fake):
    """Start a DiscordSurface, logged in and READY against the fake; returns it. Closed at teardown."""
    from bot.surfaces.discord import DiscordSurface

    services.settings = services.settings.model_copy(
        update={
            "discord_token": SecretStr("fake-token"),
            "discord_api_base": discord_fake.api_base,
            "discord_gateway_url": discord_fake.gateway_url,
            "discord_guild_id": int(discord_fake.guild_id),
        }
    )
    started: list[tuple[DiscordSurface, asyncio.Task]] = []

    async def start(registry=None, limiter=None, **kw) -> DiscordSurface:
        svc = with_commands(services, registry or extended_registry(), limiter)
        surface = DiscordSurface(svc, guild_ready_timeout=0.05, **kw)
        task = asyncio.create_task(surface.start("fake-token"))
        ready = asyncio.create_task(surface.client.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        assert ready in done, "discord client did not become ready"
        started.append((surface, task))
        return surface

    yield start
    for surface, task in started:
        await surface.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)


SLACK_SECRET = "test-signing-secret-123"


@pytest.fixture
async def slack_fake():
    from tests.fakes.slack_fake import SlackFake

    fake = await SlackFake().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def start_slack(services, slack_fake):
    """Start a SlackSurface against the fake: HTTP mode on a free port (default) or Socket Mode."""
    from pydantic import SecretStr

    from bot.surfaces.slack import SlackSurface

    services.settings = services.settings.model_copy(
        update={
            "slack_bot_token": SecretStr("xoxb-test-token"),
            "slack_signing_secret": SecretStr(SLACK_SECRET),
            "slack_app_token": SecretStr("xapp-test-token"),
            "slack_api_url": slack_fake.api_url.rstrip("/"),  # the surface adds the trailing slash slack_sdk needs
        }
    )
    started = []

    async def start(mode: str = "http", registry=None, limiter=None, **kw) -> SlackSurface:
        svc = with_commands(services, registry or extended_registry(), limiter)
        surface = SlackSurface(svc, **kw)
        if mode == "http":
            await surface.start_http("127.0.0.1", 0)
            surface.url = f"http://127.0.0.1:{surface.port}/slack/events"
        else:
            await surface.start_socket()
        started.append(surface)
        return surface

    yield start
    for s in started:
        await s.close()
