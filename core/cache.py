"""The service's one in-memory TTL cache: bounded, least recently used out first, one load per key at a time.

* Each entry lives for its own TTL: the one given with it, else the cache's default `ttl`.
* Beyond `maxsize` entries the least recently used one is forgotten.
* `get_or_load` runs one load per key at a time; concurrent callers share it, and one impatient
  caller being cancelled does not cancel the load the others wait on.
* A value is kept only when the load succeeded and `cacheable(value)` says it is a good answer
  (for example: not an empty chain). An exception is never cached: the next caller tries again.
* Time comes from `clock` (seconds, monotonic by default); tests pass their own and move it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar, cast

__all__ = ["TTLCache"]

T = TypeVar("T")

_MISSING: Any = object()


def _always(_value: object) -> bool:
    return True


def _retrieve(task: asyncio.Task[Any]) -> None:
    # mark the exception as seen even when every waiter was cancelled, so asyncio does not log it as lost
    if not task.cancelled():
        task.exception()


class TTLCache:
    """Values by key, each kept for a TTL in seconds of `clock`, at most `maxsize` of them."""

    def __init__(self, ttl: float | None = None, *, maxsize: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        if maxsize < 1:
            raise ValueError("a cache must hold at least one entry")
        #: The TTL of entries stored without one of their own (None: every entry must bring its own).
        self.ttl = ttl
        self.maxsize = maxsize
        self.clock = clock
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Task[Any]] = {}
        #: `get_or_load` calls answered from the cache / that had to wait for a load (their own or a shared one).
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
        if self.clock() >= expires:
            del self._data[key]
            return default
        self._data.move_to_end(key)
        return value

    def set(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        """Keep `value` for `ttl` seconds, or the cache's default TTL (a ttl <= 0 stores nothing)."""
        ttl = self._ttl(ttl)
        if ttl <= 0:
            return
        self._data[key] = (self.clock() + ttl, value)
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
        load: Callable[[], Awaitable[T]],
        *,
        ttl: float | None = None,
        cacheable: Callable[[T], bool] = _always,
    ) -> T:
        """The cached value, or the result of `load()` (shared by concurrent callers; kept only if good)."""
        ttl = self._ttl(ttl)  # before any work: a cache without a TTL is a bug at the call site
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            self.hits += 1
            return cast(T, value)
        self.misses += 1
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, ttl, load, cacheable))
            self._inflight[key] = task
            task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, ttl: float, load: Callable[[], Awaitable[T]], cacheable: Callable[[T], bool]) -> T:
        try:
            value = await load()
            if cacheable(value):
                self.set(key, value, ttl)
            return value
        finally:
            self._inflight.pop(key, None)

    def _ttl(self, ttl: float | None) -> float:
        if ttl is not None:
            return ttl
        if self.ttl is None:
            raise ValueError("no TTL: give one with the entry or to the cache")
        return self.ttl
