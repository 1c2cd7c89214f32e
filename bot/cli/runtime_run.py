"""`coach runtime`: the alert and live-plan worker alone, sharing the database with `coach serve` / `coach chat`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from bot.runtime.worker import RuntimeStats


def register(group: click.Group) -> None:
    group.add_command(runtime_cmd)


@click.command("runtime")
@click.option(
    "--speed", type=float, default=None, help="offline market only: market seconds per wall second (e.g. 600); default real time"
)
@click.option("--start", "start", default=None, help="offline market only: market time to start from (ISO 8601 with offset)")
@click.option(
    "--skip-closed/--no-skip-closed",
    default=None,
    help="offline market only: jump over closed hours (default: on when --speed or --start is given)",
)
@click.option("--for", "run_for", type=float, default=None, help="stop after this many wall seconds")
@click.option(
    "--stale-after", type=float, default=None, help="seconds of market time without prices before the feed counts as stale"
)
@click.option(
    "--port", type=int, default=None, help="HTTP port for /healthz, /readyz, /metrics (default: $COACH_HTTP_PORT; none)"
)
@click.option("--host", default="0.0.0.0", show_default=True, help="address the HTTP endpoints bind")
def runtime_cmd(
    speed: float | None,
    start: str | None,
    skip_closed: bool | None,
    run_for: float | None,
    stale_after: float | None,
    port: int | None,
    host: str,
) -> None:
    """Evaluate alerts and tracked plans and deliver their messages, record each session's IV and score finished
    tracked plans, until stopped (Ctrl-C or SIGTERM).

    On stop it prints its figures (ticks, alerts fired, tick-to-outbox latency) on stderr. SIGUSR1 prints
    the same figures for the time since the previous SIGUSR1 (or the start) and keeps running, so a
    load test can measure a chosen window.

    Uses DATABASE_URL, COACH_PROVIDER and the chat credentials (to deliver into Discord/Slack)
    like `coach serve`. Another runtime on the same database makes this one stand by.
    """
    from bot.cli.common import fail, run
    from bot.config import get_settings
    from bot.logging import setup_logging

    setup_logging("server", get_settings())
    pinned = None
    if start is not None:
        try:
            pinned = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            fail(f"--start {start[:40]!r} is not an ISO time like 2024-03-13T09:30:00-04:00", 2)
        if pinned.tzinfo is None:
            fail("--start needs a UTC offset, e.g. 2024-03-13T09:30:00-04:00", 2)
    if speed is not None and not speed > 0:
        fail("--speed must be a positive number of market seconds per second", 2)

    async def go() -> None:
        await run_runtime(
            speed=speed, start=pinned, skip_closed=skip_closed, run_for=run_for, stale_after=stale_after, port=port, host=host
        )

    run(go)


async def run_runtime(
    *,
    speed: float | None = None,
    start: datetime | None = None,
    skip_closed: bool | None = None,
    run_for: float | None = None,
    stale_after: float | None = None,
    port: int | None = None,
    host: str = "0.0.0.0",
) -> None:
    """Build the services and run the runtime until a signal (or `run_for` seconds); endpoints on `port` when given."""
    from bot.app import build_services, runtime_config
    from bot.config import get_settings
    from bot.http_server import start_endpoints
    from bot.runtime.worker import Runtime
    from core.clock import utc_now
    from core.errors import UserError

    settings = get_settings()
    sim = [p.strip().lower() for p in settings.coach_provider.split(",")][0] == "sim"
    if (speed is not None or start is not None) and not sim:
        raise UserError("--speed and --start work only with the offline market (COACH_PROVIDER=sim)")
    clock = None
    market = None
    if sim:
        from providers.sim import SimMarket
        from providers.sim_stream import SimClock

        accelerated = speed is not None or start is not None
        clock = SimClock(start or utc_now(), speed or 1.0, skip_closed=accelerated if skip_closed is None else skip_closed)
        market = SimMarket(seed=settings.coach_seed, now=clock)
    services = await build_services(settings, market=market, clock=clock)
    config = runtime_config(settings)
    if stale_after is not None:
        config.stale_after = stale_after
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    begin = start or utc_now()
    factory = None
    if clock is not None:
        from providers.sim_stream import SimStream

        sim_clock = clock

        def factory(cursor: datetime | None) -> SimStream:
            # the first run starts exactly at the requested moment, later runs right after the saved cursor
            return SimStream(sim_clock, seed=settings.coach_seed, start=cursor or begin)

    runtime = Runtime(services, clock=clock, config=config, stream_factory=factory)
    window = WindowReport(runtime.stats)
    usr1 = getattr(signal, "SIGUSR1", None)  # not on Windows
    if usr1 is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(usr1, lambda: click.echo(window.take(), err=True))
    if clock is not None:
        # the clock ran while the services were built: start it where asked; and when a previous run's
        # cursor is later than that, carry on from the cursor (never go back over delivered alerts)
        saved = await runtime._cursor()
        clock.set(saved if saved is not None and saved > begin else begin)
    if run_for is not None:
        loop.call_later(run_for, stop.set)
    click.echo(
        f"coach runtime: worker {config.worker_id}, market {services.market.name}"
        + (f", clock x{clock.speed:g} from {clock.now():%Y-%m-%d %H:%M} UTC" if clock is not None else "")
        + ". Ctrl-C stops.",
        err=True,
    )
    from bot.iv_recorder import iv_recorder_task
    from bot.scorecard import outcome_sync_task

    # the daily jobs go with the runtime: with a queue, `coach serve` is only a front and runs none
    jobs = [asyncio.create_task(iv_recorder_task(services)), asyncio.create_task(outcome_sync_task(services))]
    http = None
    try:
        http = await start_endpoints(services, host=host, port=port)
        await runtime.run(stop)
    finally:
        if http is not None:
            await http.close()
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await services.close()
    st = runtime.stats
    click.echo(
        f"coach runtime: stopped after {st.ticks} ticks, {st.triggers} alerts fired, {st.plan_events} plan events, "
        f"{runtime.dispatcher.stats.delivered} messages delivered.{latency_text(st.latencies)}",
        err=True,
    )


def latency_text(latencies: list[float]) -> str:
    """ " Tick to outbox: p50 .., p99 .., max .. over N batches." for these latencies (seconds); "" for none."""
    if not latencies:
        return ""
    lat = sorted(latencies)
    return (
        f" Tick to outbox: p50 {lat[len(lat) // 2] * 1000:.2f} ms, p99 {lat[int(0.99 * (len(lat) - 1))] * 1000:.2f} ms, "
        f"max {lat[-1] * 1000:.2f} ms over {len(lat)} batches."
    )


@dataclass
class _Mark:
    at: float
    ticks: int
    triggers: int
    plan_events: int
    messages: int
    samples: int


class WindowReport:
    """The runtime's figures since the previous report: what SIGUSR1 prints."""

    def __init__(self, stats: RuntimeStats, clock: Callable[[], float] = time.monotonic) -> None:
        self.stats = stats
        self.clock = clock
        self.windows = 0
        self._mark = self._now()

    def _now(self) -> _Mark:
        st = self.stats
        return _Mark(self.clock(), st.ticks, st.triggers, st.plan_events, st.messages, st.samples)

    def take(self) -> str:
        """The line for the window since the last call (or since this object was made); starts the next window."""
        now, was = self._now(), self._mark
        self._mark = now
        self.windows += 1
        # `latencies` keeps only the newest samples: a very long window reports the ones still there
        new = now.samples - was.samples
        kept = self.stats.latencies[len(self.stats.latencies) - min(new, len(self.stats.latencies)) :] if new else []
        timing = latency_text(kept) or " Tick to outbox: no batch queued a message."
        return (
            f"coach runtime: window {self.windows}, {now.at - was.at:.1f} s: {now.ticks - was.ticks} ticks, "
            f"{now.triggers - was.triggers} alerts fired, {now.plan_events - was.plan_events} plan events, "
            f"{now.messages - was.messages} messages queued.{timing}"
        )
