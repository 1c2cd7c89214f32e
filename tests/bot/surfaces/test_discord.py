"""The real discord.py against the loopback Discord fake: slash commands, buttons, DMs, rate limits."""

from __future__ import annotations

import io
import json
import re
import time

import structlog.testing
from PIL import Image
from sqlalchemy import select

from bot.ratelimit import RateLimiter
from storage.models import Tenant, User


def _is_followup(fake, token):
    return fake.is_answer(token)


def _callbacks(fake, interaction):
    return fake.matching("POST", rf"^/interactions/{interaction['id']}/")


async def _run(fake, interaction, count=1, timeout=10.0):
    await fake.dispatch("INTERACTION_CREATE", interaction)
    return await fake.wait_for(_is_followup(fake, interaction["token"]), timeout=timeout, count=count)


async def test_commands_sync_to_the_dev_guild_with_typed_options(start_discord, discord_fake):
    await start_discord()
    fake = discord_fake
    [put] = fake.matching("PUT", rf"^/applications/{fake.app_id}/guilds/{fake.guild_id}/commands$")
    cmds = {c["name"]: c for c in put.json}
    watch = cmds["watch"]
    subs = {o["name"]: o for o in watch["options"]}
    assert set(subs) == {"add", "list", "remove"} and all(o["type"] == 1 for o in subs.values())
    sym = subs["add"]["options"][0]
    assert sym["name"] == "symbols" and sym["type"] == 3 and sym["required"] and sym["autocomplete"]
    bars = {o["name"]: o for o in cmds["bars"]["options"]}
    assert bars["symbol"]["required"] and bars["symbol"]["autocomplete"]
    assert bars["count"]["type"] == 4 and bars["count"]["min_value"] == 1 and bars["count"]["max_value"] == 200
    assert not bars["count"]["required"] and bars["interval"]["autocomplete"]
    assert int(cmds["adminonly"]["default_member_permissions"]) == 32  # Manage Server
    # Discord's own rules for every command and option, so a new command cannot break the sync
    name_rx = re.compile(r"^[-_a-z0-9]{1,32}$")

    def check(opts, depth=0):
        assert len(opts) <= 25
        seen_optional = False
        for o in opts:
            assert name_rx.match(o["name"]), o["name"]
            assert 1 <= len(o["description"]) <= 100
            if o["type"] in (1, 2):
                check(o.get("options", []), depth + 1)
                continue
            assert len(o.get("choices", [])) <= 25
            if o.get("required"):
                assert not seen_optional, f"required option {o['name']} after an optional one"
            else:
                seen_optional = True
        assert depth <= 2

    assert len(put.json) <= 100
    for c in put.json:
        assert name_rx.match(c["name"]) and 1 <= len(c["description"]) <= 100
        check(c.get("options", []))
        assert len(json.dumps(c)) < 8000


async def test_without_a_dev_guild_commands_sync_globally(start_discord, discord_fake, services):
    services.settings = services.settings.model_copy(update={"discord_guild_id": None})
    await start_discord()
    [put] = discord_fake.matching("PUT", r"/commands$")
    assert put.path == f"/applications/{discord_fake.app_id}/commands"
    assert any(c["name"] == "plan" for c in put.json)


async def test_quote_defers_then_follows_up_with_an_embed(start_discord, discord_fake):
    await start_discord()
    fake = discord_fake
    itx = fake.slash("quote", [{"name": "symbol", "type": 3, "value": "tsla"}])
    [followup] = await _run(fake, itx)
    [defer] = _callbacks(fake, itx)
    assert defer.json["type"] == 5  # deferred "thinking" response, sent before the work
    assert fake.requests.index(defer) < fake.requests.index(followup)
    embed = followup.embeds[0]
    assert embed["title"].startswith("TSLA ")
    assert {f["name"] for f in embed["fields"]} >= {"Bid", "Ask", "Spread", "Volume"}
    assert "quote: sim" in embed["footer"]["text"] and "as of 2024-03-13" in embed["footer"]["text"]
    assert embed["timestamp"].startswith("2024-03-13T15:00:00")
    assert embed["color"] in (0x2ECC71, 0xF1C40F)
    assert followup.json["allowed_mentions"] == {"parse": []}


async def test_watch_group_stores_per_guild_user_and_feeds_autocomplete(start_discord, discord_fake, services):
    await start_discord()
    fake = discord_fake
    [added] = await _run(fake, fake.slash("watch", [{"name": "symbols", "type": 3, "value": "NVDA, amd"}], sub="add"))
    assert "NVDA" in added.embeds[0]["description"] and "AMD" in added.embeds[0]["description"]
    [listed] = await _run(fake, fake.slash("watch", sub="list"))
    assert "NVDA, AMD" in listed.embeds[0]["description"]

    async with services.db() as s:
        tenant = (await s.execute(select(Tenant).where(Tenant.platform == "discord"))).scalar_one()
        user = (await s.execute(select(User).where(User.tenant_id == tenant.id))).scalar_one()
    assert tenant.external_id == fake.guild_id and user.external_id == fake.owner_id

    # another member of the same guild has their own list
    other = fake.user("800000000000000001", "other")
    [theirs] = await _run(fake, fake.slash("watch", sub="list", user=other))
    assert "empty" in theirs.embeds[0]["description"]

    # autocomplete offers the watchlist (and recent symbols) matching what is typed
    ac = fake.autocomplete("quote", [{"name": "symbol", "type": 3, "value": "n", "focused": True}])
    await fake.dispatch("INTERACTION_CREATE", ac)
    [resp] = await fake.wait_for(lambda r: r.path.startswith(f"/interactions/{ac['id']}/"))
    assert resp.json["type"] == 8
    values = [c["value"] for c in resp.json["data"]["choices"]]
    assert values[0] == "N" and "NVDA" in values


async def test_autocomplete_of_a_symbol_list_completes_the_last_word(start_discord, discord_fake):
    await start_discord()
    fake = discord_fake
    await _run(fake, fake.slash("quote", [{"name": "symbol", "type": 3, "value": "MSFT"}]))  # a recent symbol
    ac = fake.autocomplete("watch", [{"name": "symbols", "type": 3, "value": "AAPL, MS", "focused": True}], sub="add")
    await fake.dispatch("INTERACTION_CREATE", ac)
    [resp] = await fake.wait_for(lambda r: r.path.startswith(f"/interactions/{ac['id']}/"))
    values = [c["value"] for c in resp.json["data"]["choices"]]
    assert "AAPL, MSFT" in values


async def test_bad_input_is_answered_privately_at_once(start_discord, discord_fake):
    await start_discord()
    fake = discord_fake
    itx = fake.slash("quote", [{"name": "symbol", "type": 3, "value": "12$$"}])
    await fake.dispatch("INTERACTION_CREATE", itx)
    [cb] = await fake.wait_for(lambda r: r.path.startswith(f"/interactions/{itx['id']}/"))
    assert cb.json["type"] == 4 and cb.json["data"]["flags"] & 64  # ephemeral message, no deferral
    text = cb.json["data"]["embeds"][0]["description"]
    assert text.startswith("invalid symbol '12$$'") and "e.g. TSLA" in text
    assert not fake.answers(itx["token"])


async def test_chart_buttons_and_a_click_that_runs_its_command(start_discord, discord_fake):
    await start_discord()
    fake = discord_fake
    [msg] = await _run(fake, fake.slash("chartdemo", [{"name": "symbol", "type": 3, "value": "TSLA"}]))
    embed = msg.embeds[0]
    assert embed["image"]["url"] == "attachment://chart.png"
    assert embed["color"] == 0x2ECC71  # long idea
    assert [f["name"] for f in embed["fields"]] == ["Entry", "Stop"]
    [(field, filename, _ctype, data)] = msg.files
    assert field == "files[0]" and filename == "chart.png"
    assert msg.json["attachments"][0]["filename"] == "chart.png"
    assert Image.open(io.BytesIO(data)).size == (64, 48)
    buttons = msg.buttons()
    assert [b["custom_id"] for b in buttons] == ["coach:/quote TSLA", "coach:/watch add TSLA"]
    assert buttons[0]["style"] == 1 and buttons[0]["label"] == "Quote"

    # a click (by another member) runs the invocation the button carries
    clicker = fake.user("800000000000000002", "clicker")
    click = fake.button_click("coach:/watch add TSLA", "Watch", user=clicker)
    [followup] = await _run(fake, click)
    assert _callbacks(fake, click)[0].json["type"] == 5
    assert "Added TSLA" in followup.embeds[0]["description"]


async def test_buttons_still_work_after_a_restart(start_discord, discord_fake):
    first = await start_discord()
    await first.close()
    await start_discord()  # a new process: it never sent the message that holds the button
    fake = discord_fake
    [followup] = await _run(fake, fake.button_click("coach:/quote NVDA", "Quote"))
    assert followup.embeds[0]["title"].startswith("NVDA ")


async def test_long_reply_is_split_across_messages_without_loss(start_discord, discord_fake):
    await start_discord()
    fake = discord_fake
    itx = fake.slash(
        "longreply",
        [
            {"name": "size", "type": 4, "value": 12000},
            {"name": "fields", "type": 4, "value": 40},
            {"name": "actions", "type": 4, "value": 30},
        ],
    )
    await fake.dispatch("INTERACTION_CREATE", itx)
    await fake.wait_for(lambda r: bool(r.content) and "More:" in r.content, timeout=15)
    msgs = fake.answers(itx["token"])
    assert len(msgs) >= 2 and msgs[0].method == "PATCH"  # the first edits the deferred response, the rest follow up
    words, fields, buttons = [], [], []
    for m in msgs:
        embeds = m.embeds
        assert len(embeds) <= 10
        total = 0
        for e in embeds:
            assert len(e.get("description", "")) <= 4096 and len(e.get("fields", [])) <= 25
            assert len(e.get("title", "")) <= 256
            total += len(e.get("title", "")) + len(e.get("description", "")) + len(e.get("footer", {}).get("text", ""))
            total += sum(len(f["name"]) + len(f["value"]) for f in e.get("fields", []))
            words.extend(e.get("description", "").split())
            fields.extend(f for f in e.get("fields", []) if not f["name"].endswith("(cont.)"))
        assert total <= 6000
        assert len(m.content or "") <= 2000
        buttons.extend(m.buttons())
    expected = [f"w{i}" for i in range(2000)]
    assert [w for w in words if w.startswith("w")] == expected
    assert len(fields) == 40
    assert len(buttons) == 25  # the rest are listed as text
    assert "/quote SYM29" in msgs[-1].content


async def test_a_bug_shows_only_a_reference(start_discord, discord_fake):
    await start_discord()
    fake = discord_fake
    with structlog.testing.capture_logs() as logs:
        [msg] = await _run(fake, fake.slash("boom"))
    text = msg.embeds[0]["description"]
    assert text.startswith("something went wrong (ref ")
    assert "internal detail" not in str(msg.json)
    ref = text.split("ref ")[1].rstrip(")")
    assert any(e.get("request_id") == ref and e["event"] == "command_failed" for e in logs)


async def test_admin_commands_need_manage_server(start_discord, discord_fake):
    await start_discord()
    fake = discord_fake
    itx = fake.slash("adminonly", permissions="0")
    await fake.dispatch("INTERACTION_CREATE", itx)
    [cb] = await fake.wait_for(lambda r: r.path.startswith(f"/interactions/{itx['id']}/"))
    assert cb.json["type"] == 4 and "Manage Server" in cb.json["data"]["embeds"][0]["description"]
    [ok] = await _run(fake, fake.slash("adminonly", permissions=str(1 << 5)))
    assert ok.embeds[0]["title"] == "admin ok"


async def test_per_user_rate_limit_answers_kindly(start_discord, discord_fake):
    await start_discord(limiter=RateLimiter(2))
    fake = discord_fake
    await _run(fake, fake.slash("session"))
    await _run(fake, fake.slash("session"))
    itx = fake.slash("session")
    await fake.dispatch("INTERACTION_CREATE", itx)
    [cb] = await fake.wait_for(lambda r: r.path.startswith(f"/interactions/{itx['id']}/"))
    assert cb.json["type"] == 4 and cb.json["data"]["flags"] & 64
    assert "Easy there" in cb.json["data"]["embeds"][0]["description"]
    # someone else is not affected
    await _run(fake, fake.slash("session", user=fake.user("800000000000000003", "calm")))


async def test_a_429_with_retry_after_is_honoured(start_discord, discord_fake):
    await start_discord()
    fake = discord_fake
    fake.fail("PATCH", rf"^/webhooks/{fake.app_id}/", status=429, retry_after=0.4, via=True)
    itx = fake.slash("session")
    t0 = time.monotonic()
    await fake.dispatch("INTERACTION_CREATE", itx)
    ok = await fake.wait_for(lambda r: _is_followup(fake, itx["token"])(r) and r.status == 200)
    elapsed = time.monotonic() - t0
    tries = fake.answers(itx["token"])
    assert [t.status for t in tries] == [429, 200]
    assert elapsed >= 0.4
    assert ok[0].embeds[0]["title"].startswith("NYSE")


async def test_dm_goes_to_the_coach(start_discord, discord_fake, services):
    seen = []

    async def coach(ctx, text):
        from bot.reply import Reply

        seen.append((ctx.identity, text))
        return Reply(title="Coach", body=f"you said: {text}")

    services.free_text = coach
    await start_discord()
    fake = discord_fake
    msg = fake.message_create("how does TSLA look?", dm=True)
    await fake.dispatch("MESSAGE_CREATE", msg)
    [sent] = await fake.wait_for(lambda r: r.method == "POST" and r.path == f"/channels/{msg['channel_id']}/messages")
    assert sent.embeds[0]["description"] == "you said: how does TSLA look?"
    ident, _ = seen[0]
    assert ident.dm and ident.tenant == f"dm-{fake.owner_id}" and ident.user == fake.owner_id

    # a mention in a guild channel: the mention is stripped and the reply references the message
    mention = fake.message_create("what about NVDA", mention=True)
    await fake.dispatch("MESSAGE_CREATE", mention)
    [reply] = await fake.wait_for(lambda r: r.method == "POST" and r.path == f"/channels/{fake.channel_id}/messages")
    assert reply.embeds[0]["description"] == "you said: what about NVDA"
    assert str(reply.json["message_reference"]["message_id"]) == mention["id"]
    assert seen[1][0].tenant == fake.guild_id and not seen[1][0].dm

    # plain chatter in a channel without a mention is ignored; slash text in a DM runs the command
    await fake.dispatch("MESSAGE_CREATE", fake.message_create("just chatting"))
    dm_cmd = fake.message_create("/quote AMD", dm=True)
    await fake.dispatch("MESSAGE_CREATE", dm_cmd)
    found = await fake.wait_for(lambda r: r.method == "POST" and r.path == f"/channels/{dm_cmd['channel_id']}/messages", count=2)
    assert found[1].embeds[0]["title"].startswith("AMD ")
    assert len(seen) == 2
