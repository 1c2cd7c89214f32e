"""Plan outcomes on hand-made bar sequences whose answers are worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics.models import Plan, Target
from analytics.outcomes import Management, evaluate_plan, horizon

T0 = datetime(2024, 3, 13, 14, 0, tzinfo=UTC)  # 10:00 ET, inside a session
STEP = timedelta(minutes=5)


def bars(*rows: tuple[float, float, float, float]) -> pd.DataFrame:
    """5-minute bars starting at T0 from (open, high, low, close) rows."""
    idx = pd.DatetimeIndex([T0 + i * STEP for i in range(len(rows))])
    df = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx, dtype="float64")
    df["volume"] = 1000.0
    return df


def plan(direction="long", entry=100.0, stop=98.0, targets=(104.0, 106.0), quality=0.6, as_of=T0) -> Plan:
    return Plan(
        plan_id="P-TEST",
        symbol="TEST",
        style="intraday",
        strategy="orb",
        direction=direction,
        interval="5m",
        entry=entry,
        stop=stop,
        targets=[Target(price=t, rr=abs(t - entry) / abs(entry - stop), reason="x") for t in targets],
        quality=quality,
        quality_factors={},
        confluence=[],
        invalidation="",
        as_of=as_of,
        session="open",
        sources=["test"],
    )


def run(p: Plan, df: pd.DataFrame, **kw):
    kw.setdefault("default_deadlines", False)
    return evaluate_plan(p, df, **kw)


def test_long_breakout_reaches_both_targets_scaling_out():
    df = bars(
        (99.0, 99.5, 98.8, 99.2),  # below the buy-stop
        (99.2, 100.6, 99.1, 100.4),  # fills at 100 (entry bar: its low counts as adverse, its high not)
        (100.4, 104.5, 99.5, 104.2),  # T1 104: half out (+4 on 0.5)
        (104.2, 105.0, 103.0, 104.8),  # stop now break-even at 100: untouched
        (104.8, 107.0, 104.5, 106.5),  # T2 106: rest out
        (106.5, 110.0, 90.0, 95.0),  # after the exit: irrelevant
    )
    o = run(plan(), df, ref_price=99.2)
    assert o.status == "closed" and o.exit_reason == "target"
    assert o.first == "t1" and o.hit_t1 is True and o.targets_hit == 2
    assert o.entry_fill == 100.0
    # R = (0.5 * 4 + 0.5 * 6) / 2 = 2.5
    assert o.r_multiple == pytest.approx(2.5)
    assert o.mae_r == pytest.approx(0.9 / 2)  # the entry bar's 99.1 low
    assert o.mfe_r == pytest.approx(6.0 / 2)
    assert o.entered_at == T0 + STEP and o.exited_at == T0 + 4 * STEP
    assert o.time_in_trade_s == 3 * 300 and o.bars_in_trade == 4
    assert [e.kind for e in o.events] == ["entry", "target", "target"]
    assert o.exit_price == pytest.approx(105.0)


def test_gap_through_the_stop_exits_at_the_open_for_more_than_1r():
    df = bars(
        (99.5, 100.2, 99.4, 100.1),  # fills at 100
        (100.1, 101.0, 99.8, 100.5),
        (96.0, 97.0, 95.5, 96.5),  # opens at 96, below the 98 stop
    )
    o = run(plan(), df, ref_price=99.5)
    assert o.status == "closed" and o.exit_reason == "stop" and o.first == "stop"
    assert o.hit_t1 is False
    assert o.r_multiple == pytest.approx((96.0 - 100.0) / 2.0)  # -2R
    assert o.mae_r == pytest.approx(2.0)
    assert o.exit_price == 96.0


def test_stop_and_target_inside_one_bar_counts_as_the_stop():
    df = bars(
        (99.5, 100.2, 99.4, 100.1),  # fill 100
        (100.0, 105.0, 97.0, 104.0),  # both 98 and 104 traded: the stop wins
    )
    o = run(plan(), df, ref_price=99.5)
    assert o.first == "stop" and o.hit_t1 is False and o.targets_hit == 0
    assert o.r_multiple == pytest.approx(-1.0)
    assert o.exit_reason == "stop"
    # the bar's high may have come after the stop: only its open counts as favourable
    assert o.mfe_r == pytest.approx(0.1 / 2)


def test_entry_bar_reaching_the_stop_is_a_loss_even_if_it_also_reached_a_target():
    df = bars((99.5, 104.5, 97.5, 103.0))
    o = run(plan(), df, ref_price=99.5)
    assert o.status == "closed" and o.first == "stop" and o.r_multiple == pytest.approx(-1.0)
    assert o.bars_in_trade == 1


def test_short_plan_is_mirrored():
    p = plan(direction="short", entry=50.0, stop=51.0, targets=(48.0, 47.0))
    df = bars(
        (50.5, 50.6, 49.9, 50.0),  # sell-stop at 50 below the 50.5 reference: fills at 50; high 50.6 -> MAE 0.6R
        (50.0, 50.4, 47.9, 48.1),  # T1 48 (+2 on 0.5)
        (48.1, 50.2, 48.0, 50.1),  # back above 50: remainder out at break-even
    )
    o = run(p, df, ref_price=50.5)
    assert o.entry_fill == 50.0
    assert o.first == "t1" and o.targets_hit == 1 and o.exit_reason == "breakeven"
    assert o.r_multiple == pytest.approx(0.5 * 2.0 / 1.0)
    assert o.mae_r == pytest.approx(0.6)
    assert o.mfe_r == pytest.approx(2.0)


def test_exit_everything_at_t1_when_not_scaling_out():
    df = bars((99.5, 100.2, 99.4, 100.1), (100.1, 104.2, 99.9, 104.0))
    o = run(plan(), df, ref_price=99.5, management=Management(scale_out=False))
    assert o.r_multiple == pytest.approx(2.0) and o.exit_reason == "target" and o.targets_hit == 1


def test_gap_beyond_a_target_fills_at_the_better_open():
    df = bars((99.5, 100.2, 99.4, 100.1), (107.0, 107.5, 106.5, 107.2))
    o = run(plan(), df, ref_price=99.5)
    assert o.targets_hit == 2 and o.r_multiple == pytest.approx((107.0 - 100.0) / 2.0)


def test_buy_stop_invalidated_when_the_stop_trades_first():
    df = bars((99.0, 99.5, 97.9, 98.2), (98.2, 101.0, 98.1, 100.8))
    o = run(plan(), df, ref_price=99.0)
    assert o.status == "no_entry" and o.hit_t1 is None and o.r_multiple is None
    assert [e.kind for e in o.events] == ["invalidated"]


def test_limit_entry_and_gap_open_fill():
    # entry 100 below the 101 reference: a limit buy. The bar opens at 99.6: filled there, better.
    df = bars((101.0, 101.2, 100.5, 100.8), (99.6, 100.3, 99.2, 100.0), (100.0, 104.1, 99.9, 104.0))
    o = run(plan(), df, ref_price=101.0)
    assert o.entry_fill == 99.6 and o.entered_at == T0 + STEP
    # T1 at 104: 0.5 * 4.4; then nothing: open at the end of the data, marked at 104.0
    assert o.status == "open" and o.exited_at is None
    assert o.r_multiple == pytest.approx((0.5 * 4.4 + 0.5 * 4.4) / 2.0)


def test_entry_deadline_and_time_exit():
    df = bars(
        (99.0, 99.5, 98.9, 99.2),
        (99.2, 99.6, 99.0, 99.5),
        (99.5, 100.5, 99.4, 100.2),  # entry at 100 would fill here...
    )
    o = run(plan(), df, ref_price=99.0, entry_deadline=T0 + 2 * STEP)  # ...but the deadline was before
    assert o.status == "no_entry"

    df = bars((99.5, 100.2, 99.4, 100.1), (100.1, 101.0, 99.6, 100.9), (100.9, 101.5, 100.5, 101.2), (101.2, 120.0, 101.0, 119.0))
    o = run(plan(), df, ref_price=99.5, entry_deadline=T0 + 3 * STEP, exit_deadline=T0 + 3 * STEP)
    assert o.status == "closed" and o.exit_reason == "time"
    assert o.exit_price == 101.2 and o.r_multiple == pytest.approx(1.2 / 2.0)
    assert o.exited_at == T0 + 3 * STEP and o.hit_t1 is False


def test_only_bars_after_the_plan_count():
    df = bars((50.0, 200.0, 1.0, 100.0), (99.5, 100.2, 99.4, 100.1), (100.1, 104.2, 99.9, 104.0))
    o = run(plan(as_of=T0 + STEP), df, ref_price=99.5)
    assert o.entered_at == T0 + STEP and o.targets_hit == 1


def test_horizons_follow_the_sessions():
    at = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)  # Wed 11:00 ET
    e, x = horizon("intraday", at)
    assert e == x == datetime(2024, 3, 13, 20, 0, tzinfo=UTC)
    e, x = horizon("scalp", at)
    assert e == at + timedelta(minutes=30) and x == at + timedelta(hours=2)
    e, x = horizon("swing", at)
    assert e == datetime(2024, 3, 14, 20, 0, tzinfo=UTC)
    assert x == datetime(2024, 3, 26, 20, 0, tzinfo=UTC)  # the 10th session, counting the 13th
    e, x = horizon("intraday", datetime(2024, 3, 15, 21, 0, tzinfo=UTC))  # Friday after the close
    assert e == datetime(2024, 3, 18, 20, 0, tzinfo=UTC)  # Monday's session
