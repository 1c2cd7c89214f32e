"""Alert destinations: discord.py REST and slack_sdk against the loopback fakes; webhooks against documented shapes."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import httpx
import pytest
from PIL import Image
from slack_sdk.web.async_client import AsyncWebClient

from bot.reply import Action, Attachment, Reply, ReplyField
from bot.runtime.destinations import DeliveryError, Destination
from bot.surfaces.channel_destinations import DiscordChannelDestination, SlackChannelDestination
from bot.surfaces.webhooks import DiscordWebhookDestination, SlackWebhookDestination
from core.errors import ProviderError, RateLimited
from tests.bot.surfaces.conftest import png_bytes

AS_OF = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)


def alert(long_body: bool = False) -> Reply:
    return Reply(
        title="TSLA crossed 190.00",
        body=("word " * 2000) if long_body else "Price 190.12 is above your level 190.00.",
        severity="warning",
        fields=[ReplyField(name="Price", value="190.12")],
        attachments=[Attachment(filename="TSLA chart.png", data=png_bytes(), description="chart")],
        actions=[Action(label="Re-plan", command="/plan TSLA", style="primary")],
        sources=["quote: sim"],
        as_of=AS_OF,
    )


@pytest.fixture
async def discord_dest(discord_fake):
    dest = DiscordChannelDestination(token="fake-token", api_base=discord_fake.api_base)
    yield dest
    await dest.aclose()


async def test_discord_channel_message_with_chart_buttons_and_nonce(discord_dest, discord_fake):
    fake = discord_fake
    assert isinstance(discord_dest, Destination)
    await discord_dest.send(f"channel:{fake.channel_id}", alert(), "alert-1:fire-7")
    [msg] = fake.matching("POST", rf"^/channels/{fake.channel_id}/messages$")
    embed = msg.embeds[0]
    assert embed["title"] == "TSLA crossed 190.00" and embed["color"] == 0xF1C40F
    assert embed["image"]["url"] == "attachment://TSLA_chart.png"
    [(_, filename, _, data)] = msg.files
    assert filename == "TSLA_chart.png" and Image.open(io.BytesIO(data)).format == "PNG"
    assert msg.buttons()[0]["custom_id"] == "coach:/plan TSLA"
    assert len(msg.json["nonce"]) <= 25 and msg.json["enforce_nonce"] is True
    # the same event again carries the same nonce (Discord drops the repeat)
    await DiscordChannelDestination(token="fake-token", api_base=fake.api_base).send(
        f"channel:{fake.channel_id}", alert(), "alert-1:fire-7"
    )
    second = fake.matching("POST", rf"^/channels/{fake.channel_id}/messages$")[1]
    assert second.json["nonce"] == msg.json["nonce"]


async def test_discord_dm_and_named_thread_targets(discord_dest, discord_fake):
    fake = discord_fake
    await discord_dest.send(f"dm:{fake.owner_id}", alert(), "k-dm")
    [opened] = fake.matching("POST", r"^/users/@me/channels$")
    assert str(opened.json["recipient_id"]) == fake.owner_id
    assert fake.matching("POST", rf"^/channels/5{fake.owner_id[1:]}/messages$")

    await discord_dest.send(f"thread:{fake.channel_id}:TSLA alerts", alert(), "k-t1")
    await discord_dest.send(f"thread:{fake.channel_id}:TSLA alerts", alert(), "k-t2")
    [created] = fake.matching("POST", rf"^/channels/{fake.channel_id}/threads$")
    assert created.json["name"] == "TSLA alerts"
    tid = fake.threads[0]["id"]
    assert len(fake.matching("POST", rf"^/channels/{tid}/messages$")) == 2
    # a restarted process finds the existing thread instead of opening another
    fresh = DiscordChannelDestination(token="fake-token", api_base=fake.api_base)
    await fresh.send(f"thread:{fake.channel_id}:TSLA alerts", alert(), "k-t3")
    await fresh.aclose()
    assert len(fake.matching("POST", rf"^/channels/{fake.channel_id}/threads$")) == 1
    assert len(fake.matching("POST", rf"^/channels/{tid}/messages$")) == 3


async def test_discord_429_raises_rate_limited_and_a_retry_sends_only_the_missing_part(discord_dest, discord_fake):
    fake = discord_fake
    # no Via header: discord.py does not retry itself, the dispatcher must wait retry_after
    fake.fail("POST", rf"^/channels/{fake.channel_id}/messages$", status=429, retry_after=2.5, via=False, skip=1)
    reply = alert(long_body=True).model_copy(update={"body": "x " * 5000})  # two messages
    with pytest.raises(RateLimited) as err:
        await discord_dest.send(f"channel:{fake.channel_id}", reply, "k-long")
    assert err.value.retry_after == 2.5
    await discord_dest.send(f"channel:{fake.channel_id}", reply, "k-long")
    sent = fake.matching("POST", rf"^/channels/{fake.channel_id}/messages$")
    assert [r.status for r in sent] == [200, 429, 200]
    assert sent[1].json["nonce"] == sent[2].json["nonce"] != sent[0].json["nonce"]


async def test_discord_429_with_via_is_waited_out_by_the_library(discord_dest, discord_fake):
    fake = discord_fake
    fake.fail("POST", rf"^/channels/{fake.channel_id}/messages$", status=429, retry_after=0.3, via=True)
    await discord_dest.send(f"channel:{fake.channel_id}", alert(), "k-via")
    assert [r.status for r in fake.matching("POST", rf"^/channels/{fake.channel_id}/messages$")] == [429, 200]


async def test_discord_forbidden_is_permanent(discord_dest, discord_fake):
    fake = discord_fake
    fake.fail("POST", r"/messages$", status=403, body={"message": "Missing Access", "code": 50001})
    with pytest.raises(DeliveryError) as err:
        await discord_dest.send(f"channel:{fake.channel_id}", alert(), "k-403")
    assert err.value.permanent and isinstance(err.value, ProviderError) and "403" in err.value.reason


async def test_discord_kind_reuses_the_running_surface(services, discord_fake):
    from pydantic import SecretStr

    from bot.app import build_surfaces

    services.settings = services.settings.model_copy(
        update={
            "discord_token": SecretStr("fake-token"),
            "discord_api_base": discord_fake.api_base,
            "discord_gateway_url": discord_fake.gateway_url,
        }
    )
    [surface] = build_surfaces(services)
    try:
        dest = services.destinations.build("discord")
        assert isinstance(dest, DiscordChannelDestination) and dest._given is surface.client
    finally:
        await surface.close()


# --------------------------------------------------------------------------- Slack Web API


@pytest.fixture
def slack_client(slack_fake):
    return AsyncWebClient(token="xoxb-test-token", base_url=slack_fake.api_url)


async def test_slack_channel_blocks_then_file_with_key_in_metadata(slack_client, slack_fake):
    dest = SlackChannelDestination(slack_client)
    await dest.send("channel:C555", alert(), "alert-9")
    [post] = slack_fake.of("chat.postMessage")
    assert post.body["channel"] == "C555" and post.body["blocks"][0]["text"]["text"].startswith(":warning:")
    meta = post.body["metadata"]
    meta = json.loads(meta) if isinstance(meta, str) else meta
    assert meta["event_payload"]["idempotency_key"] == "alert-9"
    [done] = slack_fake.of("files.completeUploadExternal")
    assert done.body["channel_id"] == "C555"
    assert Image.open(io.BytesIO(slack_fake.of("upload")[0].raw)).format == "PNG"


async def test_slack_named_thread_is_found_again_after_a_restart(slack_client, slack_fake):
    await SlackChannelDestination(slack_client).send("thread:C555:TSLA alerts", alert(), "k1")
    parent, reply = slack_fake.of("chat.postMessage")
    assert parent.body["text"] == "*TSLA alerts*" and reply.body["thread_ts"]
    await SlackChannelDestination(slack_client).send("thread:C555:TSLA alerts", alert(), "k2")
    posts = slack_fake.of("chat.postMessage")
    assert len(posts) == 3 and posts[2].body["thread_ts"] == reply.body["thread_ts"]
    [up] = [c for c in slack_fake.of("files.completeUploadExternal")][:1]
    assert up.body["thread_ts"] == reply.body["thread_ts"]


async def test_slack_dm_opens_the_conversation(slack_client, slack_fake):
    await SlackChannelDestination(slack_client).send("dm:U777", alert(), "k-dm")
    assert slack_fake.of("conversations.open")[0].body["users"] == "U777"
    assert slack_fake.of("chat.postMessage")[0].body["channel"] == "D777"


async def test_slack_429_and_permanent_errors(slack_client, slack_fake):
    dest = SlackChannelDestination(slack_client)
    slack_fake.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(RateLimited) as err:
        await dest.send("channel:C555", alert(), "k")
    assert err.value.retry_after == 7
    slack_fake.not_member.add("C404")
    with pytest.raises(DeliveryError) as err2:
        await dest.send("C404", alert(), "k2")
    assert err2.value.permanent and "not_in_channel" in err2.value.reason


# ------------------------------------------------------------------------------- webhooks


async def test_discord_webhook_multipart_and_429():
    seen: list[httpx.Request] = []
    answers = [
        httpx.Response(429, json={"message": "You are being rate limited.", "retry_after": 1.5, "global": False}),
        httpx.Response(200, json={"id": "1", "channel_id": "2"}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    url = "https://discord.com/api/webhooks/123/secret-token"
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        dest = DiscordWebhookDestination(url, http)
        with pytest.raises(RateLimited) as err:
            await dest.send("", alert(), "k")
        assert err.value.retry_after == 1.5 and "secret-token" not in str(err.value)
        await dest.send("", alert(), "k")
    req = seen[1]
    assert req.url.params["wait"] == "true"
    body = req.content
    assert b'name="payload_json"' in body and b'name="files[0]"; filename="TSLA_chart.png"' in body
    payload = json.loads(body.split(b'name="payload_json"')[1].split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0])
    assert payload["embeds"][0]["image"]["url"] == "attachment://TSLA_chart.png"
    assert "components" not in payload and "/plan TSLA" in payload["content"]  # webhooks cannot run buttons


async def test_slack_webhook_blocks_and_errors():
    seen: list[dict] = []
    answers = [
        httpx.Response(200, text="ok"),
        httpx.Response(429, text="rate limited", headers={"Retry-After": "3"}),
        httpx.Response(404, text="no_service"),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return answers.pop(0)

    url = "https://hooks.slack.com/services/T1/B1/secretpart"
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        dest = SlackWebhookDestination(url, http)
        await dest.send("", alert(), "k1")
        with pytest.raises(RateLimited) as err:
            await dest.send("", alert(), "k2")
        assert err.value.retry_after == 3
        with pytest.raises(DeliveryError) as err2:
            await dest.send("", alert(), "k3")
    assert err2.value.permanent and "secretpart" not in str(err2.value)
    first = seen[0]
    assert first["text"].startswith("TSLA crossed 190.00")
    context = [b for b in first["blocks"] if b["type"] == "context"][0]["elements"][0]["text"]
    assert "cannot carry files" in context and "TSLA chart.png" in context
    # no buttons: the webhook's owner app may not be this one; the command is listed instead
    assert not [b for b in first["blocks"] if b["type"] == "actions"]
    assert any("Re-plan: `/plan TSLA`" in (b.get("text") or {}).get("text", "") for b in first["blocks"])


async def test_discord_destination_waits_for_the_running_bot_to_log_in(services, discord_fake):
    from bot.surfaces.discord import DiscordSurface

    services.settings = services.settings.model_copy(
        update={"discord_api_base": discord_fake.api_base, "discord_gateway_url": discord_fake.gateway_url}
    )
    surface = DiscordSurface(services, sync=False)
    dest = DiscordChannelDestination(surface.client)
    dest.login_wait_steps = 2
    with pytest.raises(DeliveryError) as err:  # not logged in: a retryable failure, never a permanent 401
        await dest.send(f"channel:{discord_fake.channel_id}", alert(), "k-early")
    assert not err.value.permanent
    await surface.client.login("fake-token")
    try:
        await dest.send(f"channel:{discord_fake.channel_id}", alert(), "k-early")
    finally:
        await surface.close()
    [sent] = discord_fake.matching("POST", rf"^/channels/{discord_fake.channel_id}/messages$")
    assert sent.headers["Authorization"] == "Bot fake-token"
