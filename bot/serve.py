"""`coach serve`: run every surface whose credentials are set; the console when none is."""

from __future__ import annotations

from bot.app import build_services
from bot.surfaces.console import chat


async def serve() -> None:
    """Start the configured surfaces and wait until they stop."""
    services = await build_services()
    try:
        await chat(services)
    finally:
        await services.close()
