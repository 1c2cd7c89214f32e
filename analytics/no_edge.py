"""The no-edge odds of a plan, with no import of the project: what every plan carries before any calibration.

With no edge price is a driftless walk; a plan risks 1R to the stop and asks for R multiples of
that risk at T1, so the chance T1 comes first is the gambler's-ruin answer 1 / (1 + R).
"""

from __future__ import annotations

#: What a probability resting on no resolved plan says.
NO_FIT_BASIS = "no past outcomes yet: no-edge prior"


def first_rr(entry: float, stop: float, t1: float) -> float:
    """T1's distance from the entry in multiples of the risk (NaN without risk)."""
    risk = abs(entry - stop)
    return abs(t1 - entry) / risk if risk > 0 else float("nan")


def no_edge_probability(rr: float) -> float:
    """1 / (1 + R): the chance of T1 before the stop for a driftless walk (R below 0 counts as 0)."""
    return 1.0 / (1.0 + max(rr, 0.0))
