"""Plan + bars + levels -> ChartSpec: window, focus on the plan, levels, lines, titles."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from analytics import indicators
from analytics.models import Level
from core.errors import UserError
from renderers.plan_chart import VISIBLE_BARS, basic_levels, build_spec
from renderers.theme import DARK
from tests.renderers.conftest import AS_OF, make_plan, sim_bars


def spec_for(df, **kw):
    base = dict(symbol="TSLA", interval="5m", bars=df, as_of=AS_OF, session_status="open", source="sim")
    base.update(kw)
    return build_spec(**base)


def test_plan_levels_roles_colours_and_titles(tsla_5m) -> None:
    plan = make_plan(tsla_5m)
    spec = spec_for(tsla_5m, plan=plan, style="intraday")
    roles = {lv.role: lv for lv in spec.levels}
    assert roles["entry"].price == plan.entry and roles["entry"].color == DARK.entry
    assert roles["stop"].price == plan.stop and roles["stop"].color == DARK.stop
    assert [lv.price for lv in spec.levels if lv.role == "target"] == [t.price for t in plan.targets]
    assert all(lv.color == DARK.target for lv in spec.levels if lv.role == "target")
    assert roles["last"].price == pytest.approx(float(tsla_5m["close"].iloc[-1]))
    assert spec.direction == "long"
    assert spec.title == "TSLA  ·  5m  ·  intraday  ·  ORB breakout"
    assert spec.subtitle[0] == (f"Entry {plan.entry:.2f}", DARK.entry)
    assert "as of 2024-03-13 11:00 EDT" in spec.footer and "market open" in spec.footer and "data: sim" in spec.footer
    assert spec.footer_right == "plan P-1A2B3C v1"
    assert [b.kind for b in spec.bands] == ["entry_zone"]
    assert len(spec.candles) == VISIBLE_BARS["5m"]


def test_lines_are_emas_with_their_period_and_a_session_vwap(tsla_5m) -> None:
    spec = spec_for(tsla_5m)
    assert [ln.label for ln in spec.lines] == ["EMA 9", "EMA 21", "VWAP"]
    vwap = spec.lines[-1]
    assert vwap.color == DARK.vwap == "#ffffff"
    # the line breaks where a session starts instead of jumping between sessions
    days = indicators.session_dates(tsla_5m.index[-len(spec.candles) :])
    starts = np.flatnonzero(days[1:] != days[:-1]) + 1
    assert len(starts) >= 1 and np.isnan(vwap.values[starts]).all()
    ema9 = indicators.ema(tsla_5m["close"], 9)[-len(spec.candles) :]
    assert np.allclose(spec.lines[0].values, ema9, equal_nan=True)
    daily = spec_for(sim_bars(interval="1D", days=900), interval="1D")
    assert [ln.label for ln in daily.lines] == ["EMA 20", "EMA 50", "EMA 200"]


def test_hourly_bars_mark_the_session_vwap_as_a_level_instead_of_a_line() -> None:
    hourly = sim_bars(interval="1h", days=30)
    last = float(hourly["close"].iloc[-1])
    vwap = Level(kind="vwap", price=round(last * 0.998, 2), strength=0.7, label="session VWAP", interval="5m")
    spec = spec_for(hourly, interval="1h", levels=[vwap])
    assert "VWAP" not in [ln.label for ln in spec.lines]  # a session VWAP line means little on hourly bars
    assert [(lv.label, lv.price) for lv in spec.levels if lv.role == "level"] == [("VWAP", vwap.price)]
    # on 5m bars it is the white line, not a level as well
    five = spec_for(sim_bars(), levels=[vwap.model_copy(update={"price": round(float(sim_bars()["close"].iloc[-1]), 2)})])
    assert "VWAP" in [ln.label for ln in five.lines] and all(lv.label != "VWAP" for lv in five.levels)


def test_focus_plan_fits_an_old_plan_and_centres_on_its_bar(tsla_5m) -> None:
    old = tsla_5m[tsla_5m.index <= datetime(2024, 3, 11, 18, 0, tzinfo=UTC)]
    plan = make_plan(old, direction="short", minutes_ago=0)
    focus = spec_for(tsla_5m, plan=plan)
    lo, hi = focus.y_range
    for price in (plan.entry, plan.stop, *(t.price for t in plan.targets), float(tsla_5m["close"].iloc[-1])):
        assert lo < price < hi
    # the plan's bar sits in the middle of the window, marked
    (marker,) = focus.markers
    n = len(focus.candles)
    assert abs(marker.x - n // 2) <= 1
    assert marker.label.startswith("plan ")
    assert focus.candles.stamps[marker.x] == old.index[-1].value
    assert any("plan from Mar 11" in text for text, _ in focus.subtitle)
    # scale_plan off: the latest bars and their own range, whatever the plan says
    raw = spec_for(tsla_5m, plan=plan, scale_plan=False)
    assert raw.candles.stamps[-1] == tsla_5m.index[-1].value
    window = tsla_5m.iloc[-len(raw.candles) :]
    assert raw.y_range[0] == pytest.approx(window["low"].min() - 0.07 * (window["high"].max() - window["low"].min()))
    assert not raw.markers


def test_a_plan_from_this_session_keeps_the_latest_window(tsla_5m) -> None:
    spec = spec_for(tsla_5m, plan=make_plan(tsla_5m, minutes_ago=40))
    assert spec.candles.stamps[-1] == tsla_5m.index[-1].value
    (marker,) = spec.markers
    assert marker.x == len(spec.candles) - 1 - 8  # 40 minutes = 8 bars back


def test_basic_levels_come_from_the_indicators(tsla_5m) -> None:
    levels = {lv.kind: lv.price for lv in basic_levels(tsla_5m, "5m")}
    day = np.datetime64("2024-03-13")
    rng = indicators.opening_range(tsla_5m).loc[day]
    prior = indicators.prior_day_levels(tsla_5m).loc[day]
    hod, lod = indicators.session_high_low(tsla_5m)
    assert levels == pytest.approx(
        {
            "orh": rng["orh"],
            "orl": rng["orl"],
            "pdh": prior["pdh"],
            "pdl": prior["pdl"],
            "pdc": prior["pdc"],
            "hod": hod[-1],
            "lod": lod[-1],
        }
    )
    hourly = {lv.kind for lv in basic_levels(sim_bars(interval="1h", days=20), "1h")}
    assert "orh" not in hourly and "pdh" in hourly  # no opening range from hourly bars


def test_equal_levels_are_kept_for_merging_and_filled_gaps_dropped(tsla_5m) -> None:
    last = float(tsla_5m["close"].iloc[-1])
    levels = [
        Level(kind="orh", price=last - 2, label="x"),
        Level(kind="pdh", price=last - 2, label="y"),
        Level(kind="fvg_bull", price=last - 4, low=last - 5, high=last - 3, label="gap", filled=True),
        Level(kind="orl", price=last * 3, label="far away"),
    ]
    spec = spec_for(tsla_5m, levels=levels)
    names = [lv.label for lv in spec.levels if lv.role == "level"]
    assert sorted(names) == ["ORH", "PDH"]  # out-of-view and filled ones are not drawn
    assert not spec.bands


def test_bad_input_is_a_user_error(tsla_5m) -> None:
    with pytest.raises(UserError, match="no 5m bars"):
        spec_for(tsla_5m, as_of=datetime(2020, 1, 2, tzinfo=UTC))
    with pytest.raises(UserError, match="unknown theme"):
        spec_for(tsla_5m, theme="neon")
    with pytest.raises(UserError, match="levels"):
        spec_for(tsla_5m, levels_mode="all")
