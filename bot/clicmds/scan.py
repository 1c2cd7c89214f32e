"""`coach scan [symbols|list] [style]`: the /scan twin with a progress bar while bars are fetched (replaces the generated one)."""

from __future__ import annotations

import sys
from typing import Optional

import click

#: Universes at least this large show a progress bar (on a terminal, unless --no-progress).
PROGRESS_FROM = 10


def register(group: click.Group) -> None:
    """Add `coach scan` to the CLI."""

    @group.command(
        "scan",
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True},
        short_help="Run every strategy over a universe and rank the setups.",
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    @click.option("--json", "json_out", is_flag=True, help="print the result as one JSON object")
    @click.option("--as-of", "as_of", default=None, help="pin time, ISO 8601 with offset")
    @click.option("--progress/--no-progress", default=None,
                  help=f"progress bar on stderr (default: on a terminal for {PROGRESS_FROM}+ symbols)")
    def scan_cmd(args: tuple[str, ...], json_out: bool, as_of: Optional[str], progress: Optional[bool]) -> None:
        """Run every strategy over a universe and rank the setups by confidence and R:R.

        ARGS as in chat: tickers or a list name (leaders, indices, megacaps, semis, banks, watchlist),
        then a style (scalp, intraday, swing, leaps) and --limit N. No tickers: your watchlist, or
        the 20 liquid leaders when it is empty.
        """
        import json

        from bot.cli import as_of_option, run

        pinned = as_of_option(as_of)

        async def go() -> None:
            from pathlib import Path

            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            import bot.commands  # noqa: F401 - registers /scan
            from bot.app import build_services
            from bot.request import Ctx
            from bot.planning import resolve_universe, run_scan, scan_reply
            from bot.registry import REGISTRY
            from bot.surfaces.console import console_identity, print_reply

            parsed = REGISTRY.commands["scan"].parse_tokens(list(args))  # UserError -> exit 2 before any work
            services = await build_services()
            try:
                ctx = Ctx(services=services, identity=console_identity(), as_of=pinned)
                _name, symbols = await resolve_universe(ctx, parsed.universe)
                err = Console(file=sys.stderr, highlight=False)
                show = progress if progress is not None else (err.is_terminal and len(symbols) >= PROGRESS_FROM)
                if show:
                    bar = Progress(TextColumn("scanning {task.fields[symbol]:<8}"), BarColumn(), MofNCompleteColumn(),
                                   TimeElapsedColumn(), console=err, transient=True)
                    with bar:
                        task = bar.add_task("scan", total=len(symbols), symbol="")
                        outcome = await run_scan(
                            ctx, parsed.universe, parsed.style, limit=parsed.limit,
                            progress=lambda done, total, sym: bar.update(task, completed=done, symbol=sym),
                        )
                else:
                    outcome = await run_scan(ctx, parsed.universe, parsed.style, limit=parsed.limit)
            finally:
                await services.close()
            reply = scan_reply(outcome)
            if json_out:
                click.echo(json.dumps(reply.data_json(), separators=(",", ":"), default=str))
            else:
                print_reply(reply, Console(highlight=False, soft_wrap=True), Path(services.settings.coach_out_dir))

        run(go)
