"""Whether this process can serve: the checks behind `/readyz`, each named, each a short reason when it fails.

    database   a `SELECT 1` within the time limit
    queue      a Redis PING (only with COACH_QUEUE_URL)
    discord    the gateway connection is up (only when Discord runs in this process)
    slack      Slack answers auth.test (only when Slack runs here; the answer is kept a minute)
    feed       the price feed the runtime last reported is not stale or down (closed markets are fine)

A check that is not configured is not run, so a console-only deployment is ready with a database.
Nothing here imports analytics: a light front runs these checks too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy import text

from storage.runtime_state import get_state

if TYPE_CHECKING:
    from bot.services import Services

#: A check: None when fine, else why not (one short line).
Check = Callable[[], Awaitable[str | None]]

#: Where the runtime records its feed's state (`bot.runtime.worker.FEED_KEY`; not imported: it pulls in analytics).
FEED_STATE_KEY = "runtime:feed"
#: Seconds one check may take before it counts as failed.
CHECK_TIMEOUT = 2.0


def database_check(services: Services) -> Check:
    async def check() -> str | None:
        async with services.db() as s:
            await s.execute(text("SELECT 1"))
        return None

    return check


def queue_check(services: Services) -> Check:
    async def check() -> str | None:
        if services.redis is None:
            return "no queue connection"
        await services.redis.ping()
        return None

    return check


def feed_check(services: Services) -> Check:
    async def check() -> str | None:
        async with services.db() as s:
            state = await get_state(s, FEED_STATE_KEY)
        if state is None:
            return None  # no runtime has reported yet: nothing to be stale
        if state.get("state") in ("stale", "down"):
            lag = state.get("lag_s")
            since = f", last tick {lag:.0f} s ago" if isinstance(lag, int | float) else ""
            return f"price feed {state.get('source', '?')} is {state['state']}{since}"
        return None

    return check


def cached(check: Check, seconds: float) -> Check:
    """`check`, asked again only once its last answer is `seconds` old (for checks that cost the platform a request)."""
    last: tuple[float, str | None] | None = None

    async def run() -> str | None:
        nonlocal last
        now = time.monotonic()
        if last is None or now - last[0] > seconds:
            last = (now, await check())
        return last[1]

    return run


def base_checks(services: Services) -> dict[str, Check]:
    """The checks every `coach serve` runs: database, queue when configured, the feed the runtime reports."""
    checks = {"database": database_check(services)}
    if services.settings.coach_queue_url is not None:
        checks["queue"] = queue_check(services)
    checks["feed"] = feed_check(services)
    return checks


async def run_checks(checks: dict[str, Check], timeout: float = CHECK_TIMEOUT) -> dict[str, str | None]:
    """Every check's verdict by name (None: fine), run side by side, each within `timeout` seconds."""

    async def one(check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except Exception as exc:  # a failing check is a verdict, not a crash of the endpoint
            return f"{exc.__class__.__name__}: {str(exc)[:160]}"

    names = list(checks)
    verdicts = await asyncio.gather(*(one(checks[n]) for n in names))
    return dict(zip(names, verdicts, strict=True))
