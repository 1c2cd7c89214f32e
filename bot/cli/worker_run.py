"""`coach worker`: run chat requests from the job queue (COACH_QUEUE_URL), on any machine, any number of them."""

from __future__ import annotations

import asyncio
import signal

import click

from bot.execution.jobs import Lane


def register(group: click.Group) -> None:
    group.add_command(worker_cmd)


@click.command("worker")
@click.option(
    "--lanes",
    type=click.Choice(["all", "light", "heavy"]),
    default="all",
    show_default=True,
    help="which requests this worker takes: quick commands, heavy ones (wide scans, backtests) or both",
)
@click.option(
    "--port", type=int, default=None, help="HTTP port for /healthz, /readyz, /metrics (default: $COACH_HTTP_PORT; none)"
)
@click.option("--host", default="0.0.0.0", show_default=True, help="address the HTTP endpoints bind")
def worker_cmd(lanes: str, port: int | None, host: str) -> None:
    """Take chat requests from the queue, run them and answer them, until stopped (Ctrl-C or SIGTERM).

    Needs COACH_QUEUE_URL (the same as the fronts') and the database the fronts use (PostgreSQL when
    workers run on several machines), plus the chat credentials to answer over Discord's and Slack's APIs.
    """
    from bot.cli.common import fail, run
    from bot.config import get_settings
    from bot.logging import setup_logging

    settings = get_settings()
    setup_logging("server", settings)
    if settings.coach_queue_url is None:
        fail("coach worker takes its requests from a queue: set COACH_QUEUE_URL (e.g. redis://127.0.0.1:6379/0)", 1)
    by_name: dict[str, tuple[Lane, ...]] = {"all": ("light", "heavy"), "light": ("light",), "heavy": ("heavy",)}
    chosen = by_name[lanes]

    async def go() -> None:
        from bot.app import build_services, serve_queue
        from bot.http_server import start_endpoints

        services = await build_services(settings, chart_workers=0, workers=0)
        http = await start_endpoints(services, host=host, port=port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            consumer = await serve_queue(services, stop, lanes=chosen)
        finally:
            if http is not None:
                await http.close()
            await services.close()
        click.echo(f"coach worker: stopped after {consumer.done} requests.", err=True)

    run(go)
