"""What /backtest and /scorecard return as data (and `coach backtest --json` prints): the figures of a run.

These models hold the statistics' own types, so they live apart from the command declarations and
load with the handlers that fill them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from analytics.backtest_engine import BacktestResult, BacktestSpec
from analytics.backtest_stats import Calibration, GroupStats, Report


class BacktestSummary(BaseModel):
    """The figures of a backtest (what --json prints and LLM tools receive)."""

    symbols: list[str]
    style: str
    strategy: str
    start: datetime
    end: datetime
    every_bars: int
    sources: list[str]
    decisions: int
    plans: int
    elapsed_s: float
    overall: GroupStats
    by_strategy: list[GroupStats]
    by_quality: list[GroupStats]
    #: The plans' probability (walk-forward odds of T1 before the stop) against what happened.
    calibration: Calibration
    #: The quality grade scored the same way: the anchor, not odds.
    quality_calibration: Calibration | None = None
    #: Why the run made no plan (None when it made some).
    empty_reason: str | None = None

    @classmethod
    def of(
        cls, spec: BacktestSpec, result: BacktestResult, rep: Report, *, symbols: list[str], start: datetime, end: datetime
    ) -> BacktestSummary:
        """The figures of one run, for the symbols and span as the person asked for them."""
        return cls(
            symbols=symbols,
            style=spec.style,
            strategy=spec.strategy,
            start=start,
            end=end,
            every_bars=spec.cadence,
            sources=result.sources,
            decisions=result.decisions,
            plans=result.plans,
            elapsed_s=round(result.elapsed_s, 3),
            overall=rep.overall,
            by_strategy=rep.by_strategy,
            by_quality=rep.by_quality,
            calibration=rep.calibration,
            quality_calibration=rep.quality_calibration,
            empty_reason=result.empty_reason,
        )


class Scorecard(BaseModel):
    """The figures of the caller's tracked plans."""

    strategy: str | None
    since: datetime | None
    overall: GroupStats
    by_strategy: list[GroupStats]
    by_quality: list[GroupStats]
    calibration: Calibration
    quality_calibration: Calibration | None = None
