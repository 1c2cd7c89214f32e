"""The daily IV recorder job: after each regular close, store the session's 30-day ATM IV.

It runs inside `coach serve` (one of `bot.app.serve_tasks`) for every watched symbol and every
symbol already in the history, so IV rank turns from the HV proxy into true IV rank as
days accumulate. `coach iv record SYMBOLS` does the same by hand (or from cron).
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import TYPE_CHECKING

import structlog

from analytics.sessions import session_info
from bot.request import new_request_id
from bot.services import Services

if TYPE_CHECKING:
    from bot.options_service import IVRecord

log = structlog.get_logger("coach.iv_recorder")

#: How often the job wakes to see whether a session has closed since its last pass.
EVERY_S = 600.0


async def record_pass(services: Services, done: set[date]) -> list[IVRecord]:
    """Record the last closed session once (tracked in `done`); returns the IVRecords written this pass."""
    from bot.options_service import record_iv, recorder_universe

    info = session_info(services.clock())
    if info.status == "open":
        return []
    closed_day = info.last_close.date()
    if closed_day in done:
        return []
    # record as of the close itself so chains, quotes and the stored date all agree
    symbols = await recorder_universe(services)
    results = await record_iv(services, symbols, info.last_close) if symbols else []
    done.add(closed_day)
    recorded = sum(1 for r in results if r.status == "recorded")
    log.info("iv_recorded", day=str(closed_day), symbols=len(symbols), recorded=recorded)
    return results


async def iv_recorder_task(services: Services) -> None:
    """Wake every EVERY_S seconds and record each newly closed session once."""
    done: set[date] = set()
    while True:
        # each pass is a request of its own: its lines share one ref
        structlog.contextvars.bind_contextvars(request_id=new_request_id(), surface="scheduler", command="iv_recorder")
        try:
            await record_pass(services, done)
        except asyncio.CancelledError:
            raise
        except Exception:  # one bad pass must not stop the service; the next one retries
            log.exception("iv_record_failed")
        await asyncio.sleep(EVERY_S)
