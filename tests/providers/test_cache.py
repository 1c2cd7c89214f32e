"""TTLCache: expiry, single flight, never caching failures or bad answers."""

from __future__ import annotations

import asyncio

import pytest

from providers.cache import TTLCache


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_values_expire_after_their_ttl():
    clock = Clock()
    c = TTLCache(clock=clock)
    loads = []

    async def load():
        loads.append(1)
        return len(loads)

    assert await c.get_or_load("k", 15, load) == 1
    clock.t = 14.9
    assert await c.get_or_load("k", 15, load) == 1
    clock.t = 15.0
    assert await c.get_or_load("k", 15, load) == 2
    assert c.hits == 1 and c.misses == 2


async def test_concurrent_callers_share_one_load():
    c = TTLCache()
    calls = 0
    gate = asyncio.Event()

    async def load():
        nonlocal calls
        calls += 1
        await gate.wait()
        return "v"

    tasks = [asyncio.create_task(c.get_or_load("k", 10, load)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == ["v"] * 5
    assert calls == 1


async def test_exceptions_and_bad_answers_are_never_cached():
    c = TTLCache()
    answers = iter([RuntimeError("boom"), [], ["good"]])

    async def load():
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    with pytest.raises(RuntimeError):
        await c.get_or_load("k", 60, load, bool)
    assert "k" not in c
    assert await c.get_or_load("k", 60, load, bool) == []  # empty = bad: returned, not kept
    assert "k" not in c
    assert await c.get_or_load("k", 60, load, bool) == ["good"]
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
    c.invalidate()
    assert len(c) == 0


async def test_one_cancelled_waiter_does_not_cancel_the_shared_load():
    c = TTLCache()
    gate = asyncio.Event()

    async def load():
        await gate.wait()
        return 7

    t1 = asyncio.create_task(c.get_or_load("k", 10, load))
    t2 = asyncio.create_task(c.get_or_load("k", 10, load))
    await asyncio.sleep(0)
    t1.cancel()
    gate.set()
    assert await t2 == 7
    assert c.get("k") == 7
