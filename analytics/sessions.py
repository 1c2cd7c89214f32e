"""NYSE sessions from the real exchange calendar: status at a moment, session bounds, half days.

The calendar is loaded once per process (about a second) and kept as sorted int64
nanosecond arrays so lookups are `searchsorted`, not DataFrame scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from core.errors import UserError
from core.values import ns_from_utc, utc_from_ns

EXCHANGE_TZ = ZoneInfo("America/New_York")
TZ_NAME = "America/New_York"
#: Extended hours, in exchange time.
PRE_OPEN = time(4, 0)
POST_CLOSE = time(20, 0)
#: Bounds of the calendar we load: fixed, so results never depend on today's date.
CAL_START = "2005-01-03"
CAL_END = "2030-12-31"

Status = Literal["open", "pre", "post", "closed"]


@dataclass(frozen=True)
class Schedule:
    """Regular sessions as parallel arrays: session date, open and close in UTC ns."""

    dates: np.ndarray  # datetime64[D]
    opens: np.ndarray  # int64 ns UTC
    closes: np.ndarray  # int64 ns UTC

    def frame(self) -> pd.DataFrame:
        """The schedule as a DataFrame indexed by session date (for callers that want pandas)."""
        return pd.DataFrame(
            {
                "open": pd.to_datetime(self.opens, utc=True),
                "close": pd.to_datetime(self.closes, utc=True),
            },
            index=pd.DatetimeIndex(self.dates, name="session"),
        )


@lru_cache(maxsize=1)
def schedule() -> Schedule:
    """The NYSE regular-session schedule between CAL_START and CAL_END."""
    import exchange_calendars as xc  # imported lazily: it is slow to import

    cal = xc.get_calendar("XNYS", start=CAL_START, end=CAL_END)
    sch = cal.schedule
    dates = sch.index.values.astype("datetime64[D]")
    opens = sch["open"].dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    closes = sch["close"].dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    return Schedule(dates=dates, opens=opens, closes=closes)


@dataclass(frozen=True)
class SessionInfo:
    """Where the market stands at a moment."""

    status: Status
    as_of: datetime
    next_open: datetime
    tz: str
    #: The regular close of the most recent session that has closed at `as_of`.
    last_close: datetime
    #: The session date `as_of` belongs to (today's if open/pre/post, else the last one).
    session_date: date
    half_day: bool

    def to_dict(self) -> dict[str, str | bool]:
        """Compact JSON-friendly form."""
        return {
            "status": self.status,
            "as_of": self.as_of.isoformat(),
            "next_open": self.next_open.isoformat(),
            "last_close": self.last_close.isoformat(),
            "session_date": self.session_date.isoformat(),
            "half_day": self.half_day,
            "tz": self.tz,
        }


def _ns(at: datetime) -> int:
    if at.tzinfo is None:
        raise UserError("time must carry a UTC offset, e.g. 2024-03-15T15:30:00-04:00")
    return ns_from_utc(at)


def _check_range(ns: int) -> None:
    sch = schedule()
    if ns < sch.opens[0] or ns > sch.closes[-1]:
        raise UserError(f"time outside the supported calendar ({CAL_START} to {CAL_END})")


def is_half_day(idx: int) -> bool:
    """True when session `idx` of the schedule closes early (13:00 ET)."""
    sch = schedule()
    return bool((sch.closes[idx] - sch.opens[idx]) < 6 * 3600 * 10**9)


def session_info(at: datetime) -> SessionInfo:
    """Status of the NYSE at `at`: open, pre (04:00-09:30 ET), post (close-20:00 ET) or closed."""
    ns = _ns(at)
    _check_range(ns)
    sch = schedule()
    local = pd.Timestamp(ns, tz="UTC").tz_convert(EXCHANGE_TZ)
    today = np.datetime64(local.date(), "D")
    i = int(np.searchsorted(sch.dates, today))
    is_session_day = i < len(sch.dates) and sch.dates[i] == today
    status: Status = "closed"
    if is_session_day:
        pre = pd.Timestamp(datetime.combine(local.date(), PRE_OPEN), tz=EXCHANGE_TZ).value
        post = pd.Timestamp(datetime.combine(local.date(), POST_CLOSE), tz=EXCHANGE_TZ).value
        if sch.opens[i] <= ns < sch.closes[i]:
            status = "open"
        elif pre <= ns < sch.opens[i]:
            status = "pre"
        elif sch.closes[i] <= ns < post:
            status = "post"
    # next regular open strictly after ns
    j = int(np.searchsorted(sch.opens, ns, side="right"))
    next_open = utc_from_ns(sch.opens[min(j, len(sch.opens) - 1)])
    # last close at or before ns
    k = int(np.searchsorted(sch.closes, ns, side="right")) - 1
    k = max(k, 0)
    last_close = utc_from_ns(sch.closes[k])
    sess_idx = i if is_session_day and status != "closed" else k
    if is_session_day and status == "closed" and ns >= sch.closes[i]:
        sess_idx = i
    return SessionInfo(
        status=status,
        as_of=utc_from_ns(ns),
        next_open=next_open,
        tz=TZ_NAME,
        last_close=last_close,
        session_date=pd.Timestamp(sch.dates[sess_idx]).date(),
        half_day=is_half_day(sess_idx),
    )


def sessions_between(start: datetime, end: datetime) -> Schedule:
    """Regular sessions whose open falls in [start, end] (UTC-aware bounds)."""
    sch = schedule()
    a = int(np.searchsorted(sch.closes, _ns(start), side="left"))
    b = int(np.searchsorted(sch.opens, _ns(end), side="right"))
    return Schedule(dates=sch.dates[a:b], opens=sch.opens[a:b], closes=sch.closes[a:b])


def last_sessions(at: datetime, n: int) -> Schedule:
    """The last `n` regular sessions that have opened at or before `at` (the current one included)."""
    sch = schedule()
    b = int(np.searchsorted(sch.opens, _ns(at), side="right"))
    a = max(0, b - n)
    return Schedule(dates=sch.dates[a:b], opens=sch.opens[a:b], closes=sch.closes[a:b])


def market_time(at: datetime) -> datetime:
    """The latest moment with regular-hours data at `at`: `at` itself when open, else the last close.

    This is how a closed market plans "as of the last close", deterministically.
    """
    info = session_info(at)
    return info.as_of if info.status == "open" else info.last_close


def to_exchange_time(at: datetime) -> datetime:
    """`at` in the exchange time zone, for display and session logic."""
    return at.astimezone(EXCHANGE_TZ)


def parse_as_of(value: str, now: datetime) -> datetime:
    """Parse an ISO 8601 moment with an offset; reject malformed or future values with a clear error."""
    text = (value or "").strip()
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"malformed --as-of {text[:40]!r}; use ISO 8601 with an offset, e.g. 2024-03-15T15:30:00-04:00") from None
    if ts.tzinfo is None:
        raise UserError("--as-of needs a UTC offset, e.g. 2024-03-15T15:30:00-04:00 or 2024-03-15T19:30:00Z")
    ts = ts.astimezone(UTC)
    if ts > now + timedelta(seconds=1):
        raise UserError(f"--as-of {text} is in the future; give a moment at or before now")
    _check_range(_ns(ts))
    return ts
