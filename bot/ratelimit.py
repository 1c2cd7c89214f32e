"""Per-user token buckets: a burst up to the per-minute allowance, refilled continuously."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


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

    def message(self, wait: float) -> str:
        """The friendly line a user sees when they are over the limit."""
        secs = max(1, math.ceil(wait))
        return (
            f"Easy there — that's more than {self.per_minute} requests a minute. "
            f"Give me {secs} second{'s' if secs != 1 else ''} and try again."
        )
