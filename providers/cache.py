"""A small async TTL cache that never keeps a bad answer.

`get_or_load` runs one load per key at a time (concurrent callers share it), keeps the value
for `ttl` seconds only when the load succeeded and `cacheable(value)` says it is a good
answer (for example: not an empty chain), and forgets the least recently used entries
beyond `maxsize`. An exception is never cached: the next caller tries again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = object()


def _always(_value: object) -> bool:
    return True


def _retrieve(task: asyncio.Task[Any]) -> None:
    # mark the exception as seen even when every waiter was cancelled
    if not task.cancelled():
        task.exception()


class TTLCache:
    """Values by key, each kept for its own TTL (monotonic clock, injectable for tests)."""

    def __init__(self, maxsize: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.maxsize = maxsize
        self._clock = clock
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Task[Any]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The live value under `key`, or `default` (an expired entry is dropped)."""
        item = self._data.get(key)
        if item is None:
            return default
        expires, value = item
        if self._clock() >= expires:
            del self._data[key]
            return default
        self._data.move_to_end(key)
        return value

    def set(self, key: Hashable, value: Any, ttl: float) -> None:
        """Keep `value` for `ttl` seconds (a ttl <= 0 stores nothing)."""
        if ttl <= 0:
            return
        self._data[key] = (self._clock() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def invalidate(self, key: Hashable | None = None) -> None:
        """Forget one key, or everything."""
        if key is None:
            self._data.clear()
        else:
            self._data.pop(key, None)

    async def get_or_load(
        self,
        key: Hashable,
        ttl: float,
        load: Callable[[], Awaitable[T]],
        cacheable: Callable[[T], bool] = _always,
    ) -> T:
        """The cached value, or the result of `load()` (shared by concurrent callers; cached only if good)."""
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            self.hits += 1
            return value
        self.misses += 1
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, ttl, load, cacheable))
            self._inflight[key] = task
            task.add_done_callback(_retrieve)
        # shield: one impatient caller being cancelled must not cancel the load others wait on
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, ttl: float, load: Callable[[], Awaitable[T]], cacheable: Callable[[T], bool]) -> T:
        try:
            value = await load()
            if cacheable(value):
                self.set(key, value, ttl)
            return value
        finally:
            self._inflight.pop(key, None)
