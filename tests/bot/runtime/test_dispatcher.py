"""Outbox delivery against a loopback webhook: 429 with retry_after, order per channel, failures, digests, resume."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.reply import Reply
from bot.runtime.dispatcher import DispatchConfig, Dispatcher
from bot.runtime.messages import reply_to_payload
from core.clock import utc_now
from storage.identity import ensure_owner
from storage.outbox import NewMessage, enqueue, outbox_rows
from tests.bot.runtime.conftest import say

FAST = dict(base_backoff=0.02, max_backoff=0.2, poll_interval=0.05)


async def _owner(services, tenant="G1", user="U1"):
    async with services.db() as s, s.begin():
        return await ensure_owner(s, "discord", tenant, user)


def _msg(owner, key, url, n, kind="plan", channel="a"):
    reply = Reply(title=f"{channel} #{n}", body="x", data={"n": n, "channel": channel})
    return NewMessage(
        tenant_id=owner.tenant_id,
        owner_id=owner.user_id,
        key=key,
        kind=kind,
        destination="webhook",
        target=url,
        payload=reply_to_payload(reply, event_key=key),
    )


async def _enqueue(services, msgs):
    async with services.db() as s, s.begin():
        return await enqueue(s, msgs)


async def _run_until(dispatcher, cond, timeout=20.0):
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await cond():
            assert asyncio.get_running_loop().time() < deadline, "timed out waiting for deliveries"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


async def _statuses(services):
    async with services.db() as s:
        return [r.status for r in await outbox_rows(s)]


async def test_429_with_retry_after_everything_delivered_in_order(services, hook):
    owner = await _owner(services)
    paths = ["/a", "/b", "/c"]
    for i, p in enumerate(paths):
        hook.modes[p] = ("429", 0.35, 0.05 + 0.02 * i)
    msgs = [_msg(owner, f"k:{p}:{n}", hook.url(p), n, channel=p) for n in range(25) for p in paths]
    assert await _enqueue(services, msgs) == 75
    d = Dispatcher(services, DispatchConfig(**FAST))

    async def done():
        return all(st == "delivered" for st in await _statuses(services))

    await _run_until(d, done, timeout=30)
    limited = [p for p in hook.posts if p.status == 429]
    assert limited, "the fake should have rate limited some calls"
    assert d.stats.rate_limited == len(limited)
    for p in paths:
        ok = hook.delivered(p)
        assert [post.body["data"]["n"] for post in ok] == list(range(25)), f"order broken on {p}"
        # exactly once per key on success, and every 429 was followed by a wait of at least retry_after
        assert len({post.key for post in ok}) == 25
        calls = [post for post in hook.posts if post.path == p]
        for prev, nxt in zip(calls, calls[1:]):
            if prev.status == 429:
                assert nxt.key == prev.key, "after a 429 the same message must be retried before the next"
                assert nxt.at - prev.at >= hook.modes[p][2] - 0.005
    async with services.db() as s:
        rows = await outbox_rows(s)
    assert all(r.attempts == 0 for r in rows), "a 429 is not a failed attempt"


async def test_failing_destination_is_isolated_reported_and_given_up(services, hook):
    owner = await _owner(services)
    hook.modes["/down"] = ("status", 500)
    msgs = []
    for n in range(6):
        msgs.append(_msg(owner, f"down:{n}", hook.url("/down"), n, channel="down"))
        msgs.append(_msg(owner, f"up:{n}", hook.url("/up"), n, channel="up"))
    await _enqueue(services, msgs)
    d = Dispatcher(services, DispatchConfig(max_attempts=3, **FAST))
    started = asyncio.get_running_loop().time()

    async def up_done():
        async with services.db() as s:
            rows = await outbox_rows(s)
        return all(r.status == "delivered" for r in rows if r.key.startswith("up:"))

    await _run_until(d, up_done, timeout=10)
    assert asyncio.get_running_loop().time() - started < 5, "the healthy channel must not wait for the failing one"
    assert [p.body["data"]["n"] for p in hook.delivered("/up")] == list(range(6))

    async def down_done():
        async with services.db() as s:
            rows = await outbox_rows(s)
        return all(r.status == "failed" for r in rows if r.key.startswith("down:"))

    await _run_until(d, down_done, timeout=20)
    down_calls = [p for p in hook.posts if p.path == "/down"]
    assert len(down_calls) == 6 * 3  # each row tried max_attempts times, in order
    assert [int(p.key.split(":")[1]) for p in down_calls] == [n for n in range(6) for _ in range(3)]
    status = await say(services, "/alerts status")
    assert status.data.failed == 6 and status.severity == "error"
    bad = [x for x in status.data.destinations if x.failed]
    assert bad and "500" in (bad[0].last_error or "")


async def test_revoked_webhook_fails_at_once(services, hook):
    owner = await _owner(services)
    hook.modes["/gone"] = ("status", 404)
    await _enqueue(services, [_msg(owner, "g:1", hook.url("/gone"), 1)])
    d = Dispatcher(services, DispatchConfig(**FAST))
    await d.deliver_all(timeout=5)
    await d.aclose()
    async with services.db() as s:
        (row,) = await outbox_rows(s)
    assert row.status == "failed" and row.attempts == 1 and "404" in row.last_error
    assert len(hook.posts) == 1


async def test_unknown_destination_kind_waits_without_burning_attempts(services):
    owner = await _owner(services)
    m = _msg(owner, "p:1", "somewhere", 1)
    m.destination = "carrierpigeon"
    await _enqueue(services, [m])
    d = Dispatcher(services, DispatchConfig(**FAST))
    await d.deliver_all(timeout=2)
    async with services.db() as s:
        (row,) = await outbox_rows(s)
    assert row.status == "pending" and row.attempts == 0 and "no destination" in row.last_error


async def test_flood_becomes_one_digest_in_place(services, hook):
    owner = await _owner(services)
    before = _msg(owner, "plan:first", hook.url("/ch"), 0, kind="plan")
    alerts = [_msg(owner, f"alert:{n}:1@x", hook.url("/ch"), n, kind="alert") for n in range(1, 13)]
    await _enqueue(services, [before, *alerts])
    d = Dispatcher(services, DispatchConfig(digest_threshold=5, **FAST))
    await d.deliver_all(timeout=5)
    await d.aclose()
    posts = hook.delivered("/ch")
    assert len(posts) == 2
    assert posts[0].key == "plan:first"
    digest = posts[1].body
    assert digest["title"].startswith("12 alerts")
    assert digest["data"]["covers"] == [f"alert:{n}:1@x" for n in range(1, 13)]
    async with services.db() as s:
        rows = await outbox_rows(s)
    assert sorted(r.status for r in rows) == ["delivered", "delivered"] + ["digested"] * 12


async def test_the_first_row_of_a_flood_is_sent_alone(services, hook):
    """It may already have been sent before a crash: it goes again under its own key, never inside a digest."""
    owner = await _owner(services)
    await _enqueue(services, [_msg(owner, f"alert:{n}:1@x", hook.url("/fl"), n, kind="alert") for n in range(8)])
    d = Dispatcher(services, DispatchConfig(digest_threshold=5, **FAST))
    await d.deliver_all(timeout=5)
    await d.aclose()
    posts = hook.delivered("/fl")
    assert [p.key for p in posts][0] == "alert:0:1@x"
    assert posts[1].body["data"]["covers"] == [f"alert:{n}:1@x" for n in range(1, 8)]


async def test_restart_resumes_pending_rows(services, hook):
    owner = await _owner(services)
    hook.modes["/slow"] = ("status", 503)
    await _enqueue(services, [_msg(owner, f"r:{n}", hook.url("/slow"), n) for n in range(3)])
    first = Dispatcher(services, DispatchConfig(base_backoff=0.01, max_backoff=0.01, poll_interval=0.05))
    await first.deliver_all(timeout=1)
    await first.aclose()
    assert set(await _statuses(services)) == {"pending"}
    # the receiver recovers; a new process (a fresh dispatcher) picks the rows up from the database,
    # a minute later: past the retry time the first one gave each row
    hook.modes["/slow"] = "ok"
    second = Dispatcher(services, DispatchConfig(**FAST), clock=lambda: utc_now() + timedelta(minutes=1))
    await second.deliver_all(timeout=5)
    await second.aclose()
    assert set(await _statuses(services)) == {"delivered"}
    assert [p.body["data"]["n"] for p in hook.delivered("/slow")] == [0, 1, 2]


@pytest.mark.parametrize("kind", ["discord_webhook", "slack_webhook"])
async def test_platform_webhook_payloads(services, hook, kind):
    owner = await _owner(services)
    m = _msg(owner, f"{kind}:1", hook.url(f"/{kind}"), 1)
    m.destination = kind
    await _enqueue(services, [m])
    d = Dispatcher(services, DispatchConfig(**FAST))
    await d.deliver_all(timeout=5)
    await d.aclose()
    (post,) = hook.delivered(f"/{kind}")
    if kind == "discord_webhook":  # rendered as the Discord bot renders its own messages
        assert post.body["embeds"][0]["title"] == "a #1" and "components" not in post.body
        assert post.body["allowed_mentions"] == {"parse": []}
    else:
        assert post.body["text"].startswith("a #1") and post.body["blocks"][0]["type"] == "header"
    assert post.key == f"{kind}:1"
