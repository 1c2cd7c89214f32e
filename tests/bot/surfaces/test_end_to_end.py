"""End to end through the real commands: a chart PNG that decodes, on Discord and on Slack."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from PIL import Image

from tests.bot.surfaces.conftest import SLACK_SECRET
from tests.fakes.slack_fake import form_body, signed


async def test_discord_chart_png_decodes(start_discord, discord_fake):
    from bot.app import command_registry

    await start_discord(registry=command_registry())
    fake = discord_fake
    itx = fake.slash("chart", [{"name": "symbol", "type": 3, "value": "TSLA"}])
    await fake.dispatch("INTERACTION_CREATE", itx)
    [msg] = await fake.wait_for(fake.is_answer(itx["token"]), timeout=60)
    embed = msg.embeds[0]
    assert embed["title"].startswith("TSLA")
    [(field, filename, _, data)] = msg.files
    assert field == "files[0]" and embed["image"]["url"] == f"attachment://{filename}"
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG" and img.size[0] >= 400


async def test_slack_chart_png_decodes(start_slack, slack_fake):
    import aiohttp

    from bot.app import command_registry

    surface = await start_slack(registry=command_registry())
    body = form_body(slack_fake.command("/chart", "TSLA"))
    async with aiohttp.ClientSession() as http:
        async with http.post(surface.url, data=body, headers=signed(SLACK_SECRET, body)) as r:
            assert r.status == 200
    [done] = await slack_fake.wait_for(lambda c: c.method == "files.completeUploadExternal", timeout=60)
    [post] = slack_fake.of("chat.postMessage")
    assert post.body["text"].startswith("TSLA")
    [upload] = slack_fake.of("upload")
    img = Image.open(io.BytesIO(upload.raw))
    img.load()
    assert img.format == "PNG" and img.size[0] >= 400


#: A moment when the offline market (seed 0) has an intraday setup on TSLA (12:00 ET, 2024-03-13).
PLAN_AT = datetime(2024, 3, 13, 16, 0, tzinfo=UTC)


def _field_names(embed: dict) -> list[str]:
    return [f["name"] for f in embed.get("fields", [])]


async def test_discord_plan_with_chart_then_track_button(start_discord, discord_fake, services):
    from bot.app import command_registry

    services.clock = lambda: PLAN_AT
    await start_discord(registry=command_registry())
    fake = discord_fake
    itx = fake.slash("plan", [{"name": "symbol", "type": 3, "value": "TSLA"}])
    await fake.dispatch("INTERACTION_CREATE", itx)
    [msg] = await fake.wait_for(fake.is_answer(itx["token"]), timeout=60)
    embed = msg.embeds[0]
    assert embed["title"].startswith("TSLA ")
    assert {"Entry", "Stop", "Targets", "Quality (grade, not odds)"} <= set(_field_names(embed))
    # the odds lead, in the description and the fields, before any level or the quality grade
    assert _field_names(embed)[0] == "T1 before the stop" and embed["description"].startswith("T1 before the stop: ")
    assert embed["color"] in (0x2ECC71, 0xE74C3C)  # long green, short red
    assert "as of" in embed["footer"]["text"]
    [(_, filename, _, data)] = msg.files
    assert embed["image"]["url"] == f"attachment://{filename}"
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG"
    buttons = {b["label"]: b["custom_id"] for b in msg.buttons()}
    assert {"Track plan", "Alert at entry", "Contracts", "Re-plan"} <= set(buttons)
    assert buttons["Track plan"].startswith("coach:/track P-")

    # the same person clicks "Track plan": it runs /track on their own plan
    click = fake.button_click(buttons["Track plan"], "Track plan")
    await fake.dispatch("INTERACTION_CREATE", click)
    [tracked] = await fake.wait_for(fake.is_answer(click["token"]), timeout=60)
    plan_id = buttons["Track plan"].split()[-1]
    text = tracked.embeds[0].get("title", "") + tracked.embeds[0].get("description", "")
    assert plan_id in text and "went wrong" not in text


async def test_slack_plan_with_chart_then_track_button(start_slack, slack_fake, services):
    import json

    import aiohttp

    from bot.app import command_registry
    from tests.fakes.slack_fake import interactive_body

    services.clock = lambda: PLAN_AT
    surface = await start_slack(registry=command_registry())
    body = form_body(slack_fake.command("/coach", "plan TSLA"))
    async with aiohttp.ClientSession() as http:
        async with http.post(surface.url, data=body, headers=signed(SLACK_SECRET, body)) as r:
            assert r.status == 200
    await slack_fake.wait_for(lambda c: c.method == "files.completeUploadExternal", timeout=60)
    [post] = slack_fake.of("chat.postMessage")
    blocks = post.body["blocks"]
    assert blocks[0]["type"] == "header" and "TSLA" in blocks[0]["text"]["text"]
    fields = [f["text"].split("\n")[0] for b in blocks if b["type"] == "section" for f in b.get("fields", [])]
    assert {"*Entry*", "*Stop*", "*Targets*", "*Quality (grade, not odds)*"} <= set(fields)
    assert fields[0] == "*T1 before the stop*"
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert texts[0].startswith("T1 before the stop: ")
    buttons = {e["text"]["text"]: e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]}
    assert {"Track plan", "Alert at entry", "Contracts", "Re-plan"} <= set(buttons)
    img = Image.open(io.BytesIO(slack_fake.of("upload")[0].raw))
    img.load()
    assert img.format == "PNG"

    # the same user clicks "Track plan"
    payload = slack_fake.block_action(buttons["Track plan"], user="U111", label="Track plan")
    raw = interactive_body(payload)
    async with aiohttp.ClientSession() as http:
        async with http.post(surface.url, data=raw, headers=signed(SLACK_SECRET, raw)) as r:
            assert r.status == 200
    posts = await slack_fake.wait_for(lambda c: c.method == "chat.postMessage", count=2, timeout=60)
    tracked = json.dumps(posts[1].body["blocks"])
    assert buttons["Track plan"].split()[-1] in tracked and "went wrong" not in tracked


async def test_discord_dm_reaches_the_real_coach(start_discord, discord_fake, services):
    from bot.app import command_registry
    from bot.intents import IntentParser

    services.clock = lambda: PLAN_AT
    assert isinstance(services.free_text, IntentParser)  # what the root builds without an LLM
    await start_discord(registry=command_registry())
    fake = discord_fake
    msg = fake.message_create("what's the plan for TSLA?", dm=True)
    await fake.dispatch("MESSAGE_CREATE", msg)
    [sent] = await fake.wait_for(lambda r: r.method == "POST" and r.path == f"/channels/{msg['channel_id']}/messages", timeout=60)
    assert "TSLA" in sent.embeds[0]["title"] and "went wrong" not in json.dumps(sent.json)


async def test_slack_dm_reaches_the_real_coach(start_slack, slack_fake, services):
    import aiohttp

    from bot.app import command_registry
    from bot.intents import IntentParser

    services.clock = lambda: PLAN_AT
    assert isinstance(services.free_text, IntentParser)
    surface = await start_slack(registry=command_registry())
    dm = slack_fake.event(
        {
            "type": "message",
            "channel_type": "im",
            "user": "U111",
            "text": "quote for NVDA please",
            "ts": "1700000200.000100",
            "channel": "D111",
            "team": "T111",
        }
    )
    raw = json.dumps(dm)
    async with aiohttp.ClientSession() as http:
        async with http.post(surface.url, data=raw, headers=signed(SLACK_SECRET, raw, content_type="application/json")) as r:
            assert r.status == 200
    [post] = await slack_fake.wait_for(lambda c: c.method == "chat.postMessage", timeout=60)
    assert post.body["channel"] == "D111" and "NVDA" in post.body["text"]
