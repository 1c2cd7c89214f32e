"""Alert kinds: the conditions a person can ask for, what each is called, and the family it belongs to.

Light (no numpy, no pandas): `/alert add` declares and checks its kind with these before the
alert book, which evaluates them, is loaded.
"""

from __future__ import annotations

from core.errors import UserError

#: Conditions a person can ask for. Price conditions are evaluated on every tick, the rest on bars.
PRICE_KINDS = ("above", "below", "cross", "pct")
INDICATOR_KINDS = ("rsi_above", "rsi_below", "ema_cross_up", "ema_cross_down", "vwap_reclaim", "vwap_loss")
PLAN_KINDS = ("entry", "stop", "target", "invalidation")
KINDS = PRICE_KINDS + INDICATOR_KINDS + PLAN_KINDS

#: What each kind is called in messages.
KIND_LABELS = {
    "above": "above",
    "below": "below",
    "cross": "crossing",
    "pct": "moving",
    "rsi_above": "RSI above",
    "rsi_below": "RSI below",
    "ema_cross_up": "EMA cross up",
    "ema_cross_down": "EMA cross down",
    "vwap_reclaim": "VWAP reclaim",
    "vwap_loss": "VWAP loss",
    "entry": "plan entry",
    "stop": "plan stop",
    "target": "plan target",
    "invalidation": "plan invalidation",
}


def kind_category(kind: str) -> str:
    """ "price", "indicator" or "plan": the families channel settings allow or refuse."""
    if kind in PRICE_KINDS:
        return "price"
    if kind in INDICATOR_KINDS:
        return "indicator"
    if kind in PLAN_KINDS:
        return "plan"
    raise UserError(f"unknown alert kind {kind[:24]!r}; accepted: {', '.join(KINDS)}")
