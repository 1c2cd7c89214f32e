"""A person's portfolio risk rules and the check of a book against them.

Four limits, each as a percent of the account and each optional: the open risk to all stops,
one symbol's exposure, one sector's exposure, and the combined exposure of holdings that move
together (pairwise correlation of daily returns above `CORRELATED_ABOVE`). Pure: exposures,
correlations and risk in, breaches out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

#: Concentration warnings use these when the person set no rule of their own.
DEFAULT_POSITION_PCT = 25.0
DEFAULT_SECTOR_PCT = 40.0
#: Two holdings whose daily returns correlate above this (over the portfolio's 60 sessions) count as one bet.
CORRELATED_ABOVE = 0.7


class RiskRules(BaseModel):
    """Limits in percent of the account; None means no limit."""

    model_config = ConfigDict(extra="ignore")

    max_open_risk_pct: float | None = Field(None, gt=0, le=100)
    max_position_pct: float | None = Field(None, gt=0, le=1000)
    max_sector_pct: float | None = Field(None, gt=0, le=1000)
    max_correlated_pct: float | None = Field(None, gt=0, le=1000)

    @property
    def empty(self) -> bool:
        return all(
            v is None for v in (self.max_open_risk_pct, self.max_position_pct, self.max_sector_pct, self.max_correlated_pct)
        )


class Breach(BaseModel):
    """One limit exceeded: which rule, by what (a symbol, a sector, or the whole book), how much against the limit."""

    rule: str  # max_open_risk_pct | max_position_pct | max_sector_pct | max_correlated_pct
    subject: str
    value_pct: float
    limit_pct: float

    def describe(self) -> str:
        what = {
            "max_open_risk_pct": "open risk to stops",
            "max_position_pct": f"{self.subject} exposure",
            "max_sector_pct": f"{self.subject} sector exposure",
            "max_correlated_pct": f"correlated exposure of {self.subject}",
        }[self.rule]
        return f"{what} {self.value_pct:.1f}% of the account is over your {self.limit_pct:g}% limit"


def check_rules(
    rules: RiskRules,
    *,
    open_risk_pct: float | None,
    symbol_pct: Mapping[str, float],
    sector_pct: Mapping[str, float],
    correlated_pct: Mapping[str, float] | None = None,
) -> list[Breach]:
    """The rules `rules` that the book breaks (exposures as absolute percents of the account), worst first per rule."""
    out: list[Breach] = []
    if rules.max_open_risk_pct is not None and open_risk_pct is not None and open_risk_pct > rules.max_open_risk_pct + 1e-9:
        out.append(
            Breach(rule="max_open_risk_pct", subject="portfolio", value_pct=open_risk_pct, limit_pct=rules.max_open_risk_pct)
        )
    for rule, limit, table in (
        ("max_position_pct", rules.max_position_pct, symbol_pct),
        ("max_sector_pct", rules.max_sector_pct, sector_pct),
        ("max_correlated_pct", rules.max_correlated_pct, correlated_pct or {}),
    ):
        if limit is None:
            continue
        for key, pct in sorted(table.items(), key=lambda kv: -abs(kv[1])):
            if abs(pct) > limit + 1e-9:
                out.append(Breach(rule=rule, subject=key, value_pct=abs(pct), limit_pct=limit))
    return out


def correlated_groups(
    symbols: Sequence[str],
    pct: Sequence[float],
    correlation: Sequence[Sequence[float]],
    threshold: float = CORRELATED_ABOVE,
) -> dict[str, float]:
    """Groups of holdings that move together, "A+B+C" -> their combined exposure (percent of the account, absolute).

    Two holdings are linked when their correlation is above `threshold` and they are on the same side
    (a long and a short that move together hedge each other rather than double the bet); a group is
    everything linked directly or through others (so A~B and B~C put A, B and C in one group even when
    A and C correlate less). Only groups of two or more are returned, largest exposure first; names
    within a group keep the order of `symbols`.
    """
    n = len(symbols)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            same_side = pct[i] * pct[j] > 0
            if same_side and correlation[i][j] > threshold:
                parent[root(j)] = root(i)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    groups = {"+".join(symbols[i] for i in idx): abs(sum(pct[i] for i in idx)) for idx in members.values() if len(idx) > 1}
    return dict(sorted(groups.items(), key=lambda kv: -kv[1]))
