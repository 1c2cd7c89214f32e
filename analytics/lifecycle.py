"""The live plan state machine: pending -> triggered -> targets -> stopped / exited / expired.

A tracked plan is fed price paths (two consecutive ticks, or a bar's open-extreme-extreme-close
walk) and answers with its next state and the events to post:

    pending --entry touched--> triggered --T1, T2, ...--> exited (final target)
       |                           |  \\--stop touched--> stopped (at break-even after T1 when moved)
       |--stop before entry--> invalidated
       \\--session end--> expired          triggered (scalp/intraday) --session end--> exited (flat at the close)

Levels are met in the order the path reaches them, so a segment that runs through the
entry and then the stop yields "triggered" then "stopped". A bar has no inner order, so
`bar_path` walks it adverse extreme first (the conservative reading). Fills are at the level.

Pure: no I/O, no clock; time is integer nanoseconds passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from analytics.models import Plan

PlanStatus = Literal["pending", "triggered", "stopped", "exited", "expired", "invalidated"]
EventKind = Literal["triggered", "target", "stopped", "exited", "expired", "invalidated", "stop_moved"]
#: What can happen to a plan's status (every event but a stop move).
Transition = Literal["triggered", "target", "stopped", "exited", "expired", "invalidated"]

TERMINAL: frozenset[str] = frozenset({"stopped", "exited", "expired", "invalidated"})
#: Styles that are flat by the close: a triggered plan exits and a pending one expires at the session's end.
DAY_STYLES: frozenset[str] = frozenset({"scalp", "intraday"})


@dataclass(frozen=True, slots=True)
class PlanEvent:
    """One transition worth posting."""

    kind: EventKind
    price: float
    at_ns: int
    #: Position of this event in the plan's history (1, 2, ...): part of its identity, so a replay posts it once.
    seq: int
    #: 1-based target number for "target" and a final-target "exited".
    target_index: int | None = None
    #: A stop the trader should consider now (break-even after T1).
    suggest_stop: float | None = None
    #: Reward in multiples of the initial risk at this price (None while pending).
    r: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PlanState:
    """Where a tracked plan stands."""

    plan_id: str
    direction: Literal["long", "short"]
    entry: float
    stop: float
    initial_stop: float
    targets: tuple[float, ...]
    style: str = "intraday"
    status: PlanStatus = "pending"
    targets_hit: int = 0
    entry_at_ns: int | None = None
    exit_price: float | None = None
    exit_at_ns: int | None = None
    last_price: float | None = None
    #: Events emitted so far (the next event's seq is events + 1).
    events: int = 0
    reason: str = ""

    @classmethod
    def from_plan(cls, plan: Plan) -> PlanState:
        """The initial (pending) state of a plan; targets are kept in the order they are met."""
        targets = tuple(t.price for t in plan.targets)
        return cls.new(plan.plan_id, plan.direction, plan.entry, plan.stop, targets, style=plan.style)

    @classmethod
    def new(
        cls, plan_id: str, direction: str, entry: float, stop: float, targets: Sequence[float], style: str = "intraday"
    ) -> PlanState:
        """A pending state, after checking the levels make sense for the direction."""
        if direction not in ("long", "short"):
            raise ValueError("direction must be long or short")
        side: Literal["long", "short"] = "long" if direction == "long" else "short"
        vals = [entry, stop, *targets]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in vals):
            raise ValueError("entry, stop and targets must be positive numbers")
        sign = 1.0 if direction == "long" else -1.0
        if sign * (entry - stop) <= 0:
            raise ValueError(f"a {direction} plan needs its stop {'below' if sign > 0 else 'above'} the entry")
        ordered = tuple(sorted(targets, key=lambda t: sign * t))
        if any(sign * (t - entry) <= 0 for t in ordered):
            raise ValueError(f"a {direction} plan needs its targets {'above' if sign > 0 else 'below'} the entry")
        return cls(
            plan_id=plan_id,
            direction=side,
            entry=float(entry),
            stop=float(stop),
            initial_stop=float(stop),
            targets=tuple(float(t) for t in ordered),
            style=style,
        )

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "long" else -1.0

    @property
    def risk(self) -> float:
        return abs(self.entry - self.initial_stop)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def r_multiple(self, price: float) -> float:
        """Reward of `price` against the entry, in multiples of the initial risk."""
        return self.sign * (price - self.entry) / self.risk if self.risk else 0.0


def bar_path(o: float, h: float, l: float, c: float, direction: str) -> list[float]:  # noqa: E741
    """A bar as a price walk, adverse extreme first: long open-low-high-close, short open-high-low-close."""
    return [o, l, h, c] if direction == "long" else [o, h, l, c]


def observe(state: PlanState, path: Sequence[float], at_ns: int) -> tuple[PlanState, list[PlanEvent]]:
    """Feed prices in time order (starting from the last price seen, when any); returns the new state and its events."""
    events: list[PlanEvent] = []
    if state.done:
        return state, events
    points = [float(p) for p in path if p is not None and math.isfinite(p) and p > 0]
    if not points:
        return state, events
    if state.last_price is None:
        first = points[0]
        if state.status == "pending" and first == state.entry:
            state = _apply(state, "triggered", state.entry, at_ns, events)
        state = replace(state, last_price=first)
        points = points[1:]
        a = first
    else:
        a = state.last_price
    for b in points:
        state = _segment(state, a, b, at_ns, events)
        a = b
        if state.done:
            break
    if not state.done:
        state = replace(state, last_price=a)
    return state, events


def session_end(state: PlanState, price: float | None, at_ns: int) -> tuple[PlanState, list[PlanEvent]]:
    """The regular session closed: pending plans expire; triggered day-style plans exit flat at `price`."""
    events: list[PlanEvent] = []
    if state.done:
        return state, events
    if state.status == "pending" and state.style in DAY_STYLES:
        state = _apply(
            state, "expired", price if price is not None else state.entry, at_ns, events, reason="no entry by the close"
        )
    elif state.status == "triggered" and state.style in DAY_STYLES:
        px = price if price is not None else (state.last_price or state.entry)
        state = _apply(state, "exited", px, at_ns, events, reason="flat at the close")
    return state, events


def expire(state: PlanState, at_ns: int, reason: str = "expired") -> tuple[PlanState, list[PlanEvent]]:
    """End a pending plan that waited too long (any style); a triggered plan is left alone."""
    events: list[PlanEvent] = []
    if state.status == "pending":
        state = _apply(state, "expired", state.last_price or state.entry, at_ns, events, reason=reason)
    return state, events


def move_stop(state: PlanState, new_stop: float, at_ns: int) -> tuple[PlanState, list[PlanEvent]]:
    """Move the stop (e.g. to break-even); it must stay on the losing side of the last price."""
    if state.done:
        raise ValueError(f"plan {state.plan_id} is already {state.status}")
    if not (isinstance(new_stop, (int, float)) and math.isfinite(new_stop) and new_stop > 0):
        raise ValueError("the stop must be a positive price")
    ref = state.last_price if state.last_price is not None else state.entry
    if state.sign * (ref - new_stop) <= 0:
        side = "below" if state.sign > 0 else "above"
        raise ValueError(f"a {state.direction} stop must sit {side} the last price {ref:g}")
    events: list[PlanEvent] = []
    moved = replace(state, stop=float(new_stop))
    moved = _emit(moved, events, "stop_moved", float(new_stop), at_ns, reason=f"stop moved to {new_stop:g}")
    return moved, events


# ---------------------------------------------------------------------- internals


def _reached(a: float, b: float, level: float, sign: float, want: str) -> bool:
    """True when the segment a->b reaches `level` from the side it started on.

    want="up" (in signed coordinates): the price rises to the level; "down": falls to it; "any": either.
    """
    x, y, lv = sign * a, sign * b, sign * level
    up = x < lv <= y
    down = y <= lv < x
    return up if want == "up" else down if want == "down" else (up or down)


def _segment(state: PlanState, a: float, b: float, at_ns: int, events: list[PlanEvent]) -> PlanState:
    s = state.sign
    pos = a
    while not state.done:
        cands: list[tuple[float, str]] = []
        if state.status == "pending":
            if _reached(pos, b, state.entry, s, "any"):
                cands.append((state.entry, "entry"))
            if _reached(pos, b, state.stop, s, "down"):
                cands.append((state.stop, "invalidated"))
        else:  # triggered
            if _reached(pos, b, state.stop, s, "down"):
                cands.append((state.stop, "stopped"))
            if state.targets_hit < len(state.targets):
                nxt = state.targets[state.targets_hit]
                if _reached(pos, b, nxt, s, "up"):
                    cands.append((nxt, "target"))
        if not cands:
            break
        level, what = min(cands, key=lambda c: abs(c[0] - pos))
        if what == "entry":
            state = _apply(state, "triggered", level, at_ns, events)
        elif what == "invalidated":
            state = _apply(state, "invalidated", level, at_ns, events, reason="stop reached before the entry")
        elif what == "stopped":
            be = state.sign * (state.stop - state.entry) >= 0
            state = _apply(state, "stopped", level, at_ns, events, reason="stopped at break-even" if be else "stop hit")
        else:
            state = _apply(state, "target", level, at_ns, events)
        # continue from just past the level so the same level is not met twice
        pos = level
    return state


def _apply(state: PlanState, kind: Transition, price: float, at_ns: int, events: list[PlanEvent], reason: str = "") -> PlanState:
    if kind == "triggered":
        state = replace(state, status="triggered", entry_at_ns=at_ns)
        return _emit(state, events, "triggered", price, at_ns, r=0.0, reason="entry touched")
    if kind == "target":
        n = state.targets_hit + 1
        state = replace(state, targets_hit=n)
        r = state.r_multiple(price)
        if n == len(state.targets):
            state = replace(state, status="exited", exit_price=price, exit_at_ns=at_ns, reason=f"final target T{n}")
            return _emit(state, events, "exited", price, at_ns, target_index=n, r=r, reason=f"final target T{n} reached")
        suggest = state.entry if n == 1 and state.sign * (state.entry - state.stop) > 0 else None
        return _emit(
            state,
            events,
            "target",
            price,
            at_ns,
            target_index=n,
            r=r,
            suggest_stop=suggest,
            reason=f"T{n} reached" + ("; consider moving the stop to break-even" if suggest is not None else ""),
        )
    if kind == "stopped" or kind == "exited":
        r_exit = state.r_multiple(price) if state.status == "triggered" else None
        state = replace(state, status=kind, exit_price=price, exit_at_ns=at_ns, reason=reason)
        return _emit(state, events, kind, price, at_ns, r=r_exit, reason=reason)
    # expired, invalidated
    state = replace(state, status=kind, exit_at_ns=at_ns, reason=reason)
    return _emit(state, events, kind, price, at_ns, reason=reason)


def _emit(
    state: PlanState,
    events: list[PlanEvent],
    kind: EventKind,
    price: float,
    at_ns: int,
    *,
    target_index: int | None = None,
    suggest_stop: float | None = None,
    r: float | None = None,
    reason: str = "",
) -> PlanState:
    seq = state.events + 1
    events.append(
        PlanEvent(
            kind=kind,
            price=float(price),
            at_ns=at_ns,
            seq=seq,
            target_index=target_index,
            suggest_stop=suggest_stop,
            r=r,
            reason=reason,
        )
    )
    return replace(state, events=seq)
