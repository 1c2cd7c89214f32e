"""The rate limit shared by several fronts through the machine's Redis (as with COACH_QUEUE_URL)."""

from __future__ import annotations

import secrets

from bot.ratelimit import SharedRateLimiter


async def test_two_fronts_count_one_person_once(redis) -> None:
    prefix = "test:rate:" + secrets.token_hex(4)
    a = SharedRateLimiter(redis, per_minute=6, prefix=prefix)  # one token every 10 s, bursts of 6
    b = SharedRateLimiter(redis, per_minute=6, prefix=prefix)
    key = ("slack", "T1", "U1")
    waits = [await (a if i % 2 else b).acquire(key) for i in range(6)]
    assert waits == [0.0] * 6
    over = await a.acquire(key)
    assert 9.0 < over <= 10.0  # the 7th request, whichever front takes it, waits for the next token
    assert await b.acquire(("slack", "T1", "U2")) == 0.0  # someone else is not affected
    ttl = await redis.ttl(f"{prefix}:slack:T1:U1")
    assert 0 < ttl <= 61  # a full bucket is forgotten: nothing stays in Redis for idle people
    await redis.delete(f"{prefix}:slack:T1:U1", f"{prefix}:slack:T1:U2")
