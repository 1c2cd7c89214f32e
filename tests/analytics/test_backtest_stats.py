"""Backtest statistics against a hand computation on a small case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.backtest_stats import bucket_index, calibration, max_drawdown, report, t1_label
from analytics.outcomes import TradeOutcome

T = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)


def o(i, strategy, conf, r=None, first=None, status="closed", mae=0.0, mfe=0.0, held=600.0):
    return TradeOutcome(
        plan_id=f"P-{i}",
        symbol="SPY",
        strategy=strategy,
        style="intraday",
        direction="long",
        quality=conf,
        entry=100,
        stop=99,
        targets=[102],
        planned_at=T + timedelta(hours=i),
        status=status,
        exit_reason=None if status != "closed" else ("target" if first == "t1" else "stop"),
        first=first,
        hit_t1=None if status == "no_entry" else first == "t1",
        r_multiple=r,
        mae_r=None if status == "no_entry" else mae,
        mfe_r=None if status == "no_entry" else mfe,
        entered_at=None if status == "no_entry" else T + timedelta(hours=i),
        exited_at=T + timedelta(hours=i, minutes=10) if status == "closed" else None,
        time_in_trade_s=None if status == "no_entry" else held,
    )


CASE = [
    o(0, "orb", 0.75, r=2.0, first="t1", mae=0.2, mfe=2.1),
    o(1, "orb", 0.72, r=-1.0, first="stop", mae=1.0, mfe=0.3),
    o(2, "orb", 0.35, r=-1.5, first="stop", mae=1.5, mfe=0.0),  # a gap through the stop
    o(3, "vwap", 0.55, r=1.0, first="t1", mae=0.5, mfe=1.2, held=1200.0),
    o(4, "vwap", 0.58, r=0.5, first=None, mae=0.1, mfe=0.9),  # closed on time, T1 never reached
    o(5, "vwap", 0.60, status="no_entry"),
    o(6, "orb", 0.90, r=0.8, first="t1", status="open", mae=0.0, mfe=0.9),  # T1 known, still open
]


def test_overall_and_per_strategy_figures_match_a_hand_computation():
    rep = report(CASE)
    a = rep.overall
    # closed trades in exit order: +2, -1, -1.5, +1, +0.5
    assert (a.plans, a.trades, a.no_entry, a.open) == (7, 5, 1, 1)
    assert a.wins == 3 and a.losses == 2
    assert a.hit_rate == pytest.approx(3 / 5)
    assert a.t1_rate == pytest.approx(2 / 5)
    assert a.expectancy_r == pytest.approx(1.0 / 5)
    assert a.total_r == pytest.approx(1.0)
    assert a.profit_factor == pytest.approx(3.5 / 2.5)
    # curve 0, 2, 1, -0.5, 0.5, 1.0: peak 2, trough -0.5
    assert a.max_drawdown_r == pytest.approx(2.5)
    assert a.avg_mae_r == pytest.approx((0.2 + 1.0 + 1.5 + 0.5 + 0.1) / 5)
    assert a.avg_mfe_r == pytest.approx((2.1 + 0.3 + 0.0 + 1.2 + 0.9) / 5)
    assert a.avg_time_in_trade_s == pytest.approx((600 * 4 + 1200) / 5)

    orb, vwap = rep.by_strategy
    assert orb.key == "orb" and (orb.plans, orb.trades) == (4, 3)
    assert orb.expectancy_r == pytest.approx(-0.5 / 3) and orb.max_drawdown_r == pytest.approx(2.5)
    assert orb.profit_factor == pytest.approx(2.0 / 2.5)
    assert vwap.key == "vwap" and vwap.trades == 2 and vwap.profit_factor is None  # no losing trade
    assert vwap.hit_rate == 1.0 and vwap.t1_rate == 0.5

    assert [g.key for g in rep.by_quality] == ["0.3-0.4", "0.5-0.6", "0.6-0.7", "0.7-0.8", "0.9-1.0"]
    assert [g.plans for g in rep.by_quality] == [1, 2, 1, 2, 1]
    assert [p.r for p in rep.equity] == pytest.approx([2.0, 1.0, -0.5, 0.5, 1.0])


def test_calibration_and_brier_score_of_the_quality_grade_by_hand():
    labels = [t1_label(x) for x in CASE]
    assert labels == [1, 0, 0, 1, 0, None, 1]
    cal = calibration(CASE, forecast="quality")
    p = [0.75, 0.72, 0.35, 0.55, 0.58, 0.90]
    y = [1, 0, 0, 1, 0, 1]
    brier = sum((a - b) ** 2 for a, b in zip(p, y)) / 6
    base = 3 / 6
    assert cal.n == 6
    assert cal.brier == pytest.approx(brier)
    assert cal.base_rate == pytest.approx(base)
    assert cal.brier_reference == pytest.approx(0.25)
    assert cal.skill == pytest.approx(1 - brier / 0.25)
    b = {f"{x.low:.1f}": x for x in cal.buckets}
    assert len(cal.buckets) == 10
    assert b["0.5"].n == 2 and b["0.5"].mean_forecast == pytest.approx(0.565) and b["0.5"].observed == 0.5
    assert b["0.7"].n == 2 and b["0.7"].observed == 0.5
    assert b["0.9"].n == 1 and b["0.9"].observed == 1.0
    assert b["0.0"].n == 0 and b["0.0"].observed is None


def test_the_report_scores_the_probability_and_shows_the_quality_grade_beside_it():
    probs = [0.40, 0.30, 0.20, 0.45, 0.25, None, 0.50]
    case = [x.model_copy(update={"probability": p}) for x, p in zip(CASE, probs)]
    rep = report(case)
    p = [0.40, 0.30, 0.20, 0.45, 0.25, 0.50]
    y = [1, 0, 0, 1, 0, 1]
    brier = sum((a - b) ** 2 for a, b in zip(p, y)) / 6
    c, q = rep.calibration, rep.quality_calibration
    assert c.forecast == "probability" and c.n == 6 and c.brier == pytest.approx(brier)
    assert c.mean_forecast == pytest.approx(sum(p) / 6) and c.skill == pytest.approx(1 - brier / 0.25)
    assert c.skill_se is not None and c.skill_se >= 0  # days resampled (every plan here is on one day)
    assert q is not None and q.forecast == "quality" and q.skill == pytest.approx(calibration(CASE, forecast="quality").skill)
    assert q.skill < c.skill  # the grade read as odds is far off; these odds are not
    # an outcome stored before plans had odds is scored with its no-edge prior (T1 at 2R: 1/3)
    assert report(CASE).calibration.mean_forecast == pytest.approx(1 / 3)
    assert rep.overall.avg_probability == pytest.approx((sum(p) + 1 / 3) / 7)


def test_edges_and_empty_input():
    assert bucket_index(1.0) == 9 and bucket_index(0.0) == 0 and bucket_index(0.1) == 1
    assert max_drawdown([]) == 0.0 and max_drawdown([1, 1]) == 0.0 and max_drawdown([-1, -1]) == 2.0
    rep = report([])
    assert rep.overall.trades == 0 and rep.overall.expectancy_r is None and rep.calibration.n == 0
    assert rep.calibration.brier is None
