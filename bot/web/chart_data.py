"""What the chart page draws, as JSON: the same `ChartSpec` the PNG chart is drawn from, for one link's scope.

The page and the PNG agree because both come from `renderers.plan_chart.build_spec`: bars from
the market up to now, the level engine's levels (`bot.chart_service.detect_levels`), EMAs and the
session VWAP, the plan's entry/stop/targets and entry zone, the priority levels and the "more"
levels. Three specs are built: the PNG's own (priority levels; its window is the plan focus),
the same with `levels="more"`, and one over every bar (the candles and lines the page can scroll
through). Times are shifted to exchange wall-clock seconds, because the chart library shows UTC.

This module imports the numeric stack; `bot.web.chart_page` loads it on the first page request.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.intervals import interval_minutes
from analytics.models import Plan
from analytics.sessions import TZ_NAME, session_info
from bot.chart_service import detect_levels, fetch_bars
from bot.web.links import LinkScope
from renderers.chart_spec import Band, ChartSpec, HLevel
from renderers.labels import format_price
from renderers.plan_chart import build_spec
from renderers.theme import get_theme


@dataclass
class PageBars:
    """The bars of one interval and where they came from."""

    df: pd.DataFrame
    source: str
    as_of: datetime


def wall_seconds(stamps_ns: np.ndarray) -> list[int]:
    """UTC nanosecond stamps as exchange wall-clock seconds (what the chart library labels as if UTC)."""
    idx = pd.DatetimeIndex(pd.to_datetime(stamps_ns, utc=True)).tz_convert(TZ_NAME).tz_localize(None)
    return [int(x) for x in idx.as_unit("s").asi8]


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _level(lv: HLevel, tick: float) -> dict[str, Any]:
    return {
        "price": lv.price,
        "label": lv.label,
        "text": f"{lv.label} {format_price(lv.price, tick)}",
        "color": lv.color,
        "role": lv.role,
        "style": lv.style,
        "width": lv.width,
        "kind": lv.kind,
    }


def _band(b: Band, stamps: list[int]) -> dict[str, Any]:
    return {
        "low": b.low,
        "high": b.high,
        "label": b.label,
        "color": b.color,
        "alpha": b.alpha,
        "kind": b.kind,
        "from": stamps[b.start] if 0 <= b.start < len(stamps) else None,
    }


def _key(lv: HLevel) -> tuple[str, float]:
    return (lv.label, round(lv.price, 6))


def spec_payload(priority: ChartSpec, more: ChartSpec, full: ChartSpec, plan: Plan | None) -> dict[str, Any]:
    """The page's JSON from the three specs (see the module docstring)."""
    th = get_theme(priority.theme)
    c = full.candles
    times = wall_seconds(c.stamps)
    candles = [
        {"time": t, "open": float(o), "high": float(h), "low": float(lo), "close": float(cl)}
        for t, o, h, lo, cl in zip(times, c.open, c.high, c.low, c.close)
    ]
    volume = [
        {"time": t, "value": float(v), "color": th.up_volume if cl >= o else th.down_volume}
        for t, v, o, cl in zip(times, c.volume, c.open, c.close)
    ]
    lines = [
        {
            "label": ln.label,
            "color": ln.color,
            "width": ln.width,
            # a gap (the VWAP restarting each session) stays a gap: a point without a value breaks the line
            "data": [{"time": t} if v is None else {"time": t, "value": v} for t, v in zip(times, (_num(x) for x in ln.values))],
        }
        for ln in full.lines
    ]
    win = wall_seconds(priority.candles.stamps)
    # "more" adds what priority leaves out; plan lines and the last price are in both
    shown = {_key(lv) for lv in priority.levels}
    extra = [lv for lv in more.levels if _key(lv) not in shown and lv.role == "level"]
    band_keys = {(b.label, b.low, b.high) for b in priority.bands}
    extra_bands = [b for b in more.bands if (b.label, b.low, b.high) not in band_keys]
    markers = [
        {"time": win[m.x] if 0 <= m.x < len(win) else win[-1], "price": m.price, "label": m.label, "color": m.color}
        for m in priority.markers
    ]
    return {
        "symbol": priority.symbol,
        "interval": priority.interval,
        "title": priority.title,
        "subtitle": [list(run) for run in priority.subtitle],
        "footer": priority.footer,
        "footer_right": priority.footer_right,
        "direction": priority.direction,
        "tick": priority.tick,
        "interval_seconds": interval_minutes(priority.interval) * 60,
        "candles": candles,
        "volume": volume,
        "lines": lines,
        "levels": [_level(lv, priority.tick) for lv in priority.levels if lv.role != "last"],
        "more_levels": [_level(lv, priority.tick) for lv in extra],
        "bands": [_band(b, win) for b in priority.bands],
        "more_bands": [_band(b, win) for b in extra_bands],
        "markers": markers,
        # the PNG's window and price range: the page opens on the same view (focus on the plan)
        "focus": {"from": win[0], "to": win[-1], "low": priority.y_range[0], "high": priority.y_range[1]},
        "theme": {
            "bg": th.bg,
            "grid": th.grid,
            "text": th.text,
            "muted": th.muted,
            "up": th.up,
            "down": th.down,
            "entry": th.entry,
            "stop": th.stop,
            "target": th.target,
            "vwap": th.vwap,
        },
        "plan": None
        if plan is None
        else {
            "plan_id": plan.plan_id,
            "version": plan.version,
            "direction": plan.direction,
            "strategy": plan.strategy,
            "style": plan.style,
            "entry": plan.entry,
            "stop": plan.stop,
            "targets": [t.price for t in plan.targets],
            "probability": plan.probability,
            "quality": plan.quality,
            "as_of": plan.as_of.isoformat(),
        },
    }


async def page_bars(market: Any, symbol: str, interval: str, now: datetime) -> PageBars:
    """Bars of `symbol` at `interval` up to `now`: the window /chart draws, with its EMAs warmed up."""
    bars = await fetch_bars(market, symbol, interval, now)
    return PageBars(df=bars.df, source=bars.source, as_of=bars.as_of)


def build_payload(scope: LinkScope, interval: str, bars: PageBars, plan: Plan | None, now: datetime) -> dict[str, Any]:
    """The page JSON of one interval (CPU work: run it in a thread)."""
    df = bars.df
    if df.empty:
        raise LookupError(f"no {interval} bars for {scope.symbol} yet")
    levels = detect_levels(scope.symbol, df, interval)
    status = session_info(bars.as_of).status
    common: dict[str, Any] = {
        "symbol": scope.symbol,
        "interval": interval,
        "bars": df,
        "plan": plan,
        "levels": levels,
        "as_of": bars.as_of,
        "session_status": status,
        "source": bars.source,
        "style": plan.style if plan is not None else None,
    }
    priority = build_spec(**common)
    more = build_spec(**common, levels_mode="more")
    full = build_spec(**common, visible_bars=len(df), scale_plan=False)
    out = spec_payload(priority, more, full, plan)
    info = session_info(now)
    last_end = df.index[-1] + pd.Timedelta(minutes=interval_minutes(interval))
    out["session"] = {
        "status": info.status,
        "as_of": bars.as_of.isoformat(),
        "next_open": info.next_open.isoformat(),
        "tz": TZ_NAME,
        "source": bars.source,
    }
    # how old the newest bar is now: the pill's starting point before live prices arrive
    out["data_age_s"] = max(0.0, (now - min(last_end.to_pydatetime(), bars.as_of)).total_seconds())
    out["intervals"] = list(scope.intervals)
    return out


async def chart_payload(market: Any, scope: LinkScope, interval: str, plan: Plan | None, now: datetime) -> dict[str, Any]:
    """Fetch the bars and build the page JSON off the event loop."""
    bars = await page_bars(market, scope.symbol, interval, now)
    return await asyncio.to_thread(build_payload, scope, interval, bars, plan, now)


__all__ = ["PageBars", "build_payload", "chart_payload", "page_bars", "spec_payload", "wall_seconds"]
