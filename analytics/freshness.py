"""How fresh the data behind a reply is: live, delayed, closed (as of the last close) or stale.

One pure decision from (data time, now, market calendar, provider):

* the provider's own label says stale (the router marks an answer it could only get stale) -> stale;
* market open: age <= `live_within` -> live; age <= `stale_after` -> delayed (with its age);
  older -> stale (with its age and the provider that served it);
* market not in its regular session (closed, pre, post): data reaching the last regular close
  (within `stale_after` of it) -> closed, as of that close; older -> stale.

A data time after `now` (a provider's clock ahead of ours) counts as age 0.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from analytics.models import Model
from analytics.sessions import session_info

FreshnessKind = Literal["live", "delayed", "closed", "stale"]

#: Data younger than this in an open market is live.
LIVE_WITHIN = timedelta(minutes=2)
#: Data older than this is stale (a 15-minute delayed feed plus its bar is still "delayed").
STALE_AFTER = timedelta(minutes=20)


class Freshness(Model):
    """The badge a reply shows: kind, the data's age, and who served it."""

    kind: FreshnessKind
    as_of: datetime
    age_seconds: float
    provider: str
    #: The regular close the data stands at when the market is not open.
    last_close: datetime | None = None


def freshness(
    as_of: datetime,
    now: datetime,
    provider: str,
    *,
    live_within: timedelta = LIVE_WITHIN,
    stale_after: timedelta = STALE_AFTER,
) -> Freshness:
    """Decide the badge for data stamped `as_of`, seen at `now`, served by `provider` (see the module docstring)."""
    info = session_info(now)
    age = max((now - as_of).total_seconds(), 0.0)
    labelled_stale = "stale" in provider.lower()
    if info.status == "open":
        kind: FreshnessKind
        if labelled_stale or age > stale_after.total_seconds():
            kind = "stale"
        elif age <= live_within.total_seconds():
            kind = "live"
        else:
            kind = "delayed"
        return Freshness(kind=kind, as_of=as_of, age_seconds=age, provider=provider)
    reaches_close = as_of >= info.last_close - stale_after
    kind = "closed" if reaches_close and not labelled_stale else "stale"
    return Freshness(kind=kind, as_of=as_of, age_seconds=age, provider=provider, last_close=info.last_close)
