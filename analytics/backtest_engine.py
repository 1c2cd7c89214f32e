"""Backtests: replay the planner bar by bar over history, then play every plan forward to its outcome.

How a run goes:

1. `history_span` says which bars a run needs: the execution-interval bars of every symbol over
   the whole range (with warm-up before it and the longest plan horizon after it) and daily bars
   for the higher-timeframe levels. The caller fetches them, from any source, and `arrange_history`
   lays them out for replay.
2. At every decision time t (every `every` execution bars inside the session) the planner sees
   only what it would have seen live at t: execution bars that completed by t and, for each higher
   interval, its completed bars plus the still-forming bar built from the completed execution
   bars, exactly as the market serves a partial bar. `History.panels_at` is that view; it never
   reads a column at or after t, which `tests/analytics/test_backtest_engine.py` checks by
   poisoning the future with NaN.
3. The planner (`analytics.planner.evaluate` over all symbols at once) proposes setups. A
   (symbol, strategy) slot takes a new plan only when its previous plan has been resolved by t:
   one trade at a time per slot, as a trader would.
4. Each plan is played forward on the execution bars after t by `analytics.outcomes.resolve`
   (entry, stop or targets first, R, MAE/MFE); its probability is then the walk-forward odds of
   analytics.calibration, and the statistics come from analytics.backtest_stats.

With `strategy="all"` every strategy serving the style is its own slot; `"best"` takes only the
planner's pick per symbol (what `/plan` would answer); a strategy id takes only that strategy.

How many sessions of each interval the planner sees (the lookback) is the caller's: a replay
shows the planner the windows the live service fetches, so it is passed in with the bars.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from analytics import planner
from analytics.backtest_stats import Report, report
from analytics.calibration import with_walk_forward
from analytics.intervals import STYLE_INTERVALS, interval_minutes, is_intraday
from analytics.models import Plan
from analytics.outcomes import DEFAULT_MANAGEMENT, HORIZON_SESSIONS, Management, TradeOutcome, horizon, outcome_from, resolve
from analytics.panel import Panel
from analytics.sessions import EXCHANGE_TZ, Schedule, schedule, session_info
from analytics.strategies import for_style
from analytics.strategies.base import Strategy
from analytics.strategies.features import MIN_BARS
from core.errors import UserError
from core.values import ns_from_utc

#: Default decision cadence in execution bars: scalp every 5 minutes, intraday every 15, swing every hour, leaps daily.
DEFAULT_EVERY: dict[str, int] = {"scalp": 5, "intraday": 3, "swing": 1, "leaps": 1}
#: Limits that keep one run bounded (the CLI allows more than chat).
MAX_SYMBOLS = 50
MAX_DECISIONS = 60_000
#: Sessions shown for an interval the lookback table does not name (the live fetch's own default).
DEFAULT_LOOKBACK = 20
#: Styles whose trades end by the session's close: their sessions replay independently.
DAY_STYLES = frozenset({"scalp", "intraday"})
#: Days of a day-style run evaluated together in one planner call (rows = days x symbols).
BATCH_DAYS = 32
_NS_MIN = 60 * 10**9


@dataclass(frozen=True)
class BacktestSpec:
    """What to replay."""

    symbols: tuple[str, ...]
    style: str
    start: datetime
    end: datetime
    strategy: str = "all"  # "all", "best", or a strategy id serving the style
    every: int | None = None
    management: Management = DEFAULT_MANAGEMENT

    @property
    def exec_interval(self) -> str:
        return STYLE_INTERVALS[self.style][0]

    @property
    def cadence(self) -> int:
        return int(self.every or DEFAULT_EVERY[self.style])

    @property
    def day_style(self) -> bool:
        return self.style in DAY_STYLES


def check_spec(spec: BacktestSpec, *, max_symbols: int = MAX_SYMBOLS) -> BacktestSpec:
    """The spec with its style and strategy validated; UserError naming what is accepted."""
    style = planner.validate_style(spec.style)
    if not spec.symbols:
        raise UserError("give at least one symbol to backtest, e.g. --symbols SPY,QQQ")
    if len(spec.symbols) > max_symbols:
        raise UserError(f"at most {max_symbols} symbols per backtest (got {len(spec.symbols)})")
    if spec.start.tzinfo is None or spec.end.tzinfo is None:
        raise UserError("start and end need a date or a time with a UTC offset")
    if spec.end <= spec.start:
        raise UserError("the backtest end must be after its start")
    if spec.every is not None and not 1 <= spec.every <= 1000:
        raise UserError("--every must be between 1 and 1000 execution bars")
    served = [s.id for s in for_style(style)]
    strat = spec.strategy.strip().lower() if isinstance(spec.strategy, str) else ""
    if strat not in ("all", "best") and strat not in served:
        raise UserError(
            f"strategy {spec.strategy[:32]!r} does not serve the {style} style; accepted: all, best, {', '.join(served)}"
        )
    return BacktestSpec(tuple(dict.fromkeys(spec.symbols)), style, spec.start, spec.end, strat, spec.every, spec.management)


# ---------------------------------------------------------------------------- which bars a run needs


def warmup_sessions(style: str, lookback: Mapping[str, int]) -> tuple[int, int]:
    """Sessions of history needed before the first decision: (execution bars, daily bars).

    The execution bars also feed the style's other intraday intervals (an hour bar window is 60
    sessions), so they reach back as far as the longest of those windows.
    """
    ivs = STYLE_INTERVALS[style]
    exec_iv = ivs[0]
    from_exec = [iv for iv in ivs if is_intraday(iv) or not is_intraday(exec_iv)]
    warm = max(lookback.get(iv, DEFAULT_LOOKBACK) for iv in from_exec) + 1
    daily = max((lookback.get(iv, DEFAULT_LOOKBACK) for iv in ivs if iv not in from_exec), default=0)
    if daily and "1W" in ivs and "1D" in ivs:
        daily = max(daily, lookback.get("1W", DEFAULT_LOOKBACK))
    return warm, daily + 1 if daily else 0


@dataclass(frozen=True)
class HistorySpan:
    """The bars a run needs: execution bars from `start`, daily bars from `daily_start` when any, both until `end`."""

    start: datetime
    end_ns: int  # kept in ns: replays resolve trades up to this exact stamp
    daily_start: datetime | None

    @property
    def end(self) -> datetime:
        return _utc(self.end_ns)


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def history_span(spec: BacktestSpec, lookback: Mapping[str, int], now: datetime | None = None) -> HistorySpan:
    """Where a run's bars start and end: warm-up before the range, the longest plan horizon after it, nothing past `now`."""
    sch = schedule()
    a = int(np.searchsorted(sch.opens, ns_from_utc(spec.start)))
    b = int(np.searchsorted(sch.opens, ns_from_utc(spec.end)))
    if b <= a:
        if b == 0 or a >= len(sch.opens):
            first, last = (pd.Timestamp(int(x), tz="UTC").tz_convert(EXCHANGE_TZ).date() for x in (sch.opens[0], sch.opens[-1]))
            raise UserError(f"backtests run on NYSE sessions from {first} to {last}; move the start and end inside them")
        raise UserError("no NYSE session between the backtest start and end")
    warm, d_warm = warmup_sessions(spec.style, lookback)
    after = HORIZON_SESSIONS[spec.style][1] + 1
    hi_ns = int(sch.closes[min(len(sch.closes) - 1, b - 1 + after)])
    if now is not None:
        hi_ns = min(hi_ns, ns_from_utc(now))
    d_lo = _utc(int(sch.opens[max(0, a - d_warm)])) if d_warm else None
    return HistorySpan(_utc(int(sch.opens[max(0, a - warm)])), hi_ns, d_lo)


# ---------------------------------------------------------------------------- history and the view at t


@dataclass
class _Derived:
    """A higher interval: its complete bars, and how the bars of its source interval fall into them."""

    interval: str
    full: Panel
    source: str  # interval this one is built from ("exec" for the execution interval)
    bucket_of_src: np.ndarray  # per source column: the bucket (column of `full`) it belongs to, -1 if none
    first_src: np.ndarray  # per bucket: first source column in it (-1 if none)


@dataclass
class History:
    """Every bar a run needs, loaded once; `panels_at(i)` is what the planner may see at execution column i."""

    style: str
    exec: Panel
    derived: dict[str, _Derived]
    order: list[str]  # derived intervals, sources before the ones built from them
    sources: list[str]
    data_end_ns: int
    lookback: dict[str, int]  # sessions of each interval the planner sees, today included

    @property
    def stamps(self) -> np.ndarray:
        stamps: np.ndarray = self.exec.index.asi8
        return stamps

    def sessions_of(self, interval: str) -> int:
        return self.lookback.get(interval, DEFAULT_LOOKBACK)

    def panels_at(self, i: int) -> dict[str, Panel]:
        """The style's panels as `/plan` would fetch them at the start of execution column i: nothing at or after it.

        Each interval covers the last `lookback` sessions (today included), ending with the
        still-forming bar where there is one; the planner derives its higher-timeframe intervals
        from these, as it does live.
        """
        t = int(self.exec.index.asi8[i])
        sch = schedule()
        k = int(np.searchsorted(sch.opens, t, side="right")) - 1
        views: dict[str, tuple[int, np.ndarray | None]] = {"exec": (i, None)}
        exec_iv = self.exec.interval
        panels = {exec_iv: _window(self.exec, _start_col(self.exec, sch, k, self.sessions_of(exec_iv)), i, None)}
        for iv in self.order:
            d = self.derived[iv]
            e, part = self._visible(d, views)
            views[iv] = (e, part)
            panels[iv] = _window(d.full, _start_col(d.full, sch, k, self.sessions_of(iv)), e, part)
        return panels

    def _source(self, name: str) -> Panel:
        return self.exec if name == "exec" else self.derived[name].full

    def _visible(self, d: _Derived, views: dict[str, tuple[int, np.ndarray | None]]) -> tuple[int, np.ndarray | None]:
        """(full columns [0, e) of d, the forming bucket's bar or None) given the source's view."""
        e_s, part_s = views[d.source]
        src = self._source(d.source)
        last = e_s if part_s is not None else e_s - 1  # the source column of the newest visible bar
        if last < 0:
            return 0, None
        b = int(d.bucket_of_src[min(last, len(d.bucket_of_src) - 1)])
        if b < 0:
            return 0, None
        if part_s is None:
            nxt = d.bucket_of_src[e_s] if e_s < len(d.bucket_of_src) else -2
            if nxt != b:  # the next source bar starts another bucket: this one is complete
                return b + 1, None
        lo = int(d.first_src[b])
        hi = e_s  # full source columns of the bucket are [lo, e_s)
        cols = [_agg(src, lo, hi)] if hi > lo else []
        if part_s is not None:
            cols.append(part_s)
        part = cols[0] if len(cols) == 1 else _merge(cols[0], cols[1])
        return b, part


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence NumPy's all-NaN warnings (symbols without data yet)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _agg(p: Panel, lo: int, hi: int) -> np.ndarray:
    """(5, S) open/high/low/close/volume of columns [lo, hi) of every row."""
    with np.errstate(invalid="ignore"), _quiet():
        bar: np.ndarray = np.stack(
            (
                p.open[:, lo],
                np.nanmax(p.high[:, lo:hi], axis=1),
                np.nanmin(p.low[:, lo:hi], axis=1),
                p.close[:, hi - 1],
                np.nansum(p.volume[:, lo:hi], axis=1),
            )
        )
        return bar


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with _quiet():
        return np.stack((a[0], np.fmax(a[1], b[1]), np.fmin(a[2], b[2]), b[3], a[4] + b[4]))


def _start_col(p: Panel, sch: Schedule, k: int, sessions: int) -> int:
    """First column of `p` inside the last `sessions` sessions up to session k."""
    start_ns = int(sch.opens[max(0, k - sessions + 1)])
    return int(np.searchsorted(p.index.asi8, start_ns, side="left"))


def _window(p: Panel, a: int, e: int, part: np.ndarray | None) -> Panel:
    """Full columns [a, e) of `p` plus the forming bar `part` (stamped at column e)."""
    a = min(a, e)
    if part is None:
        return Panel(
            p.symbols, p.interval, p.index[a:e], p.open[:, a:e], p.high[:, a:e], p.low[:, a:e], p.close[:, a:e], p.volume[:, a:e]
        )

    def cat(arr: np.ndarray, k: int) -> np.ndarray:
        return np.concatenate((arr[:, a:e], part[k][:, None]), axis=1)

    return Panel(
        p.symbols,
        p.interval,
        p.index[a : e + 1],
        cat(p.open, 0),
        cat(p.high, 1),
        cat(p.low, 2),
        cat(p.close, 3),
        cat(p.volume, 4),
    )


def _buckets_by_resample(src: Panel, interval: str) -> tuple[Panel, np.ndarray, np.ndarray]:
    """`src` resampled to `interval` and, per source column, its bucket; per bucket, its first column."""
    full = src.resample(interval)
    pos = np.arange(src.n_bars, dtype=np.float64)
    probe = Panel(("probe",), src.interval, src.index, pos[None], pos[None], pos[None], pos[None], np.zeros((1, src.n_bars)))
    first = probe.resample(interval).open[0].astype(np.int64)
    bucket = np.searchsorted(first, np.arange(src.n_bars), side="right") - 1
    return full, bucket.astype(np.int64), first


def _exchange_days(index: pd.DatetimeIndex) -> np.ndarray:
    days: np.ndarray = index.tz_convert(EXCHANGE_TZ).tz_localize(None).normalize().as_unit("ns").asi8
    return days


def _buckets_by_day(src: Panel, daily: Panel) -> tuple[np.ndarray, np.ndarray]:
    """Per source column, the daily column of the same exchange date (-1 if none); per day, its first source column."""
    sd = _exchange_days(src.index)
    dd = _exchange_days(daily.index)
    pos = np.clip(np.searchsorted(dd, sd), 0, max(len(dd) - 1, 0))
    bucket = np.where((len(dd) > 0) & (dd[pos] == sd), pos, -1) if len(dd) else np.full(len(sd), -1)
    first = np.full(len(dd), -1, dtype=np.int64)
    valid = np.flatnonzero(bucket >= 0)
    if len(valid):
        b = bucket[valid]
        starts = np.concatenate(([True], b[1:] != b[:-1]))
        first[b[starts]] = valid[starts]
    return bucket.astype(np.int64), first


def build_history(
    style: str,
    exec_panel: Panel,
    daily: Panel | None,
    sources: Sequence[str],
    data_end_ns: int | None = None,
    *,
    lookback: Mapping[str, int],
) -> History:
    """Arrange loaded bars for replay: the execution panel and the style's other intervals.

    Intraday intervals are built from the execution bars (exactly as the market aggregates them);
    daily bars come from `daily` (today's forming bar from the execution bars); weekly bars from
    the daily ones. The planner derives its higher-timeframe levels from these, as it does live.
    """
    exec_iv = exec_panel.interval
    derived: dict[str, _Derived] = {}
    order: list[str] = []
    for iv in STYLE_INTERVALS[style][1:]:
        if is_intraday(iv) or exec_iv in ("1D", "1W"):
            full, bucket, first = _buckets_by_resample(exec_panel, iv)
            derived[iv] = _Derived(iv, full, "exec", bucket, first)
        elif iv == "1D":
            if daily is None or not daily.n_bars:
                full, bucket, first = _buckets_by_resample(exec_panel, "1D")
            else:
                full = _complete_daily(daily, exec_panel)
                bucket, first = _buckets_by_day(exec_panel, full)
            derived[iv] = _Derived(iv, full, "exec", bucket, first)
        else:  # 1W over an intraday execution interval: weeks of the daily series
            src_name = "1D" if "1D" in derived else "exec"
            src = derived["1D"].full if src_name == "1D" else exec_panel
            full, bucket, first = _buckets_by_resample(src, iv)
            derived[iv] = _Derived(iv, full, src_name, bucket, first)
        order.append(iv)
    end = (
        data_end_ns
        if data_end_ns is not None
        else (int(exec_panel.index.asi8[-1]) + interval_minutes(exec_iv) * _NS_MIN if exec_panel.n_bars else 0)
    )
    return History(style, exec_panel, derived, order, list(sources), end, dict(lookback))


def _complete_daily(daily: Panel, exec_panel: Panel) -> Panel:
    """Daily bars with any session the execution bars have but the daily series lacks filled in from them."""
    have = set(_exchange_days(daily.index).tolist())
    agg = exec_panel.resample("1D")
    missing = np.array([d not in have for d in _exchange_days(agg.index)], dtype=bool)
    if not missing.any():
        return daily
    idx = daily.index.append(agg.index[missing])
    order = np.argsort(idx.asi8, kind="stable")

    def cat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate((a, b[:, missing]), axis=1)[:, order]

    return Panel(
        daily.symbols,
        "1D",
        idx[order],
        cat(daily.open, agg.open),
        cat(daily.high, agg.high),
        cat(daily.low, agg.low),
        cat(daily.close, agg.close),
        cat(daily.volume, agg.volume),
    )


def arrange_history(
    spec: BacktestSpec,
    span: HistorySpan,
    frames: Mapping[str, pd.DataFrame],
    daily_frames: Mapping[str, pd.DataFrame],
    served_by: Sequence[str],
    lookback: Mapping[str, int],
) -> History:
    """The history of a run from the bars fetched over `span`, per symbol; `served_by` names the sources that served them."""
    exec_panel = Panel.from_frames({s: frames[s] for s in spec.symbols}, spec.exec_interval)
    daily = Panel.from_frames({s: daily_frames[s] for s in spec.symbols}, "1D") if daily_frames else None
    ivs = "/".join(STYLE_INTERVALS[spec.style])
    return build_history(
        spec.style, exec_panel, daily, [f"bars {ivs}: {n}" for n in sorted(served_by)], data_end_ns=span.end_ns, lookback=lookback
    )


# ---------------------------------------------------------------------------- decisions and the run


def decision_columns(history: History, spec: BacktestSpec) -> np.ndarray:
    """Execution columns where the planner is asked: inside the range, in the regular session, every `cadence` bars."""
    p = history.exec
    st = p.index.asi8
    cols = np.arange(p.n_bars)
    inside = (st >= ns_from_utc(spec.start)) & (st < ns_from_utc(spec.end)) & (cols >= 1)
    if p.intraday:
        m = p.minute
        # every `cadence`-th bar slot counted from the 09:30 open; bars stamped off that grid (a
        # 24-hour market's hourly bars on the hour) take the slot they start in
        slot = (m - 570) // interval_minutes(p.interval)
        inside &= (m >= 570) & (m < 960) & (slot % spec.cadence == 0)
        # the first bar of a session is only yesterday's data: the open itself is not a decision
        inside &= m > 570
    else:
        inside &= (np.cumsum(inside) - 1) % spec.cadence == 0
    return np.flatnonzero(inside)


def bounded_decision_columns(history: History, spec: BacktestSpec) -> np.ndarray:
    """`decision_columns`, refused with a UserError when there are more than one run may take."""
    columns = decision_columns(history, spec)
    if len(columns) > MAX_DECISIONS:
        raise UserError(
            f"this backtest needs {len(columns):,} planner calls over {history.exec.n_symbols} symbols; "
            "narrow the dates or the symbols, or decide less often with --every"
        )
    return columns


def _day(ns: int) -> str:
    day: str = pd.Timestamp(ns, tz="UTC").tz_convert(EXCHANGE_TZ).strftime("%Y-%m-%d")
    return day


def empty_run_reason(history: History, spec: BacktestSpec, columns: Sequence[int] | np.ndarray, decisions: int) -> str:
    """Why a run made no plan, in one line a trader can act on (where its bars, sessions or setups fell short)."""
    p = history.exec
    iv = p.interval
    st = p.index.asi8
    if not p.n_bars:
        return f"no {iv} bars to replay"
    a_ns, b_ns = ns_from_utc(spec.start), ns_from_utc(spec.end)
    covers = f"the bars loaded run {_day(int(st[0]))} → {_day(int(st[-1]))}"
    in_range = (st >= a_ns) & (st < b_ns)
    n = int(in_range.sum())
    if not n:
        return f"no {iv} bars between {_day(a_ns)} and {_day(b_ns - 1)}: {covers}"
    if not len(columns):
        if p.intraday:
            m = p.minute[in_range]
            inside = int(((m > 570) & (m < 960)).sum())
            if not inside:
                return (
                    f"none of the {n:,} {iv} bars in the range falls inside the NYSE session (09:30-16:00 New York time), "
                    "where the planner is asked: check the file's time zone (naive times are read as New York time) "
                    "or use data of US-listed hours"
                )
            return f"the {inside:,} {iv} bars inside the session fall on no decision slot; try --every 1"
        return f"the range starts at the first {iv} bar of the data ({covers}): there is no earlier bar to plan from"
    if decisions == 0:
        return "every slot was busy with an earlier trade"
    last = int(columns[-1])
    panels = history.panels_at(last)
    seen = panels[iv].n_bars
    if seen < MIN_BARS:
        return (
            f"too little history: the {spec.style} style needs {MIN_BARS} {iv} bars before a decision and the last of "
            f"{decisions:,} decisions saw {seen} ({covers}); start later or load more history"
        )
    with _quiet():
        ev = planner.evaluate(panels, spec.style)
    why = planner.no_plan_reason(ev, 0).split(". ")[0]
    return f"the planner found no setup in {decisions:,} decisions (at the last one: {why[:1].lower()}{why[1:]})"


@dataclass
class BacktestResult:
    """The outcomes of a run and how it went."""

    spec: BacktestSpec
    outcomes: list[TradeOutcome]
    decisions: int
    plans: int
    elapsed_s: float
    sources: list[str]
    bars: int = 0
    report: Report | None = None
    #: Why the run made no plan (None when it made some): one line for every surface.
    empty_reason: str | None = None

    def summary(self) -> Report:
        if self.report is None:
            self.report = report(self.outcomes)
        return self.report


def backtest_result(
    history: History, spec: BacktestSpec, outcomes: list[TradeOutcome], decisions: int, elapsed_s: float
) -> BacktestResult:
    """The result of a run: its outcomes in the order they were planned (then symbol, strategy), and its counts.

    Each outcome's probability is its walk-forward odds: calibrated on this run's plans resolved
    before its day began (analytics.calibration), so a backtest scores odds it could have given.
    """
    outcomes = with_walk_forward(sorted(outcomes, key=lambda x: (x.planned_at, x.symbol, x.strategy)))
    return BacktestResult(
        spec=spec,
        outcomes=outcomes,
        decisions=decisions,
        plans=len(outcomes),
        elapsed_s=elapsed_s,
        sources=history.sources,
        bars=history.exec.n_bars * history.exec.n_symbols,
    )


@dataclass
class _Slots:
    busy_until: dict[tuple[int, int, int], int] = field(default_factory=dict)

    def free(self, key: tuple[int, int, int], t: int) -> bool:
        return self.busy_until.get(key, -1) <= t


def _strategy_columns(ev_strategies: Sequence[Strategy], spec: BacktestSpec) -> list[int] | None:
    """Strategy indices a run takes (None: the planner's best per symbol)."""
    if spec.strategy == "best":
        return None
    if spec.strategy == "all":
        return list(range(len(ev_strategies)))
    return [j for j, s in enumerate(ev_strategies) if s.id == spec.strategy]


def _resolved_at(o: TradeOutcome, entry_deadline: datetime) -> int:
    """When the slot of this outcome is free again (ns); open trades hold it to the end."""
    if o.status == "closed" and o.exited_at is not None:
        return int(pd.Timestamp(o.exited_at).value)
    if o.status == "open":
        return int(np.iinfo(np.int64).max)
    for e in o.events:
        if e.kind == "invalidated":
            return int(pd.Timestamp(e.at).value) + 1
    return int(pd.Timestamp(entry_deadline).value)


class _Taker:
    """Turns the planner's setups into plans for free slots and plays each forward to its outcome."""

    def __init__(self, history: History, spec: BacktestSpec, keep_plans: bool = False) -> None:
        self.history = history
        self.spec = spec
        self.stamps = history.exec.index.asi8
        self.take = _strategy_columns(for_style(spec.style), spec)
        self.slots = _Slots()
        self.outcomes: list[TradeOutcome] = []
        self.kept: list[Plan] | None = [] if keep_plans else None
        self.keys = [(r, j) for r in range(history.exec.n_symbols) for j in (self.take if self.take is not None else [-1])]

    def any_free(self, t: int, day: int = 0) -> bool:
        return any(self.slots.free((day, *k), t) for k in self.keys)

    def decide(self, ev: planner.Evaluation, base: int, i: int, day: int = 0) -> None:
        """Take the setups of evaluation rows [base, base + symbols) made at execution column i."""
        p = self.history.exec
        t = int(self.stamps[i])
        as_of = pd.Timestamp(t, tz="UTC").to_pydatetime()
        status = None
        for r in range(p.n_symbols):
            row = base + r
            js = self.take if self.take is not None else ([int(ev.best[row])] if ev.best[row] >= 0 else [])
            for j in js:
                key = (day, r, j if self.take is not None else -1)
                if ev.code[row, j] != planner.OK or not self.slots.free(key, t):
                    continue
                if status is None:
                    status = session_info(as_of).status
                plan = planner.build_plan(ev, row, as_of=as_of, session_status=status, sources=self.history.sources, j=j)
                e_dl, x_dl = horizon(plan.style, as_of)
                res = resolve(
                    plan.direction,
                    plan.entry,
                    plan.stop,
                    [tg.price for tg in plan.targets],
                    self.stamps,
                    p.open[r],
                    p.high[r],
                    p.low[r],
                    p.close[r],
                    int(i),
                    ref_price=float(p.close[r, i - 1]),
                    entry_deadline_ns=int(pd.Timestamp(e_dl).value),
                    exit_deadline_ns=int(pd.Timestamp(x_dl).value),
                    until_ns=self.history.data_end_ns,
                    management=self.spec.management,
                )
                out = outcome_from(plan, res, self.stamps)
                self.outcomes.append(out)
                if self.kept is not None:
                    self.kept.append(plan)
                self.slots.busy_until[key] = _resolved_at(out, e_dl)


def run_columns(
    history: History,
    spec: BacktestSpec,
    columns: Sequence[int] | np.ndarray,
    progress: Callable[[int], None] | None = None,
    keep_plans: bool = False,
) -> tuple[list[TradeOutcome], int, list[Plan]]:
    """Ask the planner at each column in turn and play every accepted plan forward; returns (outcomes, decisions, plans kept)."""
    taker = _Taker(history, spec, keep_plans)
    decisions = 0
    for i in columns:
        if progress is not None:
            progress(1)
        if not taker.any_free(int(taker.stamps[i])):
            continue
        decisions += 1
        with _quiet():
            ev = planner.evaluate(history.panels_at(int(i)), spec.style)
        taker.decide(ev, 0, int(i))
    return taker.outcomes, decisions, taker.kept or []


def structure_keys(history: History, columns: np.ndarray) -> list[bytes]:
    """Per decision column, a digest of the shape of everything the planner sees there.

    Two decisions with the same key see windows with the same sessions lengths and the same
    bar positions (full sessions back to the widest lookback, the same number of bars today), so
    their panels can be stacked as rows of one evaluation under one time index. A half day or a
    missing bar inside the window makes a different key.
    """
    p = history.exec
    sch = schedule()
    st = p.index.asi8
    sess = np.searchsorted(sch.opens, st, side="right") - 1
    mins = (st - sch.opens[sess]) // _NS_MIN
    widest = max(history.sessions_of(iv) for iv in STYLE_INTERVALS[history.style])
    keys = []
    for i in columns:
        k = int(sess[i])
        a = int(np.searchsorted(st, int(sch.opens[max(0, k - widest + 1)]), side="left"))
        pattern = np.concatenate((((k - sess[a:i]) << 20) + mins[a:i], [i - a]))
        keys.append(hashlib.blake2b(pattern.astype(np.int64).tobytes(), digest_size=16).digest())
    return keys


def _stack(parts: list[dict[str, Panel]]) -> dict[str, Panel]:
    """Panels of several decisions with the same shape, stacked as rows under the first one's index."""
    first = parts[0]
    out = {}
    for iv, p0 in first.items():
        o, h, lo, c, v = (
            np.concatenate([getattr(x[iv], col) for x in parts], axis=0) for col in ("open", "high", "low", "close", "volume")
        )
        out[iv] = Panel(tuple(sym for x in parts for sym in x[iv].symbols), p0.interval, p0.index, o, h, lo, c, v)
    return out


def run_columns_batched(
    history: History, spec: BacktestSpec, columns: Sequence[int] | np.ndarray, progress: Callable[[int], None] | None = None
) -> tuple[list[TradeOutcome], int]:
    """The day-style run with decisions of many days in one planner call: same plans, far fewer calls.

    Day-style trades end by the close, so each session's slots start free and sessions are
    independent; within a session, decisions are still taken in time order. Decisions whose
    windows have the same shape (`structure_keys`) are evaluated together.
    """
    cols = np.asarray(columns, dtype=np.int64)
    taker = _Taker(history, spec)
    if not len(cols):
        return [], 0
    p = history.exec
    days = p.day[cols]
    pos = cols - np.searchsorted(p.index.asi8, p.index.asi8[cols] - (p.minute[cols] - 570) * _NS_MIN)  # bars since the open
    keys = structure_keys(history, cols)
    groups: dict[tuple[int, bytes], list[int]] = {}
    for n, (ps, key) in enumerate(zip(pos.tolist(), keys)):
        groups.setdefault((ps, key), []).append(n)
    decisions = 0
    for (_, _), members in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[1][0])):
        for a in range(0, len(members), BATCH_DAYS):
            batch = [m for m in members[a : a + BATCH_DAYS] if taker.any_free(int(taker.stamps[cols[m]]), int(days[m]))]
            if progress is not None:
                progress(min(BATCH_DAYS, len(members) - a))
            if not batch:
                continue
            decisions += len(batch)
            with _quiet():
                ev = planner.evaluate(_stack([history.panels_at(int(cols[m])) for m in batch]), spec.style)
            for b, m in enumerate(batch):
                taker.decide(ev, b * p.n_symbols, int(cols[m]), int(days[m]))
    return taker.outcomes, decisions


def replay(
    history: History, spec: BacktestSpec, columns: Sequence[int] | np.ndarray, progress: Callable[[int], None] | None = None
) -> tuple[list[TradeOutcome], int]:
    """(outcomes, decisions) of asking the planner at `columns`, in this process: day styles batched across sessions."""
    if spec.day_style:
        return run_columns_batched(history, spec, columns, progress=progress)
    outcomes, decisions, _ = run_columns(history, spec, columns, progress=progress)
    return outcomes, decisions


def session_chunks(history: History, columns: np.ndarray, n_chunks: int) -> list[np.ndarray]:
    """Split decision columns into about n_chunks runs of whole sessions (day-style slots all free at each open)."""
    if not len(columns):
        return []
    days = history.exec.day[columns]
    starts = np.flatnonzero(np.concatenate(([True], days[1:] != days[:-1])))
    per = max(1, int(math.ceil(len(starts) / n_chunks)))
    cuts = list(starts[::per][1:])
    return [x for x in np.split(columns, cuts) if len(x)]
