"""The strategy library's ids, in library order, for code that names strategies without running them.

Light (no numpy, no pandas): `/backtest` offers these as choices before the strategies themselves
are loaded. `analytics.strategies.STRATEGIES` declares the same ids in the same order
(`tests/bot/test_light_front.py` holds the two together).
"""

from __future__ import annotations

STRATEGY_IDS: tuple[str, ...] = (
    "orb",
    "vwap_reclaim",
    "ema_pullback",
    "pdh_pdl_break",
    "gap_go",
    "gap_fill",
    "liquidity_sweep",
    "fvg_retest",
)
