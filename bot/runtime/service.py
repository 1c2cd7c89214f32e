"""Puts the runtime inside `coach serve`: a SERVE_TASKS entry (imported by bot/serve.py)."""

from __future__ import annotations

from typing import Any

from bot.serve import SERVE_TASKS


async def alert_runtime(services: Any) -> None:
    """Run the alert and live-plan runtime beside the surfaces (standing by while another process leads)."""
    from bot.runtime.worker import Runtime

    runtime = Runtime(services)
    services.extras["runtime_stats"] = runtime.stats
    await runtime.run()


if alert_runtime not in SERVE_TASKS:
    SERVE_TASKS.append(alert_runtime)
