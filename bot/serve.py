"""`coach serve`: run the surfaces and tasks the composition root builds, until a signal or the console's end.

What runs is decided in `bot.app`: the chat surfaces whose credentials are set
(`build_surfaces`), the console on stdin/stdout when there is none (serve ends at end of input
or `quit`), and the tasks beside them (`serve_tasks`: the alert runtime, the IV recorder, the
outcome scorer). This module only runs them: SIGTERM and SIGINT stop everything cleanly; a part
that dies (a refused token, a port in use) stops the service with one clear error so a
supervisor can restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

import structlog

from bot import metrics
from bot.app import DEFAULT_PORT, WARM_MODULE, ChatSurface, build_services, build_surfaces, serve_tasks
from bot.config import Settings
from bot.execution.local import LocalPoolExecutor
from bot.http_server import HttpServer
from bot.readiness import base_checks
from bot.services import Services
from bot.web.chart_page import add_chart_page
from core.errors import ConfigError

log = structlog.get_logger("coach.serve")


class _StdinLines:
    """stdin for the console, read by a daemon thread so that a signal can end the console without waiting for Enter."""

    def __init__(self, stream: TextIO, prompt_to: TextIO | None) -> None:
        self._q: queue.Queue[str] = queue.Queue()
        self._stream = stream
        self._prompt_to = prompt_to
        threading.Thread(target=self._pump, name="coach-stdin", daemon=True).start()

    def _pump(self) -> None:
        try:
            while True:
                if self._prompt_to is not None:
                    self._prompt_to.write("coach> ")
                    self._prompt_to.flush()
                line = self._stream.readline()
                self._q.put(line)
                if line == "":
                    return
        except (OSError, ValueError):
            self._q.put("")

    def readline(self) -> str:
        return self._q.get()

    def isatty(self) -> bool:
        return False

    def end(self) -> None:
        """Make the console see end of input."""
        self._q.put("")


async def serve(
    *,
    port: int | None = None,
    host: str = "0.0.0.0",
    settings: Settings | None = None,
    services: Services | None = None,
    stop: asyncio.Event | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    tasks: dict[str, Callable[[], Coroutine[Any, Any, None]]] | None = None,
) -> None:
    """Start the configured surfaces and the serve tasks (`tasks`: instead of the root's); return when stopped."""
    own_services = services is None
    services = services or await build_services(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = _install_signals(loop, stop)
    running: dict[str, asyncio.Task[object]] = {}
    surfaces: list[ChatSurface] = []
    console_input: _StdinLines | None = None
    failure: BaseException | None = None
    metrics_dir: str | None = None
    try:
        surfaces = build_surfaces(services, host=host, port=port)
        jobs = tasks if tasks is not None else serve_tasks(services)
        if surfaces and "alert_runtime" in jobs:
            # this front also runs the runtime, which needs the numeric stack and the calendar: load them
            # before the first request, in a thread, rather than on the loop once people are waiting
            await asyncio.to_thread(importlib.import_module, WARM_MODULE)
        if surfaces and isinstance(services.executor, LocalPoolExecutor) and not os.environ.get(metrics.MULTIPROC_ENV):
            # the worker processes count into files the front's /metrics adds up (set before they start)
            metrics_dir = tempfile.mkdtemp(prefix="coach-metrics-")
            metrics.use_multiprocess(metrics_dir)
        if surfaces and services.executor is not None:
            await services.executor.start()  # workers ready before the first request, not during it
        for surface in surfaces:
            running[surface.name] = asyncio.create_task(surface.run(), name=f"coach-{surface.name}")
        if not surfaces:
            from bot.surfaces.console import chat

            src = stdin or sys.stdin
            out = stdout or sys.stdout
            console_input = _StdinLines(src, out if src.isatty() else None)
            if src.isatty():
                out.write(
                    "trading-coach — no Discord or Slack credentials set, serving this console. /help for commands, quit to leave.\n"
                )
            running["console"] = asyncio.create_task(chat(services, stdin=console_input, stdout=out), name="coach-console")
        http = _http_server(services, surfaces, host=host, port=port)
        if http is not None:
            running["http"] = asyncio.create_task(http[0].run(*http[1]), name="coach-http")
        if surfaces:
            log.info("serving", surfaces=[s.name for s in surfaces], tasks=sorted(jobs))
        for name, job in jobs.items():
            running[f"task:{name}"] = asyncio.create_task(job(), name=f"coach-{name}")

        stopper = asyncio.create_task(stop.wait(), name="coach-stop")
        done, _ = await asyncio.wait({stopper, *running.values()}, return_when=asyncio.FIRST_COMPLETED)
        for name, task in running.items():
            exc = task.exception() if task in done and not task.cancelled() else None
            if exc is not None:
                failure = _as_config_error(exc)
                if isinstance(failure, ConfigError):
                    log.error("serve_part_failed", part=name, error=failure.message)
                else:  # a bug: the operator's log gets the traceback
                    log.error("serve_part_failed", part=name, error=repr(failure), exc_info=failure)
                break
            if task in done and name != "console":
                log.warning("serve_part_ended", part=name)
        stopper.cancel()
    finally:
        if console_input is not None:
            console_input.end()
        for surface in reversed(surfaces):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(surface.close(), 10)
        for task in running.values():
            if not task.done():
                task.cancel()
        for task in running.values():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 10)
        for sig in signals:
            loop.remove_signal_handler(sig)
        if own_services:
            await services.close()
        if metrics_dir is not None:
            metrics.use_memory()
            shutil.rmtree(metrics_dir, ignore_errors=True)
        log.info("stopped")
    if failure is not None:
        raise failure


def _http_server(
    services: Services, surfaces: list[ChatSurface], *, host: str, port: int | None
) -> tuple[HttpServer, tuple[str, int]] | None:
    """The one HTTP server of this process and its address: Slack HTTP mode's, else --port / COACH_HTTP_PORT; None: no port."""
    address: tuple[str, int] | None = None
    for surface in surfaces:
        listen = getattr(surface, "http_listen", None)
        if listen is not None:
            address = listen
    wanted = port if port is not None else services.settings.coach_http_port
    if wanted is None and services.settings.coach_public_url:
        wanted = services.settings.port or DEFAULT_PORT  # chart links point here: something must answer them
    if address is None and wanted is not None:
        address = (host, wanted)
    if address is None:
        return None
    checks = base_checks(services)
    for surface in surfaces:
        readiness = getattr(surface, "readiness", None)
        if readiness is not None:
            checks.update(readiness())
    executor = services.executor

    async def refresh() -> None:
        if executor is not None:
            for lane, n in (await executor.depth()).items():
                metrics.QUEUE_DEPTH.labels(lane=lane).set(n)

    server = HttpServer(checks, refresh)
    for surface in surfaces:
        mount = getattr(surface, "mount_http", None)
        if mount is not None:
            mount(server.app)
    add_chart_page(server.app, services)  # the "Open chart" page, when COACH_PUBLIC_URL is set
    return server, address


def _install_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    installed: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals on this platform
            pass
    return installed


def _as_config_error(exc: BaseException) -> BaseException:
    """A surface's fatal error as the one line the operator needs."""
    import discord

    if isinstance(exc, discord.LoginFailure):
        return ConfigError("Discord refused DISCORD_TOKEN (login failed); check the bot token")
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return ConfigError("Discord requires privileged intents this bot did not request; check the application settings")
    if isinstance(exc, OSError) and getattr(exc, "errno", None) in (98, 48):  # address in use (Linux, macOS)
        return ConfigError(f"the HTTP port is already in use ({exc.strerror})")
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        return ConfigError(
            f"Slack refused the app's token ({exc.response.get('error')}); check SLACK_BOT_TOKEN / SLACK_APP_TOKEN"
        )
    return exc
