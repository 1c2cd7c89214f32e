"""The odds out of sample: on the offline market and on real daily history, never worse than the base rate beyond noise.

Real history is GOOG daily 2004-2013 as the `backtesting` package ships it (read from the
installed package). Each backtest plan's probability is walk-forward: calibrated only on the
run's plans resolved before its day began.
"""

from __future__ import annotations

import importlib.resources
from datetime import UTC, datetime

import pandas as pd
import pytest

from analytics.backtest_engine import BacktestSpec
from analytics.backtest_stats import Calibration
from analytics.bars import daily_bars
from bot.backtest_runner import backtest
from bot.odds import replay_bars
from providers.sim import SimMarket


def goog_daily() -> pd.DataFrame:
    path = importlib.resources.files("backtesting") / "test" / "GOOG.csv"
    with importlib.resources.as_file(path) as p:
        raw = pd.read_csv(p, index_col=0, parse_dates=True)  # the first column holds the dates and has no name
    return daily_bars(raw)


def assert_not_worse_than_the_base_rate(c: Calibration, q: Calibration | None) -> None:
    assert c.n >= 100 and c.skill is not None and c.skill_se is not None and c.skill_se > 0
    assert c.skill > -2 * c.skill_se, f"odds skill {c.skill:+.3f} ± {c.skill_se:.3f} is below the base rate beyond noise"
    assert abs((c.mean_forecast or 0) - (c.base_rate or 0)) < 0.06  # said about as often as it happened
    # the quality grade read as odds is the anchor: far worse, as measured before the odds existed
    assert q is not None and q.skill is not None and q.skill < c.skill - 0.3


def test_daily_bars_read_from_the_packaged_csv_follow_the_bar_convention():
    df = goog_daily()
    assert str(df.index.tz) == "UTC" and df.index.unit == "ns" and df.index.is_monotonic_increasing
    assert df.index[0] == pd.Timestamp("2004-08-19 13:30", tz="UTC")  # the 09:30 ET open, summer time
    assert list(df.columns) == ["open", "high", "low", "close", "volume"] and len(df) > 2000


@pytest.mark.xdist_group("odds_goog")
def test_odds_hold_up_on_real_daily_history():
    res = replay_bars(
        {"GOOG": goog_daily()}, "leaps", datetime(2007, 1, 1, tzinfo=UTC), datetime(2014, 1, 1, tzinfo=UTC), source="GOOG.csv"
    )
    rep = res.summary()
    assert_not_worse_than_the_base_rate(rep.calibration, rep.quality_calibration)


@pytest.mark.xdist_group("odds_sim")
async def test_odds_hold_up_on_the_offline_market():
    end = datetime(2024, 5, 1, tzinfo=UTC)
    spec = BacktestSpec(("SPY", "AAPL", "TSLA", "NVDA"), "intraday", datetime(2024, 3, 1, tzinfo=UTC), end, strategy="all")
    res = await backtest(SimMarket(seed=0, now=lambda: end), spec, now=end, workers=1)
    rep = res.summary()
    assert_not_worse_than_the_base_rate(rep.calibration, rep.quality_calibration)
    # walk-forward: the first day's plans had nothing resolved before them, so they carry the no-edge prior
    first_day = [o for o in res.outcomes if o.planned_at.date() == res.outcomes[0].planned_at.date()]
    assert all(
        o.probability == pytest.approx(1 / (1 + (o.targets[0] - o.entry) / (o.entry - o.stop)), abs=1e-3)
        for o in first_day
        if o.direction == "long"
    )
