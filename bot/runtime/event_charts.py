"""Charts drawn when a plan transition is delivered: the plan's chart at the event's moment, with its current stop."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from analytics.models import Plan
from analytics.sessions import session_info
from bot.chart_service import fetch_bars
from bot.reply import Attachment
from core.errors import CoachError

if TYPE_CHECKING:
    from bot.services import Services

log = structlog.get_logger("coach.runtime.charts")


async def plan_chart(services: Services, spec: dict[str, Any]) -> Attachment | None:
    """The chart a plan update asks for (`{"plan", "stop", "at"}`), or None when it cannot be drawn."""
    try:
        plan = Plan.model_validate(spec["plan"])
        if spec.get("stop") is not None:
            plan = plan.model_copy(update={"stop": float(spec["stop"])})
        at = datetime.fromisoformat(spec["at"])
        bars = await fetch_bars(services.market, plan.symbol, plan.interval, at)
        if bars.df.empty:
            return None
        return await services.charts.plan_chart(
            symbol=plan.symbol,
            interval=plan.interval,
            bars=bars.df,
            plan=plan,
            levels=[],
            as_of=bars.as_of,
            session_status=session_info(at).status,
            source=bars.source,
            style=plan.style,
        )
    except (CoachError, KeyError, ValueError, TypeError) as exc:
        log.info("plan_chart_skipped", error=str(exc)[:200])
        return None
