"""The alert side of the runtime: the book fed by ticks and bars, and triggers written with their outbox rows.

A trigger becomes durable in ONE transaction that updates the alert's state (guarded by its
fire count, so a fire is recorded once even if two workers raced) and inserts one outbox row
per sink with the idempotency key `alert:<id>:<fire count>@<sink>`. If the process dies before
the commit, nothing of it exists and the restarted book (loaded from the same state) fires it
again with the same key; after the commit the alert is disarmed or done and will not refire.

The evaluator does not commit by itself: `process` moves the book, `prepare` words and
routes the messages and returns the batch's write, the worker runs it (with the tracker's and
the feed cursor) in one transaction, then calls `committed` or `rolled_back`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.alert_kinds import kind_category
from analytics.alertbook import AlertBook, Rule, Trigger, build_rule
from analytics.intervals import interval_minutes
from analytics.sessions import last_sessions, schedule, session_info
from bot.runtime.feed import FeedBatch
from bot.runtime.messages import AlertEvent, alert_reply, reply_to_payload
from bot.runtime.routing import Origin, SettingsCache, Sink, fan_out, route_many
from bot.runtime.stamps import Stamps
from bot.web.links import ALERT_INTERVALS
from core.clock import utc_now
from core.errors import CoachError
from core.values import ns_from_utc, utc_from_ns
from storage import alerts as store
from storage.alerts import Alert
from storage.outbox import NewMessage, insert_outbox

log = structlog.get_logger("coach.alerts")

_MIN_NS = 60_000_000_000


@dataclass(frozen=True)
class AlertMeta:
    """What the runtime needs about an alert besides its rule: who, where, and how to word it."""

    tenant_id: int
    owner_id: int
    origin: Origin
    kind: str
    symbol: str
    value: float | None
    interval: str | None
    params: dict[str, Any]
    note: str
    plan_id: str | None
    repeat: bool
    updated_at: datetime


def rule_from_row(row: Alert) -> Rule:
    """The book's rule for a stored alert, with its live state."""
    return build_rule(
        row.kind,
        id=row.id,
        symbol=row.symbol,
        value=row.value,
        reference=row.reference,
        direction=row.direction,
        interval=row.interval,
        params=dict(row.params or {}),
        band=row.band,
        repeat=bool(row.repeat),
        cooldown_ns=int(row.cooldown_s or 0) * 1_000_000_000,
        expires_ns=ns_from_utc(row.expires_at) if row.expires_at else None,
        session=row.session or "regular",
        active_from_ns=ns_from_utc(row.active_from) if row.active_from else 0,
        armed_up=row.armed_up,
        armed_down=row.armed_down,
        last_fired_ns=ns_from_utc(row.last_fired_at) if row.last_fired_at else None,
        fire_count=int(row.fire_count or 0),
    )


async def date_plan_alerts(session: AsyncSession) -> int:
    """Give live alerts on a plan that have no expiry their plan's end (analytics.plan_window); returns how many.

    Alerts made before alerts ended with their plan would otherwise watch a stale plan's levels for ever.
    One whose plan is not stored keeps no expiry.
    """
    from analytics.plan_window import expires_at
    from storage import plans as plan_store
    from storage.identity import Owner

    n = 0
    for row in await store.runtime_undated_plan_alerts(session):
        plan = await plan_store.get_plan(session, Owner(tenant_id=row.tenant_id, user_id=row.owner_id), row.plan_id or "")
        if plan is None:
            continue
        row.expires_at = expires_at(plan)
        row.updated_at = utc_now()
        n += 1
    return n


def meta_from_row(row: Alert) -> AlertMeta:
    return AlertMeta(
        tenant_id=row.tenant_id,
        owner_id=row.owner_id,
        origin=Origin(tenant_id=row.tenant_id, platform=row.platform, channel=row.channel, user_ref=row.user_ref),
        kind=row.kind,
        symbol=row.symbol,
        value=row.value,
        interval=row.interval,
        params=dict(row.params or {}),
        note=row.note or "",
        plan_id=row.plan_id,
        repeat=bool(row.repeat),
        updated_at=row.updated_at,
    )


class MarketStatus:
    """The market's status (open/pre/post/closed) at a moment, cached per minute (session_info is ~0.4 ms)."""

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def __call__(self, at_ns: int) -> str:
        minute = at_ns // _MIN_NS
        st = self._cache.get(minute)
        if st is None:
            try:
                st = session_info(utc_from_ns(minute * _MIN_NS)).status
            except CoachError:
                st = "closed"
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[minute] = st
        return st


@dataclass
class BatchResult:
    """What one batch produced, before it is written."""

    triggers: list[Trigger] = field(default_factory=list)
    dirty: list[Rule] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.triggers or self.dirty or self.expired)


class AlertEvaluator:
    """Owns the alert book of the runtime process."""

    def __init__(self, services: Any, *, bar_lookback: int = 300, stamps: Stamps | None = None) -> None:
        self.services = services
        self.book = AlertBook()
        self.meta: dict[int, AlertMeta] = {}
        self.status = MarketStatus()
        self.bar_lookback = bar_lookback
        self._synced_at: datetime | None = None
        self._bar_due: dict[tuple[str, str], int] = {}
        self._resync: set[int] = set()
        self.fired = 0
        #: Channel settings are read at most every few seconds, not once per trigger.
        self.settings_cache = SettingsCache(ttl=5.0)
        #: The chart link and freshness badge of each fired alert's message.
        self.stamps = stamps or Stamps.of(services)

    # ------------------------------------------------------------------ loading

    async def load(self, session: AsyncSession) -> int:
        """Fill the book with every live alert; returns how many."""
        self._synced_at = utc_now()
        rows = await store.runtime_active_alerts(session)
        for row in rows:
            self._put(row)
        return len(rows)

    def _put(self, row: Alert) -> None:
        try:
            rule = rule_from_row(row)
        except ValueError as exc:  # a row the book cannot use is skipped, loudly, not fatal
            log.warning("alert_skipped", alert_id=row.id, error=str(exc))
            return
        self.book.add(rule)
        self.meta[row.id] = meta_from_row(row)

    def _drop(self, alert_id: int) -> None:
        self.book.remove(alert_id)
        self.meta.pop(alert_id, None)

    async def sync(self, session: AsyncSession) -> int:
        """Apply alerts added, edited or removed since the last sync (by any process); returns how many changed."""
        return await self.apply_changes(session, await self.changed(session))

    async def changed(self, session: AsyncSession) -> set[int]:
        """Ids that may have changed since the last sync (a cheap read, safe while batches are being written)."""
        since = (self._synced_at or utc_now()) - timedelta(seconds=5)  # overlap: other processes' clocks differ a little
        self._synced_at = utc_now()
        # versions first (two columns): most recent changes are this runtime's own writes, already in the book
        return {
            aid
            for aid, at in await store.runtime_alert_versions(session, since)
            if (m := self.meta.get(aid)) is None or m.updated_at != at
        }

    async def apply_changes(self, session: AsyncSession, candidates: set[int]) -> int:
        """Reload the candidates whose stored version still differs from the book's (call with batches paused)."""
        forced = self._resync
        stale = candidates | forced
        self._resync = set()
        if not stale:
            return 0
        rows = await store.runtime_alerts_by_id(session, stale)
        changed = 0
        for aid in stale - set(rows):
            self._drop(aid)
            changed += 1
        for row in rows.values():
            known = self.meta.get(row.id)
            if known is not None and known.updated_at == row.updated_at and row.id not in forced:
                continue  # it was our own write, committed after the cheap read
            changed += 1
            if row.status == "active":
                self._put(row)
            else:
                self._drop(row.id)
        return changed

    def symbols(self) -> set[str]:
        return self.book.symbols()

    # ------------------------------------------------------------------ evaluation

    async def process(self, batch: FeedBatch) -> BatchResult:
        """Evaluate a batch's ticks (and any bar rules whose bar closed); the book's state moves, nothing is written."""
        res = BatchResult()
        last_ns = 0
        for t in batch.ticks:
            at_ns = ns_from_utc(t.at)
            last_ns = max(last_ns, at_ns)
            if t.symbol in self.book._symbols:
                res.triggers.extend(self.book.evaluate(t.symbol, t.price, at_ns, self.status(at_ns)))
        for b in batch.bars:
            last_ns = max(last_ns, ns_from_utc(b.end))
        if last_ns and self.book.bar_keys():
            res.triggers.extend(await self._bar_rules(last_ns))
        if last_ns:
            res.expired = self.book.expire(last_ns)
        res.dirty = self.book.take_dirty()
        return res

    async def _bar_rules(self, now_ns: int) -> list[Trigger]:
        """Evaluate bar rules whose interval's bar has completed by `now_ns`."""
        out: list[Trigger] = []
        for key in sorted(self.book.bar_keys()):
            symbol, interval = key
            due = self._bar_due.get(key)
            if due is None:
                due = self._next_boundary(interval, now_ns)
                self._bar_due[key] = due
            if now_ns < due:
                continue
            self._bar_due[key] = self._next_boundary(interval, now_ns)
            try:
                bars = await self._bars(symbol, interval, due)
            except CoachError as exc:
                log.info("bars_unavailable", symbol=symbol, interval=interval, error=str(exc))
                continue
            if bars is not None and len(bars):
                out.extend(self.book.evaluate_bars(symbol, interval, bars, due, self.status(due - 1)))
        return out

    def _next_boundary(self, interval: str, now_ns: int) -> int:
        """The end of the bar of `interval` containing `now_ns` (buckets anchored at the session open)."""
        minutes = interval_minutes(interval)
        sch = schedule()
        i = int(np.searchsorted(sch.closes, now_ns, side="right"))
        if i >= len(sch.opens):
            return now_ns + minutes * _MIN_NS
        open_ns, close_ns = int(sch.opens[i]), int(sch.closes[i])
        if minutes >= 24 * 60 or now_ns < open_ns:
            return close_ns if now_ns >= open_ns else open_ns + min(minutes, 390) * _MIN_NS
        k = (now_ns - open_ns) // (minutes * _MIN_NS) + 1
        return min(close_ns, open_ns + k * minutes * _MIN_NS)

    async def _bars(self, symbol: str, interval: str, end_ns: int) -> pd.DataFrame:
        minutes = interval_minutes(interval)
        end = utc_from_ns(end_ns)
        sessions = max(2, math.ceil(self.bar_lookback * minutes / 390) + 1) if minutes < 1440 else self.bar_lookback + 2
        sch = last_sessions(end, min(sessions, 600))
        start = datetime.fromtimestamp(int(sch.opens[0]) / 1e9, tz=UTC) if len(sch.opens) else end - timedelta(days=5)
        res = await self.services.market.bars(symbol, interval, start, end)
        return res.df

    # ------------------------------------------------------------------ writing

    async def prepare(self, res: BatchResult) -> AlertWrite | None:
        """The database write of a batch's result, its messages already worded and routed (reads only).

        Routing reads channel settings (cached for a few seconds), so it happens before the
        write transaction; the write itself is a plain function the worker runs in its batch
        transaction.
        """
        if not res:
            return None
        w = AlertWrite(now=utc_now(), triggers=list(res.triggers), expired=list(res.expired))
        # all fires of the batch in one statement, each guarded by the alert's fire count
        per_alert: dict[int, dict[str, Any]] = {}
        for trig in w.triggers:
            rule = self.book.get(trig.rule_id)
            f = per_alert.setdefault(trig.rule_id, {"id": trig.rule_id, "expect": trig.fire_count - 1})
            f.update(
                fire_count=trig.fire_count,
                last_fired_at=trig.at,
                status="fired" if trig.final else "active",
                last_price=trig.value,
                armed_up=rule.armed_up if rule else None,
                armed_down=rule.armed_down if rule else None,
            )
        w.fires = list(per_alert.values())
        # re-arms (and consumed crossings) only change the armed flags: one statement for all of them
        fired_ids = set(per_alert)
        w.armed = [{"id": r.id, "armed_up": r.armed_up, "armed_down": r.armed_down} for r in res.dirty if r.id not in fired_ids]
        known = [(trig, meta) for trig in w.triggers if (meta := self.meta.get(trig.rule_id)) is not None]
        if known:
            sinks = await route_many(
                self.services.db, self.settings_cache, [(meta.origin, kind_category(meta.kind), meta.symbol) for _, meta in known]
            )
            w.candidates = [(trig.rule_id, self._messages(trig, meta, to)) for (trig, meta), to in zip(known, sinks)]
        return w

    def committed(self, w: AlertWrite | None) -> None:
        """After the batch's commit: the book's versions follow what was written."""
        if w is None:
            return
        for trig in w.triggers:
            meta = self.meta.get(trig.rule_id)
            if trig.rule_id not in w.recorded or meta is None:
                # removed or edited meanwhile (or recorded by another worker): no message; reload its truth
                self._resync.add(trig.rule_id)
                continue
            self.meta[trig.rule_id] = _with_updated(meta, w.now)
        self.fired += sum(1 for aid, msgs in w.candidates if aid in w.recorded and msgs)
        for d in w.armed:
            meta = self.meta.get(d["id"])
            if meta is not None:
                self.meta[d["id"]] = _with_updated(meta, w.now)
        for aid in w.expired:
            self.meta.pop(aid, None)

    def _messages(self, trig: Trigger, meta: AlertMeta, sinks: list[Sink]) -> list[NewMessage]:
        if not sinks:
            log.info("alert_suppressed", alert_id=trig.rule_id, reason="channel settings")
            return []
        event_key = f"alert:{trig.rule_id}:{trig.fire_count}"
        ev = AlertEvent(
            key=event_key,
            alert_id=trig.rule_id,
            symbol=meta.symbol,
            kind=meta.kind,
            side=trig.side,
            level=trig.level,
            price=trig.value,
            at=trig.at,
            fire_count=trig.fire_count,
            repeat=meta.repeat,
            note=meta.note,
            value=meta.value,
            interval=meta.interval,
            plan_id=meta.plan_id,
            close=trig.close,
        )
        intervals = (meta.interval, *ALERT_INTERVALS) if meta.interval else ALERT_INTERVALS
        reply = alert_reply(ev, meta.params, self.stamps.link(meta.tenant_id, meta.owner_id, meta.symbol, intervals, trig.at))
        payload = reply_to_payload(reply.model_copy(update={"freshness": self.stamps.badge(trig.at)}), event_key=event_key)
        return fan_out(
            sinks, key=event_key, kind="alert", payload=payload, tenant_id=meta.tenant_id, owner_id=meta.owner_id, at=trig.at
        )

    def rolled_back(self, res: BatchResult) -> None:
        """The batch's transaction failed: forget the in-memory moves; the next sync reloads these alerts from the database."""
        ids = {t.rule_id for t in res.triggers} | {r.id for r in res.dirty} | set(res.expired)
        for aid in ids:
            self._drop(aid)
        self._resync |= ids


@dataclass
class AlertWrite:
    """One batch's alert writes, run as `write(connection)` inside the batch transaction."""

    now: datetime
    triggers: list[Trigger]
    expired: list[int]
    fires: list[dict[str, Any]] = field(default_factory=list)
    armed: list[dict[str, Any]] = field(default_factory=list)
    #: (alert id, its messages): queued only if the alert's fire is recorded.
    candidates: list[tuple[int, list[NewMessage]]] = field(default_factory=list)
    recorded: set[int] = field(default_factory=set)
    messages: list[NewMessage] = field(default_factory=list)

    def __call__(self, conn: Connection) -> None:
        self.recorded = store.record_fires(conn, self.fires, self.now)
        store.save_armed(conn, self.armed, self.now)
        store.mark_expired(conn, self.expired, self.now)
        self.messages = [m for aid, msgs in self.candidates if aid in self.recorded for m in msgs]
        insert_outbox(conn, self.messages, self.now)


def _with_updated(meta: AlertMeta, at: datetime) -> AlertMeta:
    from dataclasses import replace

    return replace(meta, updated_at=at)
