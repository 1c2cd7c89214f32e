"""How a strategy is declared and what its detector returns.

A strategy is declared once, as a `Strategy`: id, name, the styles it serves, its minimum
reward:risk and a detector. The detector looks at every row of a `Features` at once and
returns a `Signal`: per symbol, whether the setup is present, its direction (+1 long,
-1 short), the entry trigger price and the structural stop basis (the planner adds the
ATR buffer), and, where absent, a short reason why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from analytics.strategies.features import Features

#: Reason a strategy is not applicable to the data at all (wrong interval kind).
NOT_INTRADAY = "needs intraday bars"


@dataclass
class Signal:
    """A detector's answer for every row, (S,) arrays."""

    active: np.ndarray  # bool
    direction: np.ndarray  # +1 long, -1 short, 0 inactive
    entry: np.ndarray
    stop_basis: np.ndarray
    reason: np.ndarray  # object: why not (None where active)
    zone_low: np.ndarray | None = None  # optional entry zone
    zone_high: np.ndarray | None = None


@dataclass(frozen=True)
class Strategy:
    """A declared strategy."""

    id: str
    name: str
    styles: frozenset[str]
    min_rr: float
    detector: Callable[[Features], Signal]
    #: Plain words for the entry trigger: (features, row, direction, entry) -> text.
    trigger: Callable[[Features, int, int, float], str]
    #: When the idea is wrong beyond the stop: (features, row, direction, entry, stop) -> text.
    invalidation: Callable[[Features, int, int, float, float], str]
    description: str = ""

    def serves(self, style: str) -> bool:
        return style in self.styles


def why_not(s: int, checks: Sequence[tuple[np.ndarray | bool, str]]) -> np.ndarray:
    """Per row, the first failing check's text (None where all pass). Each check is (failed, text)."""
    out = np.full(s, None, dtype=object)
    for failed, text in reversed(checks):
        out = np.where(np.broadcast_to(np.asarray(failed, dtype=bool), (s,)), text, out)
    return out


def signal(
    active: np.ndarray,
    long: np.ndarray,
    entry_long: np.ndarray,
    entry_short: np.ndarray,
    basis_long: np.ndarray,
    basis_short: np.ndarray,
    reason: np.ndarray,
    zone: tuple[np.ndarray, np.ndarray] | None = None,
) -> Signal:
    """Assemble a Signal, choosing long or short values per row and clearing inactive rows."""
    with np.errstate(invalid="ignore"):
        ok = active & np.isfinite(np.where(long, entry_long, entry_short)) & np.isfinite(np.where(long, basis_long, basis_short))
    direction = np.where(ok, np.where(long, 1, -1), 0).astype(np.int8)
    entry = np.where(ok, np.where(long, entry_long, entry_short), np.nan)
    basis = np.where(ok, np.where(long, basis_long, basis_short), np.nan)
    reason = np.where(ok, np.array(None, dtype=object), np.where(reason == None, "levels missing for this setup", reason))  # noqa: E711
    zl = zh = None
    if zone is not None:
        zl = np.where(ok, zone[0], np.nan)
        zh = np.where(ok, zone[1], np.nan)
    return Signal(ok, direction, entry, basis, reason, zl, zh)


def px(x: float) -> str:
    """A price in descriptions (rounding for words only; values stay floats)."""
    return f"{x:,.2f}"


def side(direction: int, up: str, down: str) -> str:
    return up if direction > 0 else down
