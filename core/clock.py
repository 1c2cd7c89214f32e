"""The wall clock. Only the service's edges read it; analytics takes time as input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: Anything that answers "now" as an aware UTC datetime (the wall clock, a frozen moment, an accelerated market clock).
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)
