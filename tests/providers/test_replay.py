"""The replay provider serves the user's bar files exactly, never the future, and fails with one clear line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.errors import NotFoundError, UserError
from providers.base import MarketData
from providers.replay import ReplayMarket, write_bars
from providers.sim import SimMarket

NOW = datetime(2024, 3, 20, 22, 0, tzinfo=UTC)
START = datetime(2024, 3, 11, 13, 30, tzinfo=UTC)
END = datetime(2024, 3, 19, 20, 0, tzinfo=UTC)


@pytest.fixture
async def folder(tmp_path):
    sim = SimMarket(seed=0, now=lambda: NOW)
    five = (await sim.bars("TSLA", "5m", START, END)).df
    write_bars(five, tmp_path, "TSLA", "5m", fmt="csv")
    write_bars((await sim.bars("SPY", "5m", START, END)).df, tmp_path, "SPY", "5m", fmt="parquet")
    write_bars((await sim.bars("SPY", "1D", START - timedelta(days=60), END)).df, tmp_path, "SPY", "1D", fmt="parquet")
    return tmp_path


async def test_serves_the_files_bars_and_builds_coarser_intervals(folder):
    sim = SimMarket(seed=0, now=lambda: NOW)
    m = ReplayMarket(folder, now=lambda: NOW)
    assert isinstance(m, MarketData)
    assert m.symbols() == ["SPY", "TSLA"] and m.intervals("SPY") == ["5m", "1D"]
    cut = datetime(2024, 3, 14, 17, 0, tzinfo=UTC)  # mid-session, on an hour boundary
    for sym in ("TSLA", "SPY"):
        got = await m.bars(sym, "5m", START, cut)
        want = await sim.bars(sym, "5m", START, cut)
        pd.testing.assert_frame_equal(got.df, want.df, check_freq=False)
        assert got.source == "replay" and got.as_of == cut
        # 1h is resampled from the 5m file in exchange time, exactly like the offline market
        got = await m.bars(sym, "1h", START, cut)
        want = await sim.bars(sym, "1h", START, cut)
        pd.testing.assert_frame_equal(got.df, want.df, check_freq=False)
    daily = await m.bars("SPY", "1D", START, END)
    pd.testing.assert_frame_equal(daily.df, (await sim.bars("SPY", "1D", START, END)).df, check_freq=False)


async def test_never_shows_an_unfinished_bar_or_the_future(folder):
    m = ReplayMarket(folder, now=lambda: datetime(2024, 3, 14, 15, 2, tzinfo=UTC))
    b = await m.bars("TSLA", "5m", START, END)
    assert b.df.index[-1] == pd.Timestamp("2024-03-14 14:55", tz="UTC")  # 15:00-15:05 is not complete at 15:02
    d = await m.bars("SPY", "1D", START, END)
    assert d.df.index[-1].date() == date(2024, 3, 13)  # today's daily bar completes at the close
    q = await m.quote("TSLA")
    assert q.last == b.df["close"].iloc[-1] and q.as_of == datetime(2024, 3, 14, 15, 0, tzinfo=UTC)
    assert q.prev_close == b.df[b.df.index < pd.Timestamp("2024-03-14", tz="America/New_York")]["close"].iloc[-1]
    early = await m.quote("TSLA", at=datetime(2024, 3, 13, 14, 0, tzinfo=UTC))
    assert early.as_of == datetime(2024, 3, 13, 14, 0, tzinfo=UTC)


async def test_reads_naive_exchange_times_dates_and_epoch_seconds(tmp_path):
    (tmp_path / "aapl-5min.csv").write_text(
        "Date Time,Open,High,Low,Close,Volume\n"
        "2024-03-13 09:30:00,170,171,169.5,170.5,1000\n"
        "2024-03-13 09:35:00,170.5,171.5,170,171,800\n"
    )
    (tmp_path / "MSFT.csv").write_text(
        "date,o,h,l,c\n2024-03-11,400,405,398,404\n2024-03-12,404,410,401,409\n2024-03-13,409,411,400,402\n"
    )
    t0 = int(datetime(2024, 3, 13, 13, 30, tzinfo=UTC).timestamp())
    (tmp_path / "NVDA_1m.csv").write_text(
        "t,open,high,low,close,volume\n"
        + "".join(f"{t0 + 60 * i},{100 + i},{101 + i},{99 + i},{100.5 + i},10\n" for i in range(10))
    )
    m = ReplayMarket(tmp_path, now=lambda: NOW)
    a = (await m.bars("AAPL", "5m", START, END)).df
    assert list(a.index) == [pd.Timestamp("2024-03-13 13:30", tz="UTC"), pd.Timestamp("2024-03-13 13:35", tz="UTC")]
    d = (await m.bars("MSFT", "1D", START, END)).df
    assert m.intervals("MSFT") == ["1D"]
    assert d.index[0] == pd.Timestamp("2024-03-11 13:30", tz="UTC") and d["volume"].eq(0).all()
    n = (await m.bars("NVDA", "5m", START, END)).df
    assert len(n) == 2 and n["open"].iloc[0] == 100 and n["close"].iloc[0] == 104.5 and n["volume"].iloc[0] == 50
    assert n["high"].iloc[1] == 110 and n["low"].iloc[1] == 104


async def test_clear_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        ReplayMarket(tmp_path / "nope")
    (tmp_path / "TSLA_5m.csv").write_text("when,price\n1,2\n")
    (tmp_path / "AMD_5m.csv").write_text("timestamp,open,high,low,close\nyesterday,1,2,0.5,1\n")
    (tmp_path / "README.txt").write_text("not data")
    m = ReplayMarket(tmp_path, now=lambda: NOW)
    with pytest.raises(UserError, match="no time column"):
        await m.bars("TSLA", "5m", START, END)
    with pytest.raises(UserError, match="times that cannot be read"):
        await m.bars("AMD", "5m", START, END)
    with pytest.raises(NotFoundError, match="no replay file for QQQ"):
        await m.bars("QQQ", "5m", START, END)
    with pytest.raises(NotFoundError, match="replay data has no options"):
        await m.expirations("TSLA")
    with pytest.raises(NotFoundError, match="replay data has no options"):
        await m.chain("TSLA", date(2024, 3, 15))
    (tmp_path / "SPY_1h.csv").write_text("timestamp,open,high,low,close\n2024-03-13T13:30:00Z,1,2,0.5,1\n")
    m.rescan()
    with pytest.raises(NotFoundError, match="only from a finer interval"):
        await m.bars("SPY", "5m", START, END)


async def test_a_file_with_unsorted_duplicates_and_bad_rows_is_cleaned(tmp_path):
    rows = [
        ("2024-03-13T13:35:00Z", 2, 3, 1.5, 2.5),
        ("2024-03-13T13:30:00Z", 1, 2, 0.5, 1.5),
        ("2024-03-13T13:35:00Z", 2, 3.5, 1.5, 3),  # duplicate stamp: the later row wins
        ("2024-03-13T13:40:00Z", "n/a", 3, 1, 2),  # unreadable price: dropped
    ]
    (tmp_path / "X_5m.csv").write_text("timestamp,open,high,low,close\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    df = (await ReplayMarket(tmp_path, now=lambda: NOW).bars("X", "5m", START, END)).df
    assert list(df["close"]) == [1.5, 3.0] and df.index.is_monotonic_increasing
    assert np.all(df.dtypes == "float64")
