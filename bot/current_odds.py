"""The odds fit plans are made with: the newest one stored (`odds_fits`), read once a minute per process.

Kept apart from `bot.odds` (which replays history to make fits) so that planning can read a fit
without importing the backtest machinery that itself plans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import SQLAlchemyError

from bot.services import Services

if TYPE_CHECKING:
    from analytics.calibration import OddsFit

log = structlog.get_logger("coach.odds")

#: How long a process keeps the newest fit before reading the table again.
FIT_TTL_S = 60.0


async def current_fit(services: Services) -> OddsFit | None:
    """The newest stored fit (cached for FIT_TTL_S), or None when there is none yet.

    A database that cannot be read (not migrated to the odds table yet) gives None: plans then
    carry the no-edge prior and say so, rather than fail.
    """
    from storage.odds_fits import latest_fit

    async def load() -> OddsFit | None:
        try:
            async with services.db() as s:
                return await latest_fit(s)
        except SQLAlchemyError as exc:
            log.warning("odds_fit_unreadable", error=exc.__class__.__name__)
            return None

    fit: OddsFit | None = await services.odds_fits.get_or_load("latest", load, ttl=FIT_TTL_S)
    return fit


__all__ = ["FIT_TTL_S", "current_fit"]
