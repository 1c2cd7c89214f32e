"""The live plan state machine: transitions in path order, break-even suggestion, session end."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics.lifecycle import PlanState, bar_path, expire, move_stop, observe, session_end
from analytics.models import Plan, Target


def long_plan(style="intraday"):
    return PlanState.new("P-1", "long", entry=100.0, stop=98.0, targets=[104.0, 102.0], style=style)


def kinds(events):
    return [e.kind for e in events]


def test_pullback_long_triggers_hits_t1_then_final_target():
    st = long_plan()
    st, ev = observe(st, [101.0, 100.5, 99.9], 1)
    assert kinds(ev) == ["triggered"] and st.status == "triggered" and ev[0].price == 100.0
    st, ev = observe(st, [102.5], 2)
    assert kinds(ev) == ["target"] and ev[0].target_index == 1
    assert ev[0].suggest_stop == 100.0 and "break-even" in ev[0].reason and ev[0].r == pytest.approx(1.0)
    st, ev = observe(st, [101.0, 104.2], 3)
    assert kinds(ev) == ["exited"] and ev[0].r == pytest.approx(2.0) and st.done
    assert [e.seq for e in ev] == [3]
    assert observe(st, [90.0], 4)[1] == []  # terminal: nothing more


def test_one_segment_through_entry_and_stop_gives_both_in_order():
    st = long_plan()
    st, _ = observe(st, [101.0], 0)
    st, ev = observe(st, [97.0], 1)
    assert kinds(ev) == ["triggered", "stopped"]
    assert ev[1].price == 98.0 and ev[1].r == pytest.approx(-1.0) and st.status == "stopped"


def test_breakout_long_invalidated_before_entry():
    st = PlanState.new("P-2", "long", entry=105.0, stop=99.0, targets=[110.0])
    st, ev = observe(st, [102.0, 98.5], 0)
    assert kinds(ev) == ["invalidated"] and st.status == "invalidated"


def test_short_plan_mirrors():
    st = PlanState.new("P-3", "short", entry=50.0, stop=52.0, targets=[47.0, 45.0])
    assert st.targets == (47.0, 45.0)
    st, ev = observe(st, [49.0, 50.5, 46.0], 0)
    assert kinds(ev) == ["triggered", "target"]
    st, ev = observe(st, [50.1], 1)  # back through entry but below the stop
    assert ev == []
    st, ev = observe(st, [52.5], 2)
    assert kinds(ev) == ["stopped"] and st.status == "stopped"


def test_stop_moved_to_break_even_then_stopped_at_zero_r():
    st = long_plan()
    st, _ = observe(st, [100.5, 99.5, 102.1], 0)
    assert st.targets_hit == 1
    st, ev = move_stop(st, st.entry, 1)
    assert kinds(ev) == ["stop_moved"] and st.stop == 100.0
    st, ev = observe(st, [99.0], 2)
    assert kinds(ev) == ["stopped"] and ev[0].r == pytest.approx(0.0) and "break-even" in ev[0].reason
    with pytest.raises(ValueError):
        move_stop(st, 99.0, 3)


def test_move_stop_must_stay_below_price():
    st = long_plan()
    st, _ = observe(st, [100.2, 100.0, 101.0], 0)
    with pytest.raises(ValueError, match="below"):
        move_stop(st, 101.5, 1)


def test_session_end_expires_pending_and_exits_day_trades():
    st = long_plan()
    st, _ = observe(st, [103.0], 0)
    st2, ev = session_end(st, 103.5, 9)
    assert kinds(ev) == ["expired"] and st2.status == "expired"
    st, _ = observe(st, [99.5], 1)
    st3, ev = session_end(st, 101.0, 9)
    assert kinds(ev) == ["exited"] and ev[0].r == pytest.approx(0.5) and "close" in ev[0].reason
    swing = long_plan(style="swing")
    swing, _ = observe(swing, [103.0], 0)
    assert session_end(swing, 103.0, 9)[1] == []
    assert kinds(expire(swing, 10, "waited 5 sessions")[1]) == ["expired"]


def test_bar_path_is_adverse_first():
    assert bar_path(100, 103, 97, 101, "long") == [100, 97, 103, 101]
    st = long_plan()
    st, _ = observe(st, [100.5], 0)
    # a bar touching both the stop and T1: the conservative reading stops out first
    st, ev = observe(st, bar_path(100.5, 102.5, 97.5, 101.0, "long"), 1)
    assert kinds(ev) == ["triggered", "stopped"]


def test_from_plan_and_bad_levels():
    now = datetime(2024, 3, 13, 15, tzinfo=UTC)
    plan = Plan(
        plan_id="P-9",
        symbol="TSLA",
        style="scalp",
        strategy="orb",
        direction="long",
        interval="5m",
        entry=200.0,
        stop=198.0,
        targets=[Target(price=206.0, rr=3, reason="x"), Target(price=203.0, rr=1.5, reason="y")],
        quality=0.6,
        quality_factors={},
        confluence=[],
        invalidation="below 198",
        as_of=now,
        session="open",
        sources=["sim"],
    )
    st = PlanState.from_plan(plan)
    assert st.targets == (203.0, 206.0) and st.style == "scalp" and st.risk == 2.0
    with pytest.raises(ValueError):
        PlanState.new("X", "long", entry=100, stop=101, targets=[105])
    with pytest.raises(ValueError):
        PlanState.new("X", "short", entry=100, stop=101, targets=[105])
