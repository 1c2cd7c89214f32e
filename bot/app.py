"""The composition root: every part of the running service is built here, explicitly. Read this to know what runs.

    build_services(settings)    settings (environment and .env, `bot.config.Settings`)
                                -> database: SQLite file or PostgreSQL, schema upgraded on start
                                -> market: the offline market, or a router over Polygon/Tradier/Yahoo
                                   (`bot.market_setup`), and the runtime's price stream for it
                                -> commands: the modules in COMMAND_MODULES, collected into one Registry
                                -> pipeline: every request's way in (`bot.pipeline`), rate limited per person
                                -> free text: the LLM coach (OPENAI_*), or the rule-based intent parser
                                -> charts: a render process pool (a thread for one-shot commands)
                                -> options: chains, IV, volatility regime, cached
                                -> broker: paper, or Tradier (COACH_BROKER), made on first use
                                -> destinations the runtime delivers to: console, webhook,
                                   discord_webhook, slack_webhook
    build_surfaces(services)    Discord (DISCORD_TOKEN) and Slack (SLACK_BOT_TOKEN with SLACK_APP_TOKEN
                                for Socket Mode, or SLACK_SIGNING_SECRET for HTTP mode); each adds its
                                channel destination ("discord", "slack") for the runtime. None: `coach
                                serve` serves the console.
    serve_tasks(services)       what `coach serve` runs beside the surfaces: the alert and live-plan
                                runtime, the daily IV recorder, the tracked-plan scorer, the daily
                                refit of the plans' odds.

Nothing registers itself by being imported: a feature that is not named here does not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import os
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.commands import (
    alerts,
    alerts_health,
    backtest,
    chart,
    coach,
    confirm,
    context,
    diag,
    help,
    journal,
    market,
    options,
    orders,
    plan,
    positions,
    tracking,
    watch,
)
from bot.commands import (
    settings as channel_settings,
)
from bot.config import Settings, get_settings
from bot.execution.fairness import InFlight
from bot.execution.jobs import Job, Lane
from bot.execution.local import Executor, InlineExecutor, LocalPoolExecutor
from bot.execution.queue import LANES, Consumer, Keys, QueueExecutor
from bot.execution.queue import connect as connect_queue
from bot.execution.queue import connect_sync as connect_queue_sync
from bot.execution.runner import CLAIM_STALE, Budget, answer_instead, run_job
from bot.pipeline import FreeTextHandler, Pipeline
from bot.ratelimit import Limiter, RateLimiter, SharedRateLimiter
from bot.registry import Registry
from bot.reply import Reply
from bot.runtime.destinations import Destination, DestinationKinds
from bot.services import Later, Services
from bot.surfaces.replies import ReplySender
from bot.web.results import answer_sink
from core.clock import Clock, utc_now
from core.errors import ConfigError
from storage.db import make_engine, make_sessionmaker, upgrade

# The market, charts, options and the runtime are imported where they are built, so that importing this module
# (for the command registry, as a chat front does) loads no pandas, numpy or analytics.
if TYPE_CHECKING:
    from bot.chart_service import ChartService
    from bot.options_service import OptionsService
    from bot.runtime.feed import StreamBuilder
    from bot.runtime.worker import RuntimeConfig
    from providers.base import MarketData
    from providers.broker.base import Broker

log = structlog.get_logger("coach.app")
#: Imported where jobs run, before the first job (`bot.execution.warm`); never by a front.
WARM_MODULE = "bot.execution.warm"

#: The command modules every service serves (each declares its commands with `bot.registry.command`).
COMMAND_MODULES = (
    help,
    market,
    watch,
    plan,
    chart,
    context,
    options,
    alerts,
    alerts_health,
    channel_settings,
    tracking,
    journal,
    orders,
    positions,
    backtest,
    coach,
    confirm,
    diag,
)


def command_registry() -> Registry:
    """The commands of COMMAND_MODULES."""
    return Registry.collect(*COMMAND_MODULES)


async def build_services(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    market: MarketData | None = None,
    clock: Clock | None = None,
    migrate: bool = True,
    chart_workers: int | None = None,
    workers: int | None = None,
) -> Services:
    """Build the whole service. The caller closes it (`await services.close()`).

    `engine`, `market` and `clock` replace the configured ones (tests, the accelerated offline
    clock of `coach runtime`); `chart_workers=0` draws charts in a thread (one-shot commands);
    `workers` replaces COACH_WORKERS (0: chat requests run in this process).
    """
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    if migrate:
        try:
            await upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
    clock = clock or utc_now
    registry = command_registry()
    db = make_sessionmaker(engine)
    # what only handlers use is built on first use: a front that hands every request over never builds it
    market_part: Later[MarketData] = Later.of(market) if market is not None else Later(lambda: _market(settings))
    charts_part = Later(lambda: _charts(settings, chart_workers))
    # with a queue, several fronts share the rate limits and the in-flight counts through it
    redis = connect_queue(settings) if settings.coach_queue_url is not None else None
    limiter: Limiter = (
        SharedRateLimiter(redis, settings.coach_rate_per_minute, prefix=f"{settings.coach_queue_prefix}:rate")
        if redis is not None
        else RateLimiter(settings.coach_rate_per_minute)
    )
    services = Services(
        settings=settings,
        engine=engine,
        db=db,
        clock=clock,
        registry=registry,
        pipeline=Pipeline(registry, limiter),
        market_part=market_part,
        free_text_part=Later(lambda: build_free_text(settings)),
        charts_part=charts_part,
        options_part=Later(lambda: _options(market_part.get(), db)),
        stream_part=Later(lambda: _stream_builder(settings)),
        destinations=default_destinations(settings),
        replies=ReplySender(settings, api_answers=answer_sink(db)),
        broker_factory=lambda: _broker(settings, market_part.get(), clock),
        redis=redis,
    )
    services.closers.append(services.replies.aclose)
    services.executor = build_executor(services, settings.coach_workers if workers is None else workers, redis=redis)
    services.closers.append(services.executor.aclose)  # closed first: running jobs finish before their parts close
    return services


def build_executor(services: Services, workers: int | None, *, redis: Redis | None = None) -> Executor:
    """Where chat requests run: the queue (COACH_QUEUE_URL), N local worker processes (default: one per core), or here (0)."""
    settings = services.settings
    inflight = InFlight(per_user=settings.coach_user_concurrency, per_tenant=settings.coach_tenant_concurrency)
    budget = Budget(light=settings.coach_cpu_budget, heavy=settings.coach_heavy_cpu_budget)
    if settings.coach_queue_url is not None:
        return QueueExecutor(
            settings,
            per_user=inflight.per_user,
            per_tenant=inflight.per_tenant,
            redis=redis,
            keys=Keys(settings.coach_queue_prefix),
        )
    n = max(1, os.cpu_count() or 1) if workers is None else workers
    if n == 0:
        return InlineExecutor(services, services.replies.deliver, inflight)
    front = f"front:{socket.gethostname()}:{os.getpid()}"

    async def fallback(job: Job, message: str) -> None:
        await answer_instead(services, job, Reply.error(message), services.replies.deliver, worker=front)

    return LocalPoolExecutor(
        settings,
        n,
        inflight,
        start=start_worker_process,
        run=run_job_in_worker,
        preload=["bot.app", WARM_MODULE],
        budget=budget,
        fallback=fallback,
    )


async def serve_queue(services: Services, stop: asyncio.Event, *, lanes: tuple[Lane, ...] = LANES) -> Consumer:
    """`coach worker`: take jobs from the queue, run and answer them one at a time, until `stop` is set."""
    settings = services.settings
    budget = Budget(light=settings.coach_cpu_budget, heavy=settings.coach_heavy_cpu_budget)
    redis = connect_queue(settings)
    beat = connect_queue_sync(settings)
    idle = settings.coach_queue_claim_idle
    consumer: Consumer
    lower_priority(settings)
    await asyncio.to_thread(importlib.import_module, WARM_MODULE)  # warm before the first job, not during it

    async def run(job: Job, redelivered: bool) -> bool:
        # a redelivered job's claim is at least as old as the queue's idle limit: its holder died
        stale = idle * 0.9 if redelivered else CLAIM_STALE
        return await run_job(services, job, services.replies.deliver, worker=consumer.name, budget=budget.of(job), stale=stale)

    consumer = Consumer(
        redis, run, lanes=lanes, beat=beat, limit=budget.wall, claim_idle=idle, keys=Keys(settings.coach_queue_prefix)
    )
    try:
        await consumer.serve(stop)
    finally:
        await redis.aclose()
        beat.close()
    return consumer


# ---------------------------------------------------------------- inside a local worker process
# A worker builds its own services once (no migrations: the front ran them; charts drawn in the
# worker itself; jobs run here, not in a pool of its own) and runs one job at a time on its own
# event loop, so the CPU a job uses is the job's and its lane's budget is checked against it.

_worker: tuple[asyncio.AbstractEventLoop, Services] | None = None


def start_worker_process(settings: Settings) -> None:
    """Build this worker process's services."""
    global _worker
    from bot.logging import setup_worker_logging

    setup_worker_logging(settings)  # the front's log format: a server's worker writes JSON lines to the same stderr
    lower_priority(settings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _worker = (loop, loop.run_until_complete(build_services(settings, migrate=False, chart_workers=0, workers=0)))


def lower_priority(settings: Settings) -> None:
    """Mark a process that runs jobs as batch work: the front's acknowledgements and the alert runtime's ticks,
    which wait for milliseconds, then run before a plan, which takes a hundred of them, while the plan keeps
    its share of the CPU against anything else on the machine. COACH_WORKER_NICE lowers it further."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
        with contextlib.suppress(OSError):  # not offered here: the usual scheduling
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    if settings.coach_worker_nice and hasattr(os, "nice"):
        try:
            os.nice(settings.coach_worker_nice)
        except OSError:  # not permitted here: run at the usual priority
            log.warning("worker_nice_refused", nice=settings.coach_worker_nice)


def run_job_in_worker(payload: str, budget: float, retry: bool) -> bool:
    """Run one job (its JSON) in this worker process; True when this worker answered it."""
    if _worker is None:
        raise RuntimeError("the worker process was not started")
    loop, services = _worker
    job = Job.model_validate_json(payload)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    stale = 0.0 if retry else CLAIM_STALE  # a retry follows a worker that died holding the claim
    try:
        return loop.run_until_complete(
            run_job(services, job, services.replies.deliver, worker=worker, budget=budget, stale=stale)
        )
    except Exception as exc:
        # only plain exceptions cross back to the front intact (ours take keyword arguments pickle cannot restore)
        raise RuntimeError(f"{exc.__class__.__name__}: {exc}") from None


def _market(settings: Settings) -> MarketData:
    from bot.market_setup import build_market

    return build_market(settings)


def _charts(settings: Settings, workers: int | None) -> ChartService:
    from bot.chart_service import ChartService

    return ChartService(
        workers=settings.coach_chart_workers if workers is None else workers,
        renderer=settings.coach_chart_renderer,
        start_method=settings.coach_chart_start,
    )


def _options(market: MarketData, db: async_sessionmaker[AsyncSession]) -> OptionsService:
    from bot.options_service import OptionsService

    return OptionsService(market, db)


def _stream_builder(settings: Settings) -> StreamBuilder | None:
    from bot.market_setup import stream_builder

    return stream_builder(settings)


def _broker(settings: Settings, market: MarketData, clock: Clock) -> Broker:
    from bot.market_setup import build_broker

    return build_broker(settings, market, clock)


def rebase(services: Services, *, market: MarketData, clock: Clock) -> Services:
    """The same services seen from another market and clock (a pinned or accelerated offline market).

    Shares the database, commands, charts and destinations; what holds the market (options, the
    paper broker) is made anew for it.
    """
    settings, db = services.settings, services.db
    return dataclasses.replace(
        services,
        market_part=Later.of(market),
        clock=clock,
        options_part=Later(lambda: _options(market, db)),
        broker_factory=lambda: _broker(settings, market, clock),
        closers=[],
        _broker=None,
    )


def build_free_text(settings: Settings) -> FreeTextHandler:
    """The handler for text that is not a /command: the LLM coach when one is configured, else the intent parser."""
    if settings.llm_enabled:
        from bot.agent.loop import Agent

        return Agent.from_settings(settings)
    from bot.intents import IntentParser

    return IntentParser()


def default_destinations(settings: Settings) -> DestinationKinds:
    """What any process can deliver to: its console, and the webhook kinds (generic JSON, Discord, Slack)."""
    from bot.surfaces.console import ConsoleDestination
    from bot.surfaces.webhooks import DiscordWebhookDestination, SlackWebhookDestination, WebhookDestination
    from bot.webhook_targets import WebhookPolicy

    out_dir = Path(settings.coach_out_dir)
    # every webhook sink checks each URL and each connection against the same policy as /settings webhook add
    policy = WebhookPolicy(allow_private=settings.coach_webhook_allow_private)
    kinds = DestinationKinds(
        {
            "console": lambda: ConsoleDestination(out_dir=out_dir),
            "webhook": lambda: WebhookDestination(policy=policy),
            "discord_webhook": lambda: DiscordWebhookDestination(policy=policy),
            "slack_webhook": lambda: SlackWebhookDestination(policy=policy),
        }
    )
    # a runtime alone (`coach runtime`) still delivers into Discord and Slack over their REST APIs
    if settings.discord_token:
        kinds.add("discord", lambda: _discord_rest_destination(settings))
    if settings.slack_bot_token:
        kinds.add("slack", lambda: _slack_destination(settings))
    return kinds


def _discord_rest_destination(settings: Settings) -> Destination:
    from bot.surfaces.channel_destinations import DiscordChannelDestination

    assert settings.discord_token is not None
    return DiscordChannelDestination(token=settings.discord_token.get_secret_value(), api_base=settings.discord_api_base)


def _slack_destination(settings: Settings) -> Destination:
    from bot.surfaces.channel_destinations import SlackChannelDestination
    from bot.surfaces.slack import web_client

    return SlackChannelDestination(web_client(settings))


class ChatSurface(Protocol):
    """A chat platform `coach serve` runs: `run()` serves until it is closed (or fails), `close()` stops it."""

    name: str

    async def run(self) -> None: ...

    async def close(self) -> None: ...


def configured_surfaces(settings: Settings, *, port: int | None = None) -> list[str]:
    """The surfaces these settings enable: "discord", "slack-socket", "slack-http", and "api" (the HTTP API, on when
    an HTTP port is set: `port`, else COACH_HTTP_PORT; COACH_API=false turns it off). Empty: the console."""
    out = []
    if settings.discord_token:
        out.append("discord")
    if settings.slack_bot_token:
        if settings.slack_app_token:
            out.append("slack-socket")
        elif settings.slack_signing_secret:
            out.append("slack-http")
        else:
            raise ConfigError(
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP mode)"
            )
    elif settings.slack_app_token or settings.slack_signing_secret:
        raise ConfigError("SLACK_APP_TOKEN/SLACK_SIGNING_SECRET are set but SLACK_BOT_TOKEN (xoxb-...) is not")
    if settings.coach_api and api_port(settings, port) is not None:
        out.append("api")
    return out


def api_port(settings: Settings, port: int | None) -> int | None:
    """The HTTP port the API is served on: --port, else COACH_HTTP_PORT, else Slack HTTP mode's (PORT) when it runs."""
    if port is not None or settings.coach_http_port is not None:
        return port if port is not None else settings.coach_http_port
    if settings.slack_bot_token and settings.slack_signing_secret and not settings.slack_app_token:
        return settings.port or DEFAULT_PORT
    return None


def build_surfaces(services: Services, *, host: str = "0.0.0.0", port: int | None = None) -> list[ChatSurface]:
    """The chat surfaces whose credentials are set; Discord's bot also becomes the runtime's "discord" destination."""
    out: list[ChatSurface] = []
    wanted = configured_surfaces(services.settings, port=port)
    if "discord" in wanted:
        from bot.surfaces.channel_destinations import DiscordChannelDestination
        from bot.surfaces.discord import DiscordSurface

        discord_surface = DiscordSurface(services)
        # inside `coach serve` alerts go out through the bot's own logged-in connection
        services.destinations.add("discord", lambda: DiscordChannelDestination(discord_surface.client))
        out.append(discord_surface)
    if "slack-socket" in wanted or "slack-http" in wanted:
        from bot.surfaces.slack import SlackSurface

        slack_surface = SlackSurface(services)
        if "slack-http" in wanted:
            s = services.settings
            slack_surface.listen_on(host, port if port is not None else s.coach_http_port or s.port or DEFAULT_PORT)
        out.append(slack_surface)
    if "api" in wanted:
        from bot.web.api import ApiSurface

        out.append(ApiSurface(services, host, api_port(services.settings, port) or DEFAULT_PORT))
    return out


def serve_tasks(services: Services) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
    """What `coach serve` runs beside the surfaces, by name.

    On one machine: the alert runtime and the background jobs, plus the front's event-loop probe.
    With a queue (COACH_QUEUE_URL) `coach serve` is only a front: the runtime and the background jobs
    run in `coach runtime` (`background_tasks`), so that a front stays light and many can run.
    """
    tasks: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {"loop_lag": lambda: watch_loop_lag()}
    if services.settings.coach_queue_url is None:
        tasks.update(background_tasks(services))
    return tasks


def background_tasks(services: Services) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
    """The alert and live-plan runtime (one leader by lease), the daily IV recorder, the tracked-plan scorer,
    the after-close risk summary and the daily refit of the plans' odds."""
    from bot.iv_recorder import iv_recorder_task
    from bot.odds import odds_refit_task
    from bot.risk_summary import risk_summary_task
    from bot.runtime.worker import Runtime
    from bot.scorecard import outcome_sync_task

    async def alert_runtime() -> None:
        runtime = Runtime(services, config=runtime_config(services.settings))
        services.runtime_stats = runtime.stats
        await runtime.run()

    return {
        "alert_runtime": alert_runtime,
        "iv_recorder": lambda: iv_recorder_task(services),
        "outcome_sync": lambda: outcome_sync_task(services),
        "risk_summary": lambda: risk_summary_task(services),
        "odds_refit": lambda: odds_refit_task(services),
    }


async def watch_loop_lag(every: float = 0.1, report: float = 5.0, notice: float = 0.05, warn: float = 0.25) -> None:
    """Log how late this event loop wakes up (`loop_lag`: the worst and the 99th percentile of each `report` seconds).

    A front's loop carries the Discord heartbeat and Slack's acknowledgements: it must stay free. A
    window whose worst wake-up is `warn` seconds late is a warning, one past `notice` an info line;
    the others (the usual case) are debug lines.
    """
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    next_report = loop.time() + report
    while True:
        planned = loop.time() + every
        await asyncio.sleep(every)
        lags.append(max(0.0, loop.time() - planned))
        if loop.time() >= next_report:
            lags.sort()
            emit = log.warning if lags[-1] >= warn else log.info if lags[-1] >= notice else log.debug
            emit(
                "loop_lag",
                lag_ms=round(lags[-1] * 1000, 1),
                p99_ms=round(lags[int(0.99 * (len(lags) - 1))] * 1000, 1),
                samples=len(lags),
            )
            lags.clear()
            next_report = loop.time() + report


def runtime_config(settings: Settings) -> RuntimeConfig:
    """The runtime's knobs from the settings (the lease's worker name: COACH_WORKER_ID, else host:pid)."""
    from bot.runtime.worker import RuntimeConfig

    config = RuntimeConfig()
    if settings.coach_worker_id:
        config.worker_id = settings.coach_worker_id
    return config


#: Slack HTTP mode's port when neither --port nor PORT is given.
DEFAULT_PORT = 3000
