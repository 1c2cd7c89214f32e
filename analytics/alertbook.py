"""The alert book: per-symbol sorted thresholds, so a tick costs O(log n + hits), and bar rules for indicators.

One rule of behaviour covers every condition, price or indicator:

* A threshold at level L on an "up" side fires on the crossing edge: while *armed* it
  fires as soon as the value reaches L (>= L) and then disarms. It re-arms only once the
  value has gone back to L - band (the hysteresis band). A price hovering around L
  therefore fires once, not on every tick. A "down" side mirrors this (fires at <= L,
  re-arms at >= L + band); a "cross" rule has both sides.
* `armed is None` means "state unknown" (the rule was made without a reading): the first
  observation sets it from the value without firing, so an alert never fires for a
  condition that already held when it was set.
* One-shot rules leave the book after their first fire. Repeating rules re-arm; a crossing
  inside their cooldown is consumed silently (the value must cross again afterwards).
* A rule never fires at or after `expires_ns`; the book reports it once as expired.
* Session filter: "regular" fires only while the market is open, "extended" also in pre
  and post-market. A crossing outside the filter waits: the rule stays armed and fires at
  the first observation inside its session where the condition still holds. Observations
  before `active_from_ns` wait the same way.

Price rules (metric "price") live in per-symbol ladders. Each side keeps its armed rules
sorted by level and its disarmed rules sorted by re-arm level, as parallel Python lists
searched with `bisect` (the fastest scalar search in CPython; numpy pays ~1 µs per call).
A tick compares the price with the first armed level and the last re-arm level of each
side: with nothing to do that is four comparisons; otherwise one bisect per side and work
proportional to the rules that fire or re-arm. The down side stores negated coordinates
so both sides share one code path.

Bar rules (RSI, EMA cross, VWAP reclaim/loss, a close beyond a level) are evaluated when a
bar of their interval completes, on metrics computed once per (metric, parameters).

Pure: no I/O, no clock. Time is passed in as integer nanoseconds since the epoch (UTC).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict, Unpack

import numpy as np
import pandas as pd

from analytics.alert_kinds import PLAN_KINDS
from analytics.indicators import ema, rsi, vwap
from core.values import utc_from_ns

Side = Literal["up", "down"]
Status = Literal["open", "pre", "post", "closed"]
SessionFilter = Literal["regular", "extended"]

#: Which ways the price must move through the level for a level kind to fire.
_LEVEL_SIDES: dict[str, tuple[Side, ...]] = {"above": ("up",), "below": ("down",), "cross": ("up", "down")}

#: Hysteresis of price levels: 10 basis points of the level, at least one cent.
PRICE_BAND_FRACTION = 0.001
#: Hysteresis of RSI thresholds, in RSI points.
RSI_BAND = 2.0
#: Hysteresis of EMA and VWAP crosses, in basis points of price.
CROSS_BAND_BPS = 5.0

#: Returned when nothing fires (shared and never mutated, so no allocation on the common path).
_NONE: list[Trigger] = []
_INF = math.inf
_NINF = -math.inf


def price_band(level: float) -> float:
    """The default hysteresis band of a price level."""
    return max(0.01, abs(level) * PRICE_BAND_FRACTION)


def session_allows(session: str, status: str) -> bool:
    """True when a rule with session filter `session` may fire while the market is in `status`."""
    if status == "open":
        return True
    return session == "extended" and status in ("pre", "post")


@dataclass(slots=True)
class Rule:
    """One alert condition and its live state, as the book keeps it."""

    id: int
    symbol: str
    kind: str
    level: float
    sides: tuple[Side, ...]
    band: float
    #: "price" (every tick) or a bar metric: "close", "rsi", "ema_diff_bps", "vwap_diff_bps".
    metric: str = "price"
    interval: str | None = None
    #: Metric parameters: {"period": 14} for RSI, {"fast": 9, "slow": 21} for EMA.
    params: dict[str, Any] = field(default_factory=dict)
    repeat: bool = False
    cooldown_ns: int = 0
    expires_ns: int | None = None
    session: str = "regular"
    active_from_ns: int = 0
    armed_up: bool | None = None
    armed_down: bool | None = None
    last_fired_ns: int | None = None
    fire_count: int = 0

    def armed(self, side: Side) -> bool | None:
        return self.armed_up if side == "up" else self.armed_down

    def set_armed(self, side: Side, value: bool | None) -> None:
        if side == "up":
            self.armed_up = value
        else:
            self.armed_down = value

    def holds(self, side: Side, value: float) -> bool:
        """True when `value` is at or beyond the level on `side`."""
        return value >= self.level if side == "up" else value <= self.level

    def initial_armed(self, value: float) -> None:
        """Set every side's armed flag from a reading, as when the alert is created."""
        for side in self.sides:
            self.set_armed(side, not self.holds(side, value))


@dataclass(frozen=True, slots=True)
class Trigger:
    """A rule that fired: which, on which side, at what value and when."""

    rule_id: int
    symbol: str
    kind: str
    side: Side
    level: float
    value: float
    at_ns: int
    #: The rule's fire count including this one (1 for the first fire): part of the event's identity.
    fire_count: int
    #: True when the rule is done (one-shot) and has left the book.
    final: bool
    #: For bar rules, the close of the bar that fired (value is then the metric: RSI, spread in bps...).
    close: float | None = None

    @property
    def at(self) -> datetime:
        return utc_from_ns(self.at_ns)


def _sign(side: Side) -> float:
    return 1.0 if side == "up" else -1.0


class _Ladder:
    """One side of one symbol: armed rules by level, disarmed rules by re-arm level (signed coordinates)."""

    __slots__ = ("sign", "armed_lv", "armed_id", "dis_lv", "dis_id")

    def __init__(self, sign: float) -> None:
        self.sign = sign
        self.armed_lv: list[float] = []
        self.armed_id: list[int] = []
        self.dis_lv: list[float] = []
        self.dis_id: list[int] = []

    def __len__(self) -> int:
        return len(self.armed_id) + len(self.dis_id)

    def insert_armed(self, level: float, rid: int) -> None:
        x = self.sign * level
        i = bisect_right(self.armed_lv, x)
        self.armed_lv.insert(i, x)
        self.armed_id.insert(i, rid)

    def insert_disarmed(self, level: float, band: float, rid: int) -> None:
        x = self.sign * level - band
        i = bisect_right(self.dis_lv, x)
        self.dis_lv.insert(i, x)
        self.dis_id.insert(i, rid)

    def discard(self, level: float, band: float, rid: int, armed: bool) -> None:
        """Remove rule `rid` from the armed or the disarmed list (keys are recomputed exactly, so a bisect finds them)."""
        if armed:
            lv, ids, x = self.armed_lv, self.armed_id, self.sign * level
        else:
            lv, ids, x = self.dis_lv, self.dis_id, self.sign * level - band
        i = bisect_left(lv, x)
        while i < len(lv) and lv[i] == x:
            if ids[i] == rid:
                del lv[i]
                del ids[i]
                return
            i += 1


class _SymbolBook:
    __slots__ = ("up", "down", "unknown")

    def __init__(self) -> None:
        self.up = _Ladder(1.0)
        self.down = _Ladder(-1.0)
        #: Rules whose armed state is not known yet; the next tick sets it.
        self.unknown: list[int] = []

    def __len__(self) -> int:
        return len(self.up) + len(self.down) + len(self.unknown)


class AlertBook:
    """Every live rule, indexed for evaluation. Not thread-safe: one evaluator owns it."""

    def __init__(self) -> None:
        self._rules: dict[int, Rule] = {}
        self._symbols: dict[str, _SymbolBook] = {}
        #: Per symbol (lowest armed up-level, highest up re-arm level, same for the down side in negated prices).
        self._bounds: dict[str, tuple[float, float, float, float]] = {}
        self._bar_rules: dict[tuple[str, str], dict[int, Rule]] = {}
        self._expiry: list[tuple[int, int]] = []
        self._dirty: set[int] = set()
        self._expired: list[int] = []

    # ------------------------------------------------------------------ membership

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def get(self, rule_id: int) -> Rule | None:
        return self._rules.get(rule_id)

    def rules(self) -> list[Rule]:
        return list(self._rules.values())

    def symbols(self) -> set[str]:
        """Symbols with at least one live rule (price or bar)."""
        out = {s for s, b in self._symbols.items() if len(b)}
        out.update(s for (s, _), rules in self._bar_rules.items() if rules)
        return out

    def bar_keys(self) -> set[tuple[str, str]]:
        """(symbol, interval) pairs that need bars."""
        return {k for k, rules in self._bar_rules.items() if rules}

    def add(self, rule: Rule) -> None:
        """Add a rule (replacing one with the same id)."""
        if rule.id in self._rules:
            self.remove(rule.id)
        if not rule.sides or any(s not in ("up", "down") for s in rule.sides):
            raise ValueError(f"rule {rule.id}: sides must be 'up' and/or 'down'")
        if not math.isfinite(rule.level) or rule.band < 0 or not math.isfinite(rule.band):
            raise ValueError(f"rule {rule.id}: level and band must be finite, band >= 0")
        self._rules[rule.id] = rule
        if rule.expires_ns is not None:
            heapq.heappush(self._expiry, (rule.expires_ns, rule.id))
        if rule.metric != "price":
            if not rule.interval:
                raise ValueError(f"rule {rule.id}: a bar rule needs an interval")
            self._bar_rules.setdefault((rule.symbol, rule.interval), {})[rule.id] = rule
            return
        book = self._symbols.get(rule.symbol)
        if book is None:
            book = self._symbols[rule.symbol] = _SymbolBook()
        if any(rule.armed(s) is None for s in rule.sides):
            book.unknown.append(rule.id)
        else:
            for side in rule.sides:
                self._place(book, rule, side)
        self._refresh(rule.symbol)

    def remove(self, rule_id: int) -> Rule | None:
        """Take a rule out of the book; returns it, or None when it was not there."""
        rule = self._rules.pop(rule_id, None)
        if rule is None:
            return None
        self._dirty.discard(rule_id)
        if rule.metric != "price":
            self._bar_rules.get((rule.symbol, rule.interval or ""), {}).pop(rule_id, None)
            return rule
        book = self._symbols.get(rule.symbol)
        if book is not None:
            if rule_id in book.unknown:
                book.unknown.remove(rule_id)
            for side in rule.sides:
                armed = rule.armed(side)
                if armed is not None:
                    (book.up if side == "up" else book.down).discard(rule.level, rule.band, rule_id, armed)
            self._refresh(rule.symbol)
        return rule

    def take_dirty(self) -> list[Rule]:
        """Rules whose state changed without a trigger (re-armed, initialised, consumed in cooldown) since the last call."""
        out = [self._rules[i] for i in self._dirty if i in self._rules]
        self._dirty.clear()
        return out

    def expire(self, at_ns: int) -> list[int]:
        """Remove every rule whose expiry has passed at `at_ns`; returns their ids (including ones met while evaluating)."""
        while self._expiry and self._expiry[0][0] <= at_ns:
            exp, rid = heapq.heappop(self._expiry)
            rule = self._rules.get(rid)
            if rule is not None and rule.expires_ns == exp:
                self.remove(rid)
                self._expired.append(rid)
        out, self._expired = self._expired, []
        return out

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, symbol: str, price: float, at_ns: int, status: str = "open") -> list[Trigger]:
        """Rules on `symbol` that fire at `price` (a tick at `at_ns`, market `status`), in the order the price met them.

        The list returned when nothing fires is shared: read it, do not modify it.
        """
        # the common case: the price is strictly inside the symbol's quiet band (below the lowest armed
        # up-level, above the highest up re-arm level, and the same for the down side): two chained comparisons
        b = self._bounds.get(symbol)
        if b is None:
            return _NONE
        neg = -price
        if b[1] < price < b[0] and b[3] < neg < b[2]:
            return _NONE
        if price != price:  # a NaN print
            return _NONE
        book = self._symbols[symbol]
        if book.unknown:
            self._initialise(book, price)
        up, down = book.up, book.down
        out: list[Trigger] = []
        if up.armed_lv and up.armed_lv[0] <= price:
            self._fire(book, up, "up", price, price, at_ns, status, out)
        if up.dis_lv and up.dis_lv[-1] >= price:
            self._rearm(book, up, "up", price)
        if down.armed_lv and down.armed_lv[0] <= neg:
            self._fire(book, down, "down", neg, price, at_ns, status, out)
        if down.dis_lv and down.dis_lv[-1] >= neg:
            self._rearm(book, down, "down", neg)
        self._refresh(symbol)
        return out or _NONE

    def _refresh(self, symbol: str) -> None:
        """Recompute the symbol's quiet band after its ladders changed."""
        book = self._symbols.get(symbol)
        if book is None or not len(book):
            self._bounds.pop(symbol, None)
            return
        if book.unknown:
            self._bounds[symbol] = (_NINF, _INF, _NINF, _INF)  # never quiet: the next tick must set their state
            return
        up, down = book.up, book.down
        self._bounds[symbol] = (
            up.armed_lv[0] if up.armed_lv else _INF,
            up.dis_lv[-1] if up.dis_lv else _NINF,
            down.armed_lv[0] if down.armed_lv else _INF,
            down.dis_lv[-1] if down.dis_lv else _NINF,
        )

    def _fire(
        self, book: _SymbolBook, ladder: _Ladder, side: Side, x: float, price: float, at_ns: int, status: str, out: list[Trigger]
    ) -> None:
        """Pop the armed rules whose level `x` has reached (a prefix) and decide each."""
        lv = ladder.armed_lv
        k = bisect_right(lv, x)
        ids = ladder.armed_id[:k]
        del lv[:k]
        del ladder.armed_id[:k]
        for rid in ids:
            self._hit(book, rid, side, price, at_ns, status, out)

    def _rearm(self, book: _SymbolBook, ladder: _Ladder, side: Side, x: float) -> None:
        """Re-arm the disarmed rules whose re-arm level `x` has gone back to (a suffix)."""
        dv = ladder.dis_lv
        j = bisect_left(dv, x)
        ids = ladder.dis_id[j:]
        del dv[j:]
        del ladder.dis_id[j:]
        for rid in ids:
            rule = self._rules[rid]
            rule.set_armed(side, True)
            self._place(book, rule, side)
            self._dirty.add(rid)

    def evaluate_bars(self, symbol: str, interval: str, bars: pd.DataFrame, at_ns: int, status: str = "open") -> list[Trigger]:
        """Bar rules on (symbol, interval) that fire on the last bar of `bars` (completed bars only)."""
        rules = self._bar_rules.get((symbol, interval))
        if not rules or bars is None or len(bars) == 0:
            return []
        cache: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
        out: list[Trigger] = []
        close = float(bars["close"].iloc[-1])
        for rule in list(rules.values()):
            key = (rule.metric, tuple(sorted(rule.params.items())))
            if key not in cache:
                cache[key] = bar_metric(rule.metric, rule.params, bars)
            value = cache[key]
            if not math.isfinite(value):
                continue  # indicator still warming up
            for side in rule.sides:
                armed = rule.armed(side)
                if armed is None:
                    rule.set_armed(side, not rule.holds(side, value))
                    self._dirty.add(rule.id)
                elif armed and rule.holds(side, value):
                    self._decide(rule, side, value, at_ns, status, out, close)
                    if rule.id not in self._rules:
                        break
                elif not armed and _sign(side) * value <= _sign(side) * rule.level - rule.band:
                    rule.set_armed(side, True)
                    self._dirty.add(rule.id)
        return out

    # ------------------------------------------------------------------ internals

    def _place(self, book: _SymbolBook, rule: Rule, side: Side) -> None:
        ladder = book.up if side == "up" else book.down
        if rule.armed(side):
            ladder.insert_armed(rule.level, rule.id)
        else:
            ladder.insert_disarmed(rule.level, rule.band, rule.id)

    def _initialise(self, book: _SymbolBook, price: float) -> None:
        for rid in book.unknown:
            rule = self._rules.get(rid)
            if rule is None:
                continue
            for side in rule.sides:
                if rule.armed(side) is None:
                    rule.set_armed(side, not rule.holds(side, price))
                self._place(book, rule, side)
            self._dirty.add(rid)
        book.unknown.clear()

    def _hit(self, book: _SymbolBook, rid: int, side: Side, price: float, at_ns: int, status: str, out: list[Trigger]) -> None:
        """An armed rule whose level the price reached: fire, wait, consume or expire it."""
        rule = self._rules.get(rid)
        if rule is None:
            return
        outcome = self._decide(rule, side, price, at_ns, status, out)
        if outcome == "wait":
            book_ladder = book.up if side == "up" else book.down
            book_ladder.insert_armed(rule.level, rid)
        elif outcome in ("fired", "consumed") and rid in self._rules:
            (book.up if side == "up" else book.down).insert_disarmed(rule.level, rule.band, rid)

    def _decide(
        self, rule: Rule, side: Side, value: float, at_ns: int, status: str, out: list[Trigger], close: float | None = None
    ) -> str:
        """Apply expiry, activation, session filter and cooldown to an armed rule whose condition holds."""
        if rule.expires_ns is not None and at_ns >= rule.expires_ns:
            self.remove(rule.id)
            self._expired.append(rule.id)
            return "expired"
        if at_ns < rule.active_from_ns or not session_allows(rule.session, status):
            return "wait"
        if rule.repeat and rule.last_fired_ns is not None and at_ns - rule.last_fired_ns < rule.cooldown_ns:
            rule.set_armed(side, False)
            self._dirty.add(rule.id)
            return "consumed"
        rule.fire_count += 1
        rule.last_fired_ns = at_ns
        rule.set_armed(side, False)
        final = not rule.repeat
        out.append(Trigger(rule.id, rule.symbol, rule.kind, side, rule.level, float(value), at_ns, rule.fire_count, final, close))
        self._dirty.discard(rule.id)
        if final:
            self.remove(rule.id)
        return "fired"


# ---------------------------------------------------------------------- bar metrics


def bar_metric(metric: str, params: dict[str, Any], bars: pd.DataFrame) -> float:
    """The value of `metric` on the last bar of `bars`: close, RSI, EMA fast-slow or close-VWAP (in bps of price)."""
    close = bars["close"].to_numpy(dtype=np.float64)
    last = float(close[-1])
    if metric == "close":
        return last
    if metric == "rsi":
        return float(rsi(close, int(params.get("period", 14)))[-1])
    if metric == "ema_diff_bps":
        fast = ema(close, int(params.get("fast", 9)))[-1]
        slow = ema(close, int(params.get("slow", 21)))[-1]
        return float((fast - slow) / last * 1e4) if last else math.nan
    if metric == "vwap_diff_bps":
        v = vwap(bars)[-1]
        return float((last - v) / last * 1e4) if last else math.nan
    raise ValueError(f"unknown bar metric {metric!r}")


# ---------------------------------------------------------------------- building rules


class RuleState(TypedDict, total=False):
    """A rule's live state, as `build_rule` takes it back from storage (each key a field of Rule)."""

    repeat: bool
    cooldown_ns: int
    expires_ns: int | None
    session: str
    active_from_ns: int
    armed_up: bool | None
    armed_down: bool | None
    last_fired_ns: int | None
    fire_count: int


def build_rule(
    kind: str,
    *,
    id: int,
    symbol: str,
    value: float | None = None,
    reference: float | None = None,
    direction: str | None = None,
    interval: str | None = None,
    params: dict[str, Any] | None = None,
    band: float | None = None,
    **state: Unpack[RuleState],
) -> Rule:
    """A Rule for an alert kind.

    `value` is the level for above/below/cross and plan events, the signed percent for
    pct (with `reference` the price it is measured from), the RSI threshold for rsi_*.
    Plan events need the plan's `direction` ("long" or "short"). Extra keyword arguments
    set state fields (repeat, cooldown_ns, expires_ns, session, armed_up, ...).
    """
    params = dict(params or {})
    metric = "price"
    if kind in ("above", "below", "cross"):
        level = _need(value, kind)
        sides: tuple[Side, ...] = _LEVEL_SIDES[kind]
    elif kind == "pct":
        pct = _need(value, kind)
        if reference is None or not reference > 0:
            raise ValueError("pct needs a positive reference price")
        level = reference * (1.0 + pct / 100.0)
        sides = ("up",) if pct > 0 else ("down",)
    elif kind in ("rsi_above", "rsi_below"):
        level = _need(value, kind)
        metric = "rsi"
        params.setdefault("period", 14)
        sides = ("up",) if kind == "rsi_above" else ("down",)
        band = RSI_BAND if band is None else band
    elif kind in ("ema_cross_up", "ema_cross_down"):
        level, metric = 0.0, "ema_diff_bps"
        params.setdefault("fast", 9)
        params.setdefault("slow", 21)
        sides = ("up",) if kind == "ema_cross_up" else ("down",)
        band = CROSS_BAND_BPS if band is None else band
    elif kind in ("vwap_reclaim", "vwap_loss"):
        level, metric = 0.0, "vwap_diff_bps"
        sides = ("up",) if kind == "vwap_reclaim" else ("down",)
        band = CROSS_BAND_BPS if band is None else band
    elif kind in PLAN_KINDS:
        level = _need(value, kind)
        if direction not in ("long", "short"):
            raise ValueError("plan events need the plan's direction")
        long = direction == "long"
        if kind == "entry":
            sides = ("up", "down")
        elif kind == "target":
            sides = ("up",) if long else ("down",)
        else:  # stop (a touch) and invalidation (a close beyond the stop)
            sides = ("down",) if long else ("up",)
        if kind == "invalidation":
            metric = "close"
    else:
        raise ValueError(f"unknown alert kind {kind!r}")
    if metric != "price" and not interval:
        raise ValueError(f"{kind} needs a bar interval")
    if band is None:
        band = price_band(level)
    return Rule(
        id=id,
        symbol=symbol,
        kind=kind,
        level=float(level),
        sides=sides,
        band=float(band),
        metric=metric,
        interval=interval if metric != "price" else None,
        params=params,
        **state,
    )


def _need(value: float | None, kind: str) -> float:
    if value is None or not math.isfinite(float(value)):
        raise ValueError(f"{kind} needs a value")
    return float(value)
