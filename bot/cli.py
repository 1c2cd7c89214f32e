"""The `coach` command line: chat, demo, serve, db, and a twin of every registry command.

Registry commands become `coach <name> ARGS... [--json] [--as-of ISO] [--out PATH]`,
parsed exactly as chat parses them. A user error prints one line `error: ...` on
stderr and exits 2; a provider or configuration problem exits 1; never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import click
import structlog

from core.errors import CoachError, ConfigError, ProviderError, UserError
from analytics.sessions import parse_as_of
from core.clock import utc_now
from bot.config import get_settings

log = structlog.get_logger("coach.cli")


@click.group(name="coach", context_settings={"help_option_names": ["-h", "--help"]})
def app() -> None:
    """trading-coach: plans, scans, option contracts, volatility, charts and alerts — in chat or here."""


@app.group(name="db")
def db_app() -> None:
    """Database schema."""


def fail(message: str, code: int = 2) -> None:
    """Print one error line and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run an async entry point, turning project errors into one line and an exit code."""
    try:
        return asyncio.run(coro_fn())
    except UserError as exc:
        fail(exc.message, 2)
    except ConfigError as exc:
        fail(exc.message, 1)
    except ProviderError as exc:
        fail(exc.message, 1)
    except CoachError as exc:
        fail(exc.message, 1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: log it fully, show one line
        from bot.request import new_request_id

        ref = new_request_id()
        log.exception("cli_failed", request_id=ref)
        fail(f"something went wrong ({exc.__class__.__name__}; ref {ref}, details in var/coach.log)", 1)


def as_of_option(value: Optional[str]) -> Optional[datetime]:
    """Parse --as-of or exit 2 with the accepted format."""
    if value is None:
        return None
    try:
        return parse_as_of(value, utc_now())
    except UserError as exc:
        fail(exc.message, 2)
    return None


@app.command()
@click.option("--as-of", "as_of", default=None, help="pin time, ISO 8601 with offset")
def chat(as_of: Optional[str]) -> None:
    """Talk to the coach here: lines like `/quote TSLA` from a terminal or a pipe."""
    pinned = as_of_option(as_of)

    async def go() -> None:
        from bot.app import build_services
        from bot.surfaces.console import chat as console_chat

        services = await build_services()
        try:
            await console_chat(services, as_of=pinned)
        finally:
            await services.close()

    run(go)


@app.command()
def demo() -> None:
    """Run a scripted session over the commands on the offline market, then exit."""

    async def go() -> None:
        from bot.demo import run_demo

        await run_demo()

    run(go)


@app.command()
def serve() -> None:
    """Run the bot on the surfaces whose credentials are set; the console when none is."""

    async def go() -> None:
        from bot.serve import serve as serve_all

        await serve_all()

    run(go)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema to the latest revision."""

    async def go() -> None:
        from bot.config import mask_url
        from storage.db import current_revisions, make_engine, upgrade

        settings = get_settings()
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            revs = await current_revisions(engine)
        finally:
            await engine.dispose()
        click.echo(f"database {mask_url(settings.database_url)} at revision {', '.join(sorted(revs))}")

    run(go)


@app.command("config")
def config_cmd() -> None:
    """Show the configuration in effect (secrets shown only as set/unset)."""
    for k, v in get_settings().public().items():
        click.echo(f"{k.upper():<24} {v}")


# --- registry twins -------------------------------------------------------------------


def _registry_callback(cmd_name: str):  # noqa: ANN202
    def callback(args: tuple[str, ...], json_out: bool, as_of: Optional[str], out: Optional[str]) -> None:
        from bot.registry import REGISTRY

        cmd = REGISTRY.commands[cmd_name]
        pinned = as_of_option(as_of)

        async def go() -> None:
            from bot.app import build_services
            from bot.request import Ctx
            from bot.surfaces.console import console_identity, print_reply

            parsed = cmd.parse_tokens(list(args))  # UserError -> exit 2 before touching anything
            services = await build_services()
            try:
                ctx = Ctx(services=services, identity=console_identity(), as_of=pinned)
                if cmd.admin and not ctx.identity.is_admin:
                    raise UserError(f"{cmd.name} is for admins only")
                reply = await cmd.handler(ctx, parsed)
            finally:
                await services.close()
            if out:
                _write_out(reply, Path(out))
            if json_out:
                click.echo(json.dumps(reply.data_json(), separators=(",", ":"), default=str))
            else:
                from rich.console import Console

                print_reply(reply.model_copy(update={"attachments": [] if out else reply.attachments}),
                            Console(highlight=False, soft_wrap=True), Path(services.settings.coach_out_dir))
                if out:
                    click.echo(f"  saved {out}")

        run(go)

    return callback


def _write_out(reply: Any, path: Path) -> None:
    images = [a for a in reply.attachments if a.mime == "image/png"]
    if not images:
        raise UserError("this reply has no image to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(images) == 1:
        path.write_bytes(images[0].data)
        return
    stem, suffix = path.stem, path.suffix or ".png"
    for i, att in enumerate(images, 1):
        (path.parent / f"{stem}-{i}{suffix}").write_bytes(att.data)


def _make_click(cmd: Any) -> click.Command:
    help_lines = [cmd.summary, "", f"Usage in chat: {cmd.usage()}", ""]
    for s in cmd.arg_specs():
        choices = f" ({'|'.join(s.choices)})" if s.choices else ""
        help_lines.append(f"{s.name}: {s.description}{choices}")
    help_lines += ["", "Options after the arguments use the chat syntax too: --name value or name=value."]
    return click.Command(
        name=cmd.path[-1],
        callback=_registry_callback(cmd.name),
        params=[
            click.Argument(["args"], nargs=-1, type=click.UNPROCESSED),
            click.Option(["--json", "json_out"], is_flag=True, help="print the result as one JSON object"),
            click.Option(["--as-of", "as_of"], default=None, help="pin time, ISO 8601 with offset"),
            click.Option(["--out", "--chart", "out"], default=None, help="write the reply's image(s) to PATH"),
        ],
        help="\n\n".join(line for line in help_lines if line is not None),
        short_help=cmd.summary,
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True},
    )


def build_cli() -> click.Group:
    """The click group: hand-written commands plus a twin for every registry command not already defined."""
    import bot.commands  # noqa: F401 - registers commands
    from bot.registry import REGISTRY

    group = app
    _load_extensions(group)
    for cmd in REGISTRY.all():
        if cmd.group:
            sub = group.commands.get(cmd.group)
            if sub is None:
                sub = click.Group(name=cmd.group, help=f"/{cmd.group} commands.")
                group.add_command(sub)
            if isinstance(sub, click.Group) and cmd.path[1] not in sub.commands:
                sub.add_command(_make_click(cmd))
        elif cmd.name not in group.commands:
            group.add_command(_make_click(cmd))
    return group


def _load_extensions(group: click.Group) -> None:
    """Let feature modules under bot/clicmds/ add hand-written commands (each defines `register(group)`)."""
    import importlib
    import pkgutil

    import bot.clicmds as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}").register(group)


def main() -> None:
    """Entry point of the `coach` script."""
    from bot.logging import setup_logging

    try:
        setup_logging("cli")
    except Exception:  # logging must never stop the CLI
        pass
    try:
        group = build_cli()
    except CoachError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    group.main(prog_name="coach")


if __name__ == "__main__":
    main()
