"""The job queue on the machine's real Redis: fronts enqueue, workers take, answer once, and keep count per person."""

from __future__ import annotations

import asyncio
import threading
import time

from redis import Redis as SyncRedis
from structlog.testing import capture_logs

from bot.execution.queue import GROUP, Consumer, Delivery, QueueExecutor
from bot.execution.runner import run_job
from tests.bot.conftest import REDIS_URL

from .conftest import job_for, person, token_of


def front(services, redis, keys, *, per_user: int = 3, per_tenant: int = 100) -> QueueExecutor:
    return QueueExecutor(services.settings, per_user=per_user, per_tenant=per_tenant, redis=redis, keys=keys)


def worker(services, redis, keys, sender, *, name: str = "w1", lanes=("light", "heavy"), **kw) -> Consumer:
    async def run(job, redelivered: bool) -> bool:
        return await run_job(services, job, sender.deliver, worker=name, stale=0.0 if redelivered else 120.0)

    return Consumer(redis, run, name=name, lanes=lanes, block_ms=100, keys=keys, **kw)


async def take(consumer: Consumer) -> Delivery:
    d = await consumer.next()
    assert isinstance(d, Delivery), d
    return d


async def test_a_job_goes_through_the_queue_and_is_answered_once(services, redis, keys, discord, sender) -> None:
    q, w = front(services, redis, keys), worker(services, redis, keys, sender)
    await q.start()
    job = await job_for(services, "/plan TSLA", discord.app_id)
    await q.submit(job)
    assert int(await redis.get(keys.user(person())) or 0) == 1
    await w.handle(await take(w))
    [answer] = discord.answers(token_of(job))
    assert "TSLA" in answer.embeds[0]["title"]
    assert await redis.xlen(keys.stream("light")) == 0  # acknowledged and trimmed
    assert await redis.get(keys.user(person())) is None and await redis.get(keys.tenant(person())) is None
    assert await w.next() is None and w.done == 1


async def test_a_job_a_dead_worker_held_is_taken_over_and_answered_once(services, redis, keys, discord, sender) -> None:
    q = front(services, redis, keys)
    job = await job_for(services, "/plan NVDA", discord.app_id)
    await q.submit(job)
    dead = worker(services, redis, keys, sender, name="dead", claim_idle=0.5)
    await take(dead)  # read, never acknowledged: this worker "died" holding it
    alive = worker(services, redis, keys, sender, name="alive", claim_idle=0.5)
    assert await alive.next() is None  # not idle long enough yet: its holder may still be working
    await asyncio.sleep(0.6)
    d = await take(alive)
    assert d.redelivered and d.job.key == job.key
    await alive.handle(d)
    await alive.handle(d)  # even delivered once more, the answer is not sent again
    assert len(discord.answers(token_of(job))) == 1
    pending = await redis.xpending(keys.stream("light"), GROUP)
    assert pending["pending"] == 0


async def test_a_slow_job_keeps_its_worker_and_a_silent_one_loses_it(services, redis, keys, discord, sender) -> None:
    """The heartbeat resets the entry's idle time while the job holds the event loop; without it, it is claimed away."""
    beat = SyncRedis.from_url(REDIS_URL)
    stream = keys.stream("light")
    for with_beat in (True, False):
        seen: list[int] = []

        async def busy(job, redelivered: bool) -> bool:
            time.sleep(1.6)  # CPU-bound work holds the loop: nothing async runs meanwhile
            return True

        def other_worker(seen: list[int] = seen) -> None:  # another machine's worker trying to take idle jobs, 1.2 s into the job
            time.sleep(1.2)
            got = SyncRedis.from_url(REDIS_URL).xautoclaim(stream, GROUP, "other", 500, "0-0", count=1)
            seen.append(len(got[1]))

        q = front(services, redis, keys)
        await q.submit(await job_for(services, "/plan TSLA", discord.app_id))
        c = Consumer(redis, busy, name="slow", block_ms=100, keys=keys, claim_idle=0.6, beat=beat if with_beat else None)
        d = await take(c)
        t = threading.Thread(target=other_worker)
        t.start()
        await c.handle(d)
        t.join()
        assert seen == ([0] if with_beat else [1]), with_beat
        await redis.xtrim(stream, maxlen=0)
        await redis.xgroup_destroy(stream, GROUP)
    beat.close()


async def test_a_heartbeat_stops_at_the_jobs_limit(services, redis, keys, discord, sender) -> None:
    q = front(services, redis, keys)
    await q.submit(await job_for(services, "/plan TSLA", discord.app_id))
    beat = SyncRedis.from_url(REDIS_URL)

    async def stuck(job, redelivered: bool) -> bool:
        time.sleep(1.5)
        return True

    c = Consumer(redis, stuck, name="stuck", block_ms=100, keys=keys, claim_idle=0.3, beat=beat, limit=lambda job: 0.5)
    d = await take(c)
    with capture_logs() as logs:
        await c.handle(d)
    assert any(e["event"] == "job_stuck" for e in logs)
    beat.close()


async def test_a_job_too_late_to_answer_is_dropped_not_retried(services, redis, keys, discord, sender) -> None:
    from datetime import timedelta

    from core.clock import utc_now

    q, w = front(services, redis, keys), worker(services, redis, keys, sender)
    job = await job_for(services, "/plan TSLA", discord.app_id)
    await q.submit(job.model_copy(update={"submitted_at": utc_now() - timedelta(minutes=20)}))
    with capture_logs() as logs:
        await w.handle(await take(w))
    assert [e["event"] for e in logs].count("job_expired") == 1
    assert not discord.requests
    assert (await redis.xpending(keys.stream("light"), GROUP))["pending"] == 0  # acknowledged: nobody tries again
    assert await redis.get(keys.user(person())) is None


async def test_per_person_and_per_workspace_limits_hold_across_fronts(services, redis, keys, discord, sender) -> None:
    a = front(services, redis, keys, per_user=2, per_tenant=3)
    b = front(services, redis, keys, per_user=2, per_tenant=3)
    ann, bob, cy = person("ann"), person("bob"), person("cy", tenant="G2")
    assert await a.busy(ann) is None
    await a.submit(await job_for(services, "/plan TSLA", discord.app_id, who=ann))
    await b.submit(await job_for(services, "/plan AAPL", discord.app_id, who=ann))
    refusal = await b.busy(ann)  # the other front sees ann's two running requests
    assert refusal is not None and "2 requests running" in refusal
    assert await a.busy(bob) is None
    await a.submit(await job_for(services, "/plan SPY", discord.app_id, who=bob))
    busy_server = await b.busy(person("dee"))  # G1 has 3 running: its fourth person waits
    assert busy_server is not None and "server is busy" in busy_server
    assert await a.busy(cy) is None  # another workspace is not affected
    w = worker(services, redis, keys, sender)
    await w.handle(await take(w))
    assert await a.busy(ann) is None and await b.busy(person("dee")) is None  # one answered: room again


async def test_quick_commands_go_first_and_a_quick_worker_never_takes_heavy_ones(services, redis, keys, discord, sender) -> None:
    q = front(services, redis, keys)
    wide = " ".join(f"ZQ{i:03d}" for i in range(30))
    heavy = await job_for(services, f"/scan {wide}", discord.app_id)
    light = await job_for(services, "/plan TSLA", discord.app_id, who=person("bob"))
    await q.submit(heavy)  # the wide scan arrived first
    await q.submit(light)
    quick_only = worker(services, redis, keys, sender, name="quick", lanes=("light",))
    both = worker(services, redis, keys, sender, name="both")
    assert (await take(both)).job.key == light.key  # the quick one is served first
    assert await quick_only.next() is None  # the scan waits for a worker that takes heavy work
    d = await take(both)
    assert d.lane == "heavy" and d.job.key == heavy.key


async def test_an_entry_that_is_not_a_job_is_dropped(services, redis, keys, discord, sender) -> None:
    q = front(services, redis, keys)
    await q.start()
    await redis.xadd(keys.stream("light"), {"job": b'{"not": "a job"}'})
    w = worker(services, redis, keys, sender)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(w.serve(stop))
        for _ in range(100):
            if await redis.xlen(keys.stream("light")) == 0:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
    assert await redis.xlen(keys.stream("light")) == 0  # dropped: no worker is handed it again
    assert (await redis.xpending(keys.stream("light"), GROUP))["pending"] == 0
    [line] = [e for e in logs if e["event"] == "job_unreadable"]
    assert line["lane"] == "light" and w.done == 0
