"""The strategy library: every strategy declared once, in its own module.

`STRATEGIES` lists them in a fixed order (ties in ranking go to the earlier one);
`for_style(style)` the ones that serve a trading style; `by_id(id)` one of them.
"""

from __future__ import annotations

from analytics.strategies import ema_pullback, fvg, gap, orb, prior_day, sweep, vwap
from analytics.strategies.base import Signal, Strategy
from core.errors import UserError

STRATEGIES: tuple[Strategy, ...] = (
    orb.STRATEGY,
    vwap.STRATEGY,
    ema_pullback.STRATEGY,
    prior_day.STRATEGY,
    gap.GAP_GO,
    gap.GAP_FILL,
    sweep.STRATEGY,
    fvg.STRATEGY,
)


def for_style(style: str) -> tuple[Strategy, ...]:
    """The strategies serving `style`, in library order."""
    return tuple(s for s in STRATEGIES if s.serves(style))


def by_id(strategy_id: str) -> Strategy:
    """The strategy with this id, or UserError listing the ids."""
    for s in STRATEGIES:
        if s.id == strategy_id:
            return s
    raise UserError(f"unknown strategy {strategy_id[:32]!r}; known: {', '.join(s.id for s in STRATEGIES)}")


__all__ = ["STRATEGIES", "Signal", "Strategy", "by_id", "for_style"]
