"""Bar intervals: the canonical tokens, the intervals each trading style looks at, and the one normaliser."""

from __future__ import annotations

import re
from datetime import timedelta

from core.errors import UserError

#: Canonical interval tokens, shortest first.
INTERVALS: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "4h", "1D", "1W")

#: Intervals each trading style looks at, fastest first (the first is the execution interval).
STYLE_INTERVALS: dict[str, tuple[str, ...]] = {
    "scalp": ("1m", "5m"),
    "intraday": ("5m", "15m", "1h"),
    "swing": ("1h", "4h", "1D"),
    "leaps": ("1D", "1W"),
}

_MINUTES: dict[str, int] = {
    "1m": 1,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "4h": 240,
    "1D": 60 * 24,
    "1W": 60 * 24 * 7,
}

# Spelling -> canonical token. Keys are compared lower-cased, except bare "m"/"M"
# ambiguity which we avoid by never accepting a bare month token.
_ALIASES: dict[str, str] = {}
for _tok, _mins in _MINUTES.items():
    _ALIASES[_tok.lower()] = _tok
for _n in (1, 5, 15, 30):
    tok = f"{_n}m"
    for spelling in (f"{_n}", f"{_n}min", f"{_n}mins", f"{_n}minute", f"{_n}minutes", f"{_n}t", f"m{_n}"):
        _ALIASES[spelling] = tok
for spelling in ("60", "60m", "60min", "1hr", "1hour", "h", "h1", "hour", "hourly", "1h"):
    _ALIASES[spelling] = "1h"
for spelling in ("240", "240m", "240min", "4hr", "4hour", "4hours", "h4"):
    _ALIASES[spelling] = "4h"
for spelling in ("d", "1d", "day", "daily", "1day", "d1", "24h"):
    _ALIASES[spelling] = "1D"
for spelling in ("w", "1w", "wk", "1wk", "week", "weekly", "1week", "w1"):
    _ALIASES[spelling] = "1W"


def normalise_interval(value: str) -> str:
    """Return the canonical token for `value` (`5min` -> `5m`, `D` -> `1D`) or raise UserError."""
    if not isinstance(value, str):
        raise UserError(f"interval must be text; accepted: {', '.join(INTERVALS)}")
    key = re.sub(r"\s+", "", value).lower()
    if key in _ALIASES:
        return _ALIASES[key]
    shown = value if len(value) <= 20 else value[:20] + "…"
    raise UserError(f"unknown interval {shown!r}; accepted: {', '.join(INTERVALS)}")


def interval_minutes(interval: str) -> int:
    """Minutes in one bar of a canonical interval (a day counts 1440, a week 10080)."""
    return _MINUTES[normalise_interval(interval)]


def interval_timedelta(interval: str) -> timedelta:
    """The nominal length of one bar."""
    return timedelta(minutes=interval_minutes(interval))


def is_intraday(interval: str) -> bool:
    """True for minute and hour bars, False for daily and weekly."""
    return interval_minutes(interval) < 60 * 24
