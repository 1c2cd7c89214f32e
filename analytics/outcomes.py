"""What happened to a plan once the bars after it are known: entry, stop or targets first, R, MAE/MFE, time in trade.

The rules, chosen so a backtest never flatters the coach:

* **Entry.** A plan's entry above the price it was made at (long) is a buy-stop: it fills when
  a bar's high reaches it, at the entry or at the bar's open when the bar opens beyond it. An
  entry at or below that price is a limit: it fills when a bar's low reaches it, at the entry
  or the better open. Shorts mirror this. A buy-stop plan whose stop trades before its entry is
  invalidated and never entered. The entry must fill before the entry deadline.
* **Inside one bar the worst order is assumed.** When a bar reaches both the stop and a target
  the stop counts. The entry bar can stop a trade out but cannot take profit (we cannot know
  the high came after the fill). A bar that opens beyond the stop exits at that open, so a gap
  through the stop loses more than 1R.
* **Management.** By default the position is split equally over the targets; each target
  exits its share (at the target, or a better open); after T1 the stop of the remainder moves
  to break-even from the next bar on. `Management(scale_out=False)` exits everything at T1.
  What is still held at the exit deadline leaves at that bar's close.
* **R** is measured against the planned risk |entry - stop|, so slippage beyond the plan shows.
  MAE and MFE are the largest adverse and favourable moves from the fill while in the trade, in R,
  both reported as non-negative numbers, with the same worst-order rule on the entry and exit bars.

Time is passed in (deadlines, `until`); nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from analytics.models import Direction, Model, Plan
from core.values import ns_from_utc, utc_from_ns

Status = Literal["no_entry", "closed", "open"]
ExitReason = Literal["stop", "breakeven", "target", "time"]
EventKind = Literal["entry", "invalidated", "target", "stop", "breakeven", "time", "expired"]
First = Literal["stop", "t1"]


class OutcomeEvent(Model):
    """One thing that happened to the plan: entry fill, a target, the stop, the time exit."""

    kind: EventKind
    at: datetime
    price: float
    #: 1-based target number for target events.
    target: int | None = None
    #: Share of the position that left at this event.
    size: float | None = None


class TradeOutcome(Model):
    """The outcome of one plan: the figures a journal, a scorecard and a backtest aggregate."""

    plan_id: str
    version: int = 1
    symbol: str
    strategy: str
    style: str
    direction: Literal["long", "short"]
    #: The plan's seven-factor grade (not odds).
    quality: float = Field(ge=0.0, le=1.0)
    #: The chance of T1 before the stop the plan carried (a backtest replaces it with its walk-forward odds).
    probability: float | None = Field(None, ge=0.0, le=1.0)
    entry: float
    stop: float
    targets: list[float]
    planned_at: datetime
    #: no_entry: never filled (or invalidated first); closed: fully exited; open: still held when the data ended.
    status: Status
    exit_reason: ExitReason | None = None
    #: Which came first once in the trade: the stop or T1 (None when neither did).
    first: First | None = None
    #: The calibration label: T1 was reached before the stop (None when never entered).
    hit_t1: bool | None = None
    targets_hit: int = 0
    #: Realised R (marked at the last close for an open trade).
    r_multiple: float | None = None
    mae_r: float | None = None
    mfe_r: float | None = None
    entry_fill: float | None = None
    exit_price: float | None = None  # size-weighted average exit
    entered_at: datetime | None = None
    exited_at: datetime | None = None
    time_in_trade_s: float | None = None
    bars_in_trade: int = 0
    events: list[OutcomeEvent] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        """Outcomes stored before the rename carry the quality grade as `confidence`."""
        if isinstance(data, dict) and "confidence" in data and "quality" not in data:
            data = dict(data)
            data["quality"] = data.pop("confidence")
        return data

    @property
    def traded(self) -> bool:
        return self.status != "no_entry"


@dataclass(frozen=True)
class Management:
    """How a trade is managed once filled."""

    #: Split the position equally over the targets (else everything exits at T1).
    scale_out: bool = True
    #: After T1, move the remainder's stop to the fill price (from the next bar on).
    breakeven_after_t1: bool = True


DEFAULT_MANAGEMENT = Management()


@dataclass
class Resolved:
    """The raw result of `resolve`: indices into the bar arrays and prices in the plan's direction."""

    status: Status
    note: str = ""
    entry_index: int = -1
    exit_index: int = -1
    fill: float = float("nan")
    exit_price: float = float("nan")
    exit_reason: ExitReason | None = None
    first: First | None = None
    targets_hit: int = 0
    r: float = float("nan")
    mae_r: float = float("nan")
    mfe_r: float = float("nan")
    #: (kind, bar index, price, target number or 0, size)
    events: list[tuple[EventKind, int, float, int, float]] | None = None


_NS_MAX = np.iinfo(np.int64).max


def resolve(
    direction: str,
    entry: float,
    stop: float,
    targets: Sequence[float],
    stamps: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    l: np.ndarray,  # noqa: E741
    c: np.ndarray,
    start: int = 0,
    *,
    ref_price: float | None = None,
    entry_deadline_ns: int | None = None,
    exit_deadline_ns: int | None = None,
    until_ns: int | None = None,
    management: Management = DEFAULT_MANAGEMENT,
) -> Resolved:
    """Play the plan over bars `start:` of the arrays (stamps in UTC ns, ascending) and return what happened.

    `until_ns` is the moment the data is complete to: a trade still held then, before its exit
    deadline, is `open`. It defaults to the end of the last bar.
    """
    risk = abs(entry - stop)
    if not risk > 0 or not targets:
        raise ValueError("a plan needs a stop away from the entry and at least one target")
    if direction == "short":
        # mirror prices so one long-only walk serves both directions
        sign = -1.0
        o, h, l, c = -o, -l, -h, -c  # noqa: E741
        entry, stop = -entry, -stop
        targets = [-t for t in targets]
        ref = -ref_price if ref_price is not None else None
    else:
        sign = 1.0
        ref = ref_price
    n = len(stamps)
    if until_ns is None:
        until_ns = int(stamps[-1]) + _bar_ns(stamps) if n else 0
    e_end = _first_at_or_after(stamps, entry_deadline_ns, start, n)
    x_end = _first_at_or_after(stamps, exit_deadline_ns, start, n)
    events: list[tuple[EventKind, int, float, int, float]] = []
    if start >= n:
        return Resolved(status="no_entry", note="no bars after the plan", events=events)
    if ref is None:
        ref = float(o[start])

    # ---- entry
    stop_entry = entry > ref
    win = slice(start, e_end)
    trig = (h[win] >= entry) if stop_entry else (l[win] <= entry)
    i_e = _first_true(trig)
    if stop_entry:
        inv = _first_true(l[win] <= stop)
        if inv >= 0 and (i_e < 0 or inv < i_e):
            events.append(("invalidated", start + inv, float(stop), 0, 0.0))
            return Resolved(status="no_entry", note="stop traded before the entry", events=events)
    if i_e < 0:
        return Resolved(status="no_entry", note="entry not reached before the deadline", events=events)
    i_e += start
    fill = max(float(o[i_e]), entry) if stop_entry else min(float(o[i_e]), entry)
    events.append(("entry", i_e, fill, 0, 1.0))

    # ---- trade
    tgt = list(targets)
    weights = [1.0 / len(tgt)] * len(tgt) if management.scale_out else [1.0] + [0.0] * (len(tgt) - 1)
    held = 1.0
    pnl = 0.0  # sum of size * (exit - fill)
    stop_level = stop
    k = 0  # next target
    first: First | None = None
    adverse = fill - float(l[i_e])
    favourable = 0.0
    exit_reason: ExitReason | None = None
    exit_index = -1

    if l[i_e] <= stop_level:
        # the entry bar itself reached the stop: worst order, out at the stop (or the open, for a gap fill)
        px = min(stop_level, fill)
        pnl += held * (px - fill)
        events.append(("stop", i_e, px, 0, held))
        adverse = fill - px
        held, exit_reason, exit_index, first = 0.0, "stop", i_e, "stop"
    else:
        favourable = max(0.0, float(c[i_e]) - fill)

    j = i_e + 1
    end = max(min(x_end, n), i_e + 1)
    while held > 1e-12 and j < end:
        seg_l = l[j:end]
        seg_h = h[j:end]
        hit = (seg_l <= stop_level) | (seg_h >= tgt[k])
        rel = _first_true(hit)
        if rel < 0:
            # nothing happens until the end of the window: excursions over the rest
            adverse = max(adverse, fill - float(seg_l.min()))
            favourable = max(favourable, float(seg_h.max()) - fill)
            j = end
            break
        b = j + rel
        if rel > 0:
            adverse = max(adverse, fill - float(seg_l[:rel].min()))
            favourable = max(favourable, float(seg_h[:rel].max()) - fill)
        if l[b] <= stop_level:
            px = min(stop_level, float(o[b]))
            kind: Literal["breakeven", "stop"] = "breakeven" if k > 0 and stop_level >= fill else "stop"
            pnl += held * (px - fill)
            events.append((kind, b, px, 0, held))
            adverse = max(adverse, fill - px)
            favourable = max(favourable, float(o[b]) - fill)
            if first is None:
                first = "stop"
            held, exit_reason, exit_index = 0.0, kind, b
            break
        # one or more targets in this bar, the stop untouched
        adverse = max(adverse, fill - float(l[b]))
        while k < len(tgt) and h[b] >= tgt[k]:
            px = max(tgt[k], float(o[b]))
            size = weights[k] if k < len(tgt) - 1 else held
            size = min(size, held)
            if size > 0:
                pnl += size * (px - fill)
                held -= size
                events.append(("target", b, px, k + 1, size))
            favourable = max(favourable, px - fill)
            if k == 0 and first is None:
                first = "t1"
            k += 1
            if held <= 1e-12:
                break
        if held <= 1e-12:
            held, exit_reason, exit_index = 0.0, "target", b
            break
        if k >= len(tgt):  # no target left but still holding (cannot happen with the weights above)
            break
        if management.breakeven_after_t1 and k >= 1:
            stop_level = max(stop_level, fill)
        j = b + 1

    status: Status = "closed"
    if held > 1e-12:
        last = end - 1
        px = float(c[last])
        deadline_reached = exit_deadline_ns is not None and (x_end < n or exit_deadline_ns <= until_ns)
        if deadline_reached:
            pnl += held * (px - fill)
            events.append(("time", last, px, 0, held))
            exit_reason, exit_index = "time", last
        else:
            status = "open"
            pnl += held * (px - fill)  # marked to market
            exit_index = last
    exits = [e for e in events if e[0] != "entry"]
    sized = sum(e[4] for e in exits)
    avg_exit = sum(e[2] * e[4] for e in exits) / sized if sized > 0 else float(c[exit_index])
    return Resolved(
        status=status,
        entry_index=i_e,
        exit_index=exit_index,
        fill=sign * fill,
        exit_price=sign * avg_exit,
        exit_reason=exit_reason,
        first=first,
        targets_hit=k,
        r=pnl / risk,
        mae_r=max(0.0, adverse) / risk,
        mfe_r=max(0.0, favourable) / risk,
        events=[(what, i, sign * px, t, s) for what, i, px, t, s in events],
    )


def _first_true(mask: np.ndarray) -> int:
    """Index of the first True, or -1."""
    if not len(mask):
        return -1
    i = int(mask.argmax())
    return i if mask[i] else -1


def _first_at_or_after(stamps: np.ndarray, ns: int | None, start: int, n: int) -> int:
    if ns is None:
        return n
    return max(start, int(np.searchsorted(stamps, ns, side="left")))


def _bar_ns(stamps: np.ndarray) -> int:
    """The bar length, taken as the smallest gap between stamps (0 for a single bar)."""
    if len(stamps) < 2:
        return 0
    d = np.diff(stamps)
    d = d[d > 0]
    return int(d.min()) if len(d) else 0


def _ns(at: datetime | None) -> int | None:
    return None if at is None else ns_from_utc(at)


class _PlanFields(TypedDict):
    """What every outcome of a plan copies from the plan."""

    plan_id: str
    version: int
    symbol: str
    strategy: str
    style: str
    direction: Direction
    quality: float
    probability: float
    entry: float
    stop: float
    targets: list[float]
    planned_at: datetime


def outcome_from(plan: Plan, res: Resolved, stamps: np.ndarray) -> TradeOutcome:
    """Wrap a `Resolved` for `plan` as a TradeOutcome (times from the bar stamps)."""
    base = _PlanFields(
        plan_id=plan.plan_id,
        version=plan.version,
        symbol=plan.symbol,
        strategy=plan.strategy,
        style=plan.style,
        direction=plan.direction,
        quality=plan.quality,
        probability=plan.probability,
        entry=plan.entry,
        stop=plan.stop,
        targets=[t.price for t in plan.targets],
        planned_at=plan.as_of,
    )
    events = [
        OutcomeEvent(kind=k, at=utc_from_ns(stamps[i]), price=px, target=t or None, size=(s if k != "invalidated" else None))
        for k, i, px, t, s in (res.events or [])
    ]
    if res.status == "no_entry":
        return TradeOutcome(**base, status="no_entry", events=events)
    entered_at = utc_from_ns(stamps[res.entry_index])
    exit_ns = int(stamps[res.exit_index])
    if res.exit_reason == "time" or res.status == "open":
        exit_ns += _bar_ns(stamps)  # held through the whole bar
    exited_at = utc_from_ns(exit_ns)
    return TradeOutcome(
        **base,
        status=res.status,
        exit_reason=res.exit_reason if res.status == "closed" else None,
        first=res.first,
        hit_t1=res.first == "t1",
        targets_hit=res.targets_hit,
        r_multiple=res.r,
        mae_r=res.mae_r,
        mfe_r=res.mfe_r,
        entry_fill=res.fill,
        exit_price=res.exit_price,
        entered_at=entered_at,
        exited_at=exited_at if res.status == "closed" else None,
        time_in_trade_s=(exit_ns - int(stamps[res.entry_index])) / 1e9,
        bars_in_trade=res.exit_index - res.entry_index + 1,
        events=events,
    )


def evaluate_plan(
    plan: Plan,
    bars: pd.DataFrame,
    *,
    ref_price: float | None = None,
    entry_deadline: datetime | None = None,
    exit_deadline: datetime | None = None,
    until: datetime | None = None,
    management: Management = DEFAULT_MANAGEMENT,
    default_deadlines: bool = True,
) -> TradeOutcome:
    """The outcome of `plan` over `bars` (only bars stamped at or after `plan.as_of` are used).

    Deadlines default to the style's horizon (`horizon`); pass `default_deadlines=False`
    to let the trade run to the end of the bars.
    """
    if default_deadlines and entry_deadline is None and exit_deadline is None:
        entry_deadline, exit_deadline = horizon(plan.style, plan.as_of)
    stamps = bars.index.asi8 if len(bars) else np.zeros(0, dtype=np.int64)
    if isinstance(bars.index, pd.DatetimeIndex) and len(bars) and bars.index.unit != "ns":
        stamps = bars.index.as_unit("ns").asi8
    start = int(np.searchsorted(stamps, ns_from_utc(plan.as_of), side="left"))

    def f(col: str) -> np.ndarray:
        values: np.ndarray = bars[col].to_numpy(dtype="float64")
        return values

    res = resolve(
        plan.direction,
        plan.entry,
        plan.stop,
        [t.price for t in plan.targets],
        stamps,
        f("open"),
        f("high"),
        f("low"),
        f("close"),
        start,
        ref_price=ref_price,
        entry_deadline_ns=_ns(entry_deadline),
        exit_deadline_ns=_ns(exit_deadline),
        until_ns=_ns(until),
        management=management,
    )
    return outcome_from(plan, res, stamps)


#: Per style: (sessions the entry may take to fill, sessions the trade may last), counting the plan's own session as 1.
HORIZON_SESSIONS: dict[str, tuple[int, int]] = {
    "scalp": (1, 1),
    "intraday": (1, 1),
    "swing": (2, 10),
    "leaps": (5, 60),
}
#: A scalp must fill within this long and is out within this long (inside the session either way).
SCALP_ENTRY = timedelta(minutes=30)
SCALP_HOLD = timedelta(hours=2)


def horizon(style: str, as_of: datetime) -> tuple[datetime, datetime]:
    """(entry deadline, exit deadline) for a plan of `style` made at `as_of`, from the NYSE sessions.

    Scalps: 30 minutes to fill, out within 2 hours; intraday plans: fill and exit within the
    session; swing: 2 sessions to fill, out after 10; leaps: 5 to fill, out after 60. Every
    deadline is capped at a session close. A plan made outside regular hours counts from the next session.
    """
    from analytics.sessions import schedule

    sch = schedule()
    ns = ns_from_utc(as_of)
    i = int(np.searchsorted(sch.closes, ns, side="right"))  # first session closing after as_of
    i = min(i, len(sch.closes) - 1)
    n_entry, n_exit = HORIZON_SESSIONS.get(style, (1, 1))
    entry_close = utc_from_ns(sch.closes[min(i + n_entry - 1, len(sch.closes) - 1)])
    exit_close = utc_from_ns(sch.closes[min(i + n_exit - 1, len(sch.closes) - 1)])
    if style == "scalp":
        start = max(as_of, utc_from_ns(sch.opens[i]))
        return min(start + SCALP_ENTRY, entry_close), min(start + SCALP_HOLD, exit_close)
    return entry_close, exit_close
