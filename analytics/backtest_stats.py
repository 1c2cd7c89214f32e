"""Statistics over plan outcomes: hit rate, expectancy and drawdown in R, and whether the odds are calibrated.

Definitions (the same for a backtest and for a user's tracked plans):

* A **trade** is a plan that was entered and closed. Plans never entered and trades still open
  are counted but do not enter the figures.
* **Hit rate**: share of trades with R > 0. **T1 rate**: share that reached T1 before the stop.
* **Expectancy**: mean R per trade. **Profit factor**: the sum of winning R over the sum of
  losing R (None when there is no losing trade). **Max drawdown**: the largest fall of the
  cumulative R curve from a previous peak (the curve starts at 0), trades ordered by exit time.
* **Calibration** asks whether a plan's probability is the chance that price reaches T1
  before the stop. Every entered plan whose answer is known (T1 or the stop came first, or the
  trade closed without either, which counts as "no") is one forecast. The **Brier score** is the
  mean of (probability - outcome)^2: 0 is perfect, and the reference is the score of always
  forecasting the observed base rate; skill = 1 - Brier / reference (> 0 beats the base rate),
  with a bootstrap standard error over trading days. The quality grade is scored the same way
  beside it, as the anchor: it is not odds, and its skill shows how far it is from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import numpy as np
from pydantic import Field

from analytics.calibration import no_edge, score, t1_label
from analytics.models import Model
from analytics.outcomes import TradeOutcome

#: Edges of the probability and quality buckets: ten bins of 0.1.
BUCKET_EDGES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))


class GroupStats(Model):
    """The figures for one group of plans (all, one strategy, one quality bucket)."""

    key: str
    plans: int
    trades: int
    no_entry: int = 0
    open: int = 0
    wins: int = 0
    losses: int = 0
    hit_rate: float | None = None
    t1_rate: float | None = None
    expectancy_r: float | None = None
    total_r: float = 0.0
    gross_win_r: float = 0.0
    gross_loss_r: float = 0.0
    profit_factor: float | None = None
    max_drawdown_r: float = 0.0
    avg_mae_r: float | None = None
    avg_mfe_r: float | None = None
    avg_time_in_trade_s: float | None = None
    avg_quality: float | None = None
    avg_probability: float | None = None


class CalibrationBucket(Model):
    """Forecasts that fell in [low, high): how often T1 came before the stop."""

    low: float
    high: float
    n: int
    mean_forecast: float | None = None
    observed: float | None = None


class Calibration(Model):
    """One forecast (the probability, or the quality grade) against "reached T1 before the stop"."""

    #: What was scored: "probability" or "quality".
    forecast: str = "probability"
    n: int
    mean_forecast: float | None = None
    brier: float | None = None
    base_rate: float | None = None
    brier_reference: float | None = None
    skill: float | None = None
    #: Bootstrap standard error of the skill, trading days resampled.
    skill_se: float | None = None
    buckets: list[CalibrationBucket] = Field(default_factory=list)


class EquityPoint(Model):
    at: datetime
    r: float  # cumulative R after this trade


class Report(Model):
    """Everything a backtest or scorecard shows."""

    overall: GroupStats
    by_strategy: list[GroupStats]
    by_quality: list[GroupStats]
    #: The probability plans carried (a backtest's walk-forward odds) against T1 before the stop.
    calibration: Calibration
    #: The quality grade scored the same way, shown beside it as the anchor.
    quality_calibration: Calibration | None = None
    equity: list[EquityPoint] = Field(default_factory=list)


def forecast_of(o: TradeOutcome) -> float:
    """The probability an outcome's plan carried; the no-edge prior for outcomes stored before plans had odds."""
    if o.probability is not None:
        return float(o.probability)
    return float(no_edge(o.entry, o.stop, o.targets[0])) if o.targets else 0.0


def _closed(outcomes: Iterable[TradeOutcome]) -> list[TradeOutcome]:
    return [o for o in outcomes if o.status == "closed" and o.r_multiple is not None]


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if len(x) else None


def max_drawdown(r: Sequence[float] | np.ndarray) -> float:
    """Largest peak-to-trough fall of the cumulative sum of `r` (a curve starting at 0), as a non-negative number."""
    arr = np.asarray(r, dtype=np.float64)
    if not len(arr):
        return 0.0
    curve = np.concatenate(([0.0], np.cumsum(arr)))
    return float((np.maximum.accumulate(curve) - curve).max())


def _exit_order(trades: list[TradeOutcome]) -> list[TradeOutcome]:
    return sorted(trades, key=lambda o: (o.exited_at or o.planned_at, o.planned_at, o.plan_id))


def group_stats(key: str, outcomes: Sequence[TradeOutcome]) -> GroupStats:
    """The figures for one group of outcomes."""
    trades = _exit_order(_closed(outcomes))
    r = np.array([o.r_multiple for o in trades], dtype=np.float64)
    wins = r[r > 0]
    losses = r[r < 0]
    t1 = np.array([o.first == "t1" for o in trades], dtype=np.float64)
    mae = np.array([o.mae_r for o in trades if o.mae_r is not None], dtype=np.float64)
    mfe = np.array([o.mfe_r for o in trades if o.mfe_r is not None], dtype=np.float64)
    held = np.array([o.time_in_trade_s for o in trades if o.time_in_trade_s is not None], dtype=np.float64)
    gross_win = float(wins.sum())
    gross_loss = float(-losses.sum())
    return GroupStats(
        key=key,
        plans=len(outcomes),
        trades=len(trades),
        no_entry=sum(1 for o in outcomes if o.status == "no_entry"),
        open=sum(1 for o in outcomes if o.status == "open"),
        wins=int(len(wins)),
        losses=int(len(losses)),
        hit_rate=float(len(wins) / len(r)) if len(r) else None,
        t1_rate=_mean(t1),
        expectancy_r=_mean(r),
        total_r=float(r.sum()),
        gross_win_r=gross_win,
        gross_loss_r=gross_loss,
        profit_factor=gross_win / gross_loss if gross_loss > 0 else None,
        max_drawdown_r=max_drawdown(r),
        avg_mae_r=_mean(mae),
        avg_mfe_r=_mean(mfe),
        avg_time_in_trade_s=_mean(held),
        avg_quality=_mean(np.array([o.quality for o in outcomes], dtype=np.float64)),
        avg_probability=_mean(np.array([forecast_of(o) for o in outcomes], dtype=np.float64)),
    )


def bucket_index(value: float, edges: Sequence[float] = BUCKET_EDGES) -> int:
    """The bucket [edges[i], edges[i+1]) holding `value`; 1.0 falls in the last bucket."""
    i = int(np.searchsorted(np.asarray(edges), value, side="right")) - 1
    return min(max(i, 0), len(edges) - 2)


def bucket_label(i: int, edges: Sequence[float] = BUCKET_EDGES) -> str:
    return f"{edges[i]:.1f}-{edges[i + 1]:.1f}"


def calibration(
    outcomes: Iterable[TradeOutcome], edges: Sequence[float] = BUCKET_EDGES, *, forecast: str = "probability"
) -> Calibration:
    """Calibration table, Brier score and skill of `forecast` ("probability" or "quality") against "reached T1 before the stop"."""
    pick: Callable[[TradeOutcome], float] = forecast_of if forecast == "probability" else (lambda o: float(o.quality))
    known = [(o, label) for o in outcomes if (label := t1_label(o)) is not None]
    if not known:
        return Calibration(
            forecast=forecast,
            n=0,
            buckets=[CalibrationBucket(low=edges[i], high=edges[i + 1], n=0) for i in range(len(edges) - 1)],
        )
    p = np.array([pick(o) for o, _ in known], dtype=np.float64)
    y = np.array([b for _, b in known], dtype=np.float64)
    days = np.array([o.planned_at.date().toordinal() for o, _ in known])
    sc = score(p, y, days)
    idx = np.clip(np.searchsorted(np.asarray(edges), p, side="right") - 1, 0, len(edges) - 2)
    buckets = []
    for i in range(len(edges) - 1):
        m = idx == i
        n = int(m.sum())
        buckets.append(
            CalibrationBucket(
                low=edges[i],
                high=edges[i + 1],
                n=n,
                mean_forecast=float(p[m].mean()) if n else None,
                observed=float(y[m].mean()) if n else None,
            )
        )
    return Calibration(
        forecast=forecast,
        n=sc.n,
        mean_forecast=sc.mean_forecast,
        brier=sc.brier,
        base_rate=sc.base_rate,
        brier_reference=sc.brier_reference,
        skill=sc.skill,
        skill_se=sc.skill_se,
        buckets=buckets,
    )


def equity_curve(outcomes: Iterable[TradeOutcome]) -> list[EquityPoint]:
    """Cumulative R after each closed trade, in exit order."""
    trades = _exit_order(_closed(outcomes))
    cum: np.ndarray | list[float] = np.cumsum([o.r_multiple for o in trades]) if trades else []
    return [EquityPoint(at=o.exited_at or o.planned_at, r=float(c)) for o, c in zip(trades, cum)]


def _grouped(outcomes: Sequence[TradeOutcome], key: Callable[[TradeOutcome], str]) -> dict[str, list[TradeOutcome]]:
    out: dict[str, list[TradeOutcome]] = {}
    for o in outcomes:
        out.setdefault(key(o), []).append(o)
    return out


def report(outcomes: Sequence[TradeOutcome], edges: Sequence[float] = BUCKET_EDGES) -> Report:
    """All figures: overall, per strategy, per quality bucket, the calibration of probability and quality, the equity curve."""
    outcomes = list(outcomes)
    by_strategy = [group_stats(k, v) for k, v in sorted(_grouped(outcomes, lambda o: o.strategy).items())]
    by_bucket = _grouped(outcomes, lambda o: str(bucket_index(o.quality, edges)))
    by_quality = [group_stats(bucket_label(int(k), edges), by_bucket[k]) for k in sorted(by_bucket, key=int)]
    return Report(
        overall=group_stats("all", outcomes),
        by_strategy=by_strategy,
        by_quality=by_quality,
        calibration=calibration(outcomes, edges),
        quality_calibration=calibration(outcomes, edges, forecast="quality"),
        equity=equity_curve(outcomes),
    )
