"""Outcomes of tracked plans: every plan the runtime has finished following is scored and journaled.

The live tracker moves a tracked plan to a final status (stopped, exited, expired, invalidated).
`sync_tracked_outcomes` finds the finished ones that have no final outcome yet, plays each over
the market's bars from the moment it was made with the same rules as a backtest
(`analytics.outcomes`), and stores the result with `storage.journal.record_outcome`, which also
writes the journal entry. So a scorecard and a backtest measure the same thing.

It runs beside the surfaces in `coach serve` (one of `bot.app.serve_tasks`, every minute) and before every `/scorecard`.
Recording is an upsert keyed by (owner, plan id, version), so running it twice, or alongside a
tracker that records outcomes itself, never doubles a row or a journal entry.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from analytics.intervals import interval_timedelta
from analytics.models import Plan
from analytics.outcomes import TradeOutcome, evaluate_plan, horizon
from bot.request import new_request_id
from bot.services import Services
from core.errors import CoachError
from storage import journal
from storage.identity import Owner

log = structlog.get_logger("coach.scorecard")

#: Seconds between passes inside `coach serve`.
EVERY_S = 60.0


async def _finished_without_outcome(services: Services, owner: Owner | None, limit: int) -> list[tuple[Owner, Plan, datetime]]:
    """(owner, plan, when it finished) of finished tracked plans that lack a final outcome."""
    out = []
    async with services.db() as s:
        for row in await journal.finished_tracked_without_outcome(s, owner, limit=limit):
            try:
                plan = Plan.model_validate(row.plan)
            except ValueError:
                log.warning("tracked_plan_unreadable", tracked_id=row.id)
                continue
            out.append((Owner(row.tenant_id, row.owner_id), plan, row.updated_at))
    return out


async def score_plan(services: Services, plan: Plan, now: datetime) -> TradeOutcome:
    """The outcome of `plan` over the market's bars from its time to its horizon (or now)."""
    entry_dl, exit_dl = horizon(plan.style, plan.as_of)
    end = min(exit_dl + interval_timedelta(plan.interval), now)
    bars = await services.market.bars(plan.symbol, plan.interval, plan.as_of, end)
    return evaluate_plan(plan, bars.df, entry_deadline=entry_dl, exit_deadline=exit_dl, until=bars.as_of)


async def sync_tracked_outcomes(services: Services, owner: Owner | None = None, *, limit: int = 200) -> int:
    """Score and record finished tracked plans without a final outcome; returns how many became final."""
    now = services.clock()
    done = 0
    for who, plan, _finished in await _finished_without_outcome(services, owner, limit):
        try:
            outcome = await score_plan(services, plan, now)
        except CoachError as exc:  # no data for the symbol, provider trouble: try again next pass
            log.info("outcome_not_scored", plan_id=plan.plan_id, reason=exc.message)
            continue
        async with services.db() as s, s.begin():
            await journal.record_outcome(s, who, plan.plan_id, outcome)
        done += outcome.status != "open"
    return done


async def outcome_sync_task(services: Services) -> None:
    """Score finished tracked plans every minute (a `coach serve` task)."""
    while True:
        # each pass is a request of its own: its lines share one ref
        structlog.contextvars.bind_contextvars(request_id=new_request_id(), surface="scheduler", command="outcome_sync")
        try:
            n = await sync_tracked_outcomes(services)
            if n:
                log.info("tracked_outcomes_recorded", count=n)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bad pass must not stop the service; the next one retries
            log.exception("outcome_sync_failed")
        await asyncio.sleep(EVERY_S)
