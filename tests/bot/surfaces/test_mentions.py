"""No mention that someone typed (or the model wrote) reaches Slack live; Discord never lets @everyone or roles ping.

Slack parses `<!channel>`, `<!here>`, `<!everyone>`, `<@U…>`, `<#C…>` and `<!subteam^…>` in
message text and mrkdwn; the only escape is Slack's own `&amp;` `&lt;` `&gt;`. These tests drive
the real renderers with generated text, and the real Slack surface and destinations against
the loopback fakes, and look at every string of every payload.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.web.async_client import AsyncWebClient

from bot.reply import Action, Reply, ReplyField
from bot.runtime.messages import AlertEvent, alert_reply
from bot.surfaces import render_slack
from bot.surfaces.channel_destinations import SlackChannelDestination
from bot.surfaces.render_slack import WhoAsked
from bot.surfaces.webhooks import DiscordWebhookDestination, SlackWebhookDestination
from tests.bot.surfaces.conftest import SLACK_SECRET
from tests.fakes.slack_fake import form_body, interactive_body, signed

AT = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)

#: What people type to ping everyone, in the live form and as Slack delivers it typed literally (escaped once or twice).
DANGEROUS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!here|here>",
    "<@U0123ABCD>",
    "<@W0123ABCD>",
    "<#C0123ABCD>",
    "<#C0123ABCD|general>",
    "<!subteam^S0123ABCD>",
    "<!subteam^S0123ABCD|@traders>",
    "<!date^1392734382^{date}|x>",
    "&lt;!channel&gt;",
    "&amp;lt;!here&amp;gt;",
    "&#60;!everyone&#62;",
    "@channel",
    "@here",
    "@everyone",
]
#: Characters and markup that the renderers treat specially: fences, code, links, headings, the escapes themselves.
MARKUP = ["```", "`", "**", "__", "#", "# ", "\n", "[x](https://x.io/", ")", "<", ">", "&", "|", "&amp;", "<http", "!", "@"]

#: The one mention a reply may carry: the person who asked, built from their id.
CALLER = "U111"


#: Keys whose strings Slack never shows or parses: a button's value comes back to the app, ids are ids.
NOT_SHOWN = {"value", "action_id", "block_id", "response_url", "channel", "thread_ts", "metadata"}


def _strings(value: Any) -> list[str]:
    """Every string anywhere in a JSON-like payload that Slack may display."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() if k not in NOT_SHOWN for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def live_controls(payload: Any, *, allowed: tuple[str, ...] = ()) -> list[str]:
    """Slack control sequences (`<…>`) in a payload that Slack would act on, except `allowed` ones and links."""
    found = []
    for s in _strings(payload):
        for m in re.finditer(r"<([^<>]*)>?", s):
            seq = m.group(0)
            if seq in allowed or re.match(r"<https?://[^<>|]*(\|[^<>]*)?>$", seq):
                continue  # a link the renderer built from [label](url): never a mention
            found.append(seq)
    return found


def assert_no_live_mentions(payload: Any, *, allowed: tuple[str, ...] = ()) -> None:
    bad = live_controls(payload, allowed=allowed)
    assert not bad, f"live Slack control sequences in the payload: {bad}"


def _mrkdwn_objects(value: Any) -> list[dict]:
    if isinstance(value, dict):
        own = [value] if value.get("type") == "mrkdwn" else []
        return own + [o for v in value.values() for o in _mrkdwn_objects(v)]
    if isinstance(value, list):
        return [o for v in value for o in _mrkdwn_objects(v)]
    return []


def slack_shows(text: str) -> str:
    """What Slack displays for escaped text: its three escapes decoded, once."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


user_text = st.lists(st.one_of(st.sampled_from(DANGEROUS), st.sampled_from(MARKUP), st.text(max_size=12)), max_size=12).map(
    "".join
)


def adversarial_reply(t: list[str]) -> Reply:
    return Reply(
        title=t[0],
        body=f"{t[1]}\n```\n{t[2]}\n```\n{t[3]} [{t[4]}](https://x.io/{t[4]}) `{t[5]}`",
        fields=[ReplyField(name=t[6], value=t[7]), ReplyField(name="Note", value=t[8])],
        actions=[Action(label=t[9], command=f"/journal add {t[10]}"), Action(label="x", command="/" + "y" * 2100 + t[11])],
        sources=[t[12]],
        as_of=AT,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(user_text, min_size=14, max_size=14), st.booleans())
def test_rendered_messages_carry_no_typed_mention(t, buttons):
    reply = adversarial_reply(t)
    msgs = render_slack.render(reply, extra_context=t[13], who=WhoAsked(CALLER, t[10], clicked=t[9]), buttons=buttons)
    payload = [{"text": m.text, "blocks": m.blocks} for m in msgs]
    assert_no_live_mentions(payload, allowed=(f"<@{CALLER}>",))
    context = [b for m in msgs for b in m.blocks if b["type"] == "context"]
    assert context[-1]["elements"][0]["text"].count(f"<@{CALLER}>") >= 1  # the caller's mention stays live
    assert all(o.get("verbatim") is True for o in _mrkdwn_objects(payload))  # no bare @here parsing either


@settings(max_examples=200, deadline=None)
@given(user_text)
def test_escaping_is_slacks_own_and_never_undone(text):
    # what Slack displays is exactly what was typed: escaped once, never decoded on the way out
    title = text.replace("**", "").replace("__", "").replace("`", "")
    [m] = render_slack.render(Reply(title=text[:100] or "x", body=""))
    if len(text) <= 40 and title:
        assert slack_shows(m.blocks[0]["text"]["text"]) == title
        assert slack_shows(m.text) == title
    assert render_slack.escape("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"
    assert slack_shows(render_slack.escape(text)) == text


def test_the_who_asked_mention_is_built_from_an_id_only():
    assert WhoAsked("U0AB12", "/plan TSLA").mrkdwn() == "<@U0AB12>: `/plan TSLA`"
    # something that is not a user id is shown as text
    assert WhoAsked("<!channel>", "x").mrkdwn().startswith("&lt;!channel&gt;")
    assert WhoAsked("U1|<!here>", "x").mrkdwn().startswith("U1|&lt;!here&gt;")
    shown = WhoAsked("U1AB", "/journal add <!channel> hi", clicked="<!here>").mrkdwn()
    assert shown == "<@U1AB> clicked &lt;!here&gt;: `/journal add &lt;!channel&gt; hi`"


# ------------------------------------------------------------------- the Slack surface, end to end


async def _post(url: str, body: str, **kw) -> tuple[int, str]:
    import aiohttp

    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=body.encode(), headers=signed(SLACK_SECRET, body, **kw)) as r:
            return r.status, await r.text()


def slack_escaped(text: str) -> str:
    """Text as Slack delivers what someone typed: its control characters escaped."""
    return render_slack.escape(text)


def _outbound(fake) -> list[Any]:
    """Every payload the app sent to Slack (Web API calls and response URLs)."""
    return [c.body for c in fake.calls if c.method not in ("auth.test", "users.info", "upload", "ws_ack")]


async def test_typed_mentions_in_a_journal_entry_stay_text_end_to_end(start_slack, slack_fake):
    surface = await start_slack()
    fake = slack_fake
    typed = " ".join(DANGEROUS)
    status, body = await _post(surface.url, form_body(fake.command("/coach", slack_escaped(f"journal add {typed} hi"))))
    assert status == 200 and body == ""
    [post] = await fake.wait_for(lambda c: c.method == "chat.postMessage")
    assert_no_live_mentions(post.body, allowed=("<@U111>",))
    context = [b for b in post.body["blocks"] if b["type"] == "context"][0]["elements"][0]["text"]
    assert "<@U111>: `/journal add &lt;!channel&gt; &lt;!here&gt;" in context
    # listed back later, from storage, it is still text (the list is private: it comes through the response URL)
    await _post(surface.url, form_body(fake.command("/coach", "journal list")))
    [listed] = await fake.wait_for(lambda c: c.method == "response_url")
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt;" in json.dumps(listed.body)
    # typed literally as an escape, it is shown literally
    await _post(surface.url, form_body(fake.command("/coach", slack_escaped("journal add &lt;!channel&gt; &amp; <!here>"))))
    posts = await fake.wait_for(lambda c: c.method == "chat.postMessage", count=2)
    assert "`/journal add &amp;lt;!channel&amp;gt; &amp;amp; &lt;!here&gt;`" in json.dumps(posts[1].body)
    assert_no_live_mentions(_outbound(fake), allowed=("<@U111>",))


async def test_typed_mentions_in_errors_buttons_and_alert_notes(start_slack, slack_fake):
    surface = await start_slack()
    fake = slack_fake
    # an error answered in the acknowledgement itself
    status, body = await _post(surface.url, form_body(fake.command("/coach", slack_escaped("quote <!channel>"))))
    assert status == 200 and "&lt;!CHANNEL&gt;" in json.loads(body)["text"]
    assert_no_live_mentions(json.loads(body))
    status, body = await _post(surface.url, form_body(fake.command("/coach", slack_escaped("<!everyone> TSLA"))))
    assert_no_live_mentions(json.loads(body))
    # an alert note, answered publicly
    await _post(surface.url, form_body(fake.command("/coach", slack_escaped("alert add TSLA pct 2 <!everyone> <!subteam^S1>"))))
    [post] = await fake.wait_for(lambda c: c.method == "chat.postMessage")
    assert "&lt;!everyone&gt;" in json.dumps(post.body)
    # a click whose label and invocation carry mentions (refused: the invocation is not a command)
    await _post(surface.url, interactive_body(fake.block_action("/journal add <!here> x", user="U222", label="<!channel>")))
    posts = await fake.wait_for(lambda c: c.method == "chat.postMessage", count=2)
    context = [b for b in posts[1].body["blocks"] if b["type"] == "context"][0]["elements"][0]["text"]
    assert "<@U222> clicked &lt;!channel&gt;: `/journal add &lt;!here&gt; x`" in context
    await _post(surface.url, interactive_body(fake.block_action("/quote <!here>", user="U222", label="x")))
    await fake.wait_for(lambda c: c.method == "response_url")
    assert_no_live_mentions(_outbound(fake), allowed=("<@U111>", "<@U222>"))


async def test_the_coach_and_a_mention_cannot_ping_the_channel(start_slack, slack_fake, services):
    async def coach(ctx, text):
        # the model echoes what it was told, and adds a ping of its own: neither may reach Slack live
        return Reply(title="Coach <!here>", body=f"you said: {text}\n<!channel> <@U999> <!subteam^S1|@all>")

    services.free_text = coach
    surface = await start_slack()
    fake = slack_fake
    event = fake.event(
        {
            "type": "app_mention",
            "user": "U111",
            "text": "<@UBOT> ping <!everyone> and &lt;!here&gt; please",
            "ts": "1700000100.000100",
            "channel": "C111",
            "team": "T111",
            "event_ts": "1700000100.000100",
        }
    )
    status, _ = await _post(surface.url, json.dumps(event), content_type="application/json")
    assert status == 200
    [post] = await fake.wait_for(lambda c: c.method == "chat.postMessage")
    assert_no_live_mentions(post.body)
    assert "you said: ping &lt;!everyone&gt; and &lt;!here&gt; please" in json.dumps(post.body)


# ------------------------------------------------------------------- fired alerts: channel and webhooks


def fired(note: str) -> Reply:
    ev = AlertEvent(
        key="alert:1:1",
        alert_id=1,
        symbol="TSLA",
        kind="above",
        side="up",
        level=250.0,
        price=251.0,
        at=AT,
        fire_count=1,
        repeat=False,
        note=note,
    )
    return alert_reply(ev)


async def test_fired_alert_notes_reach_slack_channels_and_webhooks_as_text(slack_fake):
    note = " ".join(DANGEROUS)
    dest = SlackChannelDestination(AsyncWebClient(token="xoxb-test", base_url=slack_fake.api_url))
    try:
        await dest.send("C111", fired(note), "k1")
        await dest.send("thread:C111:<!channel> alerts", fired(note), "k2")
    finally:
        await dest.aclose()
    sent = _outbound(slack_fake)
    assert len(slack_fake.of("chat.postMessage")) == 3  # two alerts and the named thread's parent
    assert_no_live_mentions(sent)
    assert "&lt;!everyone&gt;" in json.dumps(sent)

    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, text="ok")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        await SlackWebhookDestination("https://hooks.slack.com/services/T1/B1/x", http).send("", fired(note), "k3")
    assert_no_live_mentions(seen)
    assert "Note: " in json.dumps(seen)


# ------------------------------------------------------------------- Discord: allowed_mentions


def _mentions_are_off(body: dict) -> bool:
    am = body.get("allowed_mentions")
    return isinstance(am, dict) and not {"everyone", "roles"} & set(am.get("parse", [])) and not am.get("roles")


async def test_discord_bot_and_webhook_messages_allow_no_everyone_or_role_pings(start_discord, discord_fake, services):
    async def coach(ctx, text):
        return Reply(title="Coach", body=f"you said: {text} @everyone @here <@&42>")

    services.free_text = coach
    await start_discord()
    fake = discord_fake
    typed = "@everyone @here <@&42> <@1> hi"
    itx = fake.slash("journal", [{"name": "text", "type": 3, "value": typed}], sub="add")
    await fake.dispatch("INTERACTION_CREATE", itx)
    await fake.wait_for(fake.is_answer(itx["token"]))
    bad = fake.slash("quote", [{"name": "symbol", "type": 3, "value": "@everyone"}])
    await fake.dispatch("INTERACTION_CREATE", bad)
    await fake.wait_for(lambda r: r.path.startswith(f"/interactions/{bad['id']}/") and (r.json or {}).get("type") == 4)
    dm = fake.message_create(typed, dm=True)
    await fake.dispatch("MESSAGE_CREATE", dm)
    await fake.wait_for(lambda r: r.method == "POST" and r.path == f"/channels/{dm['channel_id']}/messages")
    messages = [
        r.message
        for r in fake.requests
        if r.method in ("POST", "PATCH") and (r.message.get("content") or r.message.get("embeds"))
    ]
    assert len(messages) >= 3
    assert all(_mentions_are_off(m) for m in messages), [m.get("allowed_mentions") for m in messages]

    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("content-type", "").startswith("multipart/"):
            part = request.content.split(b'name="payload_json"')[1].split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]
            seen.append(json.loads(part))
        else:
            seen.append(json.loads(request.content))
        return httpx.Response(200, json={"id": "1", "channel_id": "2"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        await DiscordWebhookDestination("https://discord.com/api/webhooks/1/t", http).send("", fired(typed), "k")
    assert seen and all(_mentions_are_off(b) for b in seen)
