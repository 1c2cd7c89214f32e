"""A person's portfolio risk rules and the check of a book against them.

Three limits, each as a percent of the account and each optional: the open risk to all stops,
one symbol's exposure, one sector's exposure. Pure: exposures and risk in, breaches out.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

#: Concentration warnings use these when the person set no rule of their own.
DEFAULT_POSITION_PCT = 25.0
DEFAULT_SECTOR_PCT = 40.0


class RiskRules(BaseModel):
    """Limits in percent of the account; None means no limit."""

    model_config = ConfigDict(extra="ignore")

    max_open_risk_pct: float | None = Field(None, gt=0, le=100)
    max_position_pct: float | None = Field(None, gt=0, le=1000)
    max_sector_pct: float | None = Field(None, gt=0, le=1000)

    @property
    def empty(self) -> bool:
        return self.max_open_risk_pct is None and self.max_position_pct is None and self.max_sector_pct is None


class Breach(BaseModel):
    """One limit exceeded: which rule, by what (a symbol, a sector, or the whole book), how much against the limit."""

    rule: str  # max_open_risk_pct | max_position_pct | max_sector_pct
    subject: str
    value_pct: float
    limit_pct: float

    def describe(self) -> str:
        what = {
            "max_open_risk_pct": "open risk to stops",
            "max_position_pct": f"{self.subject} exposure",
            "max_sector_pct": f"{self.subject} sector exposure",
        }[self.rule]
        return f"{what} {self.value_pct:.1f}% of the account is over your {self.limit_pct:g}% limit"


def check_rules(
    rules: RiskRules,
    *,
    open_risk_pct: float | None,
    symbol_pct: Mapping[str, float],
    sector_pct: Mapping[str, float],
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
    ):
        if limit is None:
            continue
        for key, pct in sorted(table.items(), key=lambda kv: -abs(kv[1])):
            if abs(pct) > limit + 1e-9:
                out.append(Breach(rule=rule, subject=key, value_pct=abs(pct), limit_pct=limit))
    return out
