"""The job queue for many machines: Redis Streams with consumer groups (COACH_QUEUE_URL=redis://host:6379/0).

    front (coach serve)                          workers (coach worker, any number, any machine)
    XADD coach:jobs:<lane> {job}      ------>    XREADGROUP GROUP workers <worker> ... (light lane first)
    INCR coach:inflight:<user|tenant>            run the job, deliver the answer, XACK
                                                 DECR the in-flight counters
                                                 XAUTOCLAIM what a dead worker held for CLAIM_IDLE s
                                                 XCLAIM JUSTID its own job every CLAIM_IDLE/6 s while running

Delivery is at least once: a job a worker took and never acknowledged (it was killed) is claimed
again by another worker after `CLAIM_IDLE` seconds; the answer still goes out once, because the
runner claims each job's key in the database before answering (`bot.execution.runner`). A worker
busy with a long job is not taken for dead: a thread of its own (the job may hold the event loop)
re-claims the job's entry several times per `CLAIM_IDLE`, which resets its idle time, until the job ends or
outlives its wall-clock limit (then it counts as stuck and another worker may take it; should the
stuck one finish after all, the runner finds its claim taken over and stays silent).

Per-person and per-workspace counters live in Redis so that every front sees the same numbers;
each carries a time-to-live, so a counter a dead worker never decremented heals on its own.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import structlog
from pydantic import ValidationError
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from bot.config import Settings
from bot.execution.jobs import Job, Lane
from bot.request import Identity
from core.errors import ConfigError

log = structlog.get_logger("coach.queue")

PREFIX = "coach"
GROUP = "workers"
LANES: tuple[Lane, ...] = ("light", "heavy")
#: Seconds a job may sit unacknowledged with a silent worker before another worker takes it over
#: (the default of COACH_QUEUE_CLAIM_IDLE).
CLAIM_IDLE = 15.0
#: Re-claims of a running job per CLAIM_IDLE (a few beats may fail before a slow job is taken for dead).
BEATS_PER_IDLE = 6
#: Jobs kept in a stream (answered ones are trimmed past this).
STREAM_MAXLEN = 100_000
#: Seconds an in-flight counter lives without being touched (a worker that died never decremented it).
COUNTER_TTL = 300


@dataclass(frozen=True)
class Keys:
    """Where the queue lives in Redis: every key starts with `prefix` (one deployment's, or one test's)."""

    prefix: str = PREFIX

    def stream(self, lane: Lane) -> str:
        return f"{self.prefix}:jobs:{lane}"

    def user(self, ident: Identity) -> str:
        return f"{self.prefix}:inflight:user:{ident.platform}:{ident.tenant}:{ident.user}"

    def tenant(self, ident: Identity) -> str:
        return f"{self.prefix}:inflight:tenant:{ident.platform}:{ident.tenant}"

    def counters(self, ident: Identity) -> tuple[str, str]:
        return self.user(ident), self.tenant(ident)


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def queue_url(settings: Settings) -> str:
    """COACH_QUEUE_URL, checked to be a Redis URL."""
    if settings.coach_queue_url is None:
        raise ConfigError("COACH_QUEUE_URL is not set")
    url = settings.coach_queue_url.get_secret_value()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("COACH_QUEUE_URL must be a Redis URL such as redis://127.0.0.1:6379/0")
    return url


def connect(settings: Settings) -> Redis:
    """The Redis client for COACH_QUEUE_URL (redis:// or rediss://)."""
    return Redis.from_url(queue_url(settings), decode_responses=False, health_check_interval=30)


def connect_sync(settings: Settings) -> SyncRedis:
    """A blocking client for the same queue, for the heartbeat thread."""
    return SyncRedis.from_url(
        queue_url(settings), decode_responses=False, socket_timeout=settings.coach_queue_claim_idle / BEATS_PER_IDLE
    )


async def ensure_groups(redis: Redis, keys: Keys) -> None:
    """Create each lane's stream and consumer group if they do not exist yet."""
    for lane in LANES:
        try:
            await redis.xgroup_create(keys.stream(lane), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


class QueueExecutor:
    """The front's side: counts and enqueues jobs; `coach worker` processes run and answer them."""

    def __init__(
        self, settings: Settings, *, per_user: int, per_tenant: int, redis: Redis | None = None, keys: Keys = Keys()
    ) -> None:
        self.redis = redis or connect(settings)
        self.keys = keys
        self.per_user = per_user
        self.per_tenant = per_tenant
        self._ready = False

    async def busy(self, ident: Identity) -> str | None:
        try:
            users, tenants = await self.redis.mget(*self.keys.counters(ident))
        except RedisError as exc:
            raise ConfigError(f"the job queue is unreachable ({exc.__class__.__name__}); check COACH_QUEUE_URL") from None
        if int(users or 0) >= self.per_user:
            n = self.per_user
            return f"You have {n} request{'s' if n != 1 else ''} running; I'll take the next one when one of them is answered."
        if int(tenants or 0) >= self.per_tenant:
            return "This server is busy with its own requests right now; try again in a few seconds."
        return None

    async def start(self) -> None:
        await ensure_groups(self.redis, self.keys)
        self._ready = True

    async def submit(self, job: Job) -> None:
        ident = job.identity.identity()
        if not self._ready:
            await ensure_groups(self.redis, self.keys)
            self._ready = True
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self.keys.counters(ident):
                pipe.incr(key)
                pipe.expire(key, COUNTER_TTL)
            pipe.xadd(self.keys.stream(job.lane), {"job": job.model_dump_json()}, maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()
        log.info("job_submitted", request_id=job.request_id, lane=job.lane, executor="queue")

    async def depth(self) -> dict[str, int]:
        """Jobs no worker has taken yet plus those taken but not acknowledged, by lane."""
        out: dict[str, int] = {}
        for lane in LANES:
            try:
                groups = await self.redis.xinfo_groups(self.keys.stream(lane))
            except ResponseError:  # no such stream yet: nothing queued
                out[lane] = 0
                continue
            group = next((g for g in groups if _text(g.get("name")) == GROUP), None)
            out[lane] = int(group.get("lag") or 0) + int(group.get("pending") or 0) if group is not None else 0
        return out

    async def aclose(self) -> None:
        await self.redis.aclose()


async def finished(redis: Redis, keys: Keys, ident: Identity) -> None:
    """A worker is done with one of this caller's jobs: lower their counters (never below zero)."""
    for key in keys.counters(ident):
        left = await redis.decr(key)
        if left <= 0:
            await redis.delete(key)


@dataclass
class Delivery:
    """One job as a worker received it from a stream."""

    lane: Lane
    message_id: bytes
    job: Job
    #: Taken over from a worker that never acknowledged it (it died, or is stuck).
    redelivered: bool


RunJob = Callable[[Job, bool], Awaitable[bool]]
#: Wall-clock seconds a job may run before it counts as stuck.
Limit = Callable[[Job], float]
#: A stream entry as redis-py returns it: (message id, {field: value}).
Entry = tuple[bytes, dict[bytes, bytes]]


class Consumer:
    """A worker's side: takes jobs from the streams (quick ones first), runs them, acknowledges them."""

    def __init__(
        self,
        redis: Redis,
        run: RunJob,
        *,
        name: str | None = None,
        lanes: tuple[Lane, ...] = LANES,
        block_ms: int = 1000,
        claim_idle: float = CLAIM_IDLE,
        beat: SyncRedis | None = None,
        limit: Limit | None = None,
        keys: Keys = Keys(),
    ) -> None:
        """`beat`: a blocking client for the heartbeat thread (None: no heartbeat, a job longer than `claim_idle`
        may then be taken over); `limit(job)`: its wall-clock limit, past which the heartbeat stops."""
        self.redis = redis
        self.run_job = run
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.lanes = lanes
        self.block_ms = block_ms
        self.claim_idle = claim_idle
        self.beat = beat
        self.keys = keys
        self.beat_every = claim_idle / BEATS_PER_IDLE
        self.limit = limit
        #: Jobs this consumer ran to the end (answered, or skipped as already answered or expired).
        self.done = 0

    async def next(self) -> Delivery | Unreadable | None:
        """The next job for this worker: one a dead worker left behind, else a new one (light lane first)."""
        for lane in self.lanes:
            claimed = await self.redis.xautoclaim(
                self.keys.stream(lane), GROUP, self.name, int(self.claim_idle * 1000), "0-0", count=1
            )
            entries = cast(list[Entry], claimed[1] if claimed else [])
            if entries:
                return _delivery(lane, entries[0], redelivered=True)
        for i, lane in enumerate(self.lanes):
            # block only on the last lane read, so a quick job never waits behind an empty heavy lane
            block = self.block_ms if i == len(self.lanes) - 1 else None
            got = cast(
                list[tuple[bytes, list[Entry]]],
                await self.redis.xreadgroup(GROUP, self.name, {self.keys.stream(lane): ">"}, count=1, block=block) or [],
            )
            for _name, read in got:
                if read:
                    return _delivery(lane, read[0], redelivered=False)
        return None

    async def serve(self, stop: asyncio.Event) -> None:
        """Run jobs one at a time until `stop` is set."""
        await ensure_groups(self.redis, self.keys)
        log.info("worker_started", worker=self.name, lanes=list(self.lanes))
        while not stop.is_set():
            try:
                d = await self.next()
            except RedisError as exc:
                log.warning("queue_unreachable", error=exc.__class__.__name__)
                await asyncio.sleep(1.0)
                continue
            if d is None:
                continue
            if isinstance(d, Unreadable):
                log.error("job_unreadable", lane=d.lane, reason=d.reason)
                await self.redis.xack(self.keys.stream(d.lane), GROUP, d.message_id)
                await self.redis.xdel(self.keys.stream(d.lane), d.message_id)
                continue
            await self.handle(d)

    async def handle(self, d: Delivery) -> None:
        """Run one delivered job, then acknowledge it and lower its caller's counters."""
        heart = self._heartbeat(d)
        try:
            await self.run_job(d.job, d.redelivered)
        except Exception:  # the answer did not go out: leave the job unacknowledged, another worker claims it later
            log.exception("job_failed", request_id=d.job.request_id)
            return
        finally:
            if heart is not None:
                heart.stop()
        await self.redis.xack(self.keys.stream(d.lane), GROUP, d.message_id)
        await self.redis.xdel(self.keys.stream(d.lane), d.message_id)
        await finished(self.redis, self.keys, d.job.identity.identity())
        self.done += 1

    def _heartbeat(self, d: Delivery) -> Heartbeat | None:
        if self.beat is None:
            return None
        limit = self.limit(d.job) if self.limit is not None else float("inf")
        return Heartbeat(self.beat, self.keys.stream(d.lane), self.name, d.message_id, every=self.beat_every, limit=limit)


class Heartbeat:
    """Re-claims one running job's stream entry every `every` seconds, from a thread, for at most `limit` seconds.

    XCLAIM with a minimum idle time of 0 and JUSTID keeps the entry with this consumer and resets
    its idle time, so XAUTOCLAIM elsewhere leaves it alone while this worker is alive and on it.
    """

    def __init__(self, client: SyncRedis, key: str, consumer: str, message_id: bytes, *, every: float, limit: float) -> None:
        self.client = client
        self.key = key
        self.consumer = consumer
        self.message_id = message_id
        self.every = every
        self.limit = limit
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{message_id.decode()}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self.every):
            if time.monotonic() - started > self.limit:
                log.warning("job_stuck", message_id=self.message_id.decode(), limit_s=self.limit)
                return
            try:
                self.client.xclaim(self.key, GROUP, self.consumer, 0, [self.message_id], justid=True)
                self.beats += 1
            except RedisError as exc:  # the next beat tries again; CLAIM_IDLE leaves room for a few misses
                log.warning("heartbeat_failed", error=exc.__class__.__name__)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _delivery(lane: Lane, entry: Entry, *, redelivered: bool) -> Delivery | Unreadable:
    message_id, fields = entry
    try:
        return Delivery(lane, message_id, Job.model_validate_json(fields.get(b"job", b"")), redelivered)
    except ValidationError as exc:
        return Unreadable(lane, message_id, str(exc.errors()[0].get("msg", "invalid"))[:200])


@dataclass
class Unreadable:
    """A stream entry that is not a job this worker can read (a newer front's format, or garbage): dropped."""

    lane: Lane
    message_id: bytes
    reason: str
