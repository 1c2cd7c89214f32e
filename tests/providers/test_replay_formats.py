"""Replay files as people save them: pandas' default CSV, Yahoo, Stooq, yfinance, vendors, Parquet.

The real files come from the `backtesting` package (a test dependency): GOOG.csv (daily, written
by `DataFrame.to_csv()`, so its date column has no name), EURUSD.csv (hourly, a 24-hour market)
and BTCUSD.csv (monthly). They are copied into a temporary folder at test time, never into the repo.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import backtesting.test
import numpy as np
import pandas as pd
import pytest

from analytics.backtest_engine import BacktestSpec
from bot.backtest_runner import backtest
from core.errors import NotFoundError, UserError
from providers.replay import ReplayMarket

REAL = Path(backtesting.test.__file__).parent
NOW = datetime(2026, 1, 5, tzinfo=UTC)


def real_folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "real"
    folder.mkdir()
    for n in names:
        shutil.copy(REAL / n, folder / n)
    return folder


def utc(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


async def test_pandas_default_csv_of_a_large_cap_loads_with_daily_bars_at_the_open(tmp_path):
    assert pd.read_csv(REAL / "GOOG.csv", nrows=1).columns[0] == "Unnamed: 0"  # what to_csv() writes
    m = ReplayMarket(real_folder(tmp_path, "GOOG.csv"), now=lambda: NOW)
    assert m.symbols() == ["GOOG"] and m.intervals("GOOG") == ["1D"]
    df = (await m.bars("GOOG", "1D", datetime(2004, 1, 1, tzinfo=UTC), NOW)).df
    src = pd.read_csv(REAL / "GOOG.csv", index_col=0)
    assert len(df) == len(src)
    # each date at its 09:30 New York open (EDT in August, EST in March)
    assert df.index[0] == utc("2004-08-19 13:30") and df.index[-1] == utc("2013-03-01 14:30")
    assert df["open"].iloc[0] == src["Open"].iloc[0] and df["close"].iloc[-1] == src["Close"].iloc[-1]


async def test_a_leaps_backtest_four_months_into_real_history_runs(tmp_path):
    m = ReplayMarket(real_folder(tmp_path, "GOOG.csv"), now=lambda: NOW)
    spec = BacktestSpec(("GOOG",), "leaps", datetime(2004, 12, 20, tzinfo=UTC), datetime(2005, 6, 1, tzinfo=UTC))
    res = await backtest(m, spec, now=NOW, workers=1)
    assert res.decisions > 50 and res.sources == ["bars 1D/1W: replay"]
    assert res.plans == 0 or res.empty_reason is None


async def test_too_little_history_is_the_reason_given(tmp_path):
    m = ReplayMarket(real_folder(tmp_path, "GOOG.csv"), now=lambda: NOW)
    spec = BacktestSpec(("GOOG",), "leaps", datetime(2005, 1, 3, tzinfo=UTC), datetime(2005, 2, 10, tzinfo=UTC))
    res = await backtest(m, spec, now=NOW, workers=1)
    assert res.plans == 0 and res.decisions > 0
    assert res.empty_reason is not None and res.empty_reason.startswith("too little history: the leaps style needs 40 1D bars")


async def test_an_hourly_file_of_a_24_hour_market_is_decided_inside_the_session(tmp_path):
    m = ReplayMarket(real_folder(tmp_path, "EURUSD.csv"), now=lambda: NOW)
    assert m.intervals("EURUSD") == ["1h"]
    df = (await m.bars("EURUSD", "1h", datetime(2017, 4, 1, tzinfo=UTC), NOW)).df
    assert set(df.index.minute) == {0}  # on the hour, not on the 09:30 grid of exchange sessions
    spec = BacktestSpec(("EURUSD",), "swing", datetime(2017, 6, 1, tzinfo=UTC), datetime(2017, 7, 1, tzinfo=UTC))
    res = await backtest(m, spec, now=NOW, workers=1)
    assert res.decisions > 100  # 10:00-15:00 New York time on every session
    assert res.plans > 0 or res.empty_reason


async def test_bars_outside_the_session_are_the_reason_given(tmp_path):
    # an overnight-only hourly file (a market that trades while New York sleeps)
    stamps = pd.date_range("2024-03-04 20:00", "2024-03-22 06:00", freq="1h", tz="America/New_York")
    stamps = stamps[(stamps.hour >= 20) | (stamps.hour < 7)]
    rng = np.random.default_rng(1)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.003, len(stamps))))
    pd.DataFrame(
        {"Open": close, "High": close * 1.001, "Low": close * 0.999, "Close": close, "Volume": 100}, index=stamps
    ).to_csv(tmp_path / "NITE.csv")
    m = ReplayMarket(tmp_path, now=lambda: NOW)
    spec = BacktestSpec(("NITE",), "swing", datetime(2024, 3, 11, tzinfo=UTC), datetime(2024, 3, 22, tzinfo=UTC))
    res = await backtest(m, spec, now=NOW, workers=1)
    assert res.decisions == 0 and res.plans == 0
    assert res.empty_reason is not None and "inside the NYSE session (09:30-16:00 New York time)" in res.empty_reason


async def test_monthly_bars_are_refused_with_what_is_accepted(tmp_path):
    m = ReplayMarket(real_folder(tmp_path, "BTCUSD.csv"), now=lambda: NOW)
    with pytest.raises(UserError, match=r"about 3\d days apart; accepted: 1m, 5m, .*1W"):
        await m.bars("BTCUSD", "1D", datetime(2012, 1, 1, tzinfo=UTC), NOW)


WANT = pd.DatetimeIndex([utc("2024-03-12 13:30"), utc("2024-03-13 13:30")])


@pytest.mark.parametrize(
    "name, text",
    [
        (
            "YAHOO.csv",
            "Date,Open,High,Low,Close,Adj Close,Volume\n2024-03-12,10,11,9,10.5,10.4,100\n2024-03-13,10.5,12,10,11,10.9,200\n",
        ),
        ("LOWER.csv", "date,open,high,low,close,volume\n2024-03-12,10,11,9,10.5,100\n2024-03-13,10.5,12,10,11,200\n"),
        ("UPPER.csv", "DATE,OPEN,HIGH,LOW,CLOSE,VOLUME\n2024-03-12,10,11,9,10.5,100\n2024-03-13,10.5,12,10,11,200\n"),
        # yfinance's daily stamps: midnight in New York, with the offset
        (
            "YFD.csv",
            "Date,Open,High,Low,Close,Volume\n2024-03-12 00:00:00-04:00,10,11,9,10.5,100\n2024-03-13 00:00:00-04:00,10.5,12,10,11,200\n",
        ),
        # a crypto vendor's daily stamps at midnight UTC: the date shown is the bar's date
        (
            "UTCD.csv",
            "timestamp,open,high,low,close,volume\n2024-03-12T00:00:00Z,10,11,9,10.5,100\n2024-03-13T00:00:00Z,10.5,12,10,11,200\n",
        ),
        (
            "STOOQ.csv",
            "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\n"
            "STOOQ.US,D,20240312,000000,10,11,9,10.5,100,0\nSTOOQ.US,D,20240313,000000,10.5,12,10,11,200,0\n",
        ),
        (
            "YFNEW.csv",
            "Price,Close,High,Low,Open,Volume\nTicker,YFNEW,YFNEW,YFNEW,YFNEW,YFNEW\nDate,,,,,\n"
            "2024-03-12,10.5,11,9,10,100\n2024-03-13,11,12,10,10.5,200\n",
        ),
    ],
)
async def test_daily_headers_people_have(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    sym = name.removesuffix(".csv")
    m = ReplayMarket(tmp_path, now=lambda: NOW)
    df = (await m.bars(sym, "1D", datetime(2024, 3, 1, tzinfo=UTC), NOW)).df
    assert list(df.index) == list(WANT), df
    assert list(df["close"]) == [10.5, 11.0] and list(df["open"]) == [10.0, 10.5]
    assert list(df["volume"]) == [100.0, 200.0]


async def test_intraday_with_offsets_naive_times_and_a_chosen_zone(tmp_path):
    (tmp_path / "YFI.csv").write_text(
        "Datetime,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-03-08 15:55:00-05:00,1,2,0.5,1.5,1.5,10\n"  # across the DST change: offsets as given
        "2024-03-11 09:30:00-04:00,1.5,2,1,1.8,1.8,10\n"
        "2024-03-11 09:35:00-04:00,1.8,2,1,1.9,1.9,10\n"
    )
    (tmp_path / "DUKA.csv").write_text(
        "Gmt time,Open,High,Low,Close,Volume\n11.03.2024 13:30:00.000,1,2,0.5,1.5,3\n11.03.2024 13:35:00.000,1.5,2,1,1.8,4\n"
    )
    m = ReplayMarket(tmp_path, now=lambda: NOW, naive_tz="UTC")
    yfi = (await m.bars("YFI", "5m", datetime(2024, 3, 1, tzinfo=UTC), NOW)).df
    assert list(yfi.index) == [utc("2024-03-08 20:55"), utc("2024-03-11 13:30"), utc("2024-03-11 13:35")]
    duka = (await m.bars("DUKA", "5m", datetime(2024, 3, 1, tzinfo=UTC), NOW)).df
    assert list(duka.index) == [utc("2024-03-11 13:30"), utc("2024-03-11 13:35")]  # naive, read in the zone given
    assert list(ReplayMarket(tmp_path, now=lambda: NOW).intervals("DUKA")) == ["5m"]


async def test_parquet_with_a_time_index_aware_or_naive(tmp_path):
    idx = pd.DatetimeIndex(["2024-03-12", "2024-03-13"], name="Date")
    frame = pd.DataFrame({"Open": [10.0, 10.5], "High": [11.0, 12], "Low": [9.0, 10], "Close": [10.5, 11], "Volume": [100, 200]})
    frame.set_index(idx).to_parquet(tmp_path / "NAIVE.parquet")
    frame.set_index(idx.tz_localize("America/New_York")).to_parquet(tmp_path / "AWARE.parquet")
    frame.set_index(pd.DatetimeIndex(idx)).rename_axis(None).to_parquet(tmp_path / "NONAME_1D.parquet")
    m = ReplayMarket(tmp_path, now=lambda: NOW)
    for sym in ("NAIVE", "AWARE", "NONAME"):
        df = (await m.bars(sym, "1D", datetime(2024, 3, 1, tzinfo=UTC), NOW)).df
        assert list(df.index) == list(WANT) and list(df["close"]) == [10.5, 11.0], sym


async def test_an_unknown_layout_gets_one_line_naming_what_it_found_and_what_is_accepted(tmp_path):
    (tmp_path / "ODD.csv").write_text("when,bid,ask\n2024-03-12,1,2\n")
    (tmp_path / "HALF.csv").write_text("Date,Open,Close\n2024-03-12,1,2\n")
    m = ReplayMarket(tmp_path, now=lambda: NOW)
    with pytest.raises(UserError) as e:
        await m.bars("ODD", "1D", datetime(2024, 3, 1, tzinfo=UTC), NOW)
    msg = str(e.value)
    assert "\n" not in msg and "found: when, bid, ask" in msg and "unnamed first column pandas writes" in msg
    with pytest.raises(UserError, match="lacks columns high, low .*found: Date, Open, Close"):
        await m.bars("HALF", "1D", datetime(2024, 3, 1, tzinfo=UTC), NOW)


async def test_a_symbol_without_a_file_lists_what_the_folder_has_and_new_files_are_seen(tmp_path):
    (tmp_path / "AAA.csv").write_text("date,open,high,low,close\n2024-03-12,1,2,0.5,1\n2024-03-13,1,2,0.5,1\n")
    m = ReplayMarket(tmp_path, now=lambda: NOW)
    with pytest.raises(NotFoundError, match=r"no replay file for BBB .*symbols with files: AAA \(name files like BBB.csv"):
        await m.bars("BBB", "1D", datetime(2024, 3, 1, tzinfo=UTC), NOW)
    (tmp_path / "BBB.csv").write_text("date,open,high,low,close\n2024-03-12,1,2,0.5,1\n2024-03-13,1,2,0.5,1\n")
    assert len((await m.bars("BBB", "1D", datetime(2024, 3, 1, tzinfo=UTC), NOW)).df) == 2


async def test_asking_after_the_files_end_says_when_they_end(tmp_path):
    m = ReplayMarket(real_folder(tmp_path, "GOOG.csv"), now=lambda: NOW)
    with pytest.raises(NotFoundError, match=r"bars of GOOG end 2013-03-01.*--as-of 2013-03-01T16:00-05:00"):
        await m.bars("GOOG", "1D", datetime(2024, 1, 1, tzinfo=UTC), NOW)
    with pytest.raises(NotFoundError, match=r"GOOG has 1D bars .*its files serve the leaps style"):
        await m.bars("GOOG", "5m", datetime(2013, 1, 1, tzinfo=UTC), NOW)
