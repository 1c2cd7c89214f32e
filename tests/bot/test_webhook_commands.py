"""Webhook sinks as people reach them: /settings webhook, /alerts test and /alerts status, logs and `coach config`.

Anyone may run these in their own Discord DM, so each is checked from the chat: a private target is
refused when typed and again when posted to, what a receiver answers never comes back into chat, and
no URL is ever shown with its token, password or query secret.
"""

from __future__ import annotations

import pytest
import structlog

from storage import alerts as store
from tests.bot.runtime.conftest import say
from tests.bot.test_cli import run
from tests.fakes.counting_receiver import CountingReceiver

# the console's identity: its own channel is deliverable in-process, and it administers its space, as a DM does
ADMIN = dict(platform="console", tenant="local", user="me", channel="console", admin=True)
DISCORD_TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789_abcdefghijklmnopqrstuvwxyzABCDEF"
DISCORD = f"https://discord.com/api/webhooks/123456789012345678/{DISCORD_TOKEN}"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
ALLOW_PRIVATE = pytest.mark.parametrize("settings_overrides", [{"coach_webhook_allow_private": True}])


@pytest.fixture
async def receiver():
    r = await CountingReceiver().start()
    yield r
    await r.stop()


def one_line_error(reply) -> str:
    assert reply.severity == "error", reply.body
    assert "\n" not in reply.body.strip() and "Traceback" not in reply.body
    return reply.body


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/x",
        "https://127.0.0.1:{port}/x",
        "https://localhost:{port}/x",
        "https://10.0.0.5/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]:{port}/x",
        "https://[::ffff:127.0.0.1]:{port}/x",
        "https://100.64.1.1/x",
    ],
)
async def test_adding_a_private_target_is_refused_in_one_line(services, receiver, url):
    body = one_line_error(await say(services, f"/settings webhook add {url.format(port=receiver.port)}", **ADMIN))
    assert "public https://" in body
    assert (await say(services, "/settings webhook list", **ADMIN)).data.webhooks == []
    await say(services, "/alerts test", **ADMIN)
    assert receiver.hits == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("https://evil.example/api/webhooks/1/tok kind=discord_webhook", "goes only to https://discord.com/api/webhooks/"),
        ("https://discord.com/channels/1/2 kind=discord_webhook", "not a discord_webhook URL"),
        ("https://hooks.slack.com.evil.example/services/T/B/X kind=slack_webhook", "goes only to https://hooks.slack.com/"),
        ("ftp://example.com/x", "must start with https://"),
        ("https://no-such-host.invalid/x", "could not resolve no-such-host.invalid"),
    ],
)
async def test_wrong_hosts_and_schemes_are_refused_with_what_is_accepted(services, line, expected):
    assert expected in one_line_error(await say(services, f"/settings webhook add {line}", **ADMIN))


async def test_a_stored_private_target_is_refused_again_when_posted(services, receiver):
    # stored before these rules, or while the operator allowed private receivers: delivery checks again
    from storage.identity import ensure_owner

    async with services.db() as s, s.begin():
        owner = await ensure_owner(s, "console", "local", "me")
        await store.update_settings(
            s, owner.tenant_id, "channel", "console", owner.user_id, webhooks=[{"kind": "webhook", "url": receiver.url("/x")}]
        )
    r = await say(services, "/alerts test", **ADMIN)
    assert r.severity == "error" and "refused" in r.body and "public https://" in r.body
    assert receiver.hits == []


@ALLOW_PRIVATE
async def test_the_operator_setting_lets_a_loopback_receiver_through(services, receiver):
    assert (await say(services, f"/settings webhook add {receiver.url('/x')}", **ADMIN)).severity == "success"
    r = await say(services, "/alerts test", **ADMIN)
    assert r.severity == "success", r.body
    assert receiver.hits == ["POST /x"]


@ALLOW_PRIVATE
async def test_a_receivers_answer_never_reaches_the_chat(services, receiver):
    receiver.status, receiver.body = 500, "internal: redis://admin:hunter2@10.1.2.3 SECRET-BODY"
    await say(services, f"/settings webhook add {receiver.url('/x')}", **ADMIN)
    r = await say(services, "/alerts test", **ADMIN)
    shown = r.body + str(r.data)
    assert "answered 500" in shown
    for leaked in ("SECRET-BODY", "hunter2", "10.1.2.3", "internal"):
        assert leaked not in shown
    status = await say(services, "/alerts status", **ADMIN)
    assert "SECRET-BODY" not in status.body + str(status.data_json())


async def test_settings_never_show_a_webhooks_token(services):
    for url in (DISCORD, SLACK):
        added = await say(services, f"/settings webhook add {url}", **ADMIN)
        assert added.severity == "success", added.body
    for line in ("/settings show", "/settings webhook list"):
        r = await say(services, line, **ADMIN)
        shown = r.body + str(r.data_json())
        for secret in (DISCORD_TOKEN, "123456789012345678", "T000", "B000", "XXXXXXXX"):
            assert secret not in shown, (line, secret)
        assert "https://discord.com/api/webhooks/… #" in r.body and "https://hooks.slack.com/services/… #" in r.body


@ALLOW_PRIVATE
async def test_alerts_test_status_and_logs_never_show_a_webhooks_token(services, receiver):
    # receivers on loopback with paths shaped like the platforms' (the token where Discord and Slack put theirs)
    receiver.status = 404
    discordish = receiver.url(f"/api/webhooks/123456789012345678/{DISCORD_TOKEN}")
    slackish = receiver.url("/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX?token=QUERYSECRET")
    basic = f"http://user:PASSWORD123@127.0.0.1:{receiver.port}/hook"
    await say(services, f"/settings webhook add {discordish} kind=discord_webhook", **ADMIN)
    await say(services, f"/settings webhook add {slackish} kind=slack_webhook", **ADMIN)
    await say(services, f"/settings webhook add {basic}", **ADMIN)
    with structlog.testing.capture_logs() as logs:
        tested = await say(services, "/alerts test", **ADMIN)
    status = await say(services, "/alerts status", **ADMIN)
    assert len(receiver.hits) == 3 and tested.severity == "error"  # each was posted to, each answered 404
    assert any(e.get("event") == "delivery_failed" for e in logs)
    outputs = [tested.body, str(tested.data), status.body, str(status.data_json()), str(logs)]
    for text in outputs:
        for secret in (DISCORD_TOKEN, "123456789012345678", "T000", "XXXXXXXX", "QUERYSECRET", "PASSWORD123"):
            assert secret not in text, secret


def test_coach_config_masks_every_url(tmp_path):
    env = {
        "OPENAI_BASE_URL": "http://user:OPENAIPASS@10.0.0.9:8000/v1",
        "DISCORD_API_BASE": "https://bot:DISCORDPASS@discord.internal/api",
        "DISCORD_GATEWAY_URL": "wss://gw.example/?token=GATEWAYSECRET",
        "SLACK_API_URL": f"https://slack.example/api/{DISCORD_TOKEN}/",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/coach.db",
    }
    res = run(["config"], tmp_path, env_extra=env)
    assert res.returncode == 0, res.stderr
    for secret in ("OPENAIPASS", "DISCORDPASS", "GATEWAYSECRET", DISCORD_TOKEN):
        assert secret not in res.stdout + res.stderr
    lines = dict(line.split(None, 1) for line in res.stdout.splitlines() if line.strip())
    assert lines["OPENAI_BASE_URL"].startswith("http://***@10.0.0.9:8000/v1 #")
    assert lines["DISCORD_GATEWAY_URL"].startswith("wss://gw.example/?token=*** #")
    assert lines["COACH_WEBHOOK_ALLOW_PRIVATE"] == "False"


async def test_a_webhook_is_removed_by_its_url_number_or_tag_and_an_unknown_one_lists_what_exists(services):
    from core.urls import mask_url, url_fingerprint

    for url in (DISCORD, SLACK):
        assert (await say(services, f"/settings webhook add {url}", **ADMIN)).severity == "success"
    gone = await say(services, f"/settings webhook remove {SLACK}", **ADMIN)
    assert gone.severity == "success", gone.body
    assert [h["url"] for h in gone.data.webhooks] == [mask_url(DISCORD)]
    other = "https://hooks.slack.com/services/T999/B999/YYYYYYYYYYYYYYYYYYYYYYYY"
    body = one_line_error(await say(services, f"/settings webhook remove {other}", **ADMIN))
    assert "https://hooks.slack.com/services/… #" in body and "1. discord_webhook https://discord.com/api/webhooks/… #" in body
    for secret in (DISCORD_TOKEN, "T999", "YYYYYYYY", "123456789012345678"):
        assert secret not in body
    one_line_error(await say(services, "/settings webhook remove 3", **ADMIN))
    tagged = await say(services, f"/settings webhook remove #{url_fingerprint(DISCORD)}", **ADMIN)
    assert tagged.severity == "success" and tagged.data.webhooks == []
    assert "none are set" in one_line_error(await say(services, "/settings webhook remove 1", **ADMIN))


async def test_removing_from_a_channel_that_inherits_the_workspaces_webhooks_says_so(services):
    here = dict(ADMIN, channel="C-desk")
    assert (await say(services, f"/settings webhook add {SLACK} --workspace", **here)).severity == "success"
    assert len((await say(services, "/settings webhook list", **here)).data.webhooks) == 1
    body = one_line_error(await say(services, "/settings webhook remove 1", **here))
    assert "--workspace" in body and "XXXXXXXX" not in body
    assert (await say(services, "/settings webhook remove 1 --workspace", **here)).data.webhooks == []
