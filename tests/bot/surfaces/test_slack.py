"""The real slack-bolt AsyncApp over HTTP (signed requests) and Socket Mode, against the loopback Slack fake."""

from __future__ import annotations

import io
import json
import time

import aiohttp
from PIL import Image
from sqlalchemy import select

from bot.ratelimit import RateLimiter
from storage.models import Tenant, User
from tests.bot.surfaces.conftest import SLACK_SECRET
from tests.fakes.slack_fake import form_body, interactive_body, signed


async def _post(url: str, body: str, secret: str = SLACK_SECRET, **kw) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=body.encode(), headers=signed(secret, body, **kw)) as r:
            return r.status, await r.text()


async def _command(surface, fake, command: str, text: str, **kw) -> tuple[int, str]:
    return await _post(surface.url, form_body(fake.command(command, text, **kw)))


def _blocks_text(blocks: list[dict]) -> str:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        out.extend(f["text"] for f in b.get("fields", []))
        out.extend(e.get("text", "") if isinstance(e.get("text"), str) else e["text"]["text"] for e in b.get("elements", []))
    return "\n".join(out)


async def test_signed_slash_command_acks_then_posts_block_kit(start_slack, slack_fake):
    surface = await start_slack()
    fake = slack_fake
    t0 = time.monotonic()
    status, body = await _command(surface, fake, "/coach", "quote tsla")
    assert status == 200 and body == ""  # acknowledged at once, nothing echoed
    assert time.monotonic() - t0 < 3
    [post] = await fake.wait_for(lambda c: c.method == "chat.postMessage")
    msg = post.body
    assert msg["channel"] == "C111" and msg["text"].startswith("TSLA ")
    blocks = msg["blocks"]
    assert blocks[0]["type"] == "header" and "TSLA" in blocks[0]["text"]["text"]
    fields = [f["text"] for b in blocks if b["type"] == "section" for f in b.get("fields", [])]
    assert any(f.startswith("*Bid*\n") for f in fields) and any(f.startswith("*Volume*\n") for f in fields)
    context = [b for b in blocks if b["type"] == "context"][0]["elements"][0]["text"]
    assert "quote: sim" in context and "as of 2024-03-13 11:00" in context and "<@U111>" in context
    assert post.headers["Authorization"] == "Bearer xoxb-test-token"


async def test_bad_signature_and_stale_requests_get_401(start_slack, slack_fake):
    surface = await start_slack()
    body = form_body(slack_fake.command("/coach", "quote TSLA"))
    status, _ = await _post(surface.url, body, secret="wrong-secret")
    assert status == 401
    status, _ = await _post(surface.url, body, timestamp=int(time.time()) - 600)
    assert status == 401
    async with aiohttp.ClientSession() as s:
        async with s.post(surface.url, data=body) as r:
            assert r.status == 401
    assert not slack_fake.of("chat.postMessage")


async def test_bad_input_is_answered_privately_in_the_ack(start_slack, slack_fake):
    surface = await start_slack()
    status, body = await _command(surface, slack_fake, "/coach", "quote 12$$")
    assert status == 200
    ack = json.loads(body)
    assert ack["response_type"] == "ephemeral" and ack["text"].startswith("invalid symbol")
    status, body = await _command(surface, slack_fake, "/coach", "frobnicate TSLA")
    assert json.loads(body)["text"].startswith("unknown command /frobnicate")
    assert not slack_fake.of("chat.postMessage")


async def test_per_command_slash_and_empty_umbrella(start_slack, slack_fake):
    surface = await start_slack()
    await _command(surface, slack_fake, "/quote", "NVDA")
    await _command(surface, slack_fake, "/coach", "")
    posts = await slack_fake.wait_for(lambda c: c.method == "chat.postMessage", count=2)
    texts = sorted(p.body["text"] for p in posts)
    assert any(t.startswith("NVDA ") for t in texts) and any(t.startswith("Commands") for t in texts)


async def test_chart_is_uploaded_with_files_upload_v2_and_buttons_carry_invocations(start_slack, slack_fake):
    surface = await start_slack()
    fake = slack_fake
    await _command(surface, fake, "/coach", "chartdemo TSLA", channel="C777")
    [done] = await fake.wait_for(lambda c: c.method == "files.completeUploadExternal")
    [post] = fake.of("chat.postMessage")
    actions = [b for b in post.body["blocks"] if b["type"] == "actions"][0]["elements"]
    assert [a["value"] for a in actions] == ["/quote TSLA", "/watch add TSLA"]
    assert actions[0]["style"] == "primary" and actions[0]["action_id"].startswith("coach_run")
    assert post.body["blocks"][0]["text"]["text"].startswith(":large_green_circle:")
    [get_url] = fake.of("files.getUploadURLExternal")
    [upload] = fake.of("upload")
    assert get_url.body["filename"] == "chart.png" and int(get_url.body["length"]) == len(upload.raw)
    assert Image.open(io.BytesIO(upload.raw)).format == "PNG"
    assert done.body["channel_id"] == "C777"
    assert json.loads(done.body["files"])[0]["id"] == upload.body["fid"]
    # order: the message first, then the file
    assert fake.calls.index(post) < fake.calls.index(get_url)


async def test_button_click_runs_its_command_for_the_clicker(start_slack, slack_fake, services):
    surface = await start_slack()
    fake = slack_fake
    status, _ = await _post(
        surface.url,
        interactive_body(fake.block_action("/watch add TSLA", user="U222", label="Watch", thread_ts="1700000000.000050")),
    )
    assert status == 200
    [post] = await fake.wait_for(lambda c: c.method == "chat.postMessage")
    assert "Added TSLA" in _blocks_text(post.body["blocks"])
    assert post.body["thread_ts"] == "1700000000.000050"
    async with services.db() as s:
        tenant = (await s.execute(select(Tenant).where(Tenant.platform == "slack"))).scalar_one()
        users = (await s.execute(select(User.external_id).where(User.tenant_id == tenant.id))).scalars().all()
    assert tenant.external_id == "T111" and users == ["U222"]


async def test_mentions_and_dms_reach_the_coach(start_slack, slack_fake, services):
    seen = []

    async def coach(ctx, text):
        from bot.reply import Reply

        seen.append((ctx.identity, text))
        return Reply(title="Coach", body=f"you said: {text}")

    services.free_text = coach
    surface = await start_slack()
    fake = slack_fake
    mention = fake.event(
        {
            "type": "app_mention",
            "user": "U111",
            "text": "<@UBOT> how is TSLA & NVDA?",
            "ts": "1700000100.000100",
            "channel": "C111",
            "team": "T111",
            "event_ts": "1700000100.000100",
        }
    )
    status, _ = await _post(surface.url, json.dumps(mention), content_type="application/json")
    assert status == 200
    [post] = await fake.wait_for(lambda c: c.method == "chat.postMessage")
    assert post.body["thread_ts"] == "1700000100.000100" and "you said: how is TSLA &amp; NVDA?" in _blocks_text(
        post.body["blocks"]
    )
    assert seen[0][1] == "how is TSLA & NVDA?" and not seen[0][0].dm

    dm = fake.event(
        {
            "type": "message",
            "channel_type": "im",
            "user": "U111",
            "text": "plan for AMD?",
            "ts": "1700000200.000100",
            "channel": "D111",
            "team": "T111",
            "event_ts": "1700000200.000100",
        }
    )
    await _post(surface.url, json.dumps(dm), content_type="application/json")
    posts = await fake.wait_for(lambda c: c.method == "chat.postMessage", count=2)
    assert posts[1].body["channel"] == "D111" and "thread_ts" not in posts[1].body
    assert seen[1][1] == "plan for AMD?" and seen[1][0].dm and seen[1][0].tenant == "T111"

    # the bot's own messages and channel chatter are ignored
    for ev in (
        {"type": "message", "channel_type": "im", "bot_id": "BBOT", "text": "echo", "channel": "D111", "ts": "1.1"},
        {"type": "message", "channel_type": "channel", "user": "U111", "text": "hi all", "channel": "C111", "ts": "1.2"},
    ):
        await _post(surface.url, json.dumps(fake.event(ev)), content_type="application/json")
    await _post(
        surface.url,
        json.dumps(
            fake.event(
                {
                    "type": "message",
                    "channel_type": "im",
                    "user": "U111",
                    "text": "/quote SPY",
                    "channel": "D111",
                    "ts": "1.3",
                    "team": "T111",
                }
            )
        ),
        content_type="application/json",
    )
    posts = await fake.wait_for(lambda c: c.method == "chat.postMessage", count=3)
    assert posts[2].body["text"].startswith("SPY ")
    assert len(seen) == 2


async def test_a_429_with_retry_after_is_honoured(start_slack, slack_fake):
    surface = await start_slack()
    fake = slack_fake
    fake.rate_limit("chat.postMessage", retry_after=1)
    t0 = time.monotonic()
    await _command(surface, fake, "/coach", "session")
    await fake.wait_for(lambda c: c.method == "chat.postMessage" and c.status == 200)
    assert time.monotonic() - t0 >= 1.0
    assert [c.status for c in fake.of("chat.postMessage")] == [429, 200]


async def test_outside_a_channel_the_reply_goes_through_the_response_url(start_slack, slack_fake):
    surface = await start_slack()
    fake = slack_fake
    fake.not_member.add("C999")
    await _command(surface, fake, "/coach", "chartdemo TSLA", channel="C999")
    responses = await fake.wait_for(lambda c: c.method == "response_url", count=2)
    assert responses[0].body["response_type"] == "in_channel" and responses[0].body["blocks"][0]["type"] == "header"
    assert "Invite me" in responses[1].body["text"] and responses[1].body["response_type"] == "ephemeral"


async def test_admin_commands_follow_workspace_admin_flag(start_slack, slack_fake):
    surface = await start_slack()
    fake = slack_fake
    fake.admins.add("UADMIN")
    status, body = await _command(surface, fake, "/coach", "adminonly", user="U111")
    refusal = json.loads(body)  # answered privately in the acknowledgement itself
    assert status == 200 and refusal["response_type"] == "ephemeral" and "workspace admins" in refusal["text"]
    await _command(surface, fake, "/coach", "adminonly", user="UADMIN")
    [post] = await fake.wait_for(lambda c: c.method == "chat.postMessage")
    assert "admin ok" in post.body["text"]
    assert [c.body["user"] for c in fake.of("users.info")] == ["U111", "UADMIN"]


async def test_rate_limit_is_a_friendly_private_ack(start_slack, slack_fake):
    surface = await start_slack(limiter=RateLimiter(1))
    await _command(surface, slack_fake, "/coach", "session")
    status, body = await _command(surface, slack_fake, "/coach", "session")
    ack = json.loads(body)
    assert ack["response_type"] == "ephemeral" and "Easy there" in ack["text"]


async def test_long_reply_splits_within_block_kit_limits(start_slack, slack_fake):
    surface = await start_slack()
    await _command(surface, slack_fake, "/coach", "longreply size=200000 fields=120 actions=30")
    await slack_fake.wait_for(
        lambda c: c.method == "chat.postMessage" and any(b["type"] == "actions" for b in c.body["blocks"]), timeout=15
    )
    posts = slack_fake.of("chat.postMessage")
    assert len(posts) >= 2
    words, fields = [], 0
    for p in posts:
        blocks = p.body["blocks"]
        assert len(blocks) <= 50
        for b in blocks:
            if b["type"] == "section" and "text" in b:
                assert len(b["text"]["text"]) <= 3000
                words.extend(w for w in b["text"]["text"].split() if w.startswith("w"))
            for f in b.get("fields", []):
                assert len(f["text"]) <= 2000
                fields += not f["text"].split("\n")[0].endswith("(cont.)*")
            if b["type"] == "header":
                assert len(b["text"]["text"]) <= 150
    assert words == [f"w{i}" for i in range(200000 // 6)]
    assert fields == 120
    actions = [b for b in posts[-1].body["blocks"] if b["type"] == "actions"][0]["elements"]
    assert len(actions) == 25 and "/quote SYM29" in _blocks_text(posts[-1].body["blocks"])


async def test_socket_mode_envelope(start_slack, slack_fake):
    fake = slack_fake
    await start_slack(mode="socket")
    await fake.wait_for(lambda c: c.method == "apps.connections.open")
    [open_call] = fake.of("apps.connections.open")
    assert open_call.headers["Authorization"] == "Bearer xapp-test-token"
    import asyncio

    await asyncio.wait_for(fake.ws_connected.wait(), 5)
    await fake.send_envelope(
        {
            "envelope_id": "env-1",
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": fake.command("/coach", "quote AMD"),
        }
    )
    [ack] = await fake.wait_for(lambda c: c.method == "ws_ack")
    assert ack.body["envelope_id"] == "env-1"
    [post] = await fake.wait_for(lambda c: c.method == "chat.postMessage")
    assert post.body["text"].startswith("AMD ")
