"""Loose values made exact: epoch nanoseconds and stored datetimes as aware UTC, wire and column numbers as finite floats.

Every layer meets these shapes at its edges (bar stamps in int64 nanoseconds, naive datetimes
from SQLite, JSON numbers that may be strings, null, NaN or a bool), so each conversion is
written once, here.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import SupportsInt, overload

__all__ = ["as_utc", "ns_from_utc", "to_float", "utc_from_ns"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_from_ns(ns: SupportsInt) -> datetime:
    """The aware UTC datetime `ns` nanoseconds after the epoch (whole microseconds: a datetime holds no finer).

    Sub-microsecond digits are dropped toward the past, as pandas does, so a stamp never moves later.
    """
    return _EPOCH + timedelta(microseconds=int(ns) // 1000)


def ns_from_utc(at: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime; ValueError for a naive one (its moment is unknown)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    exact = getattr(at, "value", None)  # a pandas Timestamp carries nanoseconds a datetime cannot
    if isinstance(exact, int):
        return exact
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


@overload
def as_utc(dt: datetime) -> datetime: ...


@overload
def as_utc(dt: None) -> None: ...


def as_utc(dt: datetime | None) -> datetime | None:
    """`dt` as an aware UTC datetime (None stays None).

    A naive datetime is taken to be UTC already: that is how the service stores times and how
    SQLite hands them back, without their zone. An aware one is converted.
    """
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def to_float(x: object) -> float | None:
    """A finite float from a loosely typed value (a JSON field, a column), or None.

    None, a bool (JSON `true` is not a price), anything `float()` refuses, NaN and infinities
    all give None.
    """
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)  # type: ignore[arg-type]  # anything float() takes; the rest is caught below
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


#: Most decimals a traded price keeps: brokers report average fills and sub-dollar quotes to 1/100 of a cent.
PRICE_DECIMALS = 4


def price_text(x: float | None) -> str:
    """A traded price as people read it: always the cents, sub-penny digits only where the price has them.

    208.44 -> "208.44", 208.4 -> "208.40", 208.4425 -> "208.4425", 0.0042 -> "0.0042", 1234.5 -> "1,234.50".
    """
    if x is None or not math.isfinite(x):
        return "—"
    text = f"{round(x, PRICE_DECIMALS):,.{PRICE_DECIMALS}f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac.ljust(2, '0')}"
