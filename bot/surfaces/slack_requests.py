"""What Slack's HTTP requests must pass before Bolt sees them: a valid signature on a fresh timestamp, once.

Slack signs each request: `X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")`
with `X-Slack-Request-Timestamp` in Unix seconds, and a request more than five minutes from now
is refused. Two things Bolt's own check leaves open are closed here:

- A timestamp that is not a number made Bolt's verifier raise (a 500 and a traceback in the
  log for anyone who sends one, no secret needed). Here anything but plain ASCII digits is a
  quiet 401, like any other unverifiable request.
- A signed request sent again inside the five minutes would run again (the same `/journal add`
  three times gives three entries). A signature is remembered until its timestamp leaves the
  window, and a repeat is answered 200 with an empty body and not run. 200, not 401: a repeat
  is either an attacker replaying a captured request, who learns nothing either way, or Slack
  delivering again, which it keeps doing (and counts as failures that eventually switch the
  app's events off) for anything but a 2xx.

- An Events API event Slack delivers again (its `X-Slack-Retry-Num` retries, after a slow or
  failed answer) comes with a new timestamp and signature but the same `event_id`: the id is
  remembered for an hour (Slack retries for about that long), and a repeat is answered alike.

Only verified requests are remembered, so no one without the secret can fill the memory. With
COACH_QUEUE_URL set the memory is Redis (`SET key NX EX ttl`), shared by every front behind
Slack's one request URL; otherwise it is this process's, bounded and expiring.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

import structlog

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("coach.slack")

#: Slack's window: a request whose timestamp is further than this from now is refused (seconds).
WINDOW = 300
#: How long an Events API event id is remembered (Slack retries a failed delivery over about an hour).
EVENT_TTL = 3600
#: Longer than any timestamp Slack sends (ten digits until 2286): keeps int() cheap on junk.
_MAX_TS_DIGITS = 12


class Verdict(enum.Enum):
    """What to do with a request."""

    #: Signed, fresh, first time seen: hand it to Bolt.
    RUN = "run"
    #: Unsigned, badly signed, stale or malformed: 401.
    INVALID = "invalid"
    #: Signed and fresh, but seen before: 200, not run.
    REPEAT = "repeat"
    #: The shared memory is unreachable, so a repeat cannot be told from a first: 503 (Slack retries later).
    UNAVAILABLE = "unavailable"


class SeenRequests(Protocol):
    """Remembers request signatures for a while."""

    async def first(self, signature: str, ttl: int) -> bool:
        """True the first time `signature` is offered within `ttl` seconds, False on a repeat."""
        ...


class MemorySeen:
    """Signatures remembered in this process: at most `capacity`, each until its time is up.

    The capacity is far above what one front is sent in five minutes; should it be reached, the
    oldest signature is forgotten first.
    """

    def __init__(self, capacity: int = 100_000, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.clock = clock
        self._until: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    async def first(self, signature: str, ttl: int) -> bool:
        now = self.clock()
        self._forget_expired(now)
        until = self._until.get(signature)
        if until is not None and until > now:
            return False
        self._until[signature] = now + ttl
        self._until.move_to_end(signature)
        while len(self._until) > self.capacity:
            self._until.popitem(last=False)
        return True

    def _forget_expired(self, now: float) -> None:
        # oldest first; TTLs differ by at most the window, so stopping at the first live one leaves little behind
        while self._until:
            key, until = next(iter(self._until.items()))
            if until > now:
                return
            del self._until[key]


class RedisSeen:
    """Signatures remembered in Redis, so every front sees what any of them was sent."""

    def __init__(self, redis: Redis, *, prefix: str = "coach:slack:seen") -> None:
        self.redis = redis
        self.prefix = prefix

    async def first(self, signature: str, ttl: int) -> bool:
        return bool(await self.redis.set(f"{self.prefix}:{signature}", b"1", nx=True, ex=ttl))


class SlackRequestGuard:
    """Checks a Slack HTTP request's signature and timestamp, and that it was not seen before."""

    def __init__(self, signing_secret: str, seen: SeenRequests, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = signing_secret.encode()
        self.seen = seen
        self.clock = clock

    async def check(self, body: bytes, headers: Mapping[str, str]) -> Verdict:
        """The verdict on one request (its raw body and headers)."""
        if not self._secret:
            return self._refuse("no signing secret")
        stamp = headers.get("X-Slack-Request-Timestamp") or headers.get("x-slack-request-timestamp") or ""
        signature = headers.get("X-Slack-Signature") or headers.get("x-slack-signature") or ""
        # isdigit() alone would take other scripts' digits; Slack sends plain ASCII seconds
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= _MAX_TS_DIGITS):
            return self._refuse("timestamp is not a number")
        ts = int(stamp)
        now = self.clock()
        if abs(now - ts) > WINDOW:
            return self._refuse("timestamp outside the window")
        expected = "v0=" + hmac.new(self._secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return self._refuse("bad signature")
        # remembered until the timestamp leaves the window (a second more for rounding): after that it is refused anyway
        ttl = max(1, int(ts + WINDOW - now) + 1)
        try:
            fresh = await self.seen.first(expected, ttl)
        except Exception as exc:  # Redis down or unreachable: one line, and Slack tries again later
            log.warning("slack_replay_memory_unavailable", error=exc.__class__.__name__)
            return Verdict.UNAVAILABLE
        if not fresh:
            log.warning("slack_request_repeated", timestamp=ts)
            return Verdict.REPEAT
        event_id = _event_id(body)
        if event_id is not None:
            try:
                fresh = await self.seen.first(f"event:{event_id}", EVENT_TTL)
            except Exception as exc:
                log.warning("slack_replay_memory_unavailable", error=exc.__class__.__name__)
                return Verdict.UNAVAILABLE
            if not fresh:
                retry = headers.get("X-Slack-Retry-Num") or headers.get("x-slack-retry-num")
                log.info("slack_event_redelivered", event_id=event_id, retry=retry)
                return Verdict.REPEAT
        return Verdict.RUN

    @staticmethod
    def _refuse(reason: str) -> Verdict:
        # debug only: anyone can send these, and the log must not be theirs to fill
        log.debug("slack_request_refused", reason=reason)
        return Verdict.INVALID


def _event_id(body: bytes) -> str | None:
    """The `event_id` of an Events API callback (a JSON body), else None (slash commands and clicks are forms)."""
    if not body.lstrip().startswith(b"{"):
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    event_id = payload.get("event_id") if isinstance(payload, dict) else None
    # an id is short and plain (Ev0123ABCD); anything else is not used as a key
    if isinstance(event_id, str) and 0 < len(event_id) <= 64 and event_id.isascii() and event_id.isalnum():
        return event_id
    return None
