"""Shared async HTTP plumbing for provider clients: retries, rate gates, circuit breakers, error mapping.

Every real provider (Polygon, Tradier, Yahoo) talks through one `HttpClient`, so the rules
below hold for all of them:

* an injectable `httpx` transport (tests pass `httpx.MockTransport`), a timeout on every
  request and an overall deadline per call;
* retries with exponential backoff and full jitter on network errors, timeouts and
  408/425/429/499/5xx; a 429 waits as long as the provider asks (`Retry-After`,
  `X-RateLimit-Reset-After`, or Tradier's `X-Ratelimit-Expiry` when `-Available` is 0),
  up to `RetryPolicy.max_wait`; longer waits raise `RateLimited` at once with `retry_after`;
* a rate gate: when a response says the window is used up, the next call waits (or raises)
  before sending anything;
* a circuit breaker per provider: after `threshold` consecutive failures (network, timeout,
  5xx, unreadable body) calls fail fast for `cooldown` seconds, then one trial call decides;
* every failure becomes a `ProviderError` subclass naming the provider, with a one-line reason
  a user can read. Secrets never appear in reasons or logs (query strings are not logged).

The exception tree callers see (all are `core.errors.ProviderError`, so surfaces already
turn them into replies):

    core.errors.ProviderError        .provider, .reason (one line); here also .status
     +-- core.errors.RateLimited     429 beyond our patience; .retry_after seconds
     +-- ProviderUnavailable              network error, timeout, 5xx after retries
     |    +-- CircuitOpen                 breaker open: nothing was sent
     +-- BadPayload                       200 with a body that is not what the API documents
     +-- AuthFailed                       401: key missing, wrong or expired
     +-- NotEntitled                      the plan does not include this data (403 / entitlement 400)
     +-- BadRequest                       other 4xx: the provider refused the parameters
     +-- UnknownSymbol                    the provider does not know the symbol
     +-- Unsupported                      the provider does not serve this call (Yahoo chains, sandbox quotes)

Only `ProviderUnavailable` and `BadPayload` count against the breaker: a 401 or an unknown
symbol says nothing about the provider's health.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.errors import ProviderError, RateLimited
from core.retry import FULL_JITTER, Backoff

log = logging.getLogger("coach.providers.http")

__all__ = [
    "AuthFailed",
    "BadPayload",
    "BadRequest",
    "CircuitBreaker",
    "CircuitOpen",
    "HttpClient",
    "NotEntitled",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "RetryPolicy",
    "UnknownSymbol",
    "Unsupported",
    "one_line",
    "counts_against_health",
]


# ---------------------------------------------------------------------------- errors


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or kept failing (network, timeout, 5xx)."""

    def __init__(self, provider: str, reason: str, status: int | None = None) -> None:
        super().__init__(provider, reason)
        self.status = status


class CircuitOpen(ProviderUnavailable):
    """The provider's breaker is open after repeated failures; no request was sent."""

    def __init__(self, provider: str, retry_in: float) -> None:
        super().__init__(provider, f"paused after repeated failures; retrying in {max(1, round(retry_in))}s")
        self.retry_in = retry_in


class BadPayload(ProviderError):
    """The provider answered 200 with something other than the documented payload."""

    def __init__(self, provider: str, reason: str, status: int | None = 200) -> None:
        super().__init__(provider, reason)
        self.status = status


class AuthFailed(ProviderError):
    """The key or token was refused (missing, wrong or expired)."""

    def __init__(self, provider: str, reason: str, status: int | None = 401, detail: str = "") -> None:
        super().__init__(provider, reason)
        self.status = status
        self.detail = detail or reason


class NotEntitled(ProviderError):
    """The account's plan does not include this data."""

    def __init__(self, provider: str, reason: str, status: int | None = 403, family: str | None = None) -> None:
        super().__init__(provider, reason)
        self.status = status
        self.family = family


class BadRequest(ProviderError):
    """The provider refused the request's parameters (4xx other than 401/403/429)."""

    def __init__(self, provider: str, reason: str, status: int | None = 400, payload: Any = None) -> None:
        super().__init__(provider, reason)
        self.status = status
        self.payload = payload


class UnknownSymbol(ProviderError):
    """The provider does not know the symbol."""

    transient = False

    def __init__(self, provider: str, symbol: str, detail: str = "") -> None:
        super().__init__(provider, f"unknown symbol {symbol}" + (f" ({detail})" if detail else ""))
        self.symbol = symbol
        self.status = None


class Unsupported(ProviderError):
    """The provider does not serve this kind of data (or not with this account)."""

    transient = False

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(provider, reason)
        self.status = None


def counts_against_health(exc: BaseException) -> bool:
    """True for failures that say the provider itself is unwell (they feed the circuit breaker)."""
    return isinstance(exc, (ProviderUnavailable, BadPayload)) and not isinstance(exc, CircuitOpen)


def one_line(text: object, limit: int = 160) -> str:
    """`text` squeezed to one short line (provider messages can be long or multi-line)."""
    s = " ".join(str(text or "").split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


# ---------------------------------------------------------------------------- policy and breaker


#: Statuses worth another try: the server may answer differently in a moment.
RETRY_STATUSES = frozenset({408, 425, 429, 499, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries before giving up."""

    attempts: int = 3  # total tries, the first included
    base: float = 0.25  # first backoff ceiling, seconds
    cap: float = 4.0  # largest backoff ceiling, seconds
    max_wait: float = 10.0  # longest wait we accept when a provider says "come back in N seconds"
    timeout: float = 10.0  # per request
    deadline: float = 30.0  # per call, all retries and waits included

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Full-jitter backoff before retry number `attempt` (1-based): uniform in [0, min(cap, base*2^(n-1))]."""
        return Backoff(self.base, self.cap, jitter=FULL_JITTER, rng=rng).delay(attempt - 1)


@dataclass
class CircuitBreaker:
    """Per-provider breaker: closed -> open after `threshold` consecutive failures -> half-open after `cooldown`."""

    name: str
    threshold: int = 5
    cooldown: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _trial: bool = field(default=False, repr=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown:
            return "half_open"
        return "open"

    @property
    def healthy(self) -> bool:
        """True when a call would be let through right now."""
        st = self.state
        return st == "closed" or (st == "half_open" and not self._trial)

    def check(self) -> None:
        """Raise CircuitOpen when calls must fail fast; in half-open state let exactly one trial through."""
        st = self.state
        if st == "closed":
            return
        if st == "half_open" and not self._trial:
            self._trial = True
            return
        assert self.opened_at is not None
        raise CircuitOpen(self.name, max(0.0, self.cooldown - (self.clock() - self.opened_at)))

    def success(self) -> None:
        if self.opened_at is not None:
            log.info("%s recovered; circuit closed", self.name)
        self.failures = 0
        self.opened_at = None
        self._trial = False

    def failure(self) -> None:
        self.failures += 1
        if self._trial or (self.opened_at is None and self.failures >= self.threshold):
            log.warning("%s failing (%d in a row); circuit open for %.0fs", self.name, self.failures, self.cooldown)
            self.opened_at = self.clock()
        self._trial = False

    def release(self) -> None:
        """End a trial that neither succeeded nor failed on health grounds (e.g. a 404)."""
        if self._trial:
            self._trial = False
            self.success()


# ---------------------------------------------------------------------------- client


def default_reason(resp: httpx.Response) -> str:
    """A one-line reason from an error body: JSON `message`/`error`/`description`, else the text."""
    body = resp.content[:4000]
    if not body:
        return f"HTTP {resp.status_code}"
    try:
        data = json.loads(body)
    except ValueError:
        return one_line(body.decode("utf-8", "replace")) or f"HTTP {resp.status_code}"
    return one_line(_find_message(data)) or f"HTTP {resp.status_code}"


def _find_message(data: Any) -> str:
    if isinstance(data, dict):
        for key in ("message", "error", "description", "reason", "detail", "fault", "faultstring"):
            v = data.get(key)
            if isinstance(v, str) and v:
                return v
            if isinstance(v, (dict, list)):
                found = _find_message(v)
                if found:
                    return found
        for v in data.values():
            if isinstance(v, (dict, list)):
                found = _find_message(v)
                if found:
                    return found
    if isinstance(data, list):
        for v in data:
            found = v if isinstance(v, str) else _find_message(v)
            if found:
                return found
    return ""


def retry_after_seconds(resp: httpx.Response, wall: float) -> float | None:
    """Seconds the provider asked us to wait, from the headers it uses, or None."""
    return retry_after_header(resp.headers, wall)


def retry_after_header(headers: Any, wall: float | None = None) -> float | None:
    """Seconds to wait from rate-limit headers, or None: `retry-after-ms`, `Retry-After` and
    `X-RateLimit-Reset-After` (seconds or an HTTP date), Tradier's `X-Ratelimit-Expiry`.

    `headers` is any mapping (httpx, aiohttp and plain dicts; names in either case); `wall` is
    the epoch time dates are measured from (now by default).
    """
    if not headers:
        return None
    wall = time.time() if wall is None else wall

    def get(name: str) -> str | None:
        value: str | None = headers.get(name) or headers.get(name.lower())
        return value

    ms = get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    for name in ("Retry-After", "X-RateLimit-Reset-After"):
        v = get(name)
        if v:
            try:
                return max(0.0, float(v))
            except ValueError:
                try:
                    dt = email.utils.parsedate_to_datetime(v)
                    return max(0.0, dt.timestamp() - wall)
                except (TypeError, ValueError, IndexError):
                    pass
    expiry = _ratelimit_expiry(headers)
    if expiry is not None:
        return max(0.0, expiry - wall)
    return None


def _ratelimit_expiry(h: Any) -> float | None:
    """Tradier-style window end (epoch seconds) from X-Ratelimit-Expiry (epoch ms)."""
    v = h.get("X-Ratelimit-Expiry") or h.get("x-ratelimit-expiry")
    if not v:
        return None
    try:
        ms = float(v)
    except ValueError:
        return None
    return ms / 1000.0 if ms > 1e11 else ms


Describe = Callable[[httpx.Response], str]


class HttpClient:
    """One provider's HTTP session: base URL, default headers, retries, rate gate and breaker."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        describe: Describe = default_reason,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        wall: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        follow_redirects: bool = False,
    ) -> None:
        self.provider = provider
        self.policy = policy or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(provider)
        self.describe = describe
        self._sleep = sleep
        self._wall = wall
        self._rng = rng
        self.blocked_until: float = 0.0  # wall-clock seconds; the rate gate
        self.requests = 0  # requests actually sent (for tests and diagnostics)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            transport=transport,
            timeout=httpx.Timeout(self.policy.timeout, connect=min(5.0, self.policy.timeout)),
            follow_redirects=follow_redirects,
        )

    @property
    def base_url(self) -> httpx.URL:
        return self._client.base_url

    @property
    def cookies(self) -> httpx.Cookies:
        return self._client.cookies

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, what: str = "") -> Any:
        """GET `path` and return its JSON body (BadPayload when the body is not JSON)."""
        resp = await self.request("GET", path, params=params, what=what)
        return self.json_of(resp, what)

    def json_of(self, resp: httpx.Response, what: str = "") -> Any:
        """The JSON body of a successful response, or BadPayload naming what was asked."""
        try:
            return resp.json()
        except ValueError:
            snippet = one_line(resp.text, 60)
            raise BadPayload(self.provider, f"{what or 'response'} was not JSON ({snippet!r})") from None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        what: str = "",
        retry: bool = True,
    ) -> httpx.Response:
        """Send one logical request with retries; return a 2xx response or raise a ProviderError subclass.

        `retry=False` is for calls that must never be sent twice (placing an order): only
        failures that prove nothing was received (connect errors) are retried then.
        """
        what = what or path
        try:
            async with asyncio.timeout(self.policy.deadline):
                return await self._request(method, path, params, data, headers, what, retry)
        except TimeoutError:
            self.breaker.failure()
            raise ProviderUnavailable(self.provider, f"{what}: no answer within {self.policy.deadline:.0f}s") from None

    async def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        what: str,
        retry: bool,
    ) -> httpx.Response:
        policy = self.policy
        attempt = 0
        while True:
            attempt += 1
            await self._gate(what)
            if attempt == 1:  # retries belong to the same call (and to the same half-open trial)
                self.breaker.check()
            try:
                self.requests += 1
                resp = await self._client.request(method, path, params=params, data=data, headers=headers)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "network error"
                if attempt < policy.attempts and (retry or not sent):
                    await self._sleep(policy.backoff(attempt, self._rng))
                    continue
                self.breaker.failure()
                raise ProviderUnavailable(self.provider, f"{what}: {kind} ({exc.__class__.__name__})") from None
            self._note_window(resp)
            status = resp.status_code
            if 200 <= status < 300:
                self.breaker.success()
                return resp
            if status == 429:
                wait = retry_after_seconds(resp, self._wall())
                if wait is not None and wait > policy.max_wait:
                    self.blocked_until = max(self.blocked_until, self._wall() + wait)
                    self.breaker.release()
                    raise RateLimited(self.provider, f"rate limited; retry in {wait:.0f}s", retry_after=wait)
                if attempt < policy.attempts and retry:
                    await self._sleep(wait if wait is not None else policy.backoff(attempt, self._rng) + 1.0)
                    continue
                self.breaker.release()
                raise RateLimited(self.provider, "rate limited: " + self.describe(resp), retry_after=wait)
            if status in RETRY_STATUSES:
                if attempt < policy.attempts and retry:
                    wait = retry_after_seconds(resp, self._wall())
                    await self._sleep(min(wait, policy.max_wait) if wait is not None else policy.backoff(attempt, self._rng))
                    continue
                self.breaker.failure()
                raise ProviderUnavailable(self.provider, f"{what}: HTTP {status} ({self.describe(resp)})", status)
            self.breaker.release()
            raise self.status_error(resp, what)

    def status_error(self, resp: httpx.Response, what: str) -> ProviderError:
        """The default mapping of a non-retryable error status to an exception."""
        status = resp.status_code
        reason = self.describe(resp)
        if status == 401:
            return AuthFailed(self.provider, f"key rejected ({reason}); check the key or renew it", status, reason)
        if status == 403:
            return NotEntitled(self.provider, reason, status)
        if 400 <= status < 500:
            return BadRequest(self.provider, f"{what}: {reason}", status, _json_or_none(resp))
        return ProviderUnavailable(self.provider, f"{what}: HTTP {status} ({reason})", status)

    async def _gate(self, what: str) -> None:
        wait = self.blocked_until - self._wall()
        if wait <= 0:
            return
        if wait > self.policy.max_wait:
            raise RateLimited(self.provider, f"request budget used up; retry in {wait:.0f}s", retry_after=wait)
        log.info("%s rate window used up; waiting %.1fs before %s", self.provider, wait, what)
        await self._sleep(wait)

    def _note_window(self, resp: httpx.Response) -> None:
        """Remember a used-up rate window so the next call waits instead of earning a 429."""
        avail = resp.headers.get("X-Ratelimit-Available") or resp.headers.get("X-RateLimit-Remaining")
        if avail is None:
            return
        try:
            if float(avail) > 0:
                return
        except ValueError:
            return
        until = _ratelimit_expiry(resp.headers)
        if until is None:
            ra = retry_after_seconds(resp, self._wall())
            until = None if ra is None else self._wall() + ra
            reset = resp.headers.get("X-RateLimit-Reset")
            if until is None and reset:
                try:
                    until = float(reset)
                except ValueError:
                    until = None
        if until is not None:
            self.blocked_until = max(self.blocked_until, until)


def _json_or_none(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None
