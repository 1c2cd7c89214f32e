"""`coach backtest`: replay the planner over history with a progress bar; tables, a PNG, JSON or a trades CSV."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from analytics.sessions import EXCHANGE_TZ
from core.errors import UserError

if TYPE_CHECKING:  # annotations only: the command imports these when it runs, not when the CLI loads
    from rich.console import Console

    from analytics.backtest_engine import BacktestResult, BacktestSpec, History
    from analytics.backtest_stats import GroupStats, Report
    from analytics.outcomes import TradeOutcome
    from providers.base import MarketData


def parse_when(value: str, *, end: bool) -> datetime:
    """A date (the start of that day in New York; for an end, the whole day is included) or an ISO time with an offset."""
    text = value.strip()
    try:
        d = date.fromisoformat(text)
    except ValueError:
        d = None
    if d is not None:
        day = d + timedelta(days=1) if end else d
        return datetime.combine(day, time(0, 0), tzinfo=EXCHANGE_TZ).astimezone(UTC)
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"cannot read {'--end' if end else '--start'} {text[:30]!r}; use a date like 2024-03-15 "
            "or a time with an offset like 2024-03-15T09:30:00-04:00"
        ) from None
    if ts.tzinfo is None:
        raise UserError(f"{'--end' if end else '--start'} {text[:30]} needs a UTC offset, or give just the date")
    return ts.astimezone(UTC)


def _symbols(value: tuple[str, ...]) -> list[str]:
    from analytics.symbols import validate_symbol

    out: list[str] = []
    for v in value:
        for part in v.replace(",", " ").split():
            sym = validate_symbol(part)
            if sym not in out:
                out.append(sym)
    return out


def register(group: click.Group) -> None:
    group.add_command(backtest_cli)


@click.command("backtest")
@click.option("--symbols", "-s", "symbols", multiple=True, required=True, help="tickers: SPY,QQQ or repeated -s SPY -s QQQ")
@click.option(
    "--strategy",
    default="all",
    show_default=True,
    help="all (each strategy on its own), best (the coach's pick) or a strategy id",
)
@click.option("--style", default="intraday", show_default=True, help="scalp, intraday, swing or leaps")
@click.option("--start", default=None, help="first day (2024-01-02) or time with offset; default: 3 months before --end")
@click.option("--end", default=None, help="last day, included (2024-12-31) or time with offset; default: the last close")
@click.option(
    "--data", "data_dir", default=None, type=click.Path(file_okay=False), help="replay bars from this folder of CSV/Parquet files"
)
@click.option("--every", type=int, default=None, help="ask the planner every N execution bars (default: 15 minutes intraday)")
@click.option("--workers", type=int, default=None, help="worker processes for day styles (default: the CPUs, at most 4)")
@click.option("--out", "out", default=None, help="write the equity/calibration PNG here (default: under COACH_OUT_DIR)")
@click.option("--trades", "trades_path", default=None, help="also write every plan's outcome to this CSV")
@click.option("--json", "json_out", is_flag=True, help="print the figures as one JSON object")
@click.option(
    "--as-of", "as_of", default=None, help="pin 'now' (ISO 8601 with offset): the default end and what the market may show"
)
def backtest_cli(
    symbols: tuple[str, ...],
    strategy: str,
    style: str,
    start: str | None,
    end: str | None,
    data_dir: str | None,
    every: int | None,
    workers: int | None,
    out: str | None,
    trades_path: str | None,
    json_out: bool,
    as_of: str | None,
) -> None:
    """Replay the coach's planner bar by bar over history and score every plan it would have made.

    Per strategy and per quality bucket: plans, hit rate, expectancy in R, profit factor,
    max drawdown in R, average MAE/MFE; and how well the plans' odds held up: each plan's
    probability of T1 before the stop (walk-forward: calibrated only on the run's plans resolved
    before its day) against what happened, with the Brier score, the base rate's, the skill, and
    the quality grade's calibration beside it. Data: the offline market, the configured
    provider, or --data DIR with files like SPY_5m.csv / SPY_1D.parquet.
    """
    from bot.cli.common import as_of_option, run

    pinned = as_of_option(as_of)

    async def go() -> None:
        from rich.console import Console

        from analytics.backtest_engine import BacktestSpec, check_spec
        from analytics.sessions import market_time
        from bot.backtest_runner import default_workers, load_history
        from bot.backtest_runner import run as run_backtest
        from bot.config import get_settings
        from core.clock import utc_now

        settings = get_settings()
        err = Console(stderr=True, highlight=False)
        now = pinned or utc_now()
        syms = _symbols(symbols)
        end_at = parse_when(end, end=True) if end else market_time(now) + timedelta(seconds=1)
        end_at = min(end_at, now)
        start_at = parse_when(start, end=False) if start else end_at - timedelta(days=91)
        spec = check_spec(BacktestSpec(tuple(syms), style, start_at, end_at, strategy=strategy, every=every))
        market: MarketData
        if data_dir:
            from providers.replay import ReplayMarket

            market = ReplayMarket(data_dir, now=lambda: now)
        else:
            from bot.market_setup import build_market

            market = build_market(settings)
            if getattr(market, "name", "") == "sim":
                from providers.sim import SimMarket

                market = SimMarket(seed=settings.coach_seed, now=lambda: now)
        try:
            with err.status(
                f"loading {spec.exec_interval} bars of {len(syms)} symbol{'s' if len(syms) != 1 else ''} from {market.name}…"
            ):
                history = await load_history(market, spec, now=now)
        finally:
            closer = getattr(market, "aclose", None)
            if closer is not None:
                await closer()
        n_workers = default_workers() if workers is None else max(1, min(16, workers))
        result = _run_with_progress(run_backtest, history, spec, n_workers, err)
        rep = result.summary()
        png_path = _write_png(rep, result, spec, out, Path(settings.coach_out_dir))
        if trades_path:
            _write_trades(result.outcomes, Path(trades_path))
        if json_out:
            click.echo(json.dumps(_summary(result, rep, spec, png_path), separators=(",", ":"), default=str))
        else:
            _print(rep, result, spec, png_path, trades_path)

    run(go)


def _run_with_progress(
    run_backtest: Callable[..., BacktestResult], history: History, spec: BacktestSpec, workers: int, err: Console
) -> BacktestResult:
    from bot.cli.common import replay_progress

    with replay_progress(err) as bar:
        task = bar.add_task(f"{spec.style} · {len(spec.symbols)} symbols", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run_backtest(history, spec, progress=tick, workers=workers)


def _write_png(rep: Report, result: BacktestResult, spec: BacktestSpec, out: str | None, out_dir: Path) -> Path:
    from bot.commands.backtest import picture

    names = " ".join(spec.symbols)
    title = f"Backtest · {spec.style} · {names if len(names) <= 48 else names[:47] + '…'}"
    span = f"{spec.start.astimezone(EXCHANGE_TZ):%Y-%m-%d} → {(spec.end - timedelta(seconds=1)).astimezone(EXCHANGE_TZ):%Y-%m-%d}"
    png = picture(rep, result.outcomes, title, f"{span} · strategy {spec.strategy} · {', '.join(result.sources)}")
    if out:
        path = Path(out).expanduser()
    else:
        path = out_dir / f"backtest-{spec.style}-{datetime.now():%Y%m%d-%H%M%S}.png"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(png)
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _write_trades(outcomes: Sequence[TradeOutcome], path: Path) -> None:
    cols = [
        "plan_id",
        "symbol",
        "strategy",
        "style",
        "direction",
        "probability",
        "quality",
        "entry",
        "stop",
        "targets",
        "planned_at",
        "status",
        "exit_reason",
        "first",
        "hit_t1",
        "targets_hit",
        "r_multiple",
        "mae_r",
        "mfe_r",
        "entry_fill",
        "exit_price",
        "entered_at",
        "exited_at",
        "time_in_trade_s",
    ]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for o in outcomes:
                d = o.model_dump(mode="json")
                d["targets"] = ";".join(f"{t:g}" for t in o.targets)
                w.writerow(["" if d.get(c) is None else d[c] for c in cols])
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def _summary(result: BacktestResult, rep: Report, spec: BacktestSpec, png: Path) -> dict[str, Any]:
    from bot.commands.backtest_summary import BacktestSummary

    s = BacktestSummary.of(
        result=result, rep=rep, spec=spec, symbols=list(spec.symbols), start=spec.start, end=spec.end
    ).model_dump(mode="json")
    s["png"] = str(png)
    s["plans_per_second"] = round(result.plans / result.elapsed_s, 2) if result.elapsed_s > 0 else None
    return s


def _held(seconds: float | None) -> str:
    """A holding time people read at a glance: 45m, 5.2h, 3.8d (calendar time)."""
    if seconds is None:
        return "—"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _print(rep: Report, result: BacktestResult, spec: BacktestSpec, png: Path, trades_path: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from bot.commands.backtest import _pct, _pf, _r, calibration_words

    con = Console(highlight=False, soft_wrap=True)
    if not con.is_terminal:
        con = Console(highlight=False, soft_wrap=True, width=150)  # a pipe or a file: keep the tables whole

    def table(title: str, groups: Iterable[GroupStats], head: str) -> Table:
        t = Table(title=title, title_justify="left", header_style="bold")
        for name in (head, "plans", "trades", "hit%", "T1%", "exp R", "PF", "max DD", "MAE", "MFE", "avg hold"):
            t.add_column(name, justify="left" if name == head else "right")
        for g in groups:
            hold = _held(g.avg_time_in_trade_s)
            style = "bold" if g.key == "all" else None
            t.add_row(
                g.key,
                str(g.plans),
                str(g.trades),
                _pct(g.hit_rate),
                _pct(g.t1_rate),
                _r(g.expectancy_r),
                _pf(g),
                f"{g.max_drawdown_r:.1f}R",
                f"{g.avg_mae_r or 0:.2f}",
                f"{g.avg_mfe_r or 0:.2f}",
                hold,
                style=style,
            )
        return t

    con.print(
        f"[bold]Backtest[/] {', '.join(spec.symbols)} · {spec.style} · strategy {spec.strategy} · "
        f"{result.decisions:,} decisions, {result.plans:,} plans in {result.elapsed_s:.1f}s "
        f"({result.plans / max(result.elapsed_s, 1e-9):.0f} plans/s) · {', '.join(result.sources)}"
    )
    if result.empty_reason:
        from rich.markup import escape

        con.print(f"[bold yellow]No plan:[/] {escape(result.empty_reason)}.")
    con.print(table("Per strategy", [*rep.by_strategy, rep.overall], "strategy"))
    con.print(table("Per quality bucket (a setup grade, not odds)", rep.by_quality, "quality"))
    pairs = [("T1 odds vs reached T1 before the stop (walk-forward)", rep.calibration)]
    if rep.quality_calibration is not None:
        pairs.append(("Quality grade read as odds, for comparison", rep.quality_calibration))
    for title, c in pairs:
        cal = Table(title=title, title_justify="left", header_style="bold")
        for name in ("bucket", "plans", "said", "observed T1 rate", "gap"):
            cal.add_column(name, justify="left" if name == "bucket" else "right")
        for b in c.buckets:
            if b.n:
                gap = (b.observed or 0) - (b.mean_forecast or 0)
                cal.add_row(f"{b.low:.1f}-{b.high:.1f}", str(b.n), f"{b.mean_forecast:.2f}", f"{b.observed:.2f}", f"{gap:+.2f}")
        con.print(cal)
    con.print(calibration_words(rep.calibration, rep.quality_calibration))
    con.print(f"[dim]saved {png}[/]")
    if trades_path:
        con.print(f"[dim]saved {trades_path}[/]")
