"""`coach serve`: run every surface whose credentials are set; the console when none is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.app import build_services
from bot.context import Services
from bot.surfaces.console import chat

#: Long-running tasks started beside the surfaces (e.g. the alert runtime). Each gets the services.
SERVE_TASKS: list[Callable[[Services], Awaitable[None]]] = []


async def serve() -> None:
    """Start the configured surfaces and wait until they stop."""
    services = await build_services()
    try:
        await chat(services)
    finally:
        await services.close()
