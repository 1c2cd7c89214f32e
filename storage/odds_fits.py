"""Calibrations of plan odds (analytics.calibration): one row per fit, the newest one in use.

Market data, not anyone's own data: fits are shared by every tenant and carry no owner. A fit
is one row whose JSON holds every node, written in one statement, so a reader sees a whole fit
or the previous one, never half of one. Old fits are kept for a while (to see how the odds
moved), then pruned.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import JSON, Integer, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utc_now
from storage.base import Base, UTCDateTime

if TYPE_CHECKING:  # the calibration math pulls in the numeric stack, which a light chat front never loads
    from analytics.calibration import OddsFit

#: Fits kept; older ones are deleted when a new one is saved.
KEEP_FITS = 30


class OddsFitRow(Base):
    """One fit: when, how many resolved plans, which model version, and the fit itself."""

    __tablename__ = "odds_fits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    version: Mapped[int] = mapped_column(Integer)
    sample_size: Mapped[int] = mapped_column(Integer)
    hits: Mapped[int] = mapped_column(Integer)
    #: Symbols and styles the outcomes came from, for people reading the table.
    scope: Mapped[str] = mapped_column(String(400))
    fit: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


async def save_fit(session: AsyncSession, fit: OddsFit, *, keep: int = KEEP_FITS) -> int:
    """Store `fit` as the newest one and prune all but the `keep` newest; returns its row id."""
    scope = f"{','.join(fit.symbols)} / {','.join(fit.styles)}"[:400]
    row = OddsFitRow(
        fitted_at=fit.fitted_at,
        version=fit.version,
        sample_size=fit.n,
        hits=fit.hits,
        scope=scope,
        fit=fit.model_dump(mode="json"),
    )
    session.add(row)
    await session.flush()
    old = select(OddsFitRow.id).order_by(OddsFitRow.fitted_at.desc(), OddsFitRow.id.desc()).offset(max(1, keep))
    stale = [r[0] for r in await session.execute(old)]
    if stale:
        await session.execute(delete(OddsFitRow).where(OddsFitRow.id.in_(stale)))
    return int(row.id)


async def latest_fit(session: AsyncSession, before: datetime | None = None) -> OddsFit | None:
    """The newest fit of the current model version (made at or before `before` when given), or None."""
    from analytics.calibration import METHOD_VERSION, OddsFit

    q = select(OddsFitRow.fit).where(OddsFitRow.version == METHOD_VERSION)
    if before is not None:
        q = q.where(OddsFitRow.fitted_at <= before)
    q = q.order_by(OddsFitRow.fitted_at.desc(), OddsFitRow.id.desc()).limit(1)
    data = (await session.execute(q)).scalar_one_or_none()
    if data is None:
        return None
    try:
        return OddsFit.model_validate(data)
    except ValidationError:  # a row no longer readable: plans fall back to the prior rather than fail
        return None


__all__ = ["KEEP_FITS", "OddsFitRow", "latest_fit", "save_fit"]
