"""Plain-text formatting of numbers and domain values, rounded only here, at render time."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")


def round_to_tick(value: float, tick: float = 0.01) -> float:
    """`value` rounded to the nearest multiple of `tick`."""
    if tick <= 0 or not math.isfinite(value):
        return value
    return round(round(value / tick) * tick, 10)


def fmt_price(value: float | None, tick: float = 0.01) -> str:
    """A price rounded to the tick, with thousands separators: 1,234.50."""
    if value is None or not math.isfinite(value):
        return "—"
    decimals = max(0, -int(math.floor(math.log10(tick)))) if tick < 1 else 0
    return f"{round_to_tick(value, tick):,.{decimals}f}"


def fmt_pct(value: float | None, decimals: int = 2, signed: bool = True) -> str:
    """A percentage such as +1.25%."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:+.{decimals}f}%" if signed else f"{value:.{decimals}f}%"


def fmt_volume(value: float | None) -> str:
    """A volume in compact form: 1.2M, 350K."""
    if value is None or not math.isfinite(value):
        return "—"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= div:
            return f"{value / div:.1f}{suffix}"
    return f"{value:.0f}"


def fmt_time(at: datetime | None, tz: ZoneInfo = ET, with_date: bool = True) -> str:
    """A moment in the exchange time zone: 2024-03-15 10:30 EDT."""
    if at is None:
        return "—"
    local = at.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M %Z" if with_date else "%H:%M %Z")


#: The lines of a plan's summary that its replies also show as fields: kept in the fields only.
SUMMARY_FIELD_LINES = ("Stop ", "Targets:", "Invalidation:")


def plan_story(summary: str) -> str:
    """A plan's summary without the lines a reply shows as fields (stop, targets, invalidation), so each price reads once."""
    return "\n".join(line for line in summary.split("\n") if not line.startswith(SUMMARY_FIELD_LINES))
