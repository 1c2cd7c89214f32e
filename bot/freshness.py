"""The freshness badge of a reply built from market data: which provider served it, and stamping the reply.

The pipeline stamps every command's reply whose sources cite a market data provider
(`bars 5m: sim`, `chains: yahoo (after polygon: rate limited)`, `quote: tradier`); the decision
itself is `analytics.freshness.freshness`, the text `renderers.freshness.badge_text`. The
runtime stamps what it pushes (a fired alert, a plan's transition) with `decide`, from the time
of the price that caused it: an alert fired by a 15-minute-old quote says "delayed 15 min".
Light: the calendar behind the decision is loaded only when a reply is stamped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import structlog

from bot.reply import Reply
from bot.request import Ctx

if TYPE_CHECKING:
    from analytics.freshness import Freshness

log = structlog.get_logger("coach.freshness")

#: Names of the market data providers, as they start a source's label.
MARKET_PROVIDERS = ("sim", "replay", "polygon", "tradier", "yahoo")
#: Age up to which data in an open market is shown as live.
LIVE_SECONDS = 120.0
#: Added to COACH_STALE_MINUTES before the badge says stale: a delayed feed's last bar is still "delayed".
BAR_SLACK = timedelta(minutes=5)


def market_provider(sources: Sequence[str]) -> str | None:
    """The label of the first source a market data provider served (`yahoo (after polygon: ...)`), or None."""
    for src in sources:
        _, sep, label = src.partition(": ")
        label = label.strip() if sep else src.strip()
        word = label.split(" ", 1)[0].lower()
        if word in MARKET_PROVIDERS:
            return label
    return None


def stamp(reply: Reply, ctx: Ctx) -> Reply:
    """`reply` with its freshness badge when it was built from market data; unchanged otherwise."""
    if reply.freshness is not None or reply.as_of is None or reply.error_kind is not None:
        return reply
    provider = market_provider(reply.sources)
    if provider is None:
        return reply
    badge = decide(reply.as_of, ctx.now(), provider, ctx.services.settings.coach_stale_minutes)
    return reply if badge is None else reply.model_copy(update={"freshness": badge})


def decide(as_of: datetime, now: datetime, provider: str, stale_minutes: float) -> Freshness | None:
    """The badge for data stamped `as_of` seen at `now` (a reply's data, or the tick that fired an alert), or None
    when it cannot be decided (a time outside the calendar): the message then goes out without one."""
    from analytics.freshness import freshness

    stale_after = timedelta(minutes=stale_minutes) + BAR_SLACK
    try:
        return freshness(as_of, now, provider, live_within=timedelta(seconds=LIVE_SECONDS), stale_after=stale_after)
    except Exception:
        log.warning("freshness_undecided", as_of=as_of.isoformat(), provider=provider)
        return None


def decide_push(as_of: datetime, now: datetime, provider: str, stale_minutes: float) -> Freshness | None:
    """`decide` for the runtime's hot path, to the second: the many alerts one tick fires share one decision
    (the calendar lookup behind it costs tens of microseconds)."""
    return _decide_seconds(int(as_of.timestamp()), int(now.timestamp()), provider, stale_minutes)


@lru_cache(maxsize=1024)
def _decide_seconds(as_of_s: int, now_s: int, provider: str, stale_minutes: float) -> Freshness | None:
    return decide(datetime.fromtimestamp(as_of_s, UTC), datetime.fromtimestamp(now_s, UTC), provider, stale_minutes)
