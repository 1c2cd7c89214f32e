"""Plan odds for the bot: fit them from replayed history, store the fit, and hand the newest one to the planner.

`calibrate` replays the planner over the recent history of the odds symbols (COACH_ODDS_SYMBOLS)
in every style, with the backtest's rules (every strategy on its own, outcomes by
`analytics.outcomes`), and fits `analytics.calibration` on the outcomes resolved by then.
`refit` stores that fit (table `odds_fits`); `coach calibrate` runs it by hand and `coach serve`
after each close (`odds_refit_task`). `bot.current_odds.current_fit` is what /plan, /scan and
re-plans read: the newest stored fit, cached for a minute; with none stored, plans carry the
no-edge prior and say so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from analytics.sessions import last_sessions, market_time, session_info
from analytics.symbols import validate_symbol
from bot.current_odds import current_fit
from bot.request import new_request_id
from bot.services import Services
from core.errors import CoachError, UserError

if TYPE_CHECKING:
    import pandas as pd

    from analytics.backtest_engine import BacktestResult
    from analytics.calibration import OddsFit
    from analytics.outcomes import TradeOutcome
    from providers.base import MarketData

log = structlog.get_logger("coach.odds")

#: Sessions of history replayed per style: what a free provider still serves at that interval
#: (Yahoo keeps 1m bars 30 days and 5m bars 60), and enough plans to calibrate on.
CALIBRATION_SESSIONS: dict[str, int] = {"scalp": 20, "intraday": 55, "swing": 250, "leaps": 750}
STYLES: tuple[str, ...] = ("scalp", "intraday", "swing", "leaps")
#: Most symbols one calibration replays.
MAX_SYMBOLS = 20
#: How often the serve task wakes to see whether a session closed since the last fit.
EVERY_S = 900.0

#: (style, decisions done, decisions in total) while a style replays.
Progress = Callable[[str, int, int], None]


@dataclass
class StyleRun:
    """What one style's replay gave the fit."""

    style: str
    sessions: int
    plans: int = 0
    resolved: int = 0
    hits: int = 0
    error: str | None = None


@dataclass
class Calibration:
    """A fit and how it was made."""

    fit: OddsFit
    runs: list[StyleRun] = field(default_factory=list)
    elapsed_s: float = 0.0
    fit_id: int | None = None


def odds_symbols(text: str) -> list[str]:
    """The symbols of COACH_ODDS_SYMBOLS or --symbols (comma or space separated); UserError on a bad one."""
    out: list[str] = []
    for part in text.replace(",", " ").split():
        sym = validate_symbol(part)
        if sym not in out:
            out.append(sym)
    if not out:
        raise UserError("give at least one symbol to calibrate on, e.g. --symbols SPY,QQQ")
    if len(out) > MAX_SYMBOLS:
        raise UserError(f"at most {MAX_SYMBOLS} symbols per calibration (got {len(out)})")
    return out


def odds_styles(text: str) -> list[str]:
    """Styles from a comma list ("all" for every style); UserError naming the accepted ones."""
    words = [w.strip().lower() for w in text.replace(",", " ").split() if w.strip()]
    if not words or words == ["all"]:
        return list(STYLES)
    bad = [w for w in words if w not in STYLES]
    if bad:
        raise UserError(f"unknown style {bad[0][:20]!r}; accepted: all, {', '.join(STYLES)}")
    return list(dict.fromkeys(words))


def _span(style: str, now: datetime, sessions: int) -> tuple[datetime, datetime]:
    """(start, end) of the replay: the last `sessions` sessions up to the last close."""
    from datetime import UTC

    end = market_time(now) + timedelta(seconds=1)
    sch = last_sessions(end, sessions)
    start = datetime.fromtimestamp(int(sch.opens[0]) / 1e9, tz=UTC) if len(sch.dates) else end - timedelta(days=sessions)
    return start, min(end, now)


async def replay_style(
    market: MarketData,
    symbols: Sequence[str],
    style: str,
    now: datetime,
    *,
    sessions: int | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> list[TradeOutcome]:
    """Every plan the planner would have made in `style` over the last sessions, played to its outcome."""
    from analytics.backtest_engine import BacktestSpec, check_spec
    from bot.backtest_runner import load_history, run

    start, end = _span(style, now, sessions or CALIBRATION_SESSIONS[style])
    spec = check_spec(BacktestSpec(tuple(symbols), style, start, end, strategy="all"))
    history = await load_history(market, spec, now=now)

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress(style, done, total)

    result = await asyncio.to_thread(run, history, spec, progress=tick, workers=workers)
    return result.outcomes


def replay_bars(
    frames: dict[str, pd.DataFrame],
    style: str,
    start: datetime,
    end: datetime,
    *,
    source: str = "bars given",
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = 1,
) -> BacktestResult:
    """The backtest of `style` over bars already in hand (per symbol, the style's execution interval).

    For history that is not behind a MarketData, like a CSV of daily bars: the same replay,
    rules and walk-forward odds as `coach backtest`.
    """
    import pandas as pd

    from analytics.backtest_engine import BacktestSpec, arrange_history, check_spec, history_span
    from bot.backtest_runner import run
    from bot.planning import LOOKBACK_SESSIONS

    spec = check_spec(BacktestSpec(tuple(frames), style, start, end, strategy="all"))
    span = history_span(spec, LOOKBACK_SESSIONS)
    lo, hi = pd.Timestamp(span.start), pd.Timestamp(span.end)
    cut = {s: df[(df.index >= lo) & (df.index < hi)] for s, df in frames.items()}
    history = arrange_history(spec, span, cut, {}, [source], LOOKBACK_SESSIONS)
    return run(history, spec, progress=progress, workers=workers)


async def calibrate(
    market: MarketData,
    symbols: Sequence[str],
    now: datetime,
    *,
    styles: Sequence[str] = STYLES,
    sessions: dict[str, int] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Calibration:
    """Replay every style over the symbols' history and fit the odds on the outcomes resolved by `now`.

    A style whose history cannot be had (a provider without those bars) is reported and left out;
    the others still make the fit.
    """
    import time

    from analytics import calibration as cal

    t0 = time.perf_counter()
    runs: list[StyleRun] = []
    outcomes: list[TradeOutcome] = []
    for style in styles:
        n_sessions = (sessions or {}).get(style, CALIBRATION_SESSIONS[style])
        run = StyleRun(style=style, sessions=n_sessions)
        runs.append(run)
        try:
            got = await replay_style(market, symbols, style, now, sessions=n_sessions, progress=progress, workers=workers)
        except CoachError as exc:
            run.error = str(exc)[:200]
            continue
        samples, _ = cal.samples_from(got)
        known = samples.resolved_ns <= cal.ns_of(now)
        run.plans, run.resolved, run.hits = len(got), int(known.sum()), int(samples.hit[known].sum())
        outcomes.extend(got)
    samples, _ = cal.samples_from(outcomes)
    samples = samples.take(samples.resolved_ns <= cal.ns_of(now))
    sources = [getattr(market, "name", "market")]
    fit = cal.fit(samples, fitted_at=now, symbols=symbols, sources=sources)
    return Calibration(fit=fit, runs=runs, elapsed_s=time.perf_counter() - t0)


async def store(services: Services, fit: OddsFit) -> int:
    """Save `fit` as the newest and make this process read it at once."""
    from storage.odds_fits import save_fit

    async with services.db() as s, s.begin():
        fit_id = await save_fit(s, fit)
    services.odds_fits.invalidate()
    return fit_id


async def refit(services: Services, *, now: datetime | None = None, progress: Progress | None = None) -> Calibration:
    """Fit on the configured symbols' history (the service's market) and store the fit (unless nothing resolved)."""
    symbols = odds_symbols(services.settings.coach_odds_symbols)
    done = await calibrate(services.market, symbols, now or services.clock(), progress=progress, workers=1)
    if done.fit.n:  # a fit of nothing (no history served) must not replace one that rests on outcomes
        done.fit_id = await store(services, done.fit)
    return done


async def refit_pass(services: Services, done: set[date]) -> Calibration | None:
    """Refit once per closed session (tracked in `done`), and at start when the newest fit predates the last close."""
    info = session_info(services.clock())
    if info.status == "open":
        return None
    day = info.last_close.date()
    if day in done:
        return None
    fit = await current_fit(services)
    if fit is not None and fit.fitted_at >= info.last_close:
        done.add(day)
        return None
    result = await refit(services)
    done.add(day)
    log.info(
        "odds_refit",
        day=str(day),
        resolved=result.fit.n,
        hits=result.fit.hits,
        nodes=len(result.fit.nodes),
        s=round(result.elapsed_s, 1),
    )
    return result


async def odds_refit_task(services: Services) -> None:
    """Wake every EVERY_S seconds and refit after each close (off with COACH_ODDS_REFIT=false).

    The first pass waits one period: a refit replays minutes of history, which a process that was
    just started (or restarted in a loop, or started for a short test) should not spend first.
    """
    if not services.settings.coach_odds_refit:
        return
    done: set[date] = set()
    while True:
        await asyncio.sleep(EVERY_S)
        structlog.contextvars.bind_contextvars(request_id=new_request_id(), surface="scheduler", command="odds_refit")
        try:
            await refit_pass(services, done)
        except asyncio.CancelledError:
            raise
        except Exception:  # one bad pass must not stop the service; the next one retries
            log.exception("odds_refit_failed")


__all__ = [
    "CALIBRATION_SESSIONS",
    "STYLES",
    "Calibration",
    "StyleRun",
    "calibrate",
    "replay_bars",
    "odds_refit_task",
    "odds_styles",
    "odds_symbols",
    "refit",
    "refit_pass",
    "store",
]
