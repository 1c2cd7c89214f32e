"""TTLCache: expiry by an injected clock, default and per-entry TTLs, LRU bound, single flight, never caching failures."""

from __future__ import annotations

import asyncio

import pytest

from core.cache import TTLCache


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def counting_load() -> tuple[list[int], object]:
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    return loads, load


async def test_values_expire_after_their_ttl():
    clock = Clock()
    c = TTLCache(clock=clock)
    _, load = counting_load()
    assert await c.get_or_load("k", load, ttl=15) == 1
    clock.t = 14.9
    assert await c.get_or_load("k", load, ttl=15) == 1
    clock.t = 15.0
    assert await c.get_or_load("k", load, ttl=15) == 2
    assert c.hits == 1 and c.misses == 2


async def test_the_cache_ttl_applies_when_an_entry_brings_none():
    clock = Clock()
    c = TTLCache(120.0, clock=clock)
    loads, load = counting_load()
    assert await c.get_or_load("vol", load) == 1
    clock.t = 119.0
    assert await c.get_or_load("vol", load) == 1
    c.set("short", "x", ttl=5)  # an entry's own TTL wins over the default
    clock.t = 124.5
    assert "short" not in c
    assert await c.get_or_load("vol", load) == 2  # 120 s after the first load
    assert len(loads) == 2 and c.ttl == 120.0


async def test_a_cache_without_any_ttl_refuses_before_loading():
    c = TTLCache()
    loads, load = counting_load()
    with pytest.raises(ValueError):
        await c.get_or_load("k", load)
    with pytest.raises(ValueError):
        c.set("k", 1)
    assert loads == [] and len(c) == 0


async def test_the_clock_can_be_replaced_on_a_live_cache():
    c = TTLCache(30.0)
    c.set("k", "v")
    assert c.get("k") == "v"
    c.clock = lambda: 10.0**12  # far in the future of any monotonic reading
    assert c.get("k", "gone") == "gone" and len(c) == 0


async def test_ttl_of_zero_or_less_stores_nothing():
    c = TTLCache(clock=Clock())
    c.set("a", 1, ttl=0)
    c.set("b", 1, ttl=-3)
    assert len(c) == 0


async def test_concurrent_callers_share_one_load():
    c = TTLCache()
    calls = 0
    gate = asyncio.Event()

    async def load() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "v"

    tasks = [asyncio.create_task(c.get_or_load("k", load, ttl=10)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == ["v"] * 5
    assert calls == 1
    assert c.misses == 5 and c.hits == 0  # every caller waited on the load
    assert await c.get_or_load("k", load, ttl=10) == "v" and c.hits == 1


async def test_concurrent_callers_of_a_failing_load_share_its_error_and_the_next_caller_retries():
    c = TTLCache()
    gate = asyncio.Event()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        if calls == 1:
            raise RuntimeError("upstream down")
        return "ok"

    tasks = [asyncio.create_task(c.get_or_load("k", load, ttl=10)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and calls == 1
    assert await c.get_or_load("k", load, ttl=10) == "ok" and calls == 2


async def test_exceptions_and_bad_answers_are_never_cached():
    c = TTLCache()
    answers = iter([RuntimeError("boom"), [], ["good"]])

    async def load() -> list[str]:
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    with pytest.raises(RuntimeError):
        await c.get_or_load("k", load, ttl=60, cacheable=bool)
    assert "k" not in c
    assert await c.get_or_load("k", load, ttl=60, cacheable=bool) == []  # empty = bad: returned, not kept
    assert "k" not in c
    assert await c.get_or_load("k", load, ttl=60, cacheable=bool) == ["good"]
    assert "k" in c


async def test_lru_bound_and_invalidate():
    c = TTLCache(maxsize=2)
    c.set("a", 1, 10)
    c.set("b", 2, 10)
    c.get("a")
    c.set("c", 3, 10)
    assert "a" in c and "c" in c and "b" not in c
    c.invalidate("a")
    assert "a" not in c
    c.invalidate("never-there")
    c.invalidate()
    assert len(c) == 0


async def test_a_hit_through_get_or_load_counts_as_recent_use():
    c = TTLCache(10.0, maxsize=2)
    _, load = counting_load()
    await c.get_or_load("a", load)
    await c.get_or_load("b", load)
    await c.get_or_load("a", load)  # a hit: "b" is now the least recently used
    await c.get_or_load("c", load)
    assert "a" in c and "b" not in c and "c" in c


def test_a_cache_must_hold_something():
    with pytest.raises(ValueError):
        TTLCache(maxsize=0)


async def test_one_cancelled_waiter_does_not_cancel_the_shared_load():
    c = TTLCache()
    gate = asyncio.Event()

    async def load() -> int:
        await gate.wait()
        return 7

    t1 = asyncio.create_task(c.get_or_load("k", load, ttl=10))
    t2 = asyncio.create_task(c.get_or_load("k", load, ttl=10))
    await asyncio.sleep(0)
    t1.cancel()
    gate.set()
    assert await t2 == 7
    assert c.get("k") == 7
