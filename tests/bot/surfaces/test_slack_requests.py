"""Slack's HTTP requests against the real handler: malformed timestamps are a quiet 401, a signed request runs once.

Replays are checked in memory (one front) and through Redis at 127.0.0.1:6379 (several fronts),
with a key prefix of each test's own.
"""

from __future__ import annotations

import logging
import secrets
import time

import aiohttp
import pytest
import structlog.testing
from redis.asyncio import Redis
from sqlalchemy import func, select

from bot.ratelimit import RateLimiter
from bot.surfaces.slack import seen_requests
from bot.surfaces.slack_requests import WINDOW, MemorySeen, RedisSeen, SlackRequestGuard, Verdict
from storage.journal import JournalEntry
from tests.bot.surfaces.conftest import SLACK_SECRET
from tests.fakes.slack_fake import form_body, signed


@pytest.fixture
async def shared(redis):
    """The machine's Redis and a key prefix of this test's own (removed afterwards)."""
    client = redis
    prefix = "test:slack-seen:" + secrets.token_hex(6)
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)


async def _send(url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=body.encode(), headers=headers) as r:
            return r.status, await r.text()


async def _journal_entries(services) -> int:
    async with services.db() as s:
        return int((await s.execute(select(func.count()).select_from(JournalEntry))).scalar_one())


def _noisy(caplog, logs) -> list[object]:
    """Log records worth a person's attention: errors, or anything with a traceback."""
    std = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    ours = [e for e in logs if e.get("log_level") in ("error", "critical") or e.get("exc_info")]
    return std + ours


@pytest.mark.parametrize(
    "stamp",
    ["abc", "", "1e9", "12.5", "-5", " 1700000000", "1700000000 ", "0x10", "１７００００００００", "NaN", "9" * 400],
)
async def test_a_malformed_timestamp_is_a_quiet_401(start_slack, slack_fake, caplog, stamp):
    surface = await start_slack()
    body = form_body(slack_fake.command("/coach", "journal add hi"))
    headers = signed(SLACK_SECRET, body)
    headers["X-Slack-Request-Timestamp"] = stamp
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        status, text = await _send(surface.url, body, headers)
    assert status == 401 and text == '{"error": "invalid request"}'
    assert not _noisy(caplog, logs)
    assert "Traceback" not in caplog.text
    assert not slack_fake.of("chat.postMessage")


async def test_a_signed_request_sent_again_runs_once(start_slack, slack_fake, services, caplog):
    # one command a minute: a repeat that reached the pipeline would be answered "Easy there", not an empty 200
    surface = await start_slack(limiter=RateLimiter(1))
    body = form_body(slack_fake.command("/coach", "journal add replayed entry"))
    headers = signed(SLACK_SECRET, body)
    with structlog.testing.capture_logs() as logs:
        answers = [await _send(surface.url, body, headers) for _ in range(3)]
    assert answers == [(200, "")] * 3  # Slack sees each delivered; only the first runs
    await slack_fake.wait_for(lambda c: c.method == "chat.postMessage")
    assert await _journal_entries(services) == 1
    assert [e["event"] for e in logs if e["event"] == "slack_request_repeated"] == ["slack_request_repeated"] * 2
    assert not _noisy(caplog, logs)
    assert not [e for e in logs if e["event"] == "job_already_answered"]  # the repeats never became jobs
    # the same words typed again are a new request (a new trigger id, a new signature): it reaches the pipeline
    again = form_body(slack_fake.command("/coach", "journal add replayed entry"))
    status, text = await _send(surface.url, again, signed(SLACK_SECRET, again, timestamp=int(time.time()) - 1))
    assert status == 200 and "Easy there" in text


async def test_fronts_sharing_redis_run_a_request_once_whichever_gets_it(start_slack, slack_fake, services, shared):
    client, prefix = shared
    limiter = RateLimiter(1)  # a repeat that reached either front's pipeline would be answered "Easy there"
    a = await start_slack(seen=RedisSeen(client, prefix=prefix), limiter=limiter)
    b = await start_slack(seen=RedisSeen(client, prefix=prefix), limiter=limiter)
    body = form_body(slack_fake.command("/coach", "journal add one entry across fronts"))
    headers = signed(SLACK_SECRET, body)
    assert await _send(a.url, body, headers) == (200, "")
    assert await _send(b.url, body, headers) == (200, "")
    assert await _send(a.url, body, headers) == (200, "")
    await slack_fake.wait_for(lambda c: c.method == "chat.postMessage")
    assert await _journal_entries(services) == 1
    [key] = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    assert key.decode() == f"{prefix}:{headers['X-Slack-Signature']}"
    assert 0 < await client.ttl(key) <= WINDOW + 1  # forgotten once the timestamp is out of the window


async def test_unreachable_redis_is_a_quiet_503(start_slack, slack_fake, services, caplog):
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    surface = await start_slack(seen=RedisSeen(dead, prefix="test:slack-seen:dead"))
    body = form_body(slack_fake.command("/coach", "journal add nope"))
    with structlog.testing.capture_logs() as logs:
        status, _ = await _send(surface.url, body, signed(SLACK_SECRET, body))
    await dead.aclose()
    assert status == 503 and await _journal_entries(services) == 0
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["slack_replay_memory_unavailable"]
    assert not _noisy(caplog, logs)


async def test_the_memory_is_shared_only_when_fronts_share_a_queue(services, shared):
    client, _ = shared
    assert isinstance(seen_requests(services), MemorySeen)
    services.redis = client
    assert isinstance(seen_requests(services), RedisSeen)


async def test_memory_expires_and_stays_bounded():
    now = [1000.0]
    seen = MemorySeen(capacity=3, clock=lambda: now[0])
    assert await seen.first("a", 300) and not await seen.first("a", 300)
    now[0] += 299
    assert not await seen.first("a", 300)
    now[0] += 2
    assert await seen.first("a", 300)  # the window is over: Slack refuses it by its timestamp by now anyway
    for k in ("b", "c", "d", "e"):
        assert await seen.first(k, 300)
    assert len(seen) == 3 and not await seen.first("e", 300)
    now[0] += 301
    assert await seen.first("f", 300) and len(seen) == 1


async def test_guard_verdicts_follow_slacks_rules():
    now = 1_700_000_000.0
    guard = SlackRequestGuard(SLACK_SECRET, MemorySeen(), clock=lambda: now)
    body = b"command=%2Fcoach&text=hi"
    ok = signed(SLACK_SECRET, body.decode(), timestamp=int(now) - 10)
    assert await guard.check(body, ok) is Verdict.RUN
    assert await guard.check(body, ok) is Verdict.REPEAT
    assert await guard.check(body + b"x", ok) is Verdict.INVALID  # the body was changed
    stale = signed(SLACK_SECRET, body.decode(), timestamp=int(now) - WINDOW - 1)
    future = signed(SLACK_SECRET, body.decode(), timestamp=int(now) + WINDOW + 1)
    assert await guard.check(body, stale) is Verdict.INVALID and await guard.check(body, future) is Verdict.INVALID
    assert await guard.check(body, {}) is Verdict.INVALID
    assert await guard.check(body, {**ok, "X-Slack-Signature": "v0=é"}) is Verdict.INVALID
    assert await SlackRequestGuard("", MemorySeen(), clock=lambda: now).check(body, ok) is Verdict.INVALID


async def test_an_event_slack_delivers_again_runs_once():
    """Slack's retries of an event carry a new timestamp and signature but the same event id."""
    import json

    now = 1_700_000_000.0
    guard = SlackRequestGuard(SLACK_SECRET, MemorySeen(), clock=lambda: now)
    event = {"type": "event_callback", "event_id": "Ev0ABC123", "event": {"type": "message", "text": "hi"}}
    body = json.dumps(event)
    first = signed(SLACK_SECRET, body, timestamp=int(now) - 30)
    again = {**signed(SLACK_SECRET, body, timestamp=int(now) - 2), "X-Slack-Retry-Num": "1"}
    assert await guard.check(body.encode(), first) is Verdict.RUN
    assert await guard.check(body.encode(), again) is Verdict.REPEAT
    other = json.dumps({**event, "event_id": "Ev0ABC124"})
    assert await guard.check(other.encode(), signed(SLACK_SECRET, other, timestamp=int(now) - 1)) is Verdict.RUN
    odd = json.dumps({**event, "event_id": "../x"})  # not an id: never a key, the request still runs once
    assert await guard.check(odd.encode(), signed(SLACK_SECRET, odd, timestamp=int(now) - 3)) is Verdict.RUN
