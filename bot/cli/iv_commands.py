"""`coach iv record SYMBOLS` and `coach iv history SYMBOL`: the daily ATM IV recorder and what it stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import NoReturn

import click


def register(group: click.Group) -> None:
    """Add the `iv` command group."""

    @group.group(name="iv")
    def iv_group() -> None:
        """Daily 30-day ATM implied volatility history (feeds IV rank in /vol)."""

    @iv_group.command("record")
    @click.argument("symbols", nargs=-1, required=True)
    @click.option("--as-of", "as_of", default=None, help="record for the session at this moment (ISO 8601 with offset)")
    @click.option("--json", "json_out", is_flag=True, help="print one JSON object")
    def record(symbols: tuple[str, ...], as_of: str | None, json_out: bool) -> None:
        """Store today's 30-day ATM IV for SYMBOLS (e.g. `coach iv record TSLA SPY`); past days: `coach iv backfill`."""
        from bot.cli.common import as_of_option, fail, run

        pinned = as_of_option(as_of)
        syms = _symbols(symbols, fail)

        async def go() -> None:
            from bot.app import build_services
            from bot.options_service import record_iv

            services = await build_services()
            try:
                at = pinned or services.clock()
                results = await record_iv(services, syms, at)
            finally:
                await services.close()
            recorded = [r for r in results if r.status == "recorded"]
            if json_out:
                click.echo(
                    json.dumps(
                        {
                            "as_of": at.isoformat(),
                            "sources": sorted({r.source for r in results if r.source}),
                            "recorded": len(recorded),
                            "results": [r.model_dump(mode="json") for r in results],
                        },
                        separators=(",", ":"),
                    )
                )
            else:
                for r in results:
                    if r.status == "recorded" and r.atm_iv_30d is not None:
                        click.echo(f"{r.symbol} {r.date}: ATM IV 30d {r.atm_iv_30d * 100:.2f}% ({r.source})")
                    else:
                        click.echo(f"{r.symbol} {r.date}: {r.status}: {r.reason}")
            if not recorded:
                rejected = [r for r in results if r.status == "rejected"]
                if rejected:
                    fail(rejected[0].reason or "nothing recorded", 2)
                fail("nothing recorded", 1)

        run(go)

    @iv_group.command("history")
    @click.argument("symbol")
    @click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True, help="calendar days back")
    @click.option("--json", "json_out", is_flag=True, help="print one JSON object")
    def history(symbol: str, days: int, json_out: bool) -> None:
        """Show the stored daily ATM IV of SYMBOL."""
        from bot.cli.common import fail, run

        sym = _symbols((symbol,), fail)[0]

        async def go() -> None:
            from bot.app import build_services
            from storage import iv_history

            services = await build_services()
            try:
                today = services.clock().date()
                async with services.db() as s:
                    rows = await iv_history.history(s, sym, today - timedelta(days=days), today)
            finally:
                await services.close()
            if json_out:
                click.echo(
                    json.dumps(
                        {
                            "symbol": sym,
                            "as_of": services.clock().isoformat(),
                            "sources": ["iv history"],
                            "history": [{"date": d.isoformat(), "atm_iv_30d": v} for d, v in rows],
                        },
                        separators=(",", ":"),
                    )
                )
                return
            if not rows:
                click.echo(f"no IV history stored for {sym}; record it with `coach iv record {sym}`")
                return
            for d, v in rows:
                click.echo(f"{d.isoformat()}  {v * 100:6.2f}%")

        run(go)


def _symbols(raw: tuple[str, ...], fail: Callable[[str, int], NoReturn]) -> list[str]:
    from analytics.symbols import validate_symbol
    from core.errors import UserError

    out = []
    for item in raw:
        for part in item.replace(",", " ").split():
            try:
                out.append(validate_symbol(part))
            except UserError as exc:
                fail(exc.message, 2)
    if not out:
        fail("give at least one symbol, e.g. coach iv record TSLA SPY", 2)
    if len(out) > 500:
        fail("at most 500 symbols per run", 2)
    return list(dict.fromkeys(out))
