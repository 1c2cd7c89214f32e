"""The runtime loop: feed -> alert book + plan tracker -> one transaction per batch -> dispatcher.

One process at a time runs it (a leader lease in `runtime_state`); another `coach runtime` or
`coach serve` sharing the database stands by and takes over when the lease lapses. The
leader:

1. loads the live alerts and tracked plans, resumes unfinished re-plans, and (for a
   replayable stream such as the offline market's) resumes the stream right after the last
   committed moment, so no tick between a crash and the restart is skipped;
2. reads the feed in batches: everything that arrived while the previous batch was being
   written is evaluated together;
3. writes each batch's triggers, plan transitions, re-armed states and the stream cursor in
   ONE transaction, then wakes the dispatcher;
4. every `sync_interval` seconds, picks up alerts and plans changed by commands (in this or
   another process), follows the symbols they need, renews its lease and records its
   heartbeat and the feed's status (`/alerts status` reads them);
5. every `purge_interval` seconds, drops the request pipeline's answer claims older than
   `answers_kept` (no platform accepts an answer that late, so they guard nothing).
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import Connection

from analytics.sessions import schedule
from bot import metrics
from bot.request import event_ref
from bot.runtime.destinations import Destination
from bot.runtime.dispatcher import DispatchConfig, Dispatcher
from bot.runtime.evaluator import AlertEvaluator, date_plan_alerts
from bot.runtime.feed import Feed, FeedBatch, build_stream
from bot.runtime.replan import Planner, Replanner
from bot.runtime.stamps import Stamps
from bot.runtime.tracker import PlanTracker
from bot.runtime.txn import Writer
from core.clock import utc_now
from storage import answers
from storage.outbox import channel_key, outbox_status_counts
from storage.runtime_state import acquire_lease, get_state, put_state, release_lease, upsert_state

log = structlog.get_logger("coach.runtime")

LEASE_KEY = "runtime:leader"
HEARTBEAT_KEY = "runtime:heartbeat"
FEED_KEY = "runtime:feed"


def cursor_key(source: str) -> str:
    return f"runtime:cursor:{source}"


@dataclass
class RuntimeConfig:
    """Knobs of the runtime (seconds unless said otherwise)."""

    sync_interval: float = 1.0
    lease_ttl: float = 10.0
    stale_after: float = 120.0
    poll_interval: float = 5.0
    #: How often the books of people with risk rules are checked against them as prices move (0: never).
    risk_interval: float = 60.0
    #: How often old answer claims (`request_answers`) are dropped (0: never), and how old they must be.
    purge_interval: float = 3_600.0
    answers_kept: float = 86_400.0
    #: A cursor older than this is not replayed (after a long outage the stream starts at the clock).
    max_replay: float = 3 * 86_400.0
    #: The lease's name for this worker; host:pid by default, so a crashed worker's lease lapses on its own.
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)


@dataclass
class RuntimeStats:
    batches: int = 0
    ticks: int = 0
    triggers: int = 0
    plan_events: int = 0
    messages: int = 0
    #: Seconds from a batch's first event arriving to its transaction committing (batches that queued messages).
    latencies: list[float] = field(default_factory=list)
    #: Latencies ever recorded (`latencies` keeps only the newest): a reader's mark into the list survives its trimming.
    samples: int = 0


class Runtime:
    """The alert and live-plan worker of one process."""

    def __init__(
        self,
        services: Any,
        *,
        clock: Callable[[], datetime] | None = None,
        stream: Any | None = None,
        stream_factory: Callable[[datetime | None], Any] | None = None,
        config: RuntimeConfig | None = None,
        planner: Planner | None = None,
        destinations: dict[str, Destination] | None = None,
    ) -> None:
        self.services = services
        self.clock = clock or services.clock or utc_now
        self.config = config or RuntimeConfig()
        self._stream = stream
        self._stream_factory = stream_factory
        #: What every pushed message carries: its owner's chart link and its price's freshness.
        self.stamps = Stamps.of(services)
        self.evaluator = AlertEvaluator(services, stamps=self.stamps)
        #: One settings cache for alerts and plans, kept warm by the housekeeping (see SettingsCache).
        self.tracker = PlanTracker(services, settings_cache=self.evaluator.settings_cache, stamps=self.stamps)
        #: One writer for the whole runtime: on SQLite its transactions take turns instead of sleeping on the lock.
        self.writer = Writer(services)
        self.dispatcher = Dispatcher(services, self.config.dispatch, destinations=destinations, writer=self.writer)
        self.replanner = Replanner(services, self.clock, planner=planner, on_queued=self.dispatcher.wake, writer=self.writer)
        self.feed: Feed | None = None
        self.stats = RuntimeStats()
        self.leader = False
        self.ready = asyncio.Event()
        #: Set after each batch is handled (written, or rolled back when its write failed), after each
        #: heartbeat is written, and while another runtime holds the lease. The runtime never waits on
        #: them: they let a supervisor or a test clear one and await the next such moment instead of
        #: sleeping past `sync_interval` and hoping.
        self.batch_done = asyncio.Event()
        self.heartbeat_written = asyncio.Event()
        self.standing_by = asyncio.Event()
        self.lost_lease = False
        self._lock = asyncio.Lock()
        self._last_feed_state: str | None = None

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (or forever)."""
        stop = stop or asyncio.Event()
        await self._become_leader(stop)
        if stop.is_set():
            return
        try:
            await self.start()
            assert self.feed is not None  # start() built it
            tasks = [
                asyncio.create_task(self.feed.run(stop), name="feed"),
                asyncio.create_task(self.dispatcher.run(stop), name="dispatcher"),
                asyncio.create_task(self._housekeeping(stop), name="housekeeping"),
            ]
            await self._heartbeat()  # visible to /alerts status at once, not after the first sync interval
            self.ready.set()
            try:
                await self._evaluate(stop)
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.replanner.wait(5.0)
        finally:
            await self._release()
            await self.writer.aclose()
            if self.feed is not None:
                await self.feed.stream.aclose()

    async def _become_leader(self, stop: asyncio.Event) -> None:
        waited = False
        while not stop.is_set():
            async with self.writer.tx() as s:
                got = await acquire_lease(s, LEASE_KEY, self.config.worker_id, self.config.lease_ttl)
            if got:
                self.standing_by.clear()
                self.leader = True
                if waited:
                    log.info("runtime_leader", worker=self.config.worker_id)
                return
            self.standing_by.set()
            if not waited:
                log.info("runtime_standby", worker=self.config.worker_id, reason="another runtime holds the lease")
                waited = True
            try:
                await asyncio.wait_for(stop.wait(), max(0.5, self.config.lease_ttl / 3))
            except TimeoutError:
                pass

    async def _release(self) -> None:
        if not self.leader:
            return
        try:
            async with self.writer.tx() as s:
                await release_lease(s, LEASE_KEY, self.config.worker_id)
                hb = await get_state(s, HEARTBEAT_KEY) or {}
                if hb.get("worker") == self.config.worker_id:
                    await put_state(s, HEARTBEAT_KEY, {**hb, "stopped": True})
        except Exception:  # the lease expires by itself anyway
            log.warning("lease_release_failed")
        self.leader = False

    async def start(self) -> None:
        """Load alerts and plans, open the feed on their symbols, resume unfinished re-plans."""
        await asyncio.to_thread(schedule)  # the exchange calendar loads once (about a second): not on the first tick
        async with self.writer.tx() as s:
            dated = await date_plan_alerts(s)
        if dated:
            log.info("plan_alerts_dated", alerts=dated)
        async with self.services.db() as s:
            n_alerts = await self.evaluator.load(s)
            n_plans = await self.tracker.load(s)
            # every channel with something live: its settings in memory before the first trigger
            origins = [m.origin for m in self.evaluator.meta.values()] + [p.origin for p in self.tracker.plans.values()]
            await self.evaluator.settings_cache.load(s, {(o.tenant_id, o.channel) for o in origins})
        stream = self._stream
        cursor = None
        if stream is None:
            cursor = await self._cursor()
            if self._stream_factory is not None:
                stream = self._stream_factory(cursor)
            else:
                stream = build_stream(
                    self.services.stream_builder,
                    self.services.market,
                    self.clock,
                    start=cursor,
                    poll_interval=self.config.poll_interval,
                )
        self.feed = Feed(stream, self.clock, stale_after=self.config.stale_after)
        # what each pushed message's freshness badge is measured against: this runtime's clock and stream
        self.stamps.now, self.stamps.source = self.clock, stream.name
        await self.feed.set_symbols(self.evaluator.symbols() | self.tracker.symbols())
        # the book is a large, long-lived heap: keep the cyclic GC from walking it on every full collection
        # (a full pass over 100k rules is a pause of tens of milliseconds in the middle of a tick). No collection
        # first: in a front that holds the numeric stack one is a 200 ms pause of its own, for little garbage.
        gc.freeze()
        resumed = await self.replanner.resume()
        log.info(
            "runtime_started",
            alerts=n_alerts,
            plans=n_plans,
            replans=resumed,
            source=stream.name,
            mode=self.feed.mode,
            resume_from=cursor.isoformat() if cursor else None,
        )

    async def _cursor(self) -> datetime | None:
        """Where a replayable stream stopped last time (None when unknown or too old)."""
        async with self.services.db() as s:
            saved = await get_state(s, cursor_key(self.services.market.name))
        if not saved or not saved.get("at"):
            return None
        at = datetime.fromisoformat(saved["at"])
        if self.clock() - at > timedelta(seconds=self.config.max_replay):
            return None
        return at

    # ------------------------------------------------------------------ the loop

    async def _evaluate(self, stop: asyncio.Event) -> None:
        assert self.feed is not None
        while not stop.is_set():
            batch = await self.feed.next_batch(timeout=0.25)
            if batch is None:
                continue
            await self.process(batch)

    async def process(self, batch: FeedBatch) -> int:
        """Evaluate one batch and write what it produced in one transaction; returns messages queued."""
        # a sync must never interleave: it would reload rows whose newer state is still being written
        async with self._lock:
            try:
                return await self._process(batch)
            finally:
                self.batch_done.set()

    async def _process(self, batch: FeedBatch) -> int:
        self.stats.batches += 1
        self.stats.ticks += len(batch.ticks)
        alerts = await self.evaluator.process(batch)
        plans = self.tracker.process(batch)
        alert_w = await self.evaluator.prepare(alerts)
        plan_w = await self.tracker.prepare(plans)
        steps: list[Callable[[Connection], None]] = [w for w in (alert_w, plan_w) if w is not None]
        if batch.cursor is not None and self.feed is not None and self.feed.replayable:
            key, at = cursor_key(self.services.market.name), {"at": batch.cursor.isoformat()}
            now = utc_now()
            steps.append(lambda conn: upsert_state(conn, key, at, now))
        if steps:

            def write(conn: Connection) -> None:  # the batch's one transaction
                for step in steps:
                    step(conn)

            try:
                await self.writer.run(write, urgent=True)
            except Exception:
                log.exception("batch_write_failed", ticks=len(batch.ticks))
                self.evaluator.rolled_back(alerts)
                self.tracker.rolled_back(plans)
                return 0
        self.evaluator.committed(alert_w)
        sent = [*(alert_w.messages if alert_w else ()), *(plan_w.messages if plan_w else ())]
        self.stats.triggers += len(alerts.triggers)
        self.stats.plan_events += sum(len(c.events) for c in plans.changes)
        for tid in self.tracker.committed(plans, plan_w):
            self.replanner.start(tid)
        if sent:
            self.stats.messages += len(sent)
            latency = self.writer.committed_at - batch.received
            metrics.ALERT_TICK_TO_OUTBOX.observe(latency)
            # one line per batch (not per message: the hot path), with each event's ref as its delivery will log it
            log.info("events_queued", refs=[event_ref(m.key) for m in sent[:50]], messages=len(sent))
            self.stats.latencies.append(latency)
            self.stats.samples += 1
            if len(self.stats.latencies) > 10_000:
                del self.stats.latencies[:5_000]
            self.dispatcher.wake({channel_key(m.destination, m.target) for m in sent})
        return len(sent)

    async def _housekeeping(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_risk = loop.time() + self.config.risk_interval
        next_purge = loop.time()  # once at start: a service restarted daily still purges
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.config.sync_interval)
                return
            except TimeoutError:
                pass
            try:
                await self.sync()
                await self.writer.checkpoint()
                if not await self._heartbeat():
                    # another worker took over (we were paused past the lease): stop rather than double-evaluate
                    log.error("runtime_lost_lease", worker=self.config.worker_id)
                    self.lost_lease = True
                    stop.set()
                    return
                if self.config.risk_interval > 0 and loop.time() >= next_risk:
                    next_risk = loop.time() + self.config.risk_interval
                    await self.risk_sweep()
                if self.config.purge_interval > 0 and loop.time() >= next_purge:
                    next_purge = loop.time() + self.config.purge_interval
                    await self.purge_answers()
            except Exception:
                log.exception("runtime_housekeeping_failed")

    async def purge_answers(self) -> int:
        """Drop answer claims older than `answers_kept`; returns how many."""
        before = utc_now() - timedelta(seconds=self.config.answers_kept)
        async with self.services.db() as s, s.begin():
            dropped = await answers.purge(s, before)
        if dropped:
            log.info("answers_purged", rows=dropped)
        return dropped

    async def risk_sweep(self) -> int:
        """Check the books of people with risk rules; what breaks a rule goes out as a `risk` alert."""
        from bot.risk_alerts import sweep

        found = await sweep(self.services)
        if found:
            self.dispatcher.wake(None)
        return found

    async def sync(self) -> None:
        """Pick up changed alerts and plans and follow the symbols they need."""
        async with self.services.db() as s:
            candidates = await self.evaluator.changed(s)  # a read: batches go on meanwhile
        async with self._lock, self.services.db() as s:
            await self.evaluator.apply_changes(s, candidates)
            await self.tracker.sync(s)
        async with self.services.db() as s:
            await self.evaluator.settings_cache.refresh(s)
        if self.feed is not None:
            await self.feed.set_symbols(self.evaluator.symbols() | self.tracker.symbols())

    async def _heartbeat(self) -> bool:
        """Record health and renew the lease; False when the lease was lost."""
        assert self.feed is not None
        status = self.feed.status()
        if status.state != self._last_feed_state:
            if status.state in ("stale", "down"):
                log.warning("feed_" + status.state, source=status.source, lag_s=status.lag_s, error=status.error)
            elif self._last_feed_state in ("stale", "down"):
                log.info("feed_recovered", source=status.source, state=status.state)
            self._last_feed_state = status.state
        # the age an operator should worry about: none while nothing is expected (market closed, no symbols);
        # a feed that never ticked while it should counts as infinitely old
        if status.state in ("closed", "idle"):
            age = 0.0
        elif status.lag_s is not None:
            age = status.lag_s
        else:
            age = float("inf") if status.state in ("stale", "down") else 0.0
        metrics.FEED_AGE.labels(source=status.source).set(age)
        now = utc_now()
        async with self.writer.tx() as s:
            still = await acquire_lease(s, LEASE_KEY, self.config.worker_id, self.config.lease_ttl, now=now)
            await put_state(
                s,
                HEARTBEAT_KEY,
                {
                    "worker": self.config.worker_id,
                    "at": now.isoformat(),
                    "market_time": self.clock().isoformat(),
                    "alerts": len(self.evaluator.book),
                    "plans": len(self.tracker.plans),
                    "delivered": self.dispatcher.stats.delivered,
                    "failed": self.dispatcher.stats.failed,
                },
                now=now,
            )
            await put_state(s, FEED_KEY, status.model_dump(mode="json"), now=now)
            counts = await outbox_status_counts(s)
        metrics.OUTBOX_PENDING.set(counts.get("pending", 0))
        metrics.OUTBOX_FAILED.set(counts.get("failed", 0))
        self.heartbeat_written.set()
        return still


async def runtime_alive(services: Any, within: float = 15.0) -> dict[str, Any] | None:
    """The last heartbeat when a runtime wrote one within `within` seconds, else None."""
    async with services.db() as s:
        hb = await get_state(s, HEARTBEAT_KEY)
    if not hb or not hb.get("at") or hb.get("stopped"):
        return None
    at = datetime.fromisoformat(hb["at"])
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return hb if utc_now() - at <= timedelta(seconds=within) else None
