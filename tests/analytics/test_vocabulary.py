"""Intervals, symbols, sessions and resampling."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.bars import check_bars, resample_bars
from analytics.intervals import INTERVALS, interval_minutes, normalise_interval
from analytics.sessions import EXCHANGE_TZ, market_time, parse_as_of, session_info, sessions_between
from analytics.symbols import validate_symbol
from core.errors import UserError


@pytest.mark.parametrize(
    "given_,expected",
    [
        ("5min", "5m"),
        ("5", "5m"),
        ("60", "1h"),
        ("1H", "1h"),
        ("D", "1D"),
        ("daily", "1D"),
        ("1d", "1D"),
        ("W", "1W"),
        ("weekly", "1W"),
        ("15m", "15m"),
        ("4h", "4h"),
        ("240", "4h"),
        (" 30 min ", "30m"),
    ],
)
def test_interval_spellings(given_, expected):
    assert normalise_interval(given_) == expected


@pytest.mark.parametrize("bad", ["7m", "2h", "", "1y", "fortnight", "5m;drop", "x" * 100])
def test_bad_interval_lists_accepted_tokens(bad):
    with pytest.raises(UserError) as ei:
        normalise_interval(bad)
    msg = str(ei.value)
    assert "accepted" in msg and all(t in msg for t in INTERVALS)
    assert len(msg) < 200


def test_interval_minutes():
    assert [interval_minutes(t) for t in INTERVALS] == [1, 5, 15, 30, 60, 240, 1440, 10080]


@pytest.mark.parametrize("good,expected", [("tsla", "TSLA"), (" BRK.B ", "BRK.B"), ("$spy", "SPY"), ("RDS-A", "RDS-A")])
def test_symbols_accepted(good, expected):
    assert validate_symbol(good) == expected


@pytest.mark.parametrize("bad", ["TS;LA", "", "   ", "A" * 50, "ТСЛА", "1ABC", "TSLA!", "😀", None, 42])
def test_symbols_rejected_with_one_line(bad):
    with pytest.raises(UserError) as ei:
        validate_symbol(bad)
    assert "\n" not in str(ei.value) and len(str(ei.value)) < 200


@given(st.text(max_size=30))
def test_symbol_validation_never_crashes(s):
    try:
        out = validate_symbol(s)
    except UserError:
        return
    assert out == out.upper() and 1 <= len(out) <= 10


def et(y, m, d, hh, mm):
    return datetime(y, m, d, hh, mm, tzinfo=EXCHANGE_TZ).astimezone(UTC)


def test_session_status_through_a_day():
    assert session_info(et(2024, 3, 13, 3, 0)).status == "closed"
    assert session_info(et(2024, 3, 13, 8, 0)).status == "pre"
    assert session_info(et(2024, 3, 13, 9, 30)).status == "open"
    assert session_info(et(2024, 3, 13, 15, 59)).status == "open"
    assert session_info(et(2024, 3, 13, 16, 0)).status == "post"
    assert session_info(et(2024, 3, 13, 20, 0)).status == "closed"


def test_holiday_and_weekend_closed_next_open():
    info = session_info(et(2024, 7, 4, 11, 0))  # Independence Day
    assert info.status == "closed"
    assert info.next_open == et(2024, 7, 5, 9, 30)
    assert info.last_close == et(2024, 7, 3, 13, 0)  # the half day before
    sat = session_info(et(2024, 3, 16, 12, 0))
    assert sat.status == "closed" and sat.next_open == et(2024, 3, 18, 9, 30)
    assert sat.last_close == et(2024, 3, 15, 16, 0)


def test_half_day_closes_at_13():
    info = session_info(et(2024, 11, 29, 13, 30))  # day after Thanksgiving
    assert info.status == "post" and info.half_day
    assert session_info(et(2024, 11, 29, 12, 59)).status == "open"


def test_market_time_is_last_close_when_closed():
    assert market_time(et(2024, 3, 16, 12, 0)) == et(2024, 3, 15, 16, 0)
    t = et(2024, 3, 13, 11, 0)
    assert market_time(t) == t


def test_sessions_between_skips_holidays():
    s = sessions_between(et(2024, 12, 23, 0, 0), et(2024, 12, 27, 23, 0))
    dates = [str(d) for d in s.dates]
    assert "2024-12-25" not in dates and "2024-12-24" in dates and len(dates) == 4


def test_parse_as_of():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_as_of("2024-03-15T15:30:00-04:00", now) == datetime(2024, 3, 15, 19, 30, tzinfo=UTC)
    assert parse_as_of("2024-03-15T19:30:00Z", now).hour == 19
    for bad, word in [("yesterday", "malformed"), ("2024-03-15T15:30:00", "offset"), ("2030-01-01T00:00:00Z", "future")]:
        with pytest.raises(UserError, match=word):
            parse_as_of(bad, now)


def _minute_bars(day: str, n: int = 390, seed: int = 1) -> pd.DataFrame:
    start = pd.Timestamp(f"{day} 09:30", tz=EXCHANGE_TZ).tz_convert("UTC")
    idx = pd.date_range(start, periods=n, freq="1min")
    rng = np.random.default_rng(seed)
    c = 100 + np.cumsum(rng.normal(0, 0.1, n))
    o = np.r_[100.0, c[:-1]]
    h = np.maximum(o, c) + 0.05
    lo = np.minimum(o, c) - 0.05
    return pd.DataFrame(
        {"open": o, "high": h, "low": lo, "close": c, "volume": rng.integers(100, 1000, n).astype(float)}, index=idx
    )


def test_resample_hourly_anchored_at_open_and_daily_agrees():
    df = pd.concat([_minute_bars("2024-03-12", seed=1), _minute_bars("2024-03-13", seed=2)])
    check_bars(df)
    h = resample_bars(df, "1h")
    local = h.index.tz_convert(EXCHANGE_TZ)
    assert [t.strftime("%H:%M") for t in local[:7]] == ["09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"]
    assert len(h) == 14
    d = resample_bars(df, "1D")
    assert len(d) == 2
    day1 = df.iloc[:390]
    assert d["high"].iloc[0] == day1["high"].max() and d["low"].iloc[0] == day1["low"].min()
    assert d["open"].iloc[0] == day1["open"].iloc[0] and d["close"].iloc[0] == day1["close"].iloc[-1]
    assert d["volume"].iloc[0] == day1["volume"].sum()
    w = resample_bars(df, "1W")
    assert len(w) == 1 and w["volume"].iloc[0] == df["volume"].sum()
    # 4h buckets: 09:30 and 13:30
    f = resample_bars(df.iloc[:390], "4h")
    assert [t.strftime("%H:%M") for t in f.index.tz_convert(EXCHANGE_TZ)] == ["09:30", "13:30"]
    five = resample_bars(df, "5m")
    assert len(five) == 2 * 78 and np.isclose(five["volume"].sum(), df["volume"].sum())


def test_check_bars_rejects_naive_index():
    df = _minute_bars("2024-03-12").tz_localize(None)
    with pytest.raises(ValueError):
        check_bars(df)
