"""`coach chart SYMBOL --out PATH`: write chart PNGs from the command line (replaces the generated twin)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click


def _paths(out: Path, names: list[str], intervals: list[str], grid: bool) -> list[Path]:
    """One path per image: PATH itself for one image, PATH-<interval>.png for several."""
    if len(names) == 1:
        return [out]
    suffix = out.suffix or ".png"
    return [out.with_name(f"{out.stem}-{iv}{suffix}") for iv in intervals]


def register(group: click.Group) -> None:
    """Add `coach chart` to the CLI."""

    @group.command("chart")
    @click.argument("symbol")
    @click.option("--interval", "-i", "interval", default="",
                  help="interval(s), comma separated: 5m or 5m,1h,1D [default: 5m, or the plan's interval]")
    @click.option("--plan/--no-plan", default=False, show_default=True, help="draw the current trade plan")
    @click.option("--style", default=None, help="plan style: scalp, intraday, swing, leaps")
    @click.option("--theme", type=click.Choice(["dark", "light"]), default="dark", show_default=True)
    @click.option("--renderer", type=click.Choice(["fast", "mplfinance"]), default=None,
                  help="render path (default: fast, or COACH_CHART_RENDERER)")
    @click.option("--levels", type=click.Choice(["priority", "more"]), default="priority", show_default=True,
                  help="priority levels only, or more levels")
    @click.option("--scale-plan/--no-scale-plan", default=True, show_default=True,
                  help="fit the price range to the plan (off: raw history)")
    @click.option("--grid", is_flag=True, help="several intervals as one grid image")
    @click.option("--as-of", "as_of", default=None, help="pin time, ISO 8601 with offset")
    @click.option("--out", "-o", "out", required=True, type=click.Path(dir_okay=False), help="PNG path to write")
    @click.option("--json", "json_out", is_flag=True, help="print the result as one JSON object")
    def chart_cmd(
        symbol: str, interval: str, plan: bool, style: Optional[str], theme: str, renderer: Optional[str],
        levels: str, scale_plan: bool, grid: bool, as_of: Optional[str], out: str, json_out: bool,
    ) -> None:
        """Write a chart image of SYMBOL: candles, volume, levels, EMAs and VWAP, and the plan with --plan."""
        import json

        from bot.cli import as_of_option, fail, run

        pinned = as_of_option(as_of)

        async def go() -> None:
            from pydantic import ValidationError

            from bot.app import build_services
            from bot.chart_service import ChartService, make_charts
            from bot.commands.chart import ChartArgs
            from bot.request import Ctx
            from bot.registry import _first_error
            from bot.reply import to_jsonable
            from bot.surfaces.console import console_identity

            try:
                args = ChartArgs.model_validate(
                    {"symbol": symbol, "interval": interval, "plan": plan, "style": style, "theme": theme,
                     "levels": levels, "grid": grid}
                )
            except ValidationError as exc:
                fail(_first_error(exc), 2)
                return
            services = await build_services()
            # one-shot: render in this process rather than start a worker pool for a single image
            service = ChartService(workers=0, renderer=renderer)
            try:
                ctx = Ctx(services=services, identity=console_identity(), as_of=pinned)
                outcome = await make_charts(
                    ctx, service, symbol=args.symbol, intervals=args.interval, with_plan=args.plan,
                    style=args.style, theme=args.theme, levels_mode=args.levels, renderer=renderer, grid=args.grid,
                    scale_plan=scale_plan,
                )
            finally:
                await service.aclose()
                await services.close()
            paths = _paths(Path(out), [a.filename for a in outcome.attachments], outcome.result.intervals, grid)
            for path, att in zip(paths, outcome.attachments):
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".part")
                tmp.write_bytes(att.data)
                tmp.replace(path)  # never leave a half-written image behind
            if json_out:
                data = to_jsonable(outcome.result)
                data["paths"] = [str(p) for p in paths]
                click.echo(json.dumps(data, separators=(",", ":"), default=str))
            else:
                r = outcome.result
                what = f"{r.symbol} {', '.join(r.intervals)}" + (" with plan" if r.plan is not None else "")
                click.echo(f"{what} as of {r.as_of:%Y-%m-%d %H:%M} UTC")
                if r.note:
                    click.echo(f"  note: {r.note}")
                for p in paths:
                    click.echo(f"  saved {p}")

        run(go)
