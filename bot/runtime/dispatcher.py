"""Outbox delivery: at-least-once, in order per channel, with backoff, retry_after, digests and isolation.

Rules:

* Order per channel. A channel is a destination + target. Only its first pending row may be
  sent; the next waits until that one is delivered or given up. Channels run concurrently
  (each in its own task), so a destination that keeps failing delays only itself.
* Retries. A transient failure is retried after base * 2^attempts seconds (with jitter, up to
  `max_backoff`); after `max_attempts` the row is marked failed (shown by /alerts status) and the
  channel moves on. A permanent failure (a revoked webhook) is marked failed at once. A 429 waits
  exactly `retry_after` and does not count as an attempt. A kind this process cannot deliver
  to (e.g. Discord in a worker without its token) waits a minute, without counting attempts.
* Digests. When `digest_threshold` or more alert rows wait behind a channel's first row, they are
  folded (in one transaction) into one digest row that takes the first one's place. The first row
  itself is never folded: it is the one that may have been sent just before a crash.
* Resume. State lives only in the outbox rows: a restart continues with whatever is pending.
  A crash between a send and its "delivered" mark sends that row again with the same
  idempotency key (at-least-once; the key lets the receiver recognise it).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from bot import metrics
from bot.reply import Reply
from bot.request import event_ref
from bot.runtime.destinations import DeliveryError, Destination, close_destinations, describe_target
from bot.runtime.event_charts import plan_chart
from bot.runtime.messages import digest_reply, payload_to_reply, reply_to_payload
from bot.runtime.txn import Writer
from core.clock import utc_now
from core.errors import ConfigError, RateLimited
from core.retry import Backoff
from storage.outbox import (
    NewMessage,
    OutboxRow,
    outbox_channel_queue,
    outbox_fold_digest,
    outbox_heads,
    outbox_mark_delivered_many,
    outbox_mark_failed,
    outbox_mark_retry,
    outbox_row,
)

log = structlog.get_logger("coach.dispatcher")

#: Each delivery retry lands within 20 % of its schedule, so channels failing together do not retry together.
DELIVERY_JITTER: tuple[float, float] = (0.8, 1.2)


@dataclass
class DispatchConfig:
    """Delivery knobs (seconds)."""

    base_backoff: float = 1.0
    max_backoff: float = 300.0
    max_attempts: int = 8
    digest_threshold: int = 5
    digest_max: int = 50
    poll_interval: float = 1.0
    send_timeout: float = 30.0
    missing_kind_wait: float = 60.0
    #: Consecutive failures after which a channel is reported in the log.
    report_after: int = 3
    #: Channels delivering at the same time.
    concurrency: int = 8


@dataclass
class ChannelState:
    """What the dispatcher knows about one channel while it runs."""

    failures: int = 0
    last_error: str | None = None
    delivered: int = 0
    reported: bool = False


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    digests: int = 0
    rate_limited: int = 0
    channels: dict[str, ChannelState] = field(default_factory=dict)


class Dispatcher:
    """Delivers outbox rows to destinations; one per process that owns delivery (the runtime's leader)."""

    def __init__(
        self,
        services: Any,
        config: DispatchConfig | None = None,
        *,
        destinations: dict[str, Destination] | None = None,
        clock: Callable[[], datetime] = utc_now,
        charts: bool = True,
        writer: Writer | None = None,
    ) -> None:
        self.services = services
        self.writer = writer or Writer(services)
        self.config = config or DispatchConfig()
        self.clock = clock
        self._dests: dict[str, Destination] = dict(destinations or {})
        self._own_dests: set[str] = set()
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._full = True
        self._marks: list[tuple[int, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._hinted: set[str] = set()
        self._again: set[str] = set()
        #: Channels delivering at once (each is sequential inside); bounds the database and connection load.
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self.stats = DeliveryStats()
        #: Draw plan charts at delivery (off in tests that only count messages).
        self.charts = charts
        self._charts_done: dict[str, Any] = {}

    # ------------------------------------------------------------------ running

    def wake(self, channels: Iterable[str] | None = None) -> None:
        """New rows were committed: look now rather than at the next poll (only at `channels` when given)."""
        if channels is None:
            self._full = True
        else:
            self._hinted.update(channels)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; then finish the sends in flight."""
        loop = asyncio.get_running_loop()
        last_full = -1e9
        try:
            while not stop.is_set():
                try:
                    # a full pass (one query over every channel) on start, on a plain wake and every poll interval;
                    # in between, the channels the runtime just wrote to are started directly
                    if self._full or loop.time() - last_full >= self.config.poll_interval:
                        self._full = False
                        self._hinted.clear()
                        last_full = loop.time()
                        await self.drain_once()
                    elif self._hinted:
                        hinted, self._hinted = self._hinted, set()
                        for key in hinted:
                            self._start(key)
                except Exception:  # one bad pass (database hiccup) must not end delivery
                    log.exception("dispatch_pass_failed")
                self._wake.clear()
                if self._hinted or self._full:
                    continue
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=self.config.poll_interval, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
        finally:
            if self._busy:
                await asyncio.wait(list(self._busy.values()), timeout=self.config.send_timeout)
            await self.aclose()

    def _start(self, key: str) -> bool:
        """Start the delivery task of channel `key` unless it is running (it then sees the new rows itself)."""
        if key in self._busy:
            self._again.add(key)
            return False
        task = asyncio.create_task(self._channel(key))
        self._busy[key] = task
        task.add_done_callback(lambda _t: self._done(key))
        return True

    def _done(self, key: str) -> None:
        self._busy.pop(key, None)
        if key in self._again:
            # rows arrived while the task was finishing: look again
            self._again.discard(key)
            self._hinted.add(key)
            self._wake.set()

    async def aclose(self) -> None:
        await close_destinations({k: v for k, v in self._dests.items() if k in self._own_dests})

    async def drain_once(self, only: set[str] | None = None) -> int:
        """Start a delivery task for every idle channel whose first row is due; returns how many were started."""
        now = self.clock()
        async with self.services.db() as s:
            heads = await outbox_heads(s)
        started = 0
        for head in heads:
            key = head.channel_key
            if only is not None and key not in only:
                continue
            if key in self._busy or head.next_attempt_at > now:
                continue
            started += self._start(key)
        return started

    async def deliver_all(self, only: set[str] | None = None, timeout: float = 30.0) -> None:
        """Deliver until nothing is due (for commands and tests): start channels and wait for them."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            await self.drain_once(only)
            busy = [t for k, t in self._busy.items() if only is None or k in only]
            if not busy:
                return
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.wait(busy, timeout=left)

    # ------------------------------------------------------------------ one channel

    async def _channel(self, key: str) -> None:
        """Send this channel's due rows in order until it is empty or must wait."""
        try:
            async with self._slots:
                while True:
                    await self.writer.yield_to_urgent()
                    now = self.clock()
                    async with self.services.db() as s:
                        queue = await outbox_channel_queue(s, key, self.config.digest_max + 1)
                    if not queue or queue[0].next_attempt_at > now:
                        return
                    # the head is never folded: it may have been sent just before a crash, and must then be
                    # re-sent under its own key (so the receiver can drop it), not inside a digest
                    run = _alert_run(queue[1:], now)
                    if len(run) >= self.config.digest_threshold:
                        await self._fold(run)
                        continue  # the queue changed: read it again
                    # send what was read, in order, without re-reading the queue between rows
                    for row in queue[: self.config.digest_threshold]:
                        await self.writer.yield_to_urgent()
                        if row.next_attempt_at > now or not await self._send(row):
                            return
        except Exception:
            log.exception("dispatch_channel_failed", channel=key.split("|")[0])

    async def _fold(self, run: list[OutboxRow]) -> OutboxRow | None:
        replies = [payload_to_reply(r.payload) for r in run]
        covers: list[str] = []
        for r in run:
            covers.extend(r.payload.get("covers") or [r.payload.get("event_key") or r.key])
        digest = digest_reply(replies, covers)
        tag = hashlib.sha1("|".join(r.key for r in run).encode()).hexdigest()[:16]
        first = run[0]
        msg = NewMessage(
            tenant_id=first.tenant_id,
            owner_id=first.owner_id,
            key=f"digest:{tag}",
            kind="digest",
            destination=first.destination,
            target=first.target,
            payload=reply_to_payload(digest, event_key=f"digest:{tag}", covers=covers),
            event_at=run[-1].event_at,
        )
        async with self.writer.tx() as s:
            row_id = await outbox_fold_digest(s, run, msg, now=self.clock())
        if row_id is None:
            return None
        self.stats.digests += 1
        log.info("digest_folded", rows=len(run), destination=first.destination)
        async with self.services.db() as s:
            return await outbox_row(s, row_id)

    def _destination(self, kind: str) -> Destination:
        dest = self._dests.get(kind)
        if dest is None:
            dest = self.services.destinations.build(kind)
            self._dests[kind] = dest
            self._own_dests.add(kind)
        return dest

    async def _send(self, row: OutboxRow) -> bool:
        """Deliver one row; True when the channel may go on to its next row."""
        # the event's ref, as logged where it was queued: one ref finds the trigger and its delivery
        with structlog.contextvars.bound_contextvars(request_id=event_ref(row.key), surface="runtime"):
            sent = await self._send_row(row)
        metrics.DELIVERIES.labels(kind=row.destination, result="ok" if sent else "not_yet").inc()
        return sent

    async def _send_row(self, row: OutboxRow) -> bool:
        cfg = self.config
        state = self.stats.channels.setdefault(row.channel_key, ChannelState())
        try:
            dest = self._destination(row.destination)
            reply = await self._reply(row)
            await asyncio.wait_for(dest.send(row.target, reply, row.key), cfg.send_timeout)
        except ConfigError as exc:
            await self._retry(row, cfg.missing_kind_wait, exc.message, count=False)
            return False
        except RateLimited as exc:
            self.stats.rate_limited += 1
            wait = self._backoff(row.attempts, exc.retry_after)
            await self._retry(row, wait, f"rate limited; retry after {wait:.2f}s", count=False)
            return False
        except DeliveryError as exc:
            return await self._failure(row, state, exc.reason, permanent=exc.permanent)
        except TimeoutError:
            return await self._failure(row, state, f"no answer within {cfg.send_timeout:g}s", permanent=False)
        except Exception as exc:  # a destination bug is a failure of this channel only
            log.exception("destination_raised", destination=row.destination)
            return await self._failure(row, state, f"{exc.__class__.__name__}", permanent=False)
        await self._mark_delivered(row.id)
        state.failures, state.last_error, state.reported = 0, None, False
        state.delivered += 1
        self.stats.delivered += 1
        return True

    async def _mark_delivered(self, row_id: int) -> None:
        """Record a delivery before the channel sends its next row (so at most one row per channel is ever in doubt).

        Channels delivering at the same moment share one transaction: each waits for the flush
        that carries its mark, and the flusher takes every mark queued while the last one ran.
        """
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._marks.append((row_id, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_marks())
        await fut

    async def _flush_marks(self) -> None:
        while self._marks:
            batch, self._marks = self._marks, []
            try:
                async with self.writer.tx() as s:
                    await outbox_mark_delivered_many(s, [rid for rid, _ in batch], now=self.clock())
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    async def _failure(self, row: OutboxRow, state: ChannelState, reason: str, *, permanent: bool) -> bool:
        state.failures += 1
        state.last_error = reason
        if state.failures >= self.config.report_after and not state.reported:
            state.reported = True
            log.warning(
                "destination_failing", target=describe_target(row.destination, row.target), failures=state.failures, error=reason
            )
        if permanent or row.attempts + 1 >= self.config.max_attempts:
            async with self.writer.tx() as s:
                await outbox_mark_failed(s, row.id, reason)
            self.stats.failed += 1
            log.warning("delivery_failed", key=row.key, target=describe_target(row.destination, row.target), error=reason)
            return True  # give up on this row; the channel goes on
        await self._retry(row, self._backoff(row.attempts), reason, count=True)
        return False

    async def _retry(self, row: OutboxRow, wait: float, reason: str, *, count: bool) -> None:
        self.stats.retried += 1
        async with self.writer.tx() as s:
            await outbox_mark_retry(s, row.id, self.clock() + timedelta(seconds=wait), reason, count_attempt=count)
        # come back for this channel when it is due, even if nothing else wakes us
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, wait) + 0.01, self.wake, [row.channel_key])

    async def _reply(self, row: OutboxRow) -> Reply:
        """The row's Reply, with its chart drawn now when the payload asks for one (and charts are on)."""
        reply = payload_to_reply(row.payload)
        spec = row.payload.get("chart")
        if spec and self.charts and not reply.attachments:
            att = self._charts_done.get(row.payload.get("event_key") or row.key)
            if att is None:
                try:
                    att = await asyncio.wait_for(plan_chart(self.services, spec), self.config.send_timeout)
                except TimeoutError:
                    att = None
                if att is not None:
                    # the same event goes to several sinks: draw it once
                    self._charts_done[row.payload.get("event_key") or row.key] = att
                    if len(self._charts_done) > 64:
                        self._charts_done.pop(next(iter(self._charts_done)))
            if att is not None:
                reply.attachments = [att]
        return reply

    def _backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next try of a row that failed `attempts` times (the destination's retry_after wins)."""
        cfg = self.config
        return Backoff(cfg.base_backoff, cfg.max_backoff, jitter=DELIVERY_JITTER).delay(attempts, retry_after)


def _alert_run(queue: list[OutboxRow], now: datetime) -> list[OutboxRow]:
    """The leading run of due alert rows (the part of a burst that may become a digest)."""
    run: list[OutboxRow] = []
    for r in queue:
        if r.kind != "alert" or r.next_attempt_at > now or r.attempts:
            break
        run.append(r)
    return run
