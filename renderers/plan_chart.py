"""Plan + bars + levels -> ChartSpec, in one function (`build_spec`), plus basic levels from bars alone.

What ends up on the chart, and why:

- the visible window is the last `VISIBLE_BARS[interval]` bars, or, for a plan made in an
  earlier session, the window centred on the bar the plan was made on (focus=plan);
- EMAs (periods by interval, labelled "EMA 9") and the session VWAP (intraday) are
  computed on all the bars given, so they are warmed up before the window starts;
- the plan's entry (blue), stop (red) and targets (green) are solid lines with labels,
  its entry zone a blue band, its creation bar a dotted marker; the last price a grey tag;
- levels: by default only the priority ones (opening range, prior day, session high/low,
  the strongest nearby zones, strong higher-timeframe levels); `levels="more"` adds
  every level inside the view;
- focus=plan: the price range fits the plan's levels and the recent bars, so an old
  plan's levels are always in view; `scale_plan=False` shows the raw history instead
  (the range of the visible bars).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from analytics import indicators
from analytics.intervals import interval_minutes, is_intraday, normalise_interval
from analytics.models import Level, Plan
from analytics.sessions import TZ_NAME
from core.errors import UserError
from renderers.chart_spec import Band, Candles, ChartSpec, HLevel, Line, Marker
from renderers.labels import format_price
from renderers.theme import Theme, band_color, get_theme, level_color

LevelsMode = Literal["priority", "more"]
Focus = Literal["plan", "price"]

#: Bars shown per interval: about 1.5 sessions of 5m, 4 of 15m, 15 of 1h, half a year of 1D.
VISIBLE_BARS: dict[str, int] = {"1m": 150, "5m": 117, "15m": 104, "30m": 104, "1h": 105, "4h": 100, "1D": 126, "1W": 104}
#: EMA periods drawn per interval.
EMA_PERIODS: dict[str, tuple[int, ...]] = {
    "1m": (9, 21),
    "5m": (9, 21),
    "15m": (9, 21),
    "30m": (9, 21),
    "1h": (20, 50),
    "4h": (20, 50),
    "1D": (20, 50, 200),
    "1W": (10, 40),
}


def warmup_bars(interval: str) -> int:
    """Bars to fetch for a chart of `interval`: the visible window plus two lengths of its longest EMA to settle it."""
    iv = normalise_interval(interval)
    return VISIBLE_BARS[iv] + 2 * max(EMA_PERIODS[iv])


SHORT_NAMES: dict[str, str] = {
    "orh": "ORH",
    "orl": "ORL",
    "pdh": "PDH",
    "pdl": "PDL",
    "pdc": "PDC",
    "hod": "HOD",
    "lod": "LOD",
    "swing_high": "Swing H",
    "swing_low": "Swing L",
    "htf": "HTF",
    "supply": "Supply",
    "demand": "Demand",
    "liquidity_high": "EQH",
    "liquidity_low": "EQL",
    "fvg_bull": "Bull FVG",
    "fvg_bear": "Bear FVG",
    "avwap": "AVWAP",
    "vwap": "VWAP",
}
#: Label order when the gutter is crowded (lower is kept first); plan lines use 0-9.
KIND_RANK: dict[str, int] = {
    "orh": 20,
    "orl": 20,
    "pdh": 22,
    "pdl": 22,
    "hod": 24,
    "lod": 24,
    "pdc": 26,
    "htf": 30,
    "avwap": 34,
    "supply": 36,
    "demand": 36,
    "liquidity_high": 40,
    "liquidity_low": 40,
    "fvg_bull": 44,
    "fvg_bear": 44,
    "swing_high": 48,
    "swing_low": 48,
    "vwap": 50,
}
#: Always shown (when in view) in priority mode.
PRIORITY_KINDS = frozenset({"orh", "orl", "pdh", "pdl", "pdc", "hod", "lod"})
ZONE_KINDS = frozenset({"supply", "demand", "fvg_bull", "fvg_bear", "liquidity_high", "liquidity_low"})
#: In priority mode: at most this many zones, strong higher-timeframe levels and anchored VWAPs.
PRIORITY_ZONES = 3
PRIORITY_HTF = 3
PRIORITY_AVWAP = 1
MAX_MORE_LEVELS = 24
#: Session VWAP is drawn up to this bar size; on hourly bars it is a few disconnected stubs.
VWAP_MAX_MINUTES = 30


# --------------------------------------------------------------------------- levels from bars alone


def basic_levels(bars: pd.DataFrame, interval: str) -> list[Level]:
    """Opening range, prior-day high/low/close and session high/low of the last session in `bars`.

    The levels any chart can show without a level engine; intraday intervals get all of
    them, daily and weekly charts the prior bar's high/low/close.
    """
    if bars.empty:
        return []
    iv = normalise_interval(interval)
    out: list[Level] = []
    last_day = pd.Timestamp(indicators.session_dates(bars.index[-1:])[0])
    since = bars.index[-1].to_pydatetime()

    def add(kind: str, price: float, label: str, strength: float, when: datetime | None = since) -> None:
        if price is not None and math.isfinite(price):
            out.append(Level(kind=kind, price=float(price), label=label, strength=strength, interval=iv, since=when))

    if is_intraday(iv):
        # an opening range needs bars finer than the range itself: hourly bars have none
        rng = indicators.opening_range(bars, 30) if interval_minutes(iv) <= 30 else pd.DataFrame()
        if last_day in rng.index:
            row = rng.loc[last_day]
            add("orh", row["orh"], "opening-range high", 0.7)
            add("orl", row["orl"], "opening-range low", 0.7)
        prior = indicators.prior_day_levels(bars)
        if last_day in prior.index:
            row = prior.loc[last_day]
            add("pdh", row["pdh"], "prior-day high", 0.8)
            add("pdl", row["pdl"], "prior-day low", 0.8)
            add("pdc", row["pdc"], "prior-day close", 0.6)
        hod, lod = indicators.session_high_low(bars)
        add("hod", hod[-1], "session high", 0.6)
        add("lod", lod[-1], "session low", 0.6)
    elif len(bars) >= 2:
        prev = bars.iloc[-2]
        name = "prior-day" if iv == "1D" else "prior-week"
        add("pdh", prev["high"], f"{name} high", 0.8)
        add("pdl", prev["low"], f"{name} low", 0.8)
        add("pdc", prev["close"], f"{name} close", 0.6)
    return out


# --------------------------------------------------------------------------- the one function


def build_spec(
    *,
    symbol: str,
    interval: str,
    bars: pd.DataFrame,
    plan: Plan | None = None,
    levels: Sequence[Level] = (),
    as_of: datetime,
    session_status: str,
    source: str,
    style: str | None = None,
    theme: str = "dark",
    levels_mode: LevelsMode = "priority",
    focus: Focus = "plan",
    scale_plan: bool = True,
    auto_levels: bool = True,
    note: str = "",
    width: int = 1200,
    height: int = 700,
    tick: float = 0.01,
    visible_bars: int | None = None,
) -> ChartSpec:
    """The chart of `symbol` at `interval`: bars up to `as_of`, the plan (if any) and the levels.

    With no `levels` and `auto_levels`, the basic levels are computed from the bars.
    `note` is shown under the title when there is no plan (why there is none).
    """
    iv = normalise_interval(interval)
    th = get_theme(theme)
    if levels_mode not in ("priority", "more"):
        raise UserError(f"unknown levels option {str(levels_mode)[:20]!r}; accepted: priority, more")
    df = _upto(bars, as_of)
    if df.empty:
        raise UserError(f"no {iv} bars for {symbol} up to {as_of.isoformat(timespec='minutes')}")
    if not levels and auto_levels:
        levels = basic_levels(df, iv)
    intraday = is_intraday(iv)

    lines_full = _lines(df, iv, th, intraday)
    n_all = len(df)
    n_vis = min(n_all, visible_bars or VISIBLE_BARS[iv])
    plan_bar = _bar_at(df, plan.as_of) if plan is not None else None
    start = n_all - n_vis
    centred = False
    if (
        plan is not None
        and focus == "plan"
        and scale_plan
        and plan_bar is not None
        and _earlier_session(df, plan, plan_bar, intraday)
    ):
        start = int(np.clip(plan_bar - n_vis // 2, 0, n_all - n_vis))
        centred = start != n_all - n_vis
    stop_at = start + n_vis
    window = df.iloc[start:stop_at]
    candles = Candles.from_frame(window)
    lines = tuple(
        Line(label=ln.label, values=ln.values[start:stop_at], color=ln.color, width=ln.width, style=ln.style)
        for ln in lines_full
        if np.isfinite(ln.values[start:stop_at]).any()
    )
    last_close = float(df["close"].iloc[-1])

    plan_levels, plan_bands, markers = _plan_overlays(plan, th, plan_bar, start, stop_at, intraday, df, tick)
    last_level = HLevel(price=last_close, label="Last", color=th.last, role="last", style=":", width=1.0, rank=8, kind="last")

    y_range = _y_range(candles, plan, last_close, focus=focus, scale_plan=scale_plan, plan_bar=plan_bar, start=start, tick=tick)
    chosen_levels, chosen_bands, shown = _select_levels(levels, th, levels_mode, y_range, last_close, intraday, iv, window.index)
    lo, hi = y_range
    all_levels = tuple(lv for lv in (*plan_levels, last_level, *chosen_levels) if lo <= lv.price <= hi)
    all_bands = tuple(b for b in (*plan_bands, *chosen_bands) if b.high >= lo and b.low <= hi)

    title, subtitle, footer_right = _titles(symbol, iv, style, plan, th, last_close, df, tick, note, centred)
    footer = _footer(as_of, session_status, source)
    return ChartSpec(
        symbol=symbol,
        interval=iv,
        candles=candles,
        title=title,
        subtitle=subtitle,
        direction=plan.direction if plan is not None else None,
        footer=footer,
        footer_right=footer_right,
        y_range=y_range,
        theme=th.name,
        lines=lines,
        levels=all_levels,
        bands=all_bands,
        markers=tuple(markers),
        tick=tick,
        intraday=intraday,
        session_breaks=intraday and interval_minutes(iv) <= 30,
        tz=TZ_NAME,
        width=width,
        height=height,
        shown_levels=tuple(shown),
    )


# --------------------------------------------------------------------------- pieces


def _upto(bars: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    if bars is None or bars.empty:
        return bars if bars is not None else pd.DataFrame()
    cut = pd.Timestamp(as_of)
    cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
    return bars[bars.index <= cut]


def _bar_at(df: pd.DataFrame, when: datetime) -> int | None:
    """Position of the last bar stamped at or before `when` (None when it precedes every bar)."""
    ts = pd.Timestamp(when)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    pos = int(df.index.searchsorted(ts, side="right")) - 1
    return pos if pos >= 0 else None


def _earlier_session(df: pd.DataFrame, plan: Plan, plan_bar: int, intraday: bool) -> bool:
    """True when the plan was made in an earlier session than the last bar (intraday) or far back (daily and up)."""
    last = len(df) - 1
    if not intraday:
        return last - plan_bar > VISIBLE_BARS["1D"] // 2
    made = pd.DatetimeIndex([pd.Timestamp(plan.as_of)])
    made = made.tz_localize("UTC") if made.tz is None else made
    return bool(indicators.session_dates(made)[0] != indicators.session_dates(df.index[[last]])[0])


def _lines(df: pd.DataFrame, iv: str, th: Theme, intraday: bool) -> list[Line]:
    close = df["close"]
    lines = [
        Line(
            label=f"EMA {p}",
            values=indicators.ema(close, p) if len(df) >= p else np.full(len(df), np.nan),
            color=th.ema[i % len(th.ema)],
            width=1.3,
        )
        for i, p in enumerate(EMA_PERIODS[iv])
    ]
    if intraday and interval_minutes(iv) <= VWAP_MAX_MINUTES:
        vw = indicators.vwap(df)
        # VWAP restarts every session: break the line there rather than draw a jump between sessions
        days = indicators.session_dates(df.index)
        if len(days) > 1:
            vw[1:][days[1:] != days[:-1]] = np.nan
        lines.append(Line(label="VWAP", values=vw, color=th.vwap, width=1.6))
    return lines


def _plan_overlays(
    plan: Plan | None,
    th: Theme,
    plan_bar: int | None,
    start: int,
    stop_at: int,
    intraday: bool,
    df: pd.DataFrame,
    tick: float,
) -> tuple[list[HLevel], list[Band], list[Marker]]:
    if plan is None:
        return [], [], []
    levels = [
        HLevel(price=plan.entry, label="Entry", color=th.entry, role="entry", style="-", width=1.8, rank=0, kind="entry"),
        HLevel(price=plan.stop, label="Stop", color=th.stop, role="stop", style="-", width=1.6, rank=1, kind="stop"),
    ]
    for i, t in enumerate(plan.targets, 1):
        levels.append(
            HLevel(price=t.price, label=f"T{i}", color=th.target, role="target", style="-", width=1.5, rank=1 + i, kind="target")
        )
    bands: list[Band] = []
    if plan.entry_zone:
        lo, hi = sorted(plan.entry_zone)
        if hi > lo:
            bands.append(
                Band(
                    low=lo,
                    high=hi,
                    label="Entry zone",
                    color=th.band.get("entry_zone", th.entry),
                    alpha=0.2,
                    start=0,
                    rank=0,
                    kind="entry_zone",
                    labelled=False,
                )
            )
    markers: list[Marker] = []
    if plan_bar is not None and start <= plan_bar < stop_at:
        # label with when the plan was made (it may fall between bars, e.g. before the open)
        made = pd.Timestamp(plan.as_of).tz_convert(TZ_NAME)
        bar_day = df.index[plan_bar].tz_convert(TZ_NAME).date()
        if not intraday:
            stamp = made.strftime("%b %d")
        elif made.date() == bar_day:
            stamp = made.strftime("%H:%M")
        else:
            stamp = made.strftime("%b %d %H:%M")
        markers.append(Marker(x=plan_bar - start, price=plan.entry, label=f"plan {stamp}", color=th.muted, shape="|"))
    return levels, bands, markers


def _y_range(
    candles: Candles,
    plan: Plan | None,
    last_close: float,
    *,
    focus: str,
    scale_plan: bool,
    plan_bar: int | None,
    start: int,
    tick: float,
) -> tuple[float, float]:
    n = len(candles)
    if plan is not None and focus == "plan" and scale_plan:
        # recent price: the last third of the window, and everything since the plan was made
        first = n - max(30, n // 3)
        if plan_bar is not None:
            first = min(first, plan_bar - start - 5)
        first = max(0, first)
        prices = [plan.entry, plan.stop, *(t.price for t in plan.targets), last_close]
        if plan.entry_zone:
            prices += list(plan.entry_zone)
        lows, highs = candles.low[first:], candles.high[first:]
    else:
        prices = [last_close]
        lows, highs = candles.low, candles.high
    vals = np.array([*prices, np.nanmin(lows) if len(lows) else last_close, np.nanmax(highs) if len(highs) else last_close])
    vals = vals[np.isfinite(vals)]
    lo, hi = float(vals.min()), float(vals.max())
    span = max(hi - lo, abs(hi) * 0.002, 10 * tick)
    pad = span * 0.07
    return (lo - pad, hi + pad)


def _short_name(level: Level, iv: str) -> str:
    if iv == "1W" and level.kind in ("pdh", "pdl", "pdc"):
        return "PW" + level.kind[-1].upper()  # on weekly bars the prior bar is the prior week
    name = SHORT_NAMES.get(level.kind) or (level.label or level.kind)[:14]
    if level.kind == "vwap":
        return name  # the session's VWAP, whatever interval computed it
    if level.kind == "htf" and level.interval:
        return f"HTF {level.interval}"
    if level.interval and level.interval != iv and level.kind not in PRIORITY_KINDS and level.kind != "htf":
        return f"{level.interval} {name}"
    return name


def _select_levels(
    levels: Sequence[Level],
    th: Theme,
    mode: str,
    y_range: tuple[float, float],
    last_close: float,
    intraday: bool,
    iv: str,
    window_index: pd.DatetimeIndex,
) -> tuple[list[HLevel], list[Band], list[Level]]:
    """(level lines, zone bands, the Levels they draw plus the session VWAP when its line is drawn)."""
    lo, hi = y_range
    lines: list[tuple[float, Level]] = []
    zones: list[tuple[float, Level]] = []
    vwap_line: list[Level] = []
    vwap_level: list[Level] = []
    for lv in levels:
        if lv.kind == "vwap" and intraday:
            if lo <= lv.price <= hi:
                if interval_minutes(iv) <= VWAP_MAX_MINUTES:
                    vwap_line.append(lv)  # drawn as its line, still one of the chart's levels
                else:
                    vwap_level.append(lv)  # hourly bars draw no VWAP line: today's VWAP is marked as a level
            continue
        if lv.filled:
            continue  # a filled gap is history, not a level
        low, high = lv.low, lv.high
        if low is not None and high is not None and high > low:  # a zone: measured from its middle
            if high >= lo and low <= hi:
                zones.append((abs((low + high) / 2.0 - last_close), lv))
        elif lo <= lv.price <= hi:
            lines.append((abs(lv.price - last_close), lv))
    if mode == "priority":
        core = [lv for _, lv in lines if lv.kind in PRIORITY_KINDS]
        htf = sorted((p for p in lines if p[1].kind == "htf" and p[1].strength >= 0.7), key=lambda p: p[0])[:PRIORITY_HTF]
        avwap = sorted((p for p in lines if p[1].kind == "avwap"), key=lambda p: p[0])[:PRIORITY_AVWAP]
        chosen_lines = core + [lv for _, lv in htf] + [lv for _, lv in avwap]
        strong = [p for p in zones if p[1].strength >= 0.45 and p[1].kind in ("supply", "demand", "fvg_bull", "fvg_bear")]
        chosen_zones = [lv for _, lv in sorted(strong, key=lambda p: (p[0], -p[1].strength))[:PRIORITY_ZONES]]
    else:
        chosen_lines = [lv for _, lv in sorted(lines, key=lambda p: p[0])[:MAX_MORE_LEVELS]]
        chosen_zones = [lv for _, lv in sorted(zones, key=lambda p: p[0])[: MAX_MORE_LEVELS // 2]]
    chosen_lines += vwap_level
    out_lines = [
        HLevel(
            price=lv.price,
            label=_short_name(lv, iv),
            color=level_color(th, lv.kind),
            role="level",
            style="--" if lv.kind not in ("liquidity_high", "liquidity_low", "swing_high", "swing_low") else ":",
            width=1.1,
            rank=KIND_RANK.get(lv.kind, 45) + int(round((1.0 - lv.strength) * 4)),
            kind=lv.kind,
        )
        for lv in chosen_lines
    ]
    out_bands = []
    shown = [*chosen_lines, *vwap_line]
    for lv in chosen_zones:
        assert lv.low is not None and lv.high is not None  # only zones were chosen
        start = 0
        if lv.since is not None:
            since = pd.Timestamp(lv.since)
            since = since.tz_localize("UTC") if since.tzinfo is None else since.tz_convert("UTC")
            # the zone is shaded from the bar it formed on, or from the left edge if older
            start = int(window_index.searchsorted(since, side="left"))
        if start >= len(window_index):
            continue  # formed after the last bar shown
        out_bands.append(
            Band(
                low=float(lv.low),
                high=float(lv.high),
                label=_short_name(lv, iv),
                color=band_color(th, lv.kind),
                alpha=th.band_alpha,
                start=start,
                rank=KIND_RANK.get(lv.kind, 45),
                kind=lv.kind,
            )
        )
        shown.append(lv)
    return out_lines, out_bands, shown


def level_name(level: Level, iv: str) -> str:
    """A level's name for people reading a list: the chart label, the session VWAP as "VWAP", an anchored one with its anchor."""
    if level.kind == "vwap":
        return "VWAP"
    if level.kind == "avwap":
        label = level.label or ""
        return label if label.startswith("AVWAP ") else "AVWAP"
    return _short_name(level, iv)


#: Words kept upper-case in strategy names ("orb_breakout" -> "ORB breakout").
_ACRONYMS = {"orb", "vwap", "ema", "fvg", "htf", "pdh", "pdl", "or", "rsi", "macd", "atr", "hod", "lod"}


def _strategy_name(strategy: str) -> str:
    words = strategy.replace("_", " ").replace("-", " ").split()
    out = [w.upper() if w.lower() in _ACRONYMS else w for w in words]
    if out and out[0] == words[0]:
        out[0] = out[0][:1].upper() + out[0][1:]
    return " ".join(out)


def _pct(a: float, b: float) -> str:
    return f"{(a / b - 1.0) * 100:+.1f}%" if b else ""


def _titles(
    symbol: str,
    iv: str,
    style: str | None,
    plan: Plan | None,
    th: Theme,
    last: float,
    df: pd.DataFrame,
    tick: float,
    note: str,
    centred: bool,
) -> tuple[str, tuple[tuple[str, str], ...], str]:
    parts = [symbol, iv]
    if style:
        parts.append(style)
    elif plan is not None:
        parts.append(plan.style)
    if plan is not None:
        parts.append(_strategy_name(plan.strategy))
    title = "  ·  ".join(parts)
    runs: list[tuple[str, str]] = []
    footer_right = ""
    if plan is not None:

        def fp(v: float) -> str:
            return format_price(v, tick)

        runs.append((f"Entry {fp(plan.entry)}", th.entry))
        runs.append((f"Stop {fp(plan.stop)} ({_pct(plan.stop, plan.entry)})", th.stop))
        for i, t in enumerate(plan.targets, 1):
            runs.append((f"T{i} {fp(t.price)} ({t.rr:.1f}R)", th.target))
        runs.append((f"T1 first {plan.probability:.0%} · quality {plan.quality:.0%}", th.muted))
        if centred:
            runs.append((f"plan from {plan.as_of.astimezone(ZoneInfo(TZ_NAME)):%b %d %H:%M}", th.muted))
        footer_right = f"plan {plan.plan_id} v{plan.version}"
    else:
        runs.append((f"Last {format_price(last, tick)}", th.text))
        if len(df) >= 2:
            days = indicators.session_dates(df.index)
            today = df[days == days[-1]]
            if len(today):
                runs.append((f"H {format_price(float(today['high'].max()), tick)}", th.muted))
                runs.append((f"L {format_price(float(today['low'].min()), tick)}", th.muted))
            prior = df[days != days[-1]]
            if len(prior):
                runs.append((f"{_pct(last, float(prior['close'].iloc[-1]))} vs prior close", th.muted))
        if note:
            runs.append((note[:90], th.muted))
    return title, tuple(runs), footer_right


def _footer(as_of: datetime, session_status: str, source: str) -> str:
    local = as_of.astimezone(ZoneInfo(TZ_NAME))
    status = {"open": "market open", "pre": "pre-market", "post": "after hours", "closed": "market closed"}.get(
        session_status, session_status
    )
    return f"as of {local:%Y-%m-%d %H:%M %Z}  ·  {status}  ·  data: {source}"
