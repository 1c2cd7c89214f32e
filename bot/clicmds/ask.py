"""`coach ask "..."`: one coach turn from the command line; charts are saved under ./out/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click


def register(group: click.Group) -> None:
    """Add `coach ask` to the CLI."""

    @group.command("ask")
    @click.argument("words", nargs=-1, required=True)
    @click.option("--as-of", "as_of", default=None, help="pin time, ISO 8601 with offset")
    @click.option("--json", "json_out", is_flag=True, help="print the structured result as one JSON object")
    def ask(words: tuple[str, ...], as_of: Optional[str], json_out: bool) -> None:
        """Ask the coach one question in plain words, e.g. coach ask "plan TSLA swing"."""
        from bot.cli import as_of_option, fail, run

        pinned = as_of_option(as_of)
        text = " ".join(words).strip()
        if not text:
            fail("nothing to ask; e.g. coach ask \"what's the IV on NVDA?\"", 2)

        async def go() -> None:
            from rich.console import Console

            from bot.app import build_services
            from bot.request import Ctx
            from bot.intents import IntentParser
            from bot.surfaces.console import console_identity, print_reply

            services = await build_services()
            try:
                ctx = Ctx(services=services, identity=console_identity(), as_of=pinned)
                handler = services.extras.get("free_text") or IntentParser()
                from bot.pipeline import guarded

                reply = await guarded(ctx, "ask", lambda: handler(ctx, text))
            finally:
                await services.close()
            if json_out:
                click.echo(json.dumps(reply.data_json(), separators=(",", ":"), default=str))
                return
            print_reply(reply, Console(highlight=False, soft_wrap=True), Path(services.settings.coach_out_dir))
            if reply.severity == "error":
                raise SystemExit(1)

        run(go)
