"""/chart choices in chat: raw history (no plan scaling) as an option, and buttons for the neighbouring intervals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.app import command_registry
from bot.request import Ctx, Identity
from tests.bot.test_chart_command import parse_text
from tests.conftest import run_text

WITH_PLAN = datetime(2024, 3, 14, 14, 15, tzinfo=UTC)


@pytest.fixture
def chart_cmd():
    return command_registry().commands["chart"]


def test_raw_is_a_chat_option_and_a_word(chart_cmd):
    assert "raw" in {s.name for s in chart_cmd.arg_specs()}
    a = parse_text(chart_cmd, "TSLA 15m plan raw")
    assert a.raw and a.plan and a.interval == ["15m"]
    assert parse_text(chart_cmd, "TSLA --raw").raw
    assert not parse_text(chart_cmd, "TSLA 5m plan").raw


async def test_the_reply_offers_the_neighbouring_intervals_with_the_same_options(services):
    ctx = Ctx(services=services, identity=Identity(platform="console", tenant="local", user="t"), as_of=WITH_PLAN)
    reply = await run_text(ctx, "/chart NVDA 5m plan raw theme=light")
    assert reply.severity != "error", reply.body
    assert [(a.label, a.command) for a in reply.actions] == [
        ("◀ 1m", "/chart NVDA 1m plan raw theme=light"),
        ("15m ▶", "/chart NVDA 15m plan raw theme=light"),
    ]
    # the ends of the scale offer one side; several intervals offer the ones beyond both ends
    assert [a.command for a in (await run_text(ctx, "/chart NVDA 1W")).actions] == ["/chart NVDA 1D"]
    assert [a.command for a in (await run_text(ctx, "/chart NVDA 15m,1h")).actions] == ["/chart NVDA 5m", "/chart NVDA 4h"]


async def test_raw_history_is_drawn_without_stretching_to_the_plan(services):
    ctx = Ctx(services=services, identity=Identity(platform="console", tenant="local", user="t"), as_of=WITH_PLAN)
    fitted = await run_text(ctx, "/chart NVDA 1D plan style=intraday")
    raw = await run_text(ctx, "/chart NVDA 1D plan raw style=intraday")
    assert fitted.data.plan is not None and raw.data.plan == fitted.data.plan
    assert fitted.attachments[0].data != raw.attachments[0].data
