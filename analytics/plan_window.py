"""When a plan stops being a plan: the end of the sessions it was made for.

A plan made while the market is open is for that session; one made while it is closed (a
weekend, a holiday, overnight, pre- or post-market) is for the next session, as of the last
close. Day styles (scalp, intraday) are flat by that session's close; a swing plan waits a few
sessions for its entry, a LEAPS plan a few weeks. After that the levels are stale: tracking the
plan or alerting on it would act on a market that has moved on.

Pure: the NYSE calendar (analytics.sessions) and times passed in.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from analytics.models import Plan
from analytics.sessions import EXCHANGE_TZ, schedule
from core.values import ns_from_utc, utc_from_ns

#: Sessions a plan stays valid, counting the one it was made for.
VALID_SESSIONS: dict[str, int] = {"scalp": 1, "intraday": 1, "swing": 5, "leaps": 20}


def first_session(as_of: datetime, session_status: str) -> int:
    """Index in the schedule of the session a plan made at `as_of` is for."""
    sch = schedule()
    ns = ns_from_utc(as_of)
    if session_status == "open":
        # the session under way: the first close after the plan's last bar
        return min(int(np.searchsorted(sch.closes, ns, side="right")), len(sch.closes) - 1)
    # closed, pre or post: the next session to open
    return min(int(np.searchsorted(sch.opens, ns, side="right")), len(sch.opens) - 1)


def plan_expires_at(style: str, as_of: datetime, session_status: str) -> datetime:
    """The close of the last session a plan of `style` made at `as_of` is valid for."""
    sch = schedule()
    i = first_session(as_of, session_status) + VALID_SESSIONS.get(style, 1) - 1
    return utc_from_ns(int(sch.closes[min(i, len(sch.closes) - 1)]))


def expires_at(plan: Plan) -> datetime:
    """When `plan` expires (see plan_expires_at)."""
    return plan_expires_at(plan.style, plan.as_of, plan.session)


def expired_reason(plan: Plan, now: datetime) -> str | None:
    """Why `plan` is no longer valid at `now`, in one sentence; None while it is."""
    end = expires_at(plan)
    if now < end:
        return None
    n = VALID_SESSIONS.get(plan.style, 1)
    span = "the session it was made for" if n == 1 else f"{n} sessions"
    when = end.astimezone(EXCHANGE_TZ).strftime("%a %Y-%m-%d %H:%M ET")
    article = "an" if plan.style[:1] in "aeiou" else "a"
    return f"plan {plan.plan_id} expired {when} ({article} {plan.style} plan lasts {span})"


__all__ = ["VALID_SESSIONS", "expired_reason", "expires_at", "first_session", "plan_expires_at"]
