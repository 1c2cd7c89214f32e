"""How long to wait before trying again: the one backoff policy every retry and reconnect loop uses.

A delay grows exponentially from `base` by `factor` per attempt, is held at `cap`, and is then
multiplied by a random factor drawn uniformly from `jitter` so that many clients failing at the
same moment do not all come back at the same moment. When the other side said how long to wait
(`Retry-After` and its cousins) that answer wins: the server knows its own window.

Each loop keeps its own attempt limit and its own rule for waits that are too long; this module
only answers "how long now".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Backoff", "FULL_JITTER", "NO_JITTER"]

#: Uniform in [0, ceiling): the widest spread, for many clients hitting one provider.
FULL_JITTER: tuple[float, float] = (0.0, 1.0)
#: Exactly the ceiling: for a single loop that has nobody to spread out from.
NO_JITTER: tuple[float, float] = (1.0, 1.0)


@dataclass(frozen=True)
class Backoff:
    """Delays of `min(cap, base * factor**attempt)` seconds times a multiplier drawn from `jitter`.

    `attempt` counts the failures already seen: 0 before the first retry. `rng` answers a float
    in [0, 1); pass a seeded `random.Random(n).random` (or a constant) for repeatable delays.
    """

    base: float
    cap: float
    factor: float = 2.0
    #: (low, high) bounds of the multiplier applied to the ceiling.
    jitter: tuple[float, float] = FULL_JITTER
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        low, high = self.jitter
        if self.base < 0 or self.cap < 0:
            raise ValueError("backoff base and cap must not be negative")
        if self.factor < 1:
            raise ValueError("backoff factor must be at least 1 (delays must not shrink)")
        if not 0 <= low <= high:
            raise ValueError("backoff jitter must be (low, high) with 0 <= low <= high")

    def ceiling(self, attempt: int) -> float:
        """The delay before jitter after `attempt` earlier failures: `base * factor**attempt`, at most `cap`."""
        if attempt < 0:
            raise ValueError("attempt counts earlier failures and cannot be negative")
        try:
            grown = self.base * self.factor**attempt
        except OverflowError:  # a loop that never resets its count must still get the cap, not a crash
            return self.cap
        return min(self.cap, grown)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after `attempt` earlier failures: `retry_after` when the server gave one, else the jittered ceiling."""
        if retry_after is not None:
            return max(0.0, retry_after)
        low, high = self.jitter
        return self.ceiling(attempt) * (low + (high - low) * self.rng())
