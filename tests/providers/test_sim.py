"""The offline market: determinism, calendar, bar convention, no look-ahead, quotes and option chains."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from analytics.bars import resample_bars
from analytics.models import OptionChain, Quote
from core.errors import NotFoundError, UserError
from providers.base import Bars, MarketData
from providers.sim import SimMarket, clear_cache
from providers.sim_symbols import STRESS_CAP, VOL_BANDS, symbol_class

ET = ZoneInfo("America/New_York")
NOW = datetime(2025, 6, 30, 22, 0, tzinfo=UTC)


def et(*args: int) -> datetime:
    return datetime(*args, tzinfo=ET)


def market(seed: int = 0) -> SimMarket:
    return SimMarket(seed=seed, now=lambda: NOW)


async def day_bars(m: SimMarket, symbol: str, d: date, interval: str = "1m") -> pd.DataFrame:
    start = datetime(d.year, d.month, d.day, tzinfo=ET)
    return (await m.bars(symbol, interval, start, start + timedelta(days=1))).df


def test_implements_protocol():
    m = market()
    assert isinstance(m, MarketData)
    assert m.name == "sim"


# ---------------------------------------------------------------------- determinism


async def test_two_instances_agree_bit_for_bit():
    a = await market().bars("TSLA", "1m", et(2024, 3, 11), et(2024, 3, 16))
    q1 = await market().quote("TSLA", et(2024, 3, 13, 11, 17, 42))
    exp = (await market().expirations("TSLA", et(2024, 3, 13, 11, 17)))[2]
    c1 = await market().chain("TSLA", exp, et(2024, 3, 13, 11, 17, 42))
    clear_cache()  # the second answer is computed afresh, not read from the first one's cache
    b = await market().bars("TSLA", "1m", et(2024, 3, 11), et(2024, 3, 16))
    q2 = await market().quote("TSLA", et(2024, 3, 13, 11, 17, 42))
    c2 = await market().chain("TSLA", exp, et(2024, 3, 13, 11, 17, 42))
    pd.testing.assert_frame_equal(a.df, b.df, check_exact=True)
    assert q1 == q2
    assert c1 == c2


async def test_seed_and_symbol_change_the_market():
    d = date(2024, 3, 12)
    base = await day_bars(market(0), "AAPL", d)
    assert not base.equals(await day_bars(market(1), "AAPL", d))
    assert not base.equals(await day_bars(market(0), "MSFT", d))


async def test_a_day_does_not_depend_on_the_requested_range():
    m = market()
    alone = await day_bars(m, "NVDA", date(2024, 3, 15))
    clear_cache()
    wide = (await m.bars("NVDA", "1m", et(2024, 1, 2), et(2024, 6, 1))).df
    inside = wide[(wide.index >= alone.index[0]) & (wide.index <= alone.index[-1])]
    pd.testing.assert_frame_equal(alone, inside, check_exact=True)
    # and the daily bar of that day is the same from a long daily request and from the minutes
    daily = (await m.bars("NVDA", "1D", et(2022, 1, 1), et(2024, 6, 1))).df
    pd.testing.assert_frame_equal(daily.loc[[alone.index[0]]], resample_bars(alone, "1D"), check_exact=True)


# ---------------------------------------------------------------------- calendar


@pytest.mark.parametrize("holiday", [date(2024, 7, 4), date(2024, 12, 25), date(2024, 3, 29)])
async def test_holidays_have_no_bars(holiday):
    assert (await day_bars(market(), "SPY", holiday)).empty
    assert (await day_bars(market(), "SPY", holiday, "1D")).empty


@pytest.mark.parametrize("half_day", [date(2024, 11, 29), date(2024, 7, 3), date(2024, 12, 24)])
async def test_half_days_end_at_1300(half_day):
    df = await day_bars(market(), "SPY", half_day)
    local = df.index.tz_convert(ET)
    assert len(df) == 210
    assert local[0].strftime("%H:%M") == "09:30"
    assert local[-1].strftime("%H:%M") == "12:59"


async def test_regular_day_has_390_minutes():
    df = await day_bars(market(), "SPY", date(2024, 3, 12))
    local = df.index.tz_convert(ET)
    assert len(df) == 390
    assert (local[0].strftime("%H:%M"), local[-1].strftime("%H:%M")) == ("09:30", "15:59")
    assert (np.diff(df.index.asi8) == 60 * 10**9).all()


async def test_dst_change_keeps_exchange_hours():
    # US clocks changed on 2024-03-10: the session stays 09:30 ET, so its UTC stamp moves
    before = await day_bars(market(), "QQQ", date(2024, 3, 8))
    after = await day_bars(market(), "QQQ", date(2024, 3, 11))
    assert before.index[0].hour == 14 and after.index[0].hour == 13


# ---------------------------------------------------------------------- bar convention


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "4h", "1D", "1W"])
async def test_bar_convention(interval):
    res = await market().bars("AMD", interval, et(2024, 1, 2), et(2024, 4, 1))
    df = res.df
    assert isinstance(res, Bars) and res.source == "sim" and res.interval == interval and res.symbol == "AMD"
    assert not df.empty
    assert str(df.index.tz) == "UTC"
    assert df.index.is_monotonic_increasing and not df.index.has_duplicates
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert all(df[c].dtype == np.float64 for c in df.columns)
    assert (df.low <= np.minimum(df.open, df.close)).all()
    assert (df.high >= np.maximum(df.open, df.close)).all()
    assert (df.volume > 0).all() and (df.low > 0).all()
    assert np.isfinite(df.to_numpy()).all()


async def test_interval_spellings_and_bad_input():
    m = market()
    res = await m.bars("spy", "5min", et(2024, 3, 12), et(2024, 3, 13))
    assert res.interval == "5m" and res.symbol == "SPY"
    with pytest.raises(UserError):
        await m.bars("SPY", "7m", et(2024, 3, 12), et(2024, 3, 13))
    with pytest.raises(UserError):
        await m.bars("not a symbol!", "1m", et(2024, 3, 12), et(2024, 3, 13))
    with pytest.raises(UserError):
        await m.bars("SPY", "1m", datetime(2024, 3, 12), datetime(2024, 3, 13))
    with pytest.raises(UserError):
        await m.quote("$$$")
    assert (await m.bars("SPY", "1m", et(2024, 3, 13), et(2024, 3, 12))).empty


async def test_higher_intervals_are_resampled_minutes():
    m = market()
    start, end = et(2024, 2, 26), et(2024, 3, 9)
    minutes = (await m.bars("META", "1m", start, end)).df
    for interval in ("5m", "30m", "1h", "4h", "1D", "1W"):
        got = (await m.bars("META", interval, start, end)).df
        pd.testing.assert_frame_equal(got, resample_bars(minutes, interval), check_exact=True, check_freq=False)
    daily = (await m.bars("META", "1D", start, end)).df
    by_day = minutes.groupby(minutes.index.tz_convert(ET).date)
    np.testing.assert_array_equal(daily.high.to_numpy(), by_day.high.max().to_numpy())
    np.testing.assert_array_equal(daily.low.to_numpy(), by_day.low.min().to_numpy())
    np.testing.assert_array_equal(daily.volume.to_numpy(), by_day.volume.sum().to_numpy())


async def test_long_daily_history_matches_minutes_everywhere():
    m = market(3)
    daily = (await m.bars("XYZQ", "1D", et(2023, 1, 1), et(2025, 1, 1))).df
    assert 495 <= len(daily) <= 505
    picks = daily.index[::97]
    for stamp in picks:
        d = stamp.tz_convert(ET).date()
        pd.testing.assert_frame_equal(daily.loc[[stamp]], resample_bars(await day_bars(m, "XYZQ", d), "1D"), check_exact=True)


async def test_intraday_start_mid_bucket_drops_the_partial_leading_bar():
    hourly = (await market().bars("SPY", "1h", et(2024, 3, 12, 10, 0), et(2024, 3, 13))).df
    assert [t.strftime("%H:%M") for t in hourly.index.tz_convert(ET)] == ["10:30", "11:30", "12:30", "13:30", "14:30", "15:30"]


# ---------------------------------------------------------------------- no look-ahead


@pytest.mark.parametrize("interval", ["1m", "5m", "1h", "1D", "1W"])
async def test_nothing_from_the_future_of_end(interval):
    m = market()
    end = et(2024, 5, 15, 14, 37, 30)
    start = et(2024, 4, 29)  # a Monday, so the first weekly bar is whole
    res = await m.bars("TSLA", interval, start, end)
    assert (res.df.index < end).all()
    assert res.as_of == et(2024, 5, 15, 14, 37)
    minutes = (await m.bars("TSLA", "1m", start, end)).df
    assert minutes.index[-1] == et(2024, 5, 15, 14, 36)  # completed at 14:37 <= end
    # the partial last bar is built from completed minutes only and equals the resampled minutes
    pd.testing.assert_frame_equal(res.df, resample_bars(minutes, interval), check_exact=True, check_freq=False)


async def test_truncated_request_is_a_prefix_of_the_full_day():
    m = market()
    full = await day_bars(m, "AAPL", date(2024, 5, 15))
    part = (await m.bars("AAPL", "1m", et(2024, 5, 15), et(2024, 5, 15, 11, 0))).df
    assert len(part) == 90
    pd.testing.assert_frame_equal(part, full.iloc[:90], check_exact=True)
    daily_part = (await m.bars("AAPL", "1D", et(2024, 5, 15), et(2024, 5, 15, 11, 0))).df
    assert daily_part.close.iloc[0] == full.close.iloc[89]
    assert daily_part.high.iloc[0] == full.high.iloc[:90].max()


async def test_end_exactly_on_a_minute_boundary_and_in_the_first_minute():
    m = market()
    df = (await m.bars("SPY", "1m", et(2024, 5, 15), et(2024, 5, 15, 9, 31))).df
    assert list(df.index) == [et(2024, 5, 15, 9, 30)]
    assert (await m.bars("SPY", "1m", et(2024, 5, 15), et(2024, 5, 15, 9, 30, 59))).empty
    assert (await m.bars("SPY", "1D", et(2024, 5, 15), et(2024, 5, 15, 9, 30, 59))).empty


async def test_the_clock_caps_every_request():
    now = et(2024, 5, 15, 10, 0)
    m = SimMarket(now=lambda: now)
    res = await m.bars("SPY", "1m", et(2024, 5, 15), et(2024, 6, 1))
    assert res.df.index[-1] == et(2024, 5, 15, 9, 59)
    assert res.as_of == now
    q = await m.quote("SPY")
    assert q.last == res.df.close.iloc[-1] and q.as_of == now
    assert await m.quote("SPY", et(2024, 5, 20)) == q


# ---------------------------------------------------------------------- volume and realism


async def test_volume_is_u_shaped():
    df = (await market().bars("AAPL", "1m", et(2024, 1, 2), et(2024, 3, 1))).df
    local = df.index.tz_convert(ET)
    mins = local.hour * 60 + local.minute - 570
    regular = df.volume[(local.hour * 60 + local.minute) < 16 * 60][mins < 390]
    mins = mins[mins < 390]
    first = regular[mins < 30].mean()
    last = regular[mins >= 360].mean()
    midday = regular[(mins >= 150) & (mins < 270)].mean()
    assert first > 1.5 * midday and last > 1.5 * midday


async def test_reference_price_levels():
    m = market()
    for sym, level in {"SPY": 500, "AAPL": 190, "TSLA": 250, "NVDA": 120}.items():
        q = await m.quote(sym, et(2024, 7, 1, 16, 30))
        assert q.last == pytest.approx(level, rel=0.02)
    for sym in ("ZZZT", "ABCD", "QWERT"):
        q = await m.quote(sym, et(2024, 7, 1, 16, 30))
        assert 4 <= q.last <= 1200


async def test_daily_path_has_gaps_and_volatility_clustering():
    daily = (await market().bars("AMZN", "1D", et(2010, 1, 1), et(2025, 1, 1))).df
    r = np.log(daily.close).diff().dropna()
    gaps = np.log(daily.open / daily.close.shift()).dropna()
    assert (gaps != 0).mean() > 0.9
    assert r.abs().autocorr(1) > 0.05
    ann = r.std() * np.sqrt(252)
    assert 0.15 < ann < 0.9
    # volume rises with the size of the move
    assert np.corrcoef(r.abs(), daily.volume.iloc[1:])[0, 1] > 0.1


@pytest.mark.parametrize("symbol", ["SPY", "QQQ", "AAPL", "MSFT", "TSLA", "NVDA"])
async def test_volatility_sits_in_the_band_of_the_symbols_class(symbol):
    lo, hi = VOL_BANDS[symbol_class(symbol)]
    daily = (await market().bars(symbol, "1D", et(2006, 1, 1), et(2026, 1, 1))).df
    r = np.log(daily.close).diff().dropna()
    assert lo <= r.std() * np.sqrt(252) <= hi
    # regimes: most 20-session spells near the band; stress past the cap is rare (a tenth of the time at most)
    hv20 = r.rolling(20).std().dropna() * np.sqrt(252)
    assert lo * 0.6 <= hv20.median() <= hi
    assert (hv20 > STRESS_CAP * hi).mean() < 0.10


async def test_index_funds_move_like_index_funds():
    """No SPY day like a meme stock's: the largest daily move in twenty years stays under 10%."""
    for symbol in ("SPY", "QQQ", "IWM", "DIA"):
        daily = (await market().bars(symbol, "1D", et(2006, 1, 1), et(2026, 1, 1))).df
        assert symbol_class(symbol) == "index"
        assert np.abs(daily.close.pct_change().dropna()).max() < 0.10


# ---------------------------------------------------------------------- quotes


async def test_quote_during_session():
    m = market()
    at = et(2024, 5, 15, 11, 3, 20)
    q = await m.quote("MSFT", at)
    assert isinstance(q, Quote) and q.source == "sim" and q.symbol == "MSFT"
    assert 0 < q.bid < q.ask and q.bid <= q.last <= q.ask
    assert q.ask - q.bid <= max(0.05, q.last * 5e-4)
    day = (await m.bars("MSFT", "1m", et(2024, 5, 15), at)).df
    assert q.last == day.close.iloc[-1]
    assert day.low.min() <= q.last <= day.high.max()
    assert q.volume == day.volume.sum()
    prev = (await m.bars("MSFT", "1D", et(2024, 5, 14), et(2024, 5, 15))).df
    assert q.prev_close == prev.close.iloc[-1]
    assert q.as_of == et(2024, 5, 15, 11, 3)
    assert q.bid_size > 0 and q.ask_size > 0 and q.tick == 0.01


async def test_quote_when_closed_is_the_last_close():
    m = market()
    friday = (await m.bars("GOOGL", "1D", et(2024, 5, 17), et(2024, 5, 18))).df
    for at in (et(2024, 5, 18, 12, 0), et(2024, 5, 20, 8, 0), et(2024, 5, 17, 16, 0)):
        q = await m.quote("GOOGL", at)
        assert q.last == friday.close.iloc[0]
        assert q.volume == friday.volume.iloc[0]
        assert q.as_of == et(2024, 5, 17, 16, 0)
    half = await m.quote("GOOGL", et(2024, 11, 29, 15, 0))
    assert half.as_of == et(2024, 11, 29, 13, 0)


# ---------------------------------------------------------------------- expirations


async def test_expirations():
    m = market()
    at = et(2024, 3, 20, 12, 0)
    ex = await m.expirations("TSLA", at)
    assert ex == sorted(ex) and len(ex) == len(set(ex))
    assert ex[0] >= date(2024, 3, 20)
    assert date(2024, 4, 19) in ex and date(2024, 6, 21) in ex  # monthly third Fridays
    assert date(2024, 3, 28) in ex and date(2024, 3, 29) not in ex  # Good Friday: Thursday expiry
    later = await m.expirations("TSLA", et(2025, 4, 1, 12, 0))
    assert date(2025, 4, 17) in later and date(2025, 4, 18) not in later  # Good Friday 2025, a monthly
    assert date(2026, 1, 16) in ex  # January LEAPS
    assert all(d.weekday() in (3, 4) for d in ex)
    assert max(ex) <= date(2027, 3, 1)
    assert ex == await market().expirations("TSLA", at)
    # a Friday's own expiration is still listed that day, gone the day after
    assert date(2024, 3, 22) in await m.expirations("TSLA", et(2024, 3, 22, 15, 0))
    assert date(2024, 3, 22) not in await m.expirations("TSLA", et(2024, 3, 23, 10, 0))


async def test_index_funds_list_daily_expirations():
    ex = await market().expirations("SPY", et(2024, 5, 13, 12, 0))
    assert {date(2024, 5, 13), date(2024, 5, 14), date(2024, 5, 15), date(2024, 5, 16)} <= set(ex)


# ---------------------------------------------------------------------- chains


CHAIN_AT = et(2024, 5, 15, 11, 0)


async def _chain(symbol: str = "AAPL", pick: int = 4, at: datetime = CHAIN_AT) -> OptionChain:
    m = market()
    ex = await m.expirations(symbol, at)
    return await m.chain(symbol, ex[pick], at)


async def test_chain_rejects_unlisted_expiration():
    m = market()
    with pytest.raises(NotFoundError) as err:
        await m.chain("AAPL", date(2024, 5, 22), et(2024, 5, 15, 11, 0))
    assert "2024-05-24" in str(err.value) and "2024-05-17" in str(err.value)
    with pytest.raises(NotFoundError):
        await m.chain("AAPL", date(2024, 5, 10), et(2024, 5, 15, 11, 0))


async def test_chain_shape_and_quotes():
    at = et(2024, 5, 15, 11, 0)
    ch = await _chain("TSLA", 4, at)
    q = await market().quote("TSLA", at)
    assert ch.underlying == "TSLA" and ch.source == "sim" and ch.as_of == q.as_of
    assert ch.underlying_price == q.last
    df = ch.to_frame()
    assert set(df.right) == {"call", "put"}
    assert len(df) == 2 * df.strike.nunique()
    assert df.strike.min() < 0.8 * q.last and df.strike.max() > 1.2 * q.last
    assert (df.bid >= 0).all() and (df.ask > df.bid).all()
    assert df.iv.notna().all() and df.delta.notna().all() and df.gamma.notna().all()
    assert (df.gamma >= 0).all() and (df.vega >= 0).all()
    occ = re.compile(r"^TSLA\d{6}[CP]\d{8}$")
    assert all(occ.match(s) for s in df.symbol)
    row = df.iloc[0]
    assert row.symbol == f"TSLA{row.expiration:%y%m%d}{row.right[0].upper()}{int(round(row.strike * 1000)):08d}"
    # nickel increments above $3 outside the index funds
    rich = df[df.bid >= 3.0]
    assert np.allclose(np.round(rich.bid * 20) / 20, rich.bid)


async def test_put_call_parity_on_mids():
    ch = await _chain("AAPL", 6)
    df = ch.to_frame()
    S = ch.underlying_price
    T = (datetime.combine(ch.expiration, datetime.min.time()).replace(hour=16, tzinfo=ET) - ch.as_of).total_seconds() / (
        365 * 86400
    )
    calls = df[df.right == "call"].set_index("strike")
    puts = df[df.right == "put"].set_index("strike")
    near = calls.index[(calls.index > 0.9 * S) & (calls.index < 1.1 * S)]
    assert len(near) >= 5
    mid_c = (calls.bid + calls.ask)[near] / 2
    mid_p = (puts.bid + puts.ask)[near] / 2
    q = 0.005  # AAPL's simulated dividend yield
    parity = S * np.exp(-q * T) - near.to_numpy() * np.exp(-0.045 * T)
    half_spreads = ((calls.ask - calls.bid) + (puts.ask - puts.bid))[near] / 2
    assert (np.abs((mid_c - mid_p).to_numpy() - parity) <= half_spreads.to_numpy() + 0.02).all()


async def test_call_delta_and_skew():
    ch = await _chain("SPY", 8)
    df = ch.to_frame()
    calls = df[df.right == "call"].sort_values("strike")
    puts = df[df.right == "put"].sort_values("strike")
    live = calls[calls.delta.between(0.001, 0.999)]
    assert len(live) > 10
    assert ((calls.delta >= 0) & (calls.delta <= 1)).all()
    assert (np.diff(calls.delta.to_numpy()) <= 0).all()
    assert (np.diff(live.delta.to_numpy()) < 0).all()
    S = ch.underlying_price
    atm_iv = puts.iloc[(puts.strike - S).abs().argmin()].iv
    otm_put_iv = puts.iloc[(puts.strike - 0.9 * S).abs().argmin()].iv
    assert otm_put_iv > atm_iv
    assert (np.diff(puts[puts.strike < S].iv.to_numpy()) <= 0).all()  # IV rises as strike falls


async def test_chain_activity_peaks_near_the_money():
    ch = await _chain("NVDA", 2)
    df = ch.to_frame()
    S = ch.underlying_price
    near = df[(df.strike - S).abs() < 0.05 * S]
    far = df[(df.strike - S).abs() > 0.2 * S]
    assert near.open_interest.mean() > 3 * far.open_interest.mean()
    assert near.volume.mean() > 3 * far.volume.mean()


async def test_chain_when_expiring_today_after_the_close():
    at = et(2024, 5, 17, 17, 0)
    m = market()
    ch = await m.chain("AAPL", date(2024, 5, 17), at)
    df = ch.to_frame()
    S = ch.underlying_price
    calls = df[df.right == "call"]
    itm = calls[calls.strike < S - 1]
    assert np.isfinite(df[["bid", "ask", "delta", "gamma", "theta", "vega"]].to_numpy()).all()
    assert (itm.delta == 1.0).all()
    assert ((itm.bid <= S - itm.strike + 1e-9) & (itm.ask >= S - itm.strike - 1e-9)).all()
