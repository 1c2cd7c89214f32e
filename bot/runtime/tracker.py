"""Tracked plans, live: ticks drive each plan's lifecycle; every transition is posted with an updated chart.

Transitions are written like alert triggers: the plan's new state and one outbox row per
sink (key `plan:<tracked id>:<event seq>`) in the batch's transaction. The chart is drawn
when the row is delivered (the payload says what to draw), so queuing stays fast and the
messages of one plan keep their order. A stop-out also marks the row `replan_status =
pending` in that same transaction; after the commit the re-planner builds the next plan in
the background (and resumes it after a restart).

Day-style plans (scalp, intraday) end at the session's close: pending ones expire, live ones
exit flat. Swing and LEAPS plans carry over; a pending one expires after a few sessions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from analytics import lifecycle
from analytics.intervals import STYLE_INTERVALS
from analytics.lifecycle import PlanEvent, PlanState
from analytics.models import Plan
from analytics.plan_window import expires_at
from analytics.sessions import schedule
from bot.runtime.feed import FeedBatch
from bot.runtime.messages import PlanUpdate, plan_reply, reply_to_payload
from bot.runtime.routing import Origin, SettingsCache, Sink, fan_out, route_many
from bot.runtime.stamps import Stamps
from core.clock import utc_now
from core.values import ns_from_utc, utc_from_ns
from storage import alerts as store
from storage.alerts import TrackedPlan
from storage.outbox import NewMessage, insert_outbox

log = structlog.get_logger("coach.tracker")

#: Sessions a pending swing/LEAPS plan waits for its entry before it expires.
PENDING_SESSIONS = {"swing": 5, "leaps": 20}


def state_to_json(state: PlanState) -> dict[str, Any]:
    d = asdict(state)
    d["targets"] = list(state.targets)
    return d


def state_from_json(d: dict[str, Any]) -> PlanState:
    d = dict(d)
    d["targets"] = tuple(d.get("targets") or ())
    return PlanState(**d)


@dataclass
class Live:
    """A tracked plan in memory."""

    tracked_id: int
    tenant_id: int
    owner_id: int
    origin: Origin
    plan: Plan
    state: PlanState
    sessions: int
    updated_at: datetime
    #: time.monotonic() when the state (with its last price) was last written.
    saved: float = 0.0
    #: When the plan's sessions end (analytics.plan_window), UTC ns; a tick after it ends a plan the closes missed.
    expires_ns: int | None = None


@dataclass
class Change:
    """One plan's events from a batch, with the state they lead to."""

    live: Live
    before: PlanState
    events: list[PlanEvent]
    sessions: int


@dataclass
class TrackResult:
    changes: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)


class PlanTracker:
    """Owns the tracked plans of the runtime process."""

    def __init__(
        self, services: Any, *, save_every: float = 5.0, settings_cache: SettingsCache | None = None, stamps: Stamps | None = None
    ) -> None:
        self.services = services
        #: Seconds between writes of a plan's last price when nothing happens (so a restart resumes close to it).
        self.save_every = save_every
        self.plans: dict[int, Live] = {}
        self._by_symbol: dict[str, set[int]] = {}
        self._synced_at: datetime | None = None
        self._close_ns: int | None = None
        self.stopped: list[int] = []
        self.settings_cache = settings_cache or SettingsCache(ttl=5.0)
        #: The chart link and freshness badge of each transition's message.
        self.stamps = stamps or Stamps.of(services)

    # ------------------------------------------------------------------ loading

    async def load(self, session: AsyncSession) -> int:
        self._synced_at = utc_now()
        rows = await store.runtime_active_tracked(session)
        for row in rows:
            self._put(row)
        return len(rows)

    def _put(self, row: TrackedPlan) -> None:
        try:
            plan = Plan.model_validate(row.plan)
            state = state_from_json(row.state["state"]) if "state" in (row.state or {}) else PlanState.from_plan(plan)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("tracked_plan_skipped", tracked_id=row.id, error=str(exc))
            return
        self._drop(row.id)
        live = Live(
            tracked_id=row.id,
            tenant_id=row.tenant_id,
            owner_id=row.owner_id,
            origin=Origin(tenant_id=row.tenant_id, platform=row.platform, channel=row.channel, user_ref=row.user_ref),
            plan=plan,
            state=state,
            sessions=int((row.state or {}).get("sessions", 0)),
            updated_at=row.updated_at,
            expires_ns=ns_from_utc(expires_at(plan)),
        )
        self.plans[row.id] = live
        self._by_symbol.setdefault(plan.symbol, set()).add(row.id)

    def _drop(self, tracked_id: int) -> None:
        live = self.plans.pop(tracked_id, None)
        if live is not None:
            ids = self._by_symbol.get(live.plan.symbol)
            if ids is not None:
                ids.discard(tracked_id)
                if not ids:
                    del self._by_symbol[live.plan.symbol]

    async def sync(self, session: AsyncSession) -> int:
        """Pick up plans tracked, re-tracked or untracked since the last sync."""
        since = (self._synced_at or utc_now()) - timedelta(seconds=5)
        self._synced_at = utc_now()
        changed = 0
        for row in await store.runtime_tracked_changed(session, since):
            known = self.plans.get(row.id)
            if known is not None and known.updated_at == row.updated_at:
                continue
            changed += 1
            if row.status in store.ACTIVE_TRACKED:
                self._put(row)
            else:
                self._drop(row.id)
        return changed

    def symbols(self) -> set[str]:
        return set(self._by_symbol)

    # ------------------------------------------------------------------ evaluation

    def process(self, batch: FeedBatch) -> TrackResult:
        """Run the batch's ticks (and session ends) through the tracked plans."""
        pending: dict[int, Change] = {}

        def change(live: Live) -> Change:
            ch = pending.get(live.tracked_id)
            if ch is None:
                ch = pending[live.tracked_id] = Change(live=live, before=live.state, events=[], sessions=live.sessions)
            return ch

        now = time.monotonic()
        for t in batch.ticks:
            at_ns = ns_from_utc(t.at)
            self._session_end_if_due(at_ns, change)
            ids = self._by_symbol.get(t.symbol)
            if not ids:
                continue
            if self._close_ns is None:
                self._close_ns = _session_close(at_ns)
            for tid in list(ids):
                live = self.plans[tid]
                if live.state.done:
                    continue
                if live.expires_ns is not None and at_ns >= live.expires_ns:
                    # its sessions ended while no close reached this runtime (it was down, or the plan was
                    # loaded late): close it as of its end instead of acting on a stale plan
                    ended, events = _end_of_window(live.state, live.expires_ns)
                    if events:
                        change(live).events.extend(events)
                        live.state = ended
                    if ended.done:
                        continue
                state, events = lifecycle.observe(live.state, [t.price], at_ns)
                if events or (state is not live.state and now - live.saved > self.save_every):
                    ch = change(live)
                    ch.events.extend(events)
                live.state = state
        for b in batch.bars:
            self._session_end_if_due(ns_from_utc(b.end), change)
        return TrackResult(changes=list(pending.values()))

    def _session_end_if_due(self, now_ns: int, change: Callable[[Live], Change]) -> None:
        if self._close_ns is None or now_ns < self._close_ns:
            return
        close_ns = self._close_ns
        self._close_ns = None
        for live in list(self.plans.values()):
            if live.state.done:
                continue
            ch = change(live)
            live.sessions += 1
            state, events = lifecycle.session_end(live.state, live.state.last_price, close_ns)
            if not state.done and state.status == "pending" and live.sessions >= PENDING_SESSIONS.get(live.plan.style, 1):
                state, more = lifecycle.expire(state, close_ns, f"no entry in {live.sessions} sessions")
                events = events + more
            live.state = state
            ch.events.extend(events)

    # ------------------------------------------------------------------ writing

    async def prepare(self, res: TrackResult) -> PlanWrite | None:
        """The database write of a batch's transitions, their messages already worded and routed (reads only)."""
        if not res:
            return None
        w = PlanWrite(now=utc_now())
        with_events = [ch for ch in res.changes if ch.events]
        sinks = await route_many(
            self.services.db, self.settings_cache, [(ch.live.origin, "plan", ch.live.plan.symbol) for ch in with_events]
        )
        to = {id(ch): s for ch, s in zip(with_events, sinks)}
        for ch in res.changes:
            live = ch.live
            messages = [m for ev in ch.events for m in self._messages(live, ev, to[id(ch)])]
            w.items.append(
                (live.tracked_id, {"state": state_to_json(live.state), "sessions": live.sessions}, live.state.status, messages)
            )
            if live.state.done:
                w.ended[live.tracked_id] = (live.tenant_id, live.owner_id, live.plan.plan_id)
        return w

    def _messages(self, live: Live, ev: PlanEvent, sinks: list[Sink]) -> list[NewMessage]:
        if not sinks:
            return []
        st = live.state
        key = f"plan:{live.tracked_id}:{ev.seq}"
        up = PlanUpdate(
            key=key,
            plan_id=live.plan.plan_id,
            symbol=live.plan.symbol,
            direction=live.plan.direction,
            event=ev.kind,
            price=ev.price,
            at=utc_from_ns(ev.at_ns),
            status=st.status,
            stop=st.stop,
            entry=st.entry,
            targets=list(st.targets),
            targets_hit=st.targets_hit,
            r=ev.r,
            suggest_stop=ev.suggest_stop,
            reason=ev.reason,
        )
        chart = {"plan": live.plan.model_dump(mode="json"), "stop": st.stop, "at": up.at.isoformat()}
        plan = live.plan
        intervals = tuple(STYLE_INTERVALS[plan.style])
        url = self.stamps.link(live.tenant_id, live.owner_id, plan.symbol, intervals, up.at, (plan.plan_id, plan.version))
        reply = plan_reply(up, tracked_id=live.tracked_id, chart_url=url)
        payload = reply_to_payload(reply.model_copy(update={"freshness": self.stamps.badge(up.at)}), event_key=key, chart=chart)
        return fan_out(sinks, key=key, kind="plan", payload=payload, tenant_id=live.tenant_id, owner_id=live.owner_id, at=up.at)

    def committed(self, res: TrackResult, w: PlanWrite | None) -> list[int]:
        """After the commit: versions follow what was written, finished plans leave; returns the
        tracked ids that stopped out and were saved so (to re-plan; one untracked meanwhile is not)."""
        saved: set[int] = set()
        if w is not None:
            saved = set(w.saved)
            for tid in saved:
                if (live := self.plans.get(tid)) is not None:
                    live.updated_at = w.now
                    live.saved = time.monotonic()
        stopped = []
        for ch in res.changes:
            if ch.live.state.done:
                self._drop(ch.live.tracked_id)
                if ch.live.state.status == "stopped" and ch.live.tracked_id in saved:
                    stopped.append(ch.live.tracked_id)
        return stopped

    def rolled_back(self, res: TrackResult) -> None:
        """The transaction failed: restore the states before the batch (the ticks are not replayed for plans)."""
        for ch in res.changes:
            ch.live.state = ch.before
            ch.live.sessions = ch.sessions


@dataclass
class PlanWrite:
    """One batch's plan transitions, run as `write(connection)` inside the batch transaction."""

    now: datetime
    #: (tracked id, stored state, status, messages) per changed plan.
    items: list[tuple[int, dict[str, Any], str, list[NewMessage]]] = field(default_factory=list)
    saved: list[int] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    #: Plans this write ends, by tracked id: (tenant id, owner id, plan id); their alerts end with them.
    ended: dict[int, tuple[int, int, str]] = field(default_factory=dict)

    def __call__(self, conn: Connection) -> None:
        self.saved, self.messages = [], []
        for tid, state, status, messages in self.items:
            if store.save_tracked_state(conn, tid, state, status, self.now):
                self.saved.append(tid)
                self.messages.extend(messages)
            # else: untracked meanwhile, nothing to post
        store.expire_plan_alerts(conn, [self.ended[tid] for tid in self.saved if tid in self.ended], self.now)
        insert_outbox(conn, self.messages, self.now)


def _end_of_window(state: PlanState, end_ns: int) -> tuple[PlanState, list[PlanEvent]]:
    """A plan at the end of its sessions: day styles as at a close (expired, or exited flat), others expire if pending."""
    if state.style in lifecycle.DAY_STYLES:
        return lifecycle.session_end(state, state.last_price, end_ns)
    return lifecycle.expire(state, end_ns, "no entry within the plan's sessions")


def _session_close(at_ns: int) -> int:
    """The regular close of the session containing (or next after) `at_ns`."""
    sch = schedule()
    i = int(np.searchsorted(sch.closes, at_ns, side="left"))
    return int(sch.closes[min(i, len(sch.closes) - 1)])
