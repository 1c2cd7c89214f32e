"""`coach calibrate`: fit the plans' odds on replayed history now, store the fit, and show what was fitted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # annotations only: the command imports these when it runs, not when the CLI loads
    from rich.console import Console

    from bot.odds import Calibration


def register(group: click.Group) -> None:
    group.add_command(calibrate_cli)


@click.command("calibrate")
@click.option("--symbols", "-s", "symbols", default=None, help="tickers to replay (default: COACH_ODDS_SYMBOLS)")
@click.option("--styles", default="all", show_default=True, help="all, or some of scalp,intraday,swing,leaps")
@click.option("--sessions", type=click.IntRange(5, 2000), default=None, help="sessions of history per style (default: per style)")
@click.option(
    "--data", "data_dir", default=None, type=click.Path(file_okay=False), help="replay bars from this folder of CSV/Parquet files"
)
@click.option("--json", "json_out", is_flag=True, help="print the fit as one JSON object")
@click.option("--as-of", "as_of", default=None, help="pin 'now' (ISO 8601 with offset): the fit uses what was resolved by then")
def calibrate_cli(
    symbols: str | None, styles: str, sessions: int | None, data_dir: str | None, json_out: bool, as_of: str | None
) -> None:
    """Calibrate the plans' odds of T1 before the stop on the symbols' history, and store the fit.

    Replays the planner over the last sessions of every style (every strategy on its own, the
    backtest's rules), fits the chance of T1 before the stop per strategy x style x quality
    bucket on the resolved plans, shrunk towards the no-edge prior 1/(1+R), and stores it: /plan
    and /scan use it within a minute. `coach serve` does the same after each close.
    """
    from bot.cli.common import as_of_option, run

    pinned = as_of_option(as_of)

    async def go() -> None:
        from rich.console import Console

        from bot.app import build_services
        from bot.odds import CALIBRATION_SESSIONS, calibrate, odds_styles, odds_symbols, store
        from core.clock import utc_now
        from core.errors import UserError

        err = Console(stderr=True, highlight=False)
        chosen = odds_styles(styles)
        services = await build_services()
        try:
            syms = odds_symbols(symbols if symbols is not None else services.settings.coach_odds_symbols)
            now = pinned or utc_now()
            market = _market(services, data_dir, now)
            per = {s: sessions or CALIBRATION_SESSIONS[s] for s in chosen}
            try:
                done = await _with_progress(
                    err, lambda tick: calibrate(market, syms, now, styles=chosen, sessions=per, progress=tick)
                )
            finally:
                if market is not services.market_part.built():
                    closer = getattr(market, "aclose", None)
                    if closer is not None:
                        await closer()
            failed = [r for r in done.runs if r.error]
            if failed and len(failed) == len(done.runs):
                raise UserError(f"no history to calibrate on ({failed[0].style}: {failed[0].error}); nothing stored")
            if done.fit.n:  # a fit of nothing must not replace one that rests on outcomes
                done.fit_id = await store(services, done.fit)
        finally:
            await services.close()
        if json_out:
            click.echo(json.dumps(_summary(done), separators=(",", ":"), default=str))
        else:
            _print(done)

    run(go)


def _market(services: Any, data_dir: str | None, now: Any) -> Any:
    """The market to replay: a folder of files, the offline market pinned to `now`, or the configured provider."""
    if data_dir:
        from providers.replay import ReplayMarket

        return ReplayMarket(data_dir, now=lambda: now)
    market = services.market
    if getattr(market, "name", "") == "sim":
        from providers.sim import SimMarket

        return SimMarket(seed=services.settings.coach_seed, now=lambda: now)
    return market


async def _with_progress(err: Console, start: Any) -> Calibration:
    from bot.cli.common import replay_progress

    with replay_progress(err) as bar:
        tasks: dict[str, Any] = {}

        def tick(style: str, done: int, total: int) -> None:
            if style not in tasks:
                tasks[style] = bar.add_task(style, total=total)
            bar.update(tasks[style], completed=done, total=total)

        result: Calibration = await start(tick)
        return result


def _summary(done: Calibration) -> dict[str, Any]:
    fit = done.fit
    return {
        "fit_id": done.fit_id,
        "version": fit.version,
        "fitted_at": fit.fitted_at.isoformat(),
        "resolved_plans": fit.n,
        "t1_first": fit.hits,
        "symbols": fit.symbols,
        "sources": fit.sources,
        "elapsed_s": round(done.elapsed_s, 2),
        "styles": [
            {
                "style": r.style,
                "sessions": r.sessions,
                "plans": r.plans,
                "resolved": r.resolved,
                "t1_first": r.hits,
                "error": r.error,
            }
            for r in done.runs
        ],
        "nodes": {k: v.model_dump() for k, v in fit.nodes.items()},
    }


def _print(done: Calibration) -> None:
    import math

    from rich.console import Console
    from rich.table import Table

    from analytics.strategies import by_id

    con = Console(highlight=False, soft_wrap=True)
    if not con.is_terminal:
        con = Console(highlight=False, soft_wrap=True, width=130)
    fit = done.fit
    rate = f"{fit.hits / fit.n:.0%}" if fit.n else "—"
    stored = f"stored as fit #{done.fit_id}" if done.fit_id is not None else "nothing stored (the last fit stays in use)"
    con.print(
        f"[bold]Calibrated plan odds[/] on {fit.n:,} resolved plans ({fit.hits:,} reached T1 before the stop, {rate}) "
        f"of {', '.join(fit.symbols)} from {', '.join(fit.sources)} in {done.elapsed_s:.1f}s · {stored} "
        f"(model v{fit.version}, {fit.fitted_at:%Y-%m-%d %H:%M} UTC)"
    )
    runs = Table(title="Replayed", title_justify="left", header_style="bold")
    for name in ("style", "sessions", "plans", "resolved", "T1 first", "note"):
        runs.add_column(name, justify="left" if name in ("style", "note") else "right")
    for r in done.runs:
        rr = f"{r.hits / r.resolved:.0%}" if r.resolved else "—"
        runs.add_row(r.style, str(r.sessions), f"{r.plans:,}", f"{r.resolved:,}", rr, r.error or "")
    con.print(runs)
    t = Table(
        title="Per strategy x style: what happened against the no-edge prior 1/(1+R)",
        title_justify="left",
        header_style="bold",
    )
    for name in ("strategy", "style", "plans", "T1 first", "no-edge said", "odds vs no-edge"):
        t.add_column(name, justify="left" if name in ("strategy", "style") else "right")
    pairs = sorted((k, v) for k, v in fit.nodes.items() if k.count("|") == 1)
    for key, node in pairs:
        strategy, style = key.split("|")
        try:
            name = by_id(strategy).name
        except (KeyError, ValueError, LookupError):
            name = strategy
        t.add_row(
            name,
            style,
            f"{node.n:,}",
            f"{node.hits / node.n:.0%}" if node.n else "—",
            f"{node.expected / node.n:.0%}" if node.n else "—",
            f"x{math.exp(node.offset):.2f}",
        )
    con.print(t)
    if not fit.n:
        con.print(
            "No plan resolved in that history, so no fit was stored; without any fit plans carry the no-edge prior and say so."
        )
    else:
        con.print(
            "[dim]odds vs no-edge: the factor on the prior's odds after shrinking towards the parent "
            f"(style, then all plans) with {fit.strength:g} pseudo-plans; x1.00 is the no-edge prior.[/]"
        )
