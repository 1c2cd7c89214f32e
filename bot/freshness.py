"""The freshness badge of a reply built from market data: which provider served it, and stamping the reply.

The pipeline stamps every command's reply whose sources cite a market data provider
(`bars 5m: sim`, `chains: yahoo (after polygon: rate limited)`, `quote: tradier`); the decision
itself is `analytics.freshness.freshness`, the text `renderers.freshness.badge_text`.
Light: the calendar behind the decision is loaded only when a reply is stamped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import structlog

from bot.reply import Reply
from bot.request import Ctx

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
    from analytics.freshness import freshness

    stale_after = timedelta(minutes=ctx.services.settings.coach_stale_minutes) + BAR_SLACK
    try:
        badge = freshness(reply.as_of, ctx.now(), provider, live_within=timedelta(seconds=LIVE_SECONDS), stale_after=stale_after)
    except Exception:  # a time outside the calendar: the answer stands without its badge
        log.warning("freshness_undecided", as_of=reply.as_of.isoformat(), provider=provider)
        return reply
    return reply.model_copy(update={"freshness": badge})
