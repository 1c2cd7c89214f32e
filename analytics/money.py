"""Plausible amounts: money to risk or hold, and prices to trade at, checked the same way everywhere.

Pure and light (no numpy, no pandas): command arguments are validated with these before any
computation is loaded.
"""

from __future__ import annotations

import math

from core.errors import UserError

#: Above this a risk amount or account size is treated as a typo, not a trade.
MAX_MONEY = 1_000_000_000.0


def check_money(value: float, what: str) -> float:
    """`value` if it is a positive, finite, plausible amount of money; else a UserError saying what is accepted."""
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise UserError(f"{what} must be a number, e.g. 500")
    if value <= 0:
        raise UserError(f"{what} must be positive (got {value:g}); e.g. 500 to risk $500")
    if value > MAX_MONEY:
        raise UserError(f"{what} {value:,.0f} is not plausible; accepted: up to {MAX_MONEY:,.0f}")
    return float(value)


def check_prices(entry: float, stop: float) -> None:
    """Raise a UserError unless entry and stop are positive, finite and different."""
    for name, v in (("entry", entry), ("stop", stop)):
        if v is None or not math.isfinite(v) or v <= 0:
            raise UserError(f"{name} must be a positive price (got {v})")
        if v > MAX_MONEY:
            raise UserError(f"{name} {v:,.2f} is not a plausible price")
    if abs(entry - stop) < 1e-9 * max(entry, stop):
        raise UserError(
            f"entry equals stop ({entry:g}): there is no stop distance to size against; put the stop below entry for a long, above for a short"
        )
