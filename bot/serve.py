"""`coach serve`: run every surface whose credentials are set; the console when none is.

- Discord when DISCORD_TOKEN is set.
- Slack when SLACK_BOT_TOKEN is set: Socket Mode with SLACK_APP_TOKEN, otherwise HTTP mode
  (SLACK_SIGNING_SECRET) on `--port` (default $PORT or 3000).
- Neither: the console on stdin/stdout (serve ends at end of input or `quit`).

`SERVE_TASKS` run beside the surfaces (the alert runtime registers itself there). SIGTERM and
SIGINT stop everything cleanly; a surface that dies (a refused token, a port in use) stops the
service with one clear error so a supervisor can restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TextIO

import structlog

from core.errors import ConfigError
from bot.app import build_services
from bot.config import Settings
from bot.services import Services

log = structlog.get_logger("coach.serve")

#: Long-running tasks started beside the surfaces (e.g. the alert runtime). Each gets the services.
SERVE_TASKS: list[Callable[[Services], Awaitable[None]]] = []

DEFAULT_PORT = 3000


def configured_surfaces(settings: Settings) -> list[str]:
    """The chat surfaces these settings enable: "discord", "slack-socket", "slack-http" (empty: the console)."""
    out = []
    if settings.discord_token:
        out.append("discord")
    if settings.slack_bot_token:
        if settings.slack_app_token:
            out.append("slack-socket")
        elif settings.slack_signing_secret:
            out.append("slack-http")
        else:
            raise ConfigError("SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP mode)")
    elif settings.slack_app_token or settings.slack_signing_secret:
        raise ConfigError("SLACK_APP_TOKEN/SLACK_SIGNING_SECRET are set but SLACK_BOT_TOKEN (xoxb-...) is not")
    return out


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
) -> None:
    """Start the configured surfaces and the serve tasks; return when stopped (signal, `stop`, console end)."""
    import bot.runtime.service  # noqa: F401 - the alert runtime's SERVE_TASKS entry
    import bot.iv_recorder  # noqa: F401 - the daily IV recorder's SERVE_TASKS entry

    own_services = services is None
    services = services or await build_services(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = _install_signals(loop, stop)
    tasks: dict[str, asyncio.Task] = {}
    closers: list[Callable[[], Awaitable[None]]] = []
    console_input: _StdinLines | None = None
    failure: BaseException | None = None
    try:
        surfaces = configured_surfaces(services.settings)
        if surfaces:
            import bot.surfaces.destinations  # noqa: F401 - registers the discord/slack delivery kinds for the runtime
        if "discord" in surfaces:
            from bot.surfaces.discord import DiscordSurface

            discord_surface = DiscordSurface(services)
            services.extras["discord_surface"] = discord_surface
            tasks["discord"] = asyncio.create_task(discord_surface.start(), name="coach-discord")
            closers.append(discord_surface.close)
        if "slack-socket" in surfaces or "slack-http" in surfaces:
            from bot.surfaces.slack import SlackSurface

            slack_surface = SlackSurface(services)
            services.extras["slack_surface"] = slack_surface
            closers.append(slack_surface.close)
            try:
                if "slack-socket" in surfaces:
                    await slack_surface.start_socket()
                else:
                    await slack_surface.start_http(host, port if port is not None else int(os.environ.get("PORT") or DEFAULT_PORT))
            except Exception as exc:  # a refused token or a busy port: one line for the operator
                raise _as_config_error(exc) from None
        if not surfaces:
            from bot.surfaces.console import chat

            src = stdin or sys.stdin
            out = stdout or sys.stdout
            console_input = _StdinLines(src, out if src.isatty() else None)
            if src.isatty():
                out.write("trading-coach — no Discord or Slack credentials set, serving this console. /help for commands, quit to leave.\n")
            tasks["console"] = asyncio.create_task(chat(services, stdin=console_input, stdout=out), name="coach-console")
        else:
            log.info("serving", surfaces=surfaces, tasks=[getattr(t, "__name__", repr(t)) for t in SERVE_TASKS])
        for fn in SERVE_TASKS:
            name = getattr(fn, "__name__", "task")
            tasks[f"task:{name}"] = asyncio.create_task(fn(services), name=f"coach-{name}")

        stopper = asyncio.create_task(stop.wait(), name="coach-stop")
        done, _ = await asyncio.wait({stopper, *tasks.values()}, return_when=asyncio.FIRST_COMPLETED)
        for name, task in tasks.items():
            if task in done and not task.cancelled() and task.exception() is not None:
                failure = _as_config_error(task.exception())
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
        for task in tasks.values():
            if not task.done():
                task.cancel()
        for closer in reversed(closers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closer(), 10)
        for task in tasks.values():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 10)
        for sig in signals:
            loop.remove_signal_handler(sig)
        if own_services:
            await services.close()
        log.info("stopped")
    if failure is not None:
        raise failure


def _install_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    installed = []
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
        return ConfigError(f"the Slack HTTP port is already in use ({exc.strerror})")
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        return ConfigError(f"Slack refused the app's token ({exc.response.get('error')}); check SLACK_BOT_TOKEN / SLACK_APP_TOKEN")
    return exc
