"""NaN and infinity are refused by every command's arguments, on every surface, with one clear line; nothing is stored."""

from __future__ import annotations

import pytest
import structlog.testing
from pydantic import BaseModel, Field

from bot.app import command_registry
from bot.args import ArgsModel
from bot.pipeline import Invocation
from bot.registry import command
from bot.reply import Reply
from bot.request import Ctx, Identity
from storage import alerts as store
from tests.bot.agent.conftest import ctx_for
from tests.conftest import run_text


def console(services) -> Ctx:
    return Ctx(services=services, identity=Identity(platform="console", tenant="local", user="me", channel="console"))


async def stored_alerts(services) -> list[tuple[int, str, float | None, float | None]]:
    from sqlalchemy import select

    async with services.db() as s:
        rows = (await s.execute(select(store.Alert).order_by(store.Alert.id))).scalars()
        return [(a.id, a.kind, a.value, a.level) for a in rows]


def assert_clear_refusal(reply: Reply, shown: str) -> None:
    assert reply.severity == "error", reply.body
    assert "something went wrong" not in reply.body.lower() and reply.title != "Something went wrong"
    assert reply.body.startswith(f"value must be a finite number, not {shown}"), reply.body
    assert "usage: /alert" in reply.body and "\n" not in reply.body


@pytest.mark.parametrize(
    "line, shown",
    [
        ("/alert add TSLA above nan", "nan"),
        ("/alert add TSLA above NaN", "NaN"),
        ("/alert add TSLA above inf", "inf"),
        ("/alert add TSLA below -inf", "-inf"),
        ("/alert add TSLA above infinity", "infinity"),
        ("/alert add TSLA pct nan", "nan"),
        ("/alert add TSLA pct +inf --repeat", "+inf"),
        ("/alert add TSLA rsi_above nan interval=15m", "nan"),
        ("/alert edit 1 value=nan", "nan"),
        ("/alert edit 1 --value inf", "inf"),
    ],
)
async def test_chat_lines_with_non_finite_numbers_get_one_clear_line(services, line, shown):
    ctx = console(services)
    ok = await run_text(ctx, "/alert add TSLA pct 2")
    assert ok.severity == "success", ok.body
    before = await stored_alerts(services)
    with structlog.testing.capture_logs() as logs:
        reply = await run_text(ctx, line)
    assert_clear_refusal(reply, shown)
    assert not [e for e in logs if e.get("log_level") in ("error", "critical") or "exc_info" in e]
    assert await stored_alerts(services) == before


async def test_structured_values_from_discord_options_and_the_cli_are_refused_the_same_way(services):
    ctx = ctx_for(services)
    for values in (
        {"symbol": "TSLA", "kind": "above", "value": float("nan")},
        {"symbol": "TSLA", "kind": "pct", "value": 2, "ref": float("inf")},
    ):
        reply = await services.pipeline.handle(ctx, Invocation.call("alert add", values))
        assert reply.severity == "error" and " must be a finite number, not " in reply.body, reply.body
    assert await stored_alerts(services) == []


async def test_other_numbers_are_refused_too(services):
    ctx = console(services)
    for line in ("/size TSLA nan 245", "/size TSLA 250 inf", "/risk inf 1", "/risk 10000 nan"):
        reply = await run_text(ctx, line)
        assert reply.severity == "error" and "something went wrong" not in reply.body, (line, reply.body)
        assert "\n" not in reply.body and ("finite" in reply.body or "number" in reply.body), (line, reply.body)


def test_every_command_refuses_non_finite_numbers():
    for cmd in command_registry().all():
        assert cmd.args.model_config.get("allow_inf_nan") is False, cmd.name


def test_a_command_whose_model_accepts_nan_cannot_be_declared():
    class Loose(BaseModel):
        x: float = Field(1.0)

    class Strict(ArgsModel):
        x: float = Field(1.0)

    async def handler(ctx, a) -> Reply:
        return Reply(title="x")

    with pytest.raises(TypeError, match="ArgsModel"):
        command("loose", "Loose.", Loose)(handler)
    assert command("strict", "Strict.", Strict)(handler).args is Strict
