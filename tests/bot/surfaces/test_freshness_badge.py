"""Every reply built from market data carries a freshness badge, shown the same way on Discord, Slack and the console."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.freshness import market_provider
from bot.request import Ctx, Identity
from bot.surfaces import render_discord, render_slack
from bot.surfaces.console import render_text
from tests.conftest import OPEN_AT, run_text

SATURDAY = datetime(2024, 3, 16, 15, 0, tzinfo=UTC)
ME = Identity(platform="console", tenant="local", user="me", channel="console")


def ctx(services, at=None) -> Ctx:
    return Ctx(services=services, identity=ME, as_of=at)


def test_the_provider_comes_from_the_sources_a_reply_cites():
    assert market_provider(["bars 5m/15m/1h: sim"]) == "sim"
    assert market_provider(["plan: x", "chains: yahoo (after polygon: rate limited)"]) == "yahoo (after polygon: rate limited)"
    assert market_provider(["broker: paper", "quote: polygon delayed"]) == "polygon delayed"
    assert market_provider(["risk profile", "entry, stop: given", "broker: paper"]) is None


async def test_a_quote_in_session_is_live_and_on_every_surface(services):
    reply = await run_text(ctx(services), "/quote TSLA")
    assert reply.freshness is not None and reply.freshness.kind == "live" and reply.freshness.provider == "sim"
    assert reply.footer().startswith("🟢 live · data: quote: sim · as of ")
    assert "🟢 live" in render_text(reply)
    (msg,) = render_discord.render(reply)
    assert msg.embeds[-1]["footer"]["text"].startswith("🟢 live · ")
    slack = render_slack.render(reply)
    context = [b for m in slack for b in m.blocks if b["type"] == "context"]
    assert context and context[-1]["elements"][0]["text"].startswith("🟢 live · ")


async def test_on_a_weekend_the_badge_says_closed_as_of_the_last_close(services):
    reply = await run_text(ctx(services, SATURDAY), "/plan TSLA swing --no-chart")
    assert reply.freshness.kind == "closed"
    assert reply.footer().startswith("⚪ closed · as of Fri Mar 15 close · ")


async def test_replies_not_built_from_market_data_have_no_badge(services):
    for line in ("/risk", "/watch add TSLA", "/help"):
        reply = await run_text(ctx(services), line)
        assert reply.freshness is None, line
    bad = await run_text(ctx(services), "/quote 12345")
    assert bad.error_kind == "user" and bad.freshness is None


async def test_the_badge_is_part_of_the_structured_reply_not_of_the_command_result(services):
    reply = await run_text(ctx(services, OPEN_AT), "/vol SPY")
    assert reply.freshness.kind == "live"
    assert "freshness" not in reply.data_json()
