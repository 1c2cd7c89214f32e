"""The `coach` command line.

Two kinds of commands:

- a twin of every chat command, generated from its argument model (`bot.cli.twins`):
  `coach <name> ARGS... [--option value] [--json] [--as-of ISO] [--out PATH]`;
- what only makes sense here, written by hand: `chat`, `demo`, `serve`, `runtime`, `worker`, `config`, `apikey`,
  `db upgrade`, `backtest` (replays from files, a trades CSV), `calibrate` (the plans' odds), `iv record|history|backfill`,
  `journal export`.

A user error prints one line `error: ...` on stderr and exits 2; a provider or configuration
problem exits 1; never a traceback.
"""

from __future__ import annotations

import click

from bot.cli import (
    apikey,
    backtest_run,
    calibrate_run,
    iv_backfill,
    iv_commands,
    journal_export,
    runtime_run,
    worker_run,
)
from bot.cli.common import as_of_option, fail, run
from bot.cli.twins import add_twins
from bot.config import get_settings
from core.errors import CoachError

#: Hand-written command modules (each has `register(group)`), in the order they join the group.
CLI_ONLY = (apikey, backtest_run, calibrate_run, iv_commands, iv_backfill, journal_export, runtime_run, worker_run)


@click.group(name="coach", context_settings={"help_option_names": ["-h", "--help"]})
def app() -> None:
    """trading-coach: plans, scans, option contracts, volatility, charts and alerts — in chat or here."""


@app.group(name="db")
def db_app() -> None:
    """Database schema."""


@app.command()
@click.option("--as-of", "as_of", default=None, help="pin time, ISO 8601 with offset")
def chat(as_of: str | None) -> None:
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
@click.option(
    "--port",
    type=int,
    default=None,
    help="HTTP port: /healthz, /readyz, /metrics, the HTTP API and Slack HTTP mode (default: $COACH_HTTP_PORT, else $PORT or 3000 for Slack)",
)
@click.option("--host", default="0.0.0.0", show_default=True, help="address the HTTP server binds")
def serve(port: int | None, host: str) -> None:
    """Run the bot on the surfaces whose credentials are set; the console when none is."""
    from bot.app import configured_surfaces
    from bot.logging import setup_logging
    from bot.serve import serve as serve_all

    if port is not None and not 0 < port < 65536:
        fail(f"--port must be 1-65535, not {port}")
    settings = get_settings()
    try:
        surfaces = configured_surfaces(settings, port=port)
    except CoachError as exc:  # ConfigError: one line, exit 1
        fail(exc.message, 1)
    if surfaces:
        # a server logs to stderr for its supervisor; the console keeps its log file so replies stay readable
        setup_logging("server", settings)
    run(lambda: serve_all(port=port, host=host, settings=settings))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema to the latest revision."""

    async def go() -> None:
        from core.urls import mask_url
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
    """Show every setting the service reads, as in effect (secrets only as set/unset)."""
    for k, v in get_settings().public().items():
        click.echo(f"{k.upper():<26} {v}")


def build_cli() -> click.Group:
    """The `coach` group: the hand-written commands, then a twin for every chat command not defined by hand."""
    from bot.app import command_registry

    for module in CLI_ONLY:
        module.register(app)
    add_twins(app, command_registry())
    return app


def main() -> None:
    """Entry point of the `coach` script."""
    from bot.logging import setup_logging

    try:
        setup_logging("cli", get_settings())
    except Exception:  # logging must never stop the CLI; a bad setting is reported by the command itself
        pass
    try:
        group = build_cli()
    except CoachError as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(2) from None
    try:
        group.main(prog_name="coach")
    except CoachError as exc:  # a bad setting read before a command's own error handling: one line, no traceback
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from None
