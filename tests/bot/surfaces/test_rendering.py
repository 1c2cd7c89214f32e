"""Splitting and rendering within platform limits, the Slack manifest, and the per-user token bucket."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.app import command_registry
from bot.ratelimit import RateLimiter
from bot.reply import Action, Attachment, Reply, ReplyField
from bot.surfaces import render_discord, render_slack
from bot.surfaces.split import split_text

MANIFEST = Path(__file__).resolve().parents[3] / "deploy" / "slack_manifest.yaml"

text_st = st.lists(
    st.one_of(
        st.text(alphabet="abcdefghij XYZ.,", min_size=0, max_size=300),
        st.just("```"),
        st.just("```py"),
        st.text(alphabet="k", min_size=1, max_size=2500),
    ),
    max_size=40,
).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(text=text_st, limit=st.integers(min_value=40, max_value=3000))
def test_split_keeps_every_word_in_order_and_respects_the_limit(text, limit):
    chunks = split_text(text, limit)
    assert all(len(c) <= limit for c in chunks)
    fence = lambda w: w.startswith("```")  # noqa: E731 - fences may be added to close and reopen blocks
    words = [w for c in chunks for w in c.split() if not fence(w)]
    original = [w for w in text.split() if not fence(w)]
    # a word longer than the limit is cut into pieces; joining the pieces gives it back
    assert "".join(words) == "".join(original)


def test_split_closes_and_reopens_code_fences():
    text = "intro\n```text\n" + "\n".join(f"row {i:03d} 1.23 4.56" for i in range(200)) + "\n```\nafter"
    chunks = split_text(text, 500)
    assert len(chunks) > 2
    for c in chunks:
        assert c.count("```") % 2 == 0  # each chunk renders its code block on its own
    assert chunks[1].startswith("```text\n")


@settings(max_examples=60, deadline=None)
@given(
    body=st.integers(0, 30000),
    fields=st.integers(0, 80),
    value=st.integers(1, 3000),
    actions=st.integers(0, 40),
    title=st.integers(1, 400),
)
def test_renderers_stay_within_limits_and_drop_nothing(body, fields, value, actions, title):
    reply = Reply(
        title="T" * title,
        body=" ".join(f"b{i}" for i in range(body // 6)),
        fields=[ReplyField(name=f"F{i}", value="v" * value) for i in range(fields)],
        actions=[Action(label=f"A{i}", command=f"/quote S{i}") for i in range(actions)],
        attachments=[Attachment(filename="a b.png", data=b"\x89PNG")],
        sources=["sim"],
    )
    msgs = render_discord.render(reply)
    seen_fields, seen_buttons, desc_words, listed = 0, 0, [], ""
    for m in msgs:
        assert len(m.embeds) <= 10 and len(m.files) <= 10 and len(m.content or "") <= 2000
        assert sum(render_discord.embed_size(e) for e in m.embeds) <= 6000
        for e in m.embeds:
            assert len(e.get("description", "")) <= 4096 and len(e.get("fields", [])) <= 25 and len(e.get("title", "")) <= 256
            assert all(len(f["value"]) <= 1024 and len(f["name"]) <= 256 for f in e.get("fields", []))
            seen_fields += sum(1 for f in e.get("fields", []) if not f["name"].endswith("(cont.)"))
            desc_words += [w for w in e.get("description", "").split() if w.startswith("b")]
        seen_buttons += len(m.actions)
        listed += m.content or ""
    assert seen_fields == fields and desc_words == [f"b{i}" for i in range(body // 6)]
    assert seen_buttons == min(actions, 25) and all(f"/quote S{i}" in listed for i in range(25, actions))
    assert sum(len(m.files) for m in msgs) == 1

    smsgs = render_slack.render(reply)
    s_words, s_fields, s_buttons = [], 0, 0
    for m in smsgs:
        assert len(m.blocks) <= 50
        for b in m.blocks:
            if b["type"] == "header":
                assert len(b["text"]["text"]) <= 150
            if b["type"] == "section" and "text" in b:
                assert len(b["text"]["text"]) <= 3000
                s_words += [w for w in b["text"]["text"].split() if w.startswith("b")]
            if b["type"] == "section" and "fields" in b:
                assert len(b["fields"]) <= 10 and all(len(f["text"]) <= 2000 for f in b["fields"])
                s_fields += sum(1 for f in b["fields"] if not f["text"].split("\n")[0].endswith("(cont.)*"))
            if b["type"] == "actions":
                s_buttons += len(b["elements"])
    assert s_words == [f"b{i}" for i in range(body // 6)] and s_fields == fields and s_buttons == min(actions, 25)


def test_slack_mrkdwn_conversion():
    out = render_slack.mrkdwn("**Entry** 1 < 2 & [docs](https://x.io/a)\n`**raw**`\n```\n**code** <b>\n```")
    assert out.splitlines()[0] == "*Entry* 1 &lt; 2 &amp; <https://x.io/a|docs>"
    assert out.splitlines()[1] == "`**raw**`"
    assert "**code** &lt;b&gt;" in out


def test_discord_colour_follows_direction_then_severity():
    assert render_discord.colour(Reply(title="x", direction="short", severity="success")) == 0xE74C3C
    assert render_discord.colour(Reply(title="x", severity="warning")) == 0xF1C40F


def test_token_bucket_allows_bursts_then_refills():
    now = [0.0]
    rl = RateLimiter(6, clock=lambda: now[0])  # 6 a minute: one token every 10 s
    assert all(rl.take("u") == 0 for _ in range(6))
    wait = rl.take("u")
    assert 9.9 < wait <= 10.0 and "10 seconds" in rl.message(wait)
    assert rl.take("other") == 0
    now[0] += 10
    assert rl.take("u") == 0 and rl.take("u") > 0


def test_token_bucket_memory_is_bounded():
    rl = RateLimiter(1, max_keys=100)
    for i in range(1000):
        rl.take(i)
    assert len(rl._buckets) == 100


def test_slack_manifest_matches_the_code():
    m = yaml.safe_load(MANIFEST.read_text())
    cmds = m["features"]["slash_commands"]
    assert cmds[0]["command"] == "/coach"
    for c in cmds:
        assert c["url"].endswith("/slack/events") and len(c["description"]) <= 100
        if c["command"] != "/coach":
            assert c["command"][1:] in command_registry().commands or c["command"][1:] in command_registry().groups(), c[
                "command"
            ]
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "files:write", "users:read", "app_mentions:read", "im:history", "im:write"} <= scopes
    assert set(m["settings"]["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    assert m["settings"]["interactivity"]["is_enabled"] is True
