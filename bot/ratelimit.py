"""Per-user token buckets: a burst up to the per-minute allowance, refilled continuously.

`RateLimiter` keeps the buckets in this process (one front); `SharedRateLimiter` keeps them in
Redis, so that several fronts behind one address (Slack's HTTP mode) count a person once.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allow `per_minute` commands per key on average, with bursts up to `burst` (default: per_minute)."""

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self.capacity = float(burst if burst is not None else per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def take(self, key: Hashable) -> float:
        """Consume one token for `key`: 0.0 when allowed, otherwise the seconds until one is available."""
        now = self.clock()
        b = self._buckets.get(key)
        if b is None:
            b = _Bucket(self.capacity, now)
            self._buckets[key] = b
            if len(self._buckets) > self.max_keys:
                # the least recently seen key has had the longest time to refill; forgetting it is fair
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            b.tokens = min(self.capacity, b.tokens + (now - b.updated) * self.rate)
            b.updated = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.rate

    async def acquire(self, key: Hashable) -> float:
        """`take`, for callers that may be given a shared limiter."""
        return self.take(key)

    def message(self, wait: float) -> str:
        """The friendly line a user sees when they are over the limit."""
        secs = max(1, math.ceil(wait))
        return (
            f"Easy there — that's more than {self.per_minute} requests a minute. "
            f"Give me {secs} second{'s' if secs != 1 else ''} and try again."
        )


class Limiter(Protocol):
    """What the request pipeline needs of a rate limiter."""

    per_minute: int

    async def acquire(self, key: Hashable) -> float:
        """Take one token for `key`: 0.0 when allowed, else the seconds until one is available."""
        ...

    def message(self, wait: float) -> str: ...


#: One token bucket in a Redis hash; the time is Redis's own, so every front agrees on it.
_BUCKET = """
local now_s = redis.call('TIME')
local now = tonumber(now_s[1]) + tonumber(now_s[2]) / 1000000
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local data = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(data[1]) or capacity
local updated = tonumber(data[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class SharedRateLimiter(RateLimiter):
    """The same buckets in Redis (one per key, expiring once full again), shared by every front."""

    def __init__(self, redis: Redis, per_minute: int, *, burst: int | None = None, prefix: str = "coach:rate") -> None:
        super().__init__(per_minute, burst=burst)
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(_BUCKET)

    async def acquire(self, key: Hashable) -> float:
        name = f"{self.prefix}:" + ":".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        return float(await self._script(keys=[name], args=[self.rate, self.capacity]))
