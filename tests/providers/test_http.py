"""HttpClient: retries with backoff, 429 and its headers, the rate gate, the circuit breaker, error mapping."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from core.errors import ProviderError, RateLimited
from providers.http import (
    AuthFailed,
    BadPayload,
    BadRequest,
    CircuitBreaker,
    CircuitOpen,
    HttpClient,
    NotEntitled,
    ProviderUnavailable,
    RetryPolicy,
)
from tests.providers.fakes import FakeAPI, SleepLog, fixture, resp


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def client(api: FakeAPI, sleep=None, **kw) -> HttpClient:
    return HttpClient("acme", "https://api.example.test", transport=api.transport(), sleep=sleep or SleepLog(), **kw)


async def test_retries_5xx_with_growing_jittered_backoff_then_succeeds():
    api = FakeAPI().on("GET", "/x", resp(503, "busy"), resp(502, "bad gateway"), {"ok": True})
    sleep = SleepLog()
    c = client(api, sleep, rng=lambda: 1.0, policy=RetryPolicy(attempts=3, base=0.5, cap=10))
    assert await c.get_json("/x") == {"ok": True}
    assert len(api.requests) == 3
    assert sleep.waits == [0.5, 1.0]  # full jitter ceiling doubles: base, 2*base
    c2 = client(FakeAPI().on("GET", "/x", resp(503), {"ok": 1}), SleepLog(), rng=lambda: 0.25, policy=RetryPolicy(base=0.5))
    await c2.get_json("/x")
    await c.aclose()
    await c2.aclose()


async def test_5xx_after_retries_is_provider_unavailable_naming_provider():
    api = FakeAPI().on("GET", "/x", resp(500, {"message": "internal"}))
    c = client(api, policy=RetryPolicy(attempts=2))
    with pytest.raises(ProviderUnavailable) as ei:
        await c.get_json("/x", what="AAPL bars")
    assert ei.value.provider == "acme" and "AAPL bars" in ei.value.reason and "500" in ei.value.reason
    assert "\n" not in str(ei.value)
    assert len(api.requests) == 2


async def test_timeout_and_network_errors_retry_then_map():
    api = FakeAPI().on("GET", "/x", httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), {"v": 1})
    c = client(api)
    assert await c.get_json("/x") == {"v": 1}
    api2 = FakeAPI().on("GET", "/x", httpx.ReadTimeout("slow"))
    c2 = client(api2, policy=RetryPolicy(attempts=2))
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await c2.get_json("/x")
    await c.aclose()
    await c2.aclose()


async def test_429_waits_retry_after_seconds_then_succeeds():
    api = FakeAPI().on("GET", "/x", resp(429, fixture("polygon/error_429.json"), {"Retry-After": "3"}), {"ok": 1})
    sleep = SleepLog()
    c = client(api, sleep)
    assert await c.get_json("/x") == {"ok": 1}
    assert sleep.waits == [3.0]


async def test_429_retry_after_http_date_and_too_long_raises_rate_limited_without_waiting():
    clock = Clock(1_700_000_000.0)
    when = email.utils.formatdate(clock.t + 120, usegmt=True)
    api = FakeAPI().on("GET", "/x", resp(429, "Too Many Requests", {"Retry-After": when}))
    sleep = SleepLog()
    c = client(api, sleep, wall=clock, policy=RetryPolicy(max_wait=10))
    with pytest.raises(RateLimited) as ei:
        await c.get_json("/x")
    assert 115 <= ei.value.retry_after <= 120 and ei.value.provider == "acme"
    assert sleep.waits == [] and len(api.requests) == 1
    # the gate now refuses at once: nothing is sent until the window has passed
    with pytest.raises(RateLimited):
        await c.get_json("/x")
    assert len(api.requests) == 1
    clock.t += 121
    api.routes.clear()
    api.on("GET", "/x", {"ok": 2})
    assert await c.get_json("/x") == {"ok": 2}


async def test_429_with_empty_body_and_no_headers_backs_off_and_finally_raises():
    api = FakeAPI().on("GET", "/x", resp(429))
    sleep = SleepLog()
    c = client(api, sleep, policy=RetryPolicy(attempts=3))
    with pytest.raises(RateLimited) as ei:
        await c.get_json("/x")
    assert len(api.requests) == 3 and len(sleep.waits) == 2 and all(w >= 1.0 for w in sleep.waits)
    assert ei.value.retry_after is None


async def test_tradier_ratelimit_headers_make_the_next_call_wait_for_the_window():
    clock = Clock(1_369_168_790.0)
    headers = {
        "X-Ratelimit-Allowed": "120",
        "X-Ratelimit-Used": "120",
        "X-Ratelimit-Available": "0",
        "X-Ratelimit-Expiry": "1369168800001",
    }  # epoch ms, ~10 s ahead
    api = FakeAPI().on("GET", "/x", resp(200, {"a": 1}, headers), {"a": 2})
    sleep = SleepLog()
    c = client(api, sleep, wall=clock, policy=RetryPolicy(max_wait=15))
    assert await c.get_json("/x") == {"a": 1}
    assert sleep.waits == []
    assert await c.get_json("/x") == {"a": 2}
    assert len(sleep.waits) == 1 and 9.9 < sleep.waits[0] < 10.1


async def test_tradier_429_with_expiry_header_waits_until_expiry():
    clock = Clock(1_369_168_795.0)
    api = FakeAPI().on(
        "GET", "/x", resp(429, "", {"X-Ratelimit-Available": "0", "X-Ratelimit-Expiry": "1369168800000"}), {"ok": 1}
    )
    sleep = SleepLog()
    c = client(api, sleep, wall=clock)
    assert await c.get_json("/x") == {"ok": 1}
    assert sleep.waits and abs(sleep.waits[0] - 5.0) < 0.01


@pytest.mark.parametrize(
    "status,body,exc,words",
    [
        (401, fixture("polygon/error_401.json"), AuthFailed, "Unknown API Key"),
        (403, fixture("polygon/error_403_not_entitled.json"), NotEntitled, "not entitled"),
        (400, fixture("polygon/error_400.json"), BadRequest, "Could not parse"),
        (404, "Not Found", BadRequest, "Not Found"),
    ],
)
async def test_error_statuses_map_to_one_line_reasons(status, body, exc, words):
    c = client(FakeAPI().on("GET", "/x", resp(status, body)))
    with pytest.raises(exc) as ei:
        await c.get_json("/x")
    assert isinstance(ei.value, ProviderError) and ei.value.provider == "acme"
    assert words in str(ei.value) and "\n" not in str(ei.value)
    assert ei.value.status == status


async def test_non_json_body_is_bad_payload():
    c = client(FakeAPI().on("GET", "/x", resp(200, "<html>oops</html>")))
    with pytest.raises(BadPayload, match="not JSON"):
        await c.get_json("/x", what="quotes")


async def test_circuit_opens_after_threshold_fails_fast_then_half_open_trial_closes_it():
    clock = Clock(0.0)
    breaker = CircuitBreaker("acme", threshold=2, cooldown=30, clock=clock)
    api = FakeAPI().on("GET", "/x", resp(503))
    c = client(api, breaker=breaker, policy=RetryPolicy(attempts=1))
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await c.get_json("/x")
    assert breaker.state == "open" and not breaker.healthy
    sent = len(api.requests)
    with pytest.raises(CircuitOpen, match="retrying in 30s"):
        await c.get_json("/x")
    assert len(api.requests) == sent  # nothing sent while open
    clock.t = 31
    assert breaker.state == "half_open" and breaker.healthy
    api.routes.clear()
    api.on("GET", "/x", {"ok": 1})
    assert await c.get_json("/x") == {"ok": 1}
    assert breaker.state == "closed" and breaker.failures == 0


async def test_half_open_trial_failure_reopens_and_user_errors_do_not_count():
    clock = Clock(0.0)
    breaker = CircuitBreaker("acme", threshold=1, cooldown=10, clock=clock)
    api = FakeAPI().on("GET", "/x", resp(500))
    c = client(api, breaker=breaker, policy=RetryPolicy(attempts=1))
    with pytest.raises(ProviderUnavailable):
        await c.get_json("/x")
    clock.t = 11
    with pytest.raises(ProviderUnavailable):
        await c.get_json("/x")  # the one trial fails
    assert breaker.state == "open"
    clock.t = 30
    api.routes.clear()
    api.on("GET", "/x", resp(404, {"message": "Ticker not found."}))
    for _ in range(5):
        with pytest.raises(BadRequest):
            await c.get_json("/x")
    assert breaker.state == "closed"  # a 404 is an answer, not ill health


async def test_no_retry_mode_never_resends_after_the_request_may_have_arrived():
    api = FakeAPI().on("POST", "/orders", httpx.ReadTimeout("slow"), {"order": {"id": 1}})
    c = client(api)
    with pytest.raises(ProviderUnavailable):
        await c.request("POST", "/orders", data={"a": "b"}, retry=False)
    assert len(api.requests) == 1
    api2 = FakeAPI().on("POST", "/orders", httpx.ConnectError("refused"), {"order": {"id": 1}})
    c2 = client(api2)
    r = await c2.request("POST", "/orders", data={"a": "b"}, retry=False)  # never connected: safe to retry
    assert r.status_code == 200 and len(api2.requests) == 2


async def test_deadline_bounds_a_call():
    import asyncio

    async def slow(_s: float) -> None:
        await asyncio.sleep(0.05)

    api = FakeAPI().on("GET", "/x", resp(503))
    c = HttpClient(
        "acme",
        "https://api.example.test",
        transport=api.transport(),
        sleep=slow,
        policy=RetryPolicy(attempts=50, base=1, deadline=0.2),
    )
    with pytest.raises(ProviderUnavailable, match="no answer within"):
        await c.get_json("/x")


def test_retry_after_header_reads_every_form_in_any_case():
    from email.utils import formatdate

    from providers.http import retry_after_header

    wall = 1_700_000_000.0
    assert retry_after_header({"retry-after-ms": "1500", "Retry-After": "9"}, wall) == 1.5  # OpenAI's finer header wins
    assert retry_after_header({"Retry-After": "7"}, wall) == 7.0
    assert retry_after_header({"retry-after": "3"}, wall) == 3.0  # a plain dict with lower-case names (slack_sdk)
    assert retry_after_header(httpx.Headers({"RETRY-AFTER": "4"}), wall) == 4.0
    assert retry_after_header({"Retry-After": formatdate(wall + 30, usegmt=True)}, wall) == 30.0
    assert retry_after_header({"X-RateLimit-Reset-After": "0.25"}, wall) == 0.25
    assert retry_after_header({"X-Ratelimit-Expiry": str(int((wall + 12) * 1000))}, wall) == 12.0
    assert retry_after_header({"Retry-After": "soon"}, wall) is None and retry_after_header(None) is None
