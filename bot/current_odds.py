"""The odds fit plans are made with: the newest one stored (`odds_fits`), read once a minute per process.

Kept apart from `bot.odds` (which replays history to make fits) so that planning can read a fit
without importing the backtest machinery that itself plans.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import SQLAlchemyError

from bot.services import Services

if TYPE_CHECKING:
    from analytics.calibration import OddsFit

log = structlog.get_logger("coach.odds")

#: How long a process keeps the newest fit before reading the table again.
FIT_TTL_S = 60.0


async def current_fit(services: Services, at: datetime | None = None) -> OddsFit | None:
    """The newest stored fit made by `at` (default: the newest of all, cached for FIT_TTL_S), or None when there is none.

    A plan made as of a past moment (`--as-of`, a replay) uses only a fit that existed then, so
    its odds never rest on outcomes from its future. A database that cannot be read (not
    migrated to the odds table yet) gives None: plans then carry the no-edge prior and say so.
    """
    from storage.odds_fits import latest_fit

    async def load(before: datetime | None = None) -> OddsFit | None:
        try:
            async with services.db() as s:
                return await latest_fit(s, before)
        except SQLAlchemyError as exc:
            log.warning("odds_fit_unreadable", error=exc.__class__.__name__)
            return None

    fit: OddsFit | None = await services.odds_fits.get_or_load("latest", load, ttl=FIT_TTL_S)
    if at is None or fit is None or fit.fitted_at <= at:
        return fit
    return await load(at)


__all__ = ["FIT_TTL_S", "current_fit"]
