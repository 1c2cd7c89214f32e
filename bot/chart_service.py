"""The chart service: renders chart specs in a small process pool, off the event loop, with a cache.

`ChartService` is built by the composition root as ``services.charts`` and closed with them. Rendering runs in worker processes started
with ``forkserver`` (``spawn`` where that does not exist): never ``fork`` from a process
running an event loop and threads. The pool starts with the second chart, not when the
service is built: the first chart is drawn in a thread of this process while nobody waits
for workers, so commands that never chart, or draw one (`coach plan TSLA --chart x.png`),
never start a pool. Results are cached by
what they show: (symbol, interval, as_of, plan id/version, theme) plus the options and
the last bar; concurrent requests for the same chart share one render.

The settings COACH_CHART_WORKERS (pool size; default 2, at most the CPU count; 0 renders in a
thread of this process, which is what the one-shot CLI uses), COACH_CHART_RENDERER (the default
path, fast or mplfinance) and COACH_CHART_START reach it through the composition root.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import hashlib
import multiprocessing
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import structlog
from pydantic import BaseModel

from analytics.interval_context import detect_levels as engine_levels
from analytics.intervals import interval_minutes, normalise_interval
from analytics.models import Level, Plan
from analytics.sessions import TZ_NAME, last_sessions, session_info
from bot import metrics
from bot.args import MAX_CHART_INTERVALS
from bot.planning import make_plan, recall_plan
from bot.reply import Attachment
from bot.request import Ctx
from core.errors import ProviderError, UserError
from providers.base import Bars, MarketData
from renderers import jobs
from renderers.chart_spec import ChartSpec
from renderers.labels import format_price
from renderers.plan_chart import LevelsMode, build_spec, warmup_bars
from renderers.theme import get_theme

log = structlog.get_logger("coach.charts")

#: Seconds a render may take before the request fails (a stuck worker is replaced).
RENDER_TIMEOUT = 60.0
#: Worker processes are replaced after this many jobs, bounding any slow growth in memory.
TASKS_PER_WORKER = 500
DEFAULT_INTERVAL = "5m"
#: Levels asked of the level engine per chart; the chart's priority/more selection picks from them.
LEVELS_FROM_ENGINE = 40


class ChartError(ProviderError):
    """The chart renderer failed or timed out; the message is one line for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__("chart renderer", reason)


def _start_method(wanted: str | None) -> str:
    available = multiprocessing.get_all_start_methods()
    if wanted in available and wanted != "fork":
        return wanted
    return "forkserver" if "forkserver" in available and sys.platform != "win32" else "spawn"


def default_workers() -> int:
    """The pool size when COACH_CHART_WORKERS is not set: min(2, CPUs)."""
    return max(1, min(2, os.cpu_count() or 1))


@dataclass
class ChartStats:
    """Counters for operators and tests."""

    renders: int = 0
    hits: int = 0
    shared: int = 0
    failures: int = 0


class ChartService:
    """Renders ChartSpecs to PNG off the event loop, caching finished images."""

    def __init__(
        self,
        *,
        workers: int | None = None,
        renderer: str | None = None,
        cache_size: int = 128,
        timeout: float = RENDER_TIMEOUT,
        start_method: str | None = None,
        inline_first: bool = True,
    ) -> None:
        self.workers = default_workers() if workers is None else max(0, int(workers))
        #: Render the very first chart in a thread here instead of waiting for workers to start:
        #: a one-shot command (`coach plan --chart`) then never starts a pool at all.
        self.inline_first = inline_first
        name = (renderer or jobs.DEFAULT_RENDERER).strip().lower()
        if name not in jobs.RENDERERS:
            raise UserError(f"unknown renderer {name[:20]!r}; accepted: {', '.join(jobs.RENDERERS)}")
        self.renderer = name
        self.cache_size = cache_size
        self.timeout = timeout
        self.start_method = _start_method(start_method)
        self.stats = ChartStats()
        self._executor: cf.Executor | None = None
        self._thread: cf.ThreadPoolExecutor | None = None
        self._used_inline = False
        self._lock = threading.Lock()
        self._cache: OrderedDict[Hashable, list[bytes]] = OrderedDict()
        self._inflight: dict[Hashable, cf.Future[list[bytes]]] = {}
        self._closed = False

    # -- executor

    def _make_executor(self) -> cf.Executor:
        if self.workers == 0:
            return cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="chart")
        ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            # the fork server imports the renderer once; every worker forks from it warm
            ctx.set_forkserver_preload(["renderers.jobs", "renderers.fast_render"])
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=jobs.warm_up,
            max_tasks_per_child=TASKS_PER_WORKER,
        )

    def _pool(self) -> cf.Executor:
        with self._lock:
            if self._closed:
                raise ChartError("the chart service is shut down")
            if self._executor is None:
                self._executor = self._make_executor()
            return self._executor

    def _next_executor(self) -> cf.Executor:
        """Where the next render runs: the pool, except the service's very first chart (see `inline_first`)."""
        with self._lock:
            first = self.inline_first and self.workers > 0 and self._executor is None and not self._used_inline
            if first and not self._closed:
                self._used_inline = True
                if self._thread is None:
                    self._thread = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="chart-first")
                return self._thread
        return self._pool()

    def _reset_pool(self, broken: cf.Executor, *, kill: bool = False) -> None:
        """Drop `broken` so the next render starts fresh workers; `kill` also ends its (stuck) worker processes."""
        with self._lock:
            if self._executor is broken:
                self._executor = None
        if kill and isinstance(broken, cf.ProcessPoolExecutor):
            terminate = getattr(broken, "terminate_workers", None)  # Python 3.14+
            if terminate is not None:
                terminate()
                return
            for proc in list(getattr(broken, "_processes", {}).values()):
                proc.terminate()
        broken.shutdown(wait=False, cancel_futures=True)

    async def warm(self) -> None:
        """Start the workers now (each draws a throwaway chart) instead of on the first request."""
        pool = self._pool()
        n = max(1, self.workers)
        await asyncio.gather(*(asyncio.wrap_future(pool.submit(jobs.warm_up)) for _ in range(n)))

    # -- rendering

    async def render(
        self,
        specs: Sequence[ChartSpec],
        *,
        renderer: str | None = None,
        grid: bool = False,
        key: Hashable | None = None,
    ) -> list[bytes]:
        """PNG bytes per spec (or one grid image), rendered in the pool; cached under `key` when given."""
        job = jobs.RenderJob(specs=tuple(specs), renderer=(renderer or self.renderer).lower(), grid=grid)
        full_key = None if key is None else (key, job.renderer, grid)
        if full_key is not None:
            hit = self._cache.get(full_key)
            if hit is not None:
                self._cache.move_to_end(full_key)
                self.stats.hits += 1
                return list(hit)
            pending = self._inflight.get(full_key)
            if pending is not None:
                self.stats.shared += 1
                return list(await self._await(pending))
        started = time.perf_counter()
        for attempt in (1, 2):
            pool = self._next_executor()
            future: cf.Future[list[bytes]] | None = None
            try:
                future = pool.submit(jobs.run, job)  # raises at once when a worker already died
                if full_key is not None:
                    self._inflight[full_key] = future
                pngs = await self._await(future)
                break
            except cf.process.BrokenProcessPool:
                self.stats.failures += 1
                log.warning("chart_pool_broken", attempt=attempt)
                self._reset_pool(pool)
                if attempt == 2:
                    raise ChartError("the chart worker stopped unexpectedly; try again") from None
            except TimeoutError:
                self.stats.failures += 1
                if future is not None:
                    future.cancel()
                log.warning("chart_render_timeout", seconds=self.timeout)
                self._reset_pool(pool, kill=True)
                raise ChartError(f"rendering took longer than {self.timeout:.0f}s; try again") from None
            finally:
                if full_key is not None and future is not None and self._inflight.get(full_key) is future:
                    del self._inflight[full_key]
        self.stats.renders += 1
        metrics.CHART_RENDER_SECONDS.observe(time.perf_counter() - started)
        if full_key is not None:
            self._cache[full_key] = list(pngs)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return list(pngs)

    async def _await(self, future: cf.Future[list[bytes]]) -> list[bytes]:
        # shield: a cancelled caller must not cancel a render another caller shares
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.timeout)

    async def plan_chart(
        self,
        *,
        symbol: str,
        interval: str,
        bars: pd.DataFrame,
        plan: Plan | None,
        levels: list[Level],
        as_of: datetime,
        session_status: str,
        source: str,
        style: str | None = None,
        theme: str = "dark",
        levels_mode: LevelsMode = "priority",
        renderer: str | None = None,
        scale_plan: bool = True,
        note: str = "",
    ) -> Attachment:
        """The plan chart as a PNG attachment named like "TSLA-5m-P-1A2B3C.png"."""
        spec = build_spec(
            symbol=symbol,
            interval=interval,
            bars=bars,
            plan=plan,
            levels=levels,
            as_of=as_of,
            session_status=session_status,
            source=source,
            style=style,
            theme=theme,
            levels_mode=levels_mode,
            scale_plan=scale_plan,
            note=note,
        )
        key = chart_key(spec, plan, as_of, theme, style, levels_mode, scale_plan, levels)
        png = (await self.render([spec], renderer=renderer, key=key))[0]
        return Attachment(
            filename=chart_filename(symbol, [spec.interval], plan, as_of), data=png, description=describe(spec, plan)
        )

    # -- lifecycle

    def close(self) -> None:
        """Stop the workers (pending renders are cancelled)."""
        with self._lock:
            self._closed = True
            executors = [self._executor, self._thread]
            self._executor = self._thread = None
        for executor in executors:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)

    async def aclose(self) -> None:
        """Stop the workers without blocking the event loop."""
        await asyncio.to_thread(self.close)


# --------------------------------------------------------------------------- naming and keys


def _bars_token(spec: ChartSpec) -> tuple[int, int, int, float, float]:
    c = spec.candles
    return (len(c), int(c.stamps[0]), int(c.stamps[-1]), float(c.close[-1]), float(c.volume[-1]))


def chart_key(
    spec: ChartSpec,
    plan: Plan | None,
    as_of: datetime,
    theme: str,
    style: str | None,
    levels_mode: str,
    scale_plan: bool,
    levels: Sequence[Level] = (),
) -> tuple[Hashable, ...]:
    """The cache key: (symbol, interval, as_of, plan id/version, theme) plus options and what the bars are."""
    lv = hashlib.blake2b(
        repr(sorted((x.kind, round(x.price, 6), x.low, x.high) for x in levels)).encode(), digest_size=8
    ).hexdigest()
    return (
        spec.symbol,
        spec.interval,
        as_of.isoformat(),
        plan.plan_id if plan else None,
        plan.version if plan else None,
        theme,
        style,
        levels_mode,
        scale_plan,
        spec.width,
        spec.height,
        _bars_token(spec),
        lv,
        spec.y_range,
    )


def chart_filename(symbol: str, intervals: Sequence[str], plan: Plan | None, as_of: datetime) -> str:
    """ "TSLA-5m-P-1A2B3C.png" for a plan, "TSLA-5m-20240313-1100.png" without one."""
    ivs = "+".join(intervals)
    if plan is not None:
        return f"{symbol}-{ivs}-{plan.plan_id}.png"
    return f"{symbol}-{ivs}-{as_of.astimezone(ZoneInfo(TZ_NAME)):%Y%m%d-%H%M}.png"


def chart_note(note: str, limit: int = 90) -> str:
    """The first sentence of `note`, short enough for the line under a chart's title."""
    first = note.split(". ")[0].strip().rstrip(".")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def describe(spec: ChartSpec, plan: Plan | None) -> str:
    """Alt text for the image: what it shows in one sentence."""
    text = f"{spec.symbol} {spec.interval} candlestick chart"
    if plan is not None:
        t = ", ".join(format_price(x.price, spec.tick) for x in plan.targets)
        text += (
            f" with a {plan.direction} plan: entry {format_price(plan.entry, spec.tick)}, "
            f"stop {format_price(plan.stop, spec.tick)}, targets {t}"
        )
    return text


# --------------------------------------------------------------------------- charts for a command


class ChartResult(BaseModel):
    """What `/chart` returns as data: the files, the time, the plan drawn (if any) and the levels in view."""

    symbol: str
    intervals: list[str]
    as_of: datetime
    session: str
    sources: list[str]
    files: list[str]
    last: float
    plan: Plan | None = None
    note: str = ""
    levels: list[Level] = []
    #: The live chart page of this result (signed, expiring), or None when COACH_PUBLIC_URL is not set.
    chart_url: str | None = None


@dataclass
class ChartOutcome:
    """Attachments plus the structured result."""

    attachments: list[Attachment]
    result: ChartResult


def _lookback_start(interval: str, end: datetime) -> datetime:
    """A start time that yields the visible window plus EMA warm-up bars of `interval` before `end`."""
    need = warmup_bars(interval)
    minutes = interval_minutes(interval)
    if minutes < 1440:
        per_session = max(1, 390 // minutes)
        sessions = need // per_session + 2
    elif interval == "1D":
        sessions = need + 5
    else:
        sessions = need * 5 + 10
    sch = last_sessions(end, sessions)
    if not len(sch.dates):
        return end - timedelta(days=max(7, sessions * 2))
    first: datetime = pd.Timestamp(int(sch.opens[0]), tz="UTC").to_pydatetime()
    return first


async def fetch_bars(market: MarketData, symbol: str, interval: str, end: datetime) -> Bars:
    """Bars of `symbol` at `interval` up to `end`, enough for the chart window and its EMAs."""
    return await market.bars(symbol, interval, _lookback_start(interval, end), end)


def detect_levels(symbol: str, df: pd.DataFrame, interval: str) -> list[Level]:
    """The level engine's levels of one interval (swings, zones, FVGs, anchored VWAPs, ...), or [] when it fails.

    The chart's own basic levels (opening range, prior day, session high/low) take over
    when this returns nothing.
    """
    try:
        return list(engine_levels(symbol, df, interval, limit=LEVELS_FROM_ENGINE))
    except Exception:  # optional enrichment: a failure here must not cost the user the chart
        log.exception("level_engine_failed", symbol=symbol, interval=interval)
        return []


async def make_charts(
    ctx: Ctx,
    service: ChartService,
    *,
    symbol: str,
    intervals: Sequence[str],
    with_plan: bool = False,
    style: str | None = None,
    theme: str = "dark",
    levels_mode: LevelsMode = "priority",
    renderer: str | None = None,
    grid: bool = False,
    scale_plan: bool = True,
    plan_id: str | None = None,
) -> ChartOutcome:
    """Charts of `symbol` at each interval (or one grid image), with the plan when asked and available.

    With `plan_id` the chart is of that stored plan (bot.planning.recall_plan), drawn as of its time.
    """
    ivs: list[str] = []
    for iv in intervals:
        canon = normalise_interval(iv)
        if canon not in ivs:
            ivs.append(canon)
    if len(ivs) > MAX_CHART_INTERVALS:
        raise UserError(f"at most {MAX_CHART_INTERVALS} intervals per chart, got {len(ivs)}")
    get_theme(theme)  # a bad theme is a user error before any data is fetched
    now = ctx.now()
    plan: Plan | None = None
    note = ""
    plan_bars: dict[str, pd.DataFrame] = {}
    plan_levels: list[Level] = []
    plan_source = ""
    if with_plan or plan_id:
        if plan_id:
            outcome = await recall_plan(ctx, plan_id)
            symbol, style, now = outcome.result.symbol, outcome.result.style, outcome.result.as_of
        else:
            outcome = await make_plan(ctx, symbol, style)
        plan = outcome.result.plan
        plan_bars = dict(outcome.bars)
        plan_levels = list(outcome.levels)
        plan_source = outcome.source
        if plan is None:
            note = outcome.result.reason or "no setup qualifies right now"
        else:
            style = style or plan.style
    if not ivs:  # no interval asked for: the plan's own (execution) interval, else 5m
        ivs = [plan.interval] if plan is not None else [DEFAULT_INTERVAL]
    specs: list[ChartSpec] = []
    first_df = pd.DataFrame()
    sources: list[str] = []
    as_of = now
    last = float("nan")
    for iv in ivs:
        df = plan_bars.get(iv)
        source = "sim"
        if df is None or df.empty:
            bars = await fetch_bars(ctx.market, symbol, iv, now)
            df, source, as_of = bars.df, bars.source, bars.as_of
        else:
            as_of = plan.as_of if plan is not None else now
            source = plan_source or ctx.market.name
        if df.empty:
            raise UserError(f"no {iv} bars for {symbol} before {as_of:%Y-%m-%d %H:%M} UTC")
        levels = plan_levels if (plan is not None and iv == plan.interval) else []
        if not levels:
            levels = detect_levels(symbol, df, iv)
        status = session_info(as_of).status
        specs.append(
            build_spec(
                symbol=symbol,
                interval=iv,
                bars=df,
                plan=plan,
                levels=levels,
                as_of=as_of,
                session_status=status,
                source=source,
                style=style,
                theme=theme,
                levels_mode=levels_mode,
                scale_plan=scale_plan,
                note=chart_note(note),
            )
        )
        last = float(df["close"].iloc[-1])
        if len(specs) == 1:
            first_df = df  # the levels listed are the first chart's
        if f"bars: {source}" not in sources:
            sources.append(f"bars: {source}")
    key = tuple(chart_key(s, plan, as_of, theme, style, levels_mode, scale_plan, plan_levels) for s in specs)
    pngs = await service.render(specs, renderer=renderer, grid=grid, key=key)
    if grid and len(specs) > 1:
        names = [chart_filename(symbol, ivs, plan, as_of)]
        descs = [f"{symbol} charts: {', '.join(ivs)}"]
        keys = ["grid"]
    else:
        names = [chart_filename(symbol, [s.interval], plan, as_of) for s in specs]
        descs = [describe(s, plan) for s in specs]
        keys = [s.interval for s in specs]
    attachments = [Attachment(filename=n, data=p, description=d, key=k) for n, p, d, k in zip(names, pngs, descs, keys)]
    # the reply lists the levels nearest the last price first
    shown = sorted(chart_levels(specs[0], first_df), key=lambda lv: abs(lv.price - last))
    result = ChartResult(
        symbol=symbol,
        intervals=ivs,
        as_of=as_of,
        session=session_info(as_of).status,
        sources=sources,
        files=names,
        last=last,
        plan=plan,
        note=note,
        levels=shown,
    )
    return ChartOutcome(attachments=attachments, result=result)


def chart_levels(spec: ChartSpec, bars: pd.DataFrame) -> list[Level]:
    """The levels and zones `spec` shows, as scored by the level engine plus confluence, named as people read them."""
    from analytics.indicators import atr
    from analytics.levels import CONFLUENCE_ATR, with_confluence
    from renderers.plan_chart import level_name

    levels = list(spec.shown_levels)
    if not levels:
        return []
    a = atr(bars["high"], bars["low"], bars["close"]) if len(bars) > 14 else np.array([np.nan])
    last_atr = float(a[-1]) if np.isfinite(a[-1]) else float(bars["close"].iloc[-1]) * 0.002
    scored = with_confluence(levels, CONFLUENCE_ATR * last_atr)
    return [lv.model_copy(update={"label": level_name(lv, spec.interval)}) for lv in scored]
