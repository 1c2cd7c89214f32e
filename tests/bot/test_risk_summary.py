"""The daily risk summary: off by default, on per channel, one message per channel per session after the close."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from bot.risk_summary import summary_pass
from tests.bot.test_positions import ANN, BOB, buy, say
from tests.bot.test_risk_rules import outbox

CAROL = dataclasses.replace(ANN, user="U-carol", channel="C2", display_name="carol")
#: 17:00 New York on the day of OPEN_AT: the regular session closed an hour ago.
AFTER_CLOSE = datetime(2024, 3, 13, 21, 0, tzinfo=UTC)


async def trade(svc) -> None:
    await say(svc, ANN, "/risk 50000 1")
    await say(svc, ANN, "/risk max_position=10")
    await buy(svc, ANN, "TSLA buy 20")  # over 10% of 50,000: a broken rule in the summary
    await buy(svc, BOB, "AAPL buy 5")
    await buy(svc, CAROL, "MSFT buy 5")


async def summaries(svc) -> list:
    return [r for r in await outbox(svc) if r.key.startswith("risk_summary:")]


async def test_off_by_default_sends_nothing(svc, clock):
    await trade(svc)
    clock.t = AFTER_CLOSE
    assert await summary_pass(svc, set()) == 0
    assert await summaries(svc) == []
    shown = await say(svc, ANN, "/settings show")
    assert shown.data.daily_summary is False and "Daily risk summary after the close: off (default)" in shown.body


async def test_on_sends_one_message_per_channel_per_session_after_the_close(svc, clock):
    await trade(svc)
    r = await say(svc, ANN, "/settings summary on")
    assert r.severity == "error" and "admin" in r.body.lower()  # an admin's setting
    r = await say(svc, dataclasses.replace(ANN, is_admin=True), "/settings summary on")
    assert r.severity == "success" and r.data.daily_summary is True and r.data.origin["daily_summary"] == "channel"

    # while the market is open: nothing yet
    assert await summary_pass(svc, set()) == 0
    clock.t = AFTER_CLOSE
    done: set = set()
    assert await summary_pass(svc, done) == 1
    (row,) = await summaries(svc)
    assert row.destination == "discord" and row.kind == "alert" and row.status == "pending"
    assert row.key.startswith("risk_summary:") and ":C1:2024-03-13@" in row.key
    reply = row.payload["reply"]
    assert reply["title"] == "Daily risk summary — 2024-03-13" and reply["severity"] == "warning"
    body = reply["body"]
    assert "**ann**" in body and "**bob**" in body and "carol" not in body  # C2 did not opt in
    assert "⛔ TSLA exposure" in body and "open risk" in body
    # a second pass, and a restart (a fresh job with nothing remembered), send nothing more
    assert await summary_pass(svc, done) == 0
    assert await summary_pass(svc, set()) == 0
    assert len(await summaries(svc)) == 1
    # the next session's close: one more
    clock.t = datetime(2024, 3, 14, 21, 0, tzinfo=UTC)
    assert await summary_pass(svc, done) == 1
    assert [r.key.split("@")[0].rsplit(":", 1)[1] for r in await summaries(svc)] == ["2024-03-13", "2024-03-14"]


async def test_workspace_setting_reaches_every_channel_and_a_channel_can_say_no(svc, clock):
    await trade(svc)
    admin = dataclasses.replace(ANN, is_admin=True)
    await say(svc, admin, "/settings summary on --workspace")
    await say(svc, dataclasses.replace(CAROL, is_admin=True), "/settings summary off")
    clock.t = AFTER_CLOSE
    assert await summary_pass(svc, set()) == 1
    (row,) = await summaries(svc)
    assert ":C1:" in row.key


async def test_a_stale_close_is_skipped(svc, clock):
    await trade(svc)
    await say(svc, dataclasses.replace(ANN, is_admin=True), "/settings summary on")
    clock.t = datetime(2024, 3, 14, 12, 0, tzinfo=UTC)  # 8:00 the next morning: yesterday's summary is old news
    assert await summary_pass(svc, set()) == 0
