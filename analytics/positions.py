"""Open positions from a stream of fills (average-cost method) and the risk of one position to its stop.

Pure: fills in, positions out. A buy adds to a long (or covers a short), a sell does the
opposite; the average cost moves only when a position grows, and a fill that crosses zero
closes the old position and opens the other side at the fill's price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Sides that add shares or contracts (the rest take them away).
BUY_SIDES = frozenset({"buy", "buy_to_cover", "buy_to_open", "buy_to_close"})


@dataclass(frozen=True)
class FillEvent:
    """One execution of one instrument (an equity symbol or an OCC option symbol)."""

    instrument: str
    underlying: str
    asset_class: str  # equity | option
    side: str
    quantity: float
    price: float
    at: datetime
    plan_id: str | None = None


@dataclass(frozen=True)
class NetPosition:
    """What is held of one instrument: signed quantity (negative = short) at an average cost per unit."""

    instrument: str
    underlying: str
    asset_class: str
    quantity: float
    avg_cost: float
    opened_at: datetime
    plan_id: str | None


def net_positions(fills: list[FillEvent]) -> list[NetPosition]:
    """Open positions of `fills` (in time order), one per instrument, sorted by instrument; flat ones dropped."""
    book: dict[str, NetPosition] = {}
    for f in sorted(fills, key=lambda f: f.at):
        signed = f.quantity if f.side in BUY_SIDES else -f.quantity
        cur = book.get(f.instrument)
        if cur is None or abs(cur.quantity) < 1e-9:
            book[f.instrument] = NetPosition(f.instrument, f.underlying, f.asset_class, signed, f.price, f.at, f.plan_id)
            continue
        qty = cur.quantity + signed
        if cur.quantity * signed > 0:  # adding to the position: the average moves
            avg = (cur.quantity * cur.avg_cost + signed * f.price) / qty
            book[f.instrument] = NetPosition(
                f.instrument, f.underlying, f.asset_class, qty, avg, cur.opened_at, f.plan_id or cur.plan_id
            )
        elif abs(qty) < 1e-9:
            book[f.instrument] = NetPosition(f.instrument, f.underlying, f.asset_class, 0.0, 0.0, f.at, None)
        elif qty * cur.quantity > 0:  # reduced, same side: the average of what is left is unchanged
            book[f.instrument] = NetPosition(
                f.instrument, f.underlying, f.asset_class, qty, cur.avg_cost, cur.opened_at, cur.plan_id
            )
        else:  # crossed zero: what is left is a new position at this fill's price
            book[f.instrument] = NetPosition(f.instrument, f.underlying, f.asset_class, qty, f.price, f.at, f.plan_id)
    return [p for _, p in sorted(book.items()) if abs(p.quantity) >= 1e-9]


def risk_to_stop(quantity: float, last: float, stop: float, multiplier: float = 1.0) -> float:
    """Dollars lost if price goes from `last` to `stop` (0 when the stop is already beyond break-even on the profit side)."""
    per_unit = (last - stop) if quantity > 0 else (stop - last)
    return max(0.0, per_unit) * abs(quantity) * multiplier


def r_multiple(quantity: float, avg_cost: float, last: float, entry: float, stop: float) -> float | None:
    """Unrealised move from the average cost in units of the plan's risk per share (None without a risk)."""
    risk = abs(entry - stop)
    if risk <= 0:
        return None
    move = (last - avg_cost) if quantity > 0 else (avg_cost - last)
    return move / risk
