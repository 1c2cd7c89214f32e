"""The offline market: seeded, deterministic bars, quotes and option chains for any symbol.

How the numbers are made, and why they never depend on what was asked:

* Each symbol has one DAILY path over the whole NYSE calendar (2005-2030), built once and
  cached: stochastic log-volatility (clustering), drift regimes (trends, ranges, stress),
  overnight gaps with occasional earnings-size jumps, a daily volume level that rises with
  |return| and with volatility. The path is anchored so it passes through the symbol's
  reference price on REF_DATE. How volatile it is follows the symbol's class
  (`providers.sim_symbols`: index ETFs, funds, megacaps, high-beta names, any other stock).
* A session's 1-minute bars are a Brownian bridge from that day's open to its close, with a
  U-shaped intraday volatility and volume profile. Every random number of a minute comes
  from a counter-based hash of (seed, symbol, session, minute, stream), and each session is
  one row of a 2-D array whose operations never mix rows, so a day is bit-for-bit the same
  whether it is generated alone, inside a long range, or as part of the daily cache.
* Daily bars are the max/min/sum of that day's minutes (volumes are whole numbers, so the
  sums are exact in any order); higher intervals come from analytics.bars.resample_bars.
* Nothing stamped at or after the requested end is returned, and a minute appears only once
  it has completed. Requests are also capped at the clock (`now`), so the market never shows
  data from the real future.
* Option chains are priced by Black-Scholes off a term structure tied to the symbol's current
  realised volatility, with a put skew and a smile.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.special import ndtri

from analytics.bars import COLUMNS, empty_bars, resample_bars
from analytics.blackscholes import bs_greeks, bs_price
from analytics.intervals import normalise_interval
from analytics.models import OptionChain, OptionContract, Quote
from analytics.sessions import CAL_END, CAL_START, EXCHANGE_TZ, schedule
from analytics.symbols import validate_symbol
from core.errors import NotFoundError, UserError
from core.values import ns_from_utc, utc_from_ns
from providers.base import Bars, SessionVolume, SessionVolumes
from providers.sim_symbols import CALM_FLOOR, INDEX_LIKE, KNOWN, STRESS_CAP, digest, profile, unit

NAME = "sim"
#: The date on which every symbol's path passes through its reference price.
REF_DATE = np.datetime64("2024-07-01", "D")
#: Risk-free rate used to price options.
RATE = 0.045
_MINUTE_NS = 60 * 10**9
_DAY_NS = 86_400 * 10**9
_YEAR_NS = 365.0 * _DAY_NS
#: Intraday requests longer than this many sessions are refused (about ten years of minutes).
MAX_INTRADAY_SESSIONS = 2600
#: Sessions generated per block when filling the daily cache (bounds memory, not results).
_BLOCK = 384

# ---------------------------------------------------------------------------- hashing


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _hash_normals(key: int, counter: np.ndarray) -> np.ndarray:
    """Standard normals from a counter-based hash (splitmix64): element i depends on (key, counter[i]) only."""
    z = np.uint64(key) + (counter.astype(np.uint64) + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    u = ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    normals: np.ndarray = ndtri(u)
    return normals


# ---------------------------------------------------------------------------- per-symbol model


@dataclass(frozen=True)
class _Path:
    """One symbol's daily path over the whole schedule (index = schedule position)."""

    key: int  # hash key for the minute generator
    opens: np.ndarray  # float64, cents
    closes: np.ndarray  # float64, cents
    sigma: np.ndarray  # daily log-return volatility
    volume: np.ndarray  # the day's total share volume target
    minutes: np.ndarray  # int64 regular-session length in minutes


@lru_cache(maxsize=1)
def _session_minutes() -> np.ndarray:
    """Regular-session length in minutes of every session (390, or 210 on half days)."""
    sch = schedule()
    minutes: np.ndarray = ((sch.closes - sch.opens) // _MINUTE_NS).astype(np.int64)
    minutes.flags.writeable = False
    return minutes


@lru_cache(maxsize=256)
def _path(seed: int, symbol: str) -> _Path:
    """The symbol's daily open/close/vol/volume over every session of the calendar."""
    prof = profile(seed, symbol)
    sch = schedule()
    n = len(sch.dates)
    rng = np.random.Generator(np.random.PCG64(digest(f"{seed}:{symbol}:daily")))

    # Stochastic log-volatility: a slow AR(1) gives clustering; burn-in makes it start stationary.
    phi, s = 0.98, 0.25
    burn = 300
    x = lfilter([s * math.sqrt(1 - phi * phi)], [1.0, -phi], rng.standard_normal(n + burn))[burn:]

    # Regimes: range, uptrend, downtrend, stress. Each lasts a few weeks to a few months.
    n_seg = n // 5 + 8  # the shortest segment is 5 sessions, so this always covers n
    kinds = rng.choice(4, size=n_seg, p=[0.42, 0.30, 0.22, 0.06])
    lengths = np.where(kinds == 3, rng.integers(5, 25, n_seg), rng.integers(15, 90, n_seg))
    regime = np.repeat(kinds, lengths)[:n]
    strength = np.repeat(rng.uniform(0.3, 1.1, n_seg), lengths)[:n]
    vol_mult = np.array([0.85, 0.95, 1.15, 1.4])[regime]
    drift_sign = np.array([0.0, 1.0, -1.0, -1.6])[regime]
    mu = drift_sign * strength * prof.ann_vol / 252.0

    sigma = np.exp(x) * vol_mult
    daily_vol = prof.ann_vol / math.sqrt(252.0)
    sigma *= daily_vol / math.sqrt(np.mean(sigma * sigma))
    # Calm floor and stress ceiling from the class band; volatile names spike less in relative terms.
    lo, hi = prof.band
    floor = max(0.5 * prof.ann_vol, CALM_FLOOR * lo) / math.sqrt(252.0)
    ceiling = min(1.8 * prof.ann_vol, STRESS_CAP * hi) / math.sqrt(252.0)
    sigma = np.clip(sigma, floor, ceiling)

    # Fat-tailed shocks, but no day beyond five of its regime's sigmas (a heavier move is a jump
    # or a regime change); ranges mean-revert a little (negative MA(1)).
    z = np.clip(rng.standard_t(5, n) / math.sqrt(5.0 / 3.0), -5.0, 5.0)
    ma = np.where(regime == 0, -0.3, 0.0)
    e = sigma * (z + ma * np.concatenate(([0.0], z[:-1]))) / np.sqrt(1.0 + ma * ma)
    # Earnings-like jumps (about four a year) happen overnight; index funds have no earnings.
    jump_p = 0.0 if prof.index_like else 4.0 / 252.0
    jump = np.where(rng.random(n) < jump_p, np.clip(rng.normal(0.0, 1.8, n), -6.0, 6.0) * daily_vol, 0.0)
    r = mu + e + jump

    # A weak pull towards a slowly rising trend line keeps 20 years of history believable.
    y = lfilter([1.0], [1.0, -0.998], r)
    log_close = y + 0.06 * np.arange(n) / 252.0
    ref = min(int(np.searchsorted(sch.dates, REF_DATE)), n - 1)
    log_close += math.log(prof.level) - log_close[ref]
    log_close = np.maximum(log_close, math.log(0.5))

    gap = jump + 0.3 * sigma * rng.standard_normal(n)
    log_open = np.empty(n)
    log_open[1:] = log_close[:-1] + gap[1:]
    log_open[0] = log_close[0] - e[0]
    closes = np.round(np.exp(log_close), 2)
    opens = np.round(np.exp(log_open), 2)

    minutes = _session_minutes()
    surprise = np.abs(r - mu) / sigma
    volume = prof.avg_volume * np.exp(
        0.25 * rng.standard_normal(n) + 0.45 * (surprise - 0.8) + 0.6 * np.log(sigma / daily_vol) - 0.15
    )
    volume *= minutes / 390.0
    return _Path(
        key=digest(f"{seed}:{symbol}:minutes"),
        opens=opens,
        closes=closes,
        sigma=sigma,
        volume=volume,
        minutes=minutes,
    )


@lru_cache(maxsize=8)
def _intradayprofile(n: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(variance weights, cumulative variance fraction, volume weights) for an n-minute session, padded to width."""
    t = (np.arange(n) + 0.5) / n
    var = 1.0 + 1.6 * np.exp(-t / 0.05) + 0.6 * np.exp(-(1.0 - t) / 0.04)
    vol = 1.0 + 2.5 * np.exp(-t / 0.06) + 2.0 * np.exp(-(1.0 - t) / 0.05)
    vol[-1] += 6.0  # the closing auction
    var = var / var.sum()
    vol = vol / vol.sum()
    frac = np.cumsum(var)
    frac[-1] = 1.0
    pad = width - n
    return (
        np.concatenate((var, np.zeros(pad))),
        np.concatenate((frac, np.ones(pad))),
        np.concatenate((vol, np.zeros(pad))),
    )


@dataclass(frozen=True)
class _Rows:
    """Minute bars of several sessions, one session per row, padded to `width` columns."""

    idx: np.ndarray  # schedule positions
    n: np.ndarray  # minutes per row
    o: np.ndarray
    h: np.ndarray
    l: np.ndarray  # noqa: E741
    c: np.ndarray
    v: np.ndarray
    valid: np.ndarray  # bool mask of real minutes


def _minute_rows(path: _Path, idx: np.ndarray) -> _Rows:
    """Every minute of the sessions `idx`; row i depends only on session idx[i]."""
    idx = np.asarray(idx, dtype=np.int64)
    n = path.minutes[idx]
    width = int(n.max()) if len(idx) else 0
    var_w = np.empty((len(idx), width))
    frac = np.empty((len(idx), width))
    vol_w = np.empty((len(idx), width))
    for m in np.unique(n):
        rows = n == m
        pv, pf, pw = _intradayprofile(int(m), width)
        var_w[rows], frac[rows], vol_w[rows] = pv, pf, pw
    col = np.arange(width, dtype=np.int64)
    valid = col[None, :] < n[:, None]

    counter = (idx[:, None] << 12) | (col[None, :] << 3)
    z_path = _hash_normals(path.key, counter)
    z_hi = _hash_normals(path.key, counter | 1)
    z_lo = _hash_normals(path.key, counter | 2)
    z_vol = _hash_normals(path.key, counter | 3)

    o_day = path.opens[idx]
    c_day = path.closes[idx]
    # Bridge noise: the day's volatility spread over the session by the intraday profile.
    amp = (0.85 * path.sigma[idx])[:, None] * np.sqrt(var_w)
    w = np.cumsum(np.where(valid, z_path * amp, 0.0), axis=1)
    w_end = w[np.arange(len(idx)), n - 1][:, None]
    lo, lc = np.log(o_day)[:, None], np.log(c_day)[:, None]
    log_p = lo + frac * (lc - lo) + (w - frac * w_end)
    c = np.round(np.exp(log_p), 2)
    c = np.maximum(c, 0.01)
    c[np.arange(len(idx)), n - 1] = c_day
    o = np.empty_like(c)
    o[:, 0] = o_day
    o[:, 1:] = c[:, :-1]
    top = np.maximum(o, c)
    bottom = np.minimum(o, c)
    h = np.round(top * np.exp(0.6 * amp * np.abs(z_hi)), 2)
    l = np.maximum(np.round(bottom * np.exp(-0.6 * amp * np.abs(z_lo)), 2), 0.01)  # noqa: E741
    # Volume: the day's level shaped by the U profile, more on minutes that moved.
    with np.errstate(divide="ignore", invalid="ignore"):
        move = np.where(valid, np.abs(np.log(c / o)) / np.where(valid, amp, 1.0), 0.0)
    v = path.volume[idx][:, None] * vol_w * np.exp(0.35 * z_vol - 0.06) * (0.6 + 0.5 * np.minimum(move, 6.0))
    v = np.where(valid, np.maximum(np.rint(v), 1.0), 0.0)
    return _Rows(idx=idx, n=n, o=o, h=h, l=l, c=c, v=v, valid=valid)


# The daily OHLCV cache: per (seed, symbol), arrays over the schedule filled on demand.
_DAILY: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
_DAILY_MAX = 256
_LOCK = threading.Lock()


def _daily_ohlcv(seed: int, symbol: str, idx: np.ndarray) -> np.ndarray:
    """(len(idx), 5) open/high/low/close/volume of complete sessions, equal to aggregating their minutes."""
    key = (seed, symbol)
    with _LOCK:
        table = _DAILY.get(key)
        if table is None:
            table = np.full((len(schedule().dates), 5), np.nan)
            _DAILY[key] = table
            while len(_DAILY) > _DAILY_MAX:
                _DAILY.popitem(last=False)
        else:
            _DAILY.move_to_end(key)
    missing = idx[np.isnan(table[idx, 0])]
    if len(missing):
        path = _path(seed, symbol)
        for a in range(0, len(missing), _BLOCK):
            rows = _minute_rows(path, missing[a : a + _BLOCK])
            table[rows.idx] = _aggregate(rows, rows.n)
    picked: np.ndarray = table[idx]
    return picked


def _aggregate(rows: _Rows, upto: np.ndarray) -> np.ndarray:
    """OHLCV of each row's first `upto` minutes (upto >= 1)."""
    cols = np.arange(rows.o.shape[1])[None, :]
    take = cols < upto[:, None]
    r = np.arange(len(upto))
    return np.column_stack(
        (
            rows.o[:, 0],
            np.where(take, rows.h, -np.inf).max(axis=1),
            np.where(take, rows.l, np.inf).min(axis=1),
            rows.c[r, upto - 1],
            np.where(take, rows.v, 0.0).sum(axis=1),
        )
    )


def clear_cache() -> None:
    """Forget cached paths and daily bars (for benchmarks measuring a cold start)."""
    _path.cache_clear()
    with _LOCK:
        _DAILY.clear()


def _frame(stamps: np.ndarray, o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray) -> pd.DataFrame:  # noqa: E741
    index = pd.DatetimeIndex(stamps.astype("datetime64[ns]")).tz_localize("UTC")
    df = pd.DataFrame({"open": o, "high": h, "low": l, "close": c, "volume": v}, index=index, dtype="float64")
    return df[COLUMNS]


# ---------------------------------------------------------------------------- time helpers


def _ns(at: datetime, what: str) -> int:
    if not isinstance(at, datetime):
        raise UserError(f"{what} must be a date-time with a UTC offset")
    if at.tzinfo is None or at.utcoffset() is None:
        raise UserError(f"{what} must carry a UTC offset, e.g. 2024-03-15T15:30:00-04:00")
    return ns_from_utc(at)


@dataclass(frozen=True)
class _Moment:
    """Where the data stands at a moment: the session the last price belongs to and how far into it."""

    t: int  # ns: the end of the last completed minute (or the session close)
    sess: int  # schedule position of that session
    done: int  # minutes of `sess` completed (its full length after the close)


def _moment(ns: int) -> _Moment:
    sch = schedule()
    k = int(np.searchsorted(sch.opens, ns, side="right")) - 1
    if k < 0 or ns > sch.closes[-1] + 7 * _DAY_NS:
        raise UserError(f"time outside the supported calendar ({CAL_START} to {CAL_END})")
    minutes = int((sch.closes[k] - sch.opens[k]) // _MINUTE_NS)
    done = min(minutes, int((ns - sch.opens[k]) // _MINUTE_NS))
    if done == 0:
        # inside the first minute: nothing of today has completed yet
        if k == 0:
            raise UserError(f"time outside the supported calendar ({CAL_START} to {CAL_END})")
        k -= 1
        done = int((sch.closes[k] - sch.opens[k]) // _MINUTE_NS)
    return _Moment(t=int(sch.opens[k] + done * _MINUTE_NS), sess=k, done=done)


def _exchange_date(ns: int) -> date:
    day: date = pd.Timestamp(ns, tz="UTC").tz_convert(EXCHANGE_TZ).date()
    return day


# ---------------------------------------------------------------------------- expirations


@lru_cache(maxsize=1)
def _session_dates() -> frozenset[date]:
    return frozenset(pd.DatetimeIndex(schedule().dates).date)


def _is_trading_day(d: date) -> bool:
    if d.weekday() >= 5:
        return False
    if date.fromisoformat(CAL_START) <= d <= date.fromisoformat(CAL_END):
        return d in _session_dates()
    return True  # beyond the calendar only weekends are known


def _expiry_day(friday: date) -> date:
    """The Friday itself, or the Thursday before when the Friday is an exchange holiday."""
    return friday if _is_trading_day(friday) else friday - timedelta(days=1)


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def _listed_expirations(symbol: str, today: date) -> list[date]:
    out: set[date] = set()
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    for k in range(9):  # weeklies for about two months
        out.add(_expiry_day(friday + timedelta(weeks=k)))
    for k in range(13):  # monthlies for a year
        y, m = divmod(today.month - 1 + k, 12)
        out.add(_expiry_day(_third_friday(today.year + y, m + 1)))
    # January LEAPS; the next year's series lists in September
    for y in range(today.year + 1, today.year + (4 if today.month >= 9 else 3)):
        out.add(_expiry_day(_third_friday(y, 1)))
    if symbol in INDEX_LIKE:  # index ETFs list every session for the next two weeks
        d = today
        while d <= today + timedelta(days=14):
            if _is_trading_day(d):
                out.add(d)
            d += timedelta(days=1)
    return sorted(d for d in out if d >= today)


# ---------------------------------------------------------------------------- the market


def _tick_round(x: np.ndarray, tick: np.ndarray, up: bool) -> np.ndarray:
    steps = np.ceil(x / tick - 1e-9) if up else np.floor(x / tick + 1e-9)
    rounded: np.ndarray = np.round(steps * tick, 2)
    return rounded


class SimMarket:
    """A deterministic offline market for any valid symbol; implements providers.base.MarketData."""

    name = NAME

    def __init__(self, seed: int = 0, now: Callable[[], datetime] | None = None) -> None:
        self.seed = int(seed)
        self._now = now or (lambda: datetime.now(UTC))

    # -- helpers

    def _symbol(self, symbol: str) -> str:
        return validate_symbol(symbol)

    def _now_ns(self) -> int:
        return _ns(self._now(), "now")

    def _at_ns(self, at: datetime | None) -> int:
        now = self._now_ns()
        return now if at is None else min(_ns(at, "at"), now)

    # -- bars

    async def bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> Bars:
        """Bars stamped in [start, end) built only from minutes completed by `end` (the last may be partial)."""
        sym = self._symbol(symbol)
        iv = normalise_interval(interval)
        s_ns = _ns(start, "start")
        e_ns = min(_ns(end, "end"), self._now_ns())
        sch = schedule()
        if e_ns <= s_ns or e_ns <= sch.opens[0]:
            return Bars(sym, iv, empty_bars(), utc_from_ns(e_ns), NAME)
        try:
            as_of = utc_from_ns(min(_moment(e_ns).t, e_ns))
        except UserError:  # the first minute of the calendar: nothing has completed
            as_of = utc_from_ns(e_ns)
        if iv in ("1D", "1W"):
            df = self._daily_frame(sym, iv, s_ns, e_ns)
        else:
            df = self._intraday_frame(sym, iv, s_ns, e_ns)
        return Bars(sym, iv, df, as_of, NAME)

    def _intraday_frame(self, sym: str, iv: str, s_ns: int, e_ns: int) -> pd.DataFrame:
        sch = schedule()
        # Start buckets at the session open so the first bar is whole, then drop bars before start.
        a = int(np.searchsorted(sch.closes, s_ns, side="right"))
        b = int(np.searchsorted(sch.opens, e_ns, side="left"))
        if b <= a:
            return empty_bars()
        if b - a > MAX_INTRADAY_SESSIONS:
            raise UserError(f"{iv} bars are limited to {MAX_INTRADAY_SESSIONS} sessions per request; narrow the range")
        lo_ns = min(s_ns, int(sch.opens[a])) if iv != "1m" else s_ns
        df = self._minutes(sym, np.arange(a, b), lo_ns, e_ns)
        if iv == "1m" or df.empty:
            return df
        out = resample_bars(df, iv)
        return out[out.index >= pd.Timestamp(s_ns, tz="UTC")]

    def _minutes(self, sym: str, idx: np.ndarray, lo_ns: int, e_ns: int) -> pd.DataFrame:
        """1m bars of sessions `idx` stamped at or after lo_ns and completed by e_ns."""
        path = _path(self.seed, sym)
        opens = schedule().opens
        parts = []
        for a in range(0, len(idx), _BLOCK):
            rows = _minute_rows(path, idx[a : a + _BLOCK])
            stamps = opens[rows.idx][:, None] + np.arange(rows.o.shape[1])[None, :] * _MINUTE_NS
            keep = rows.valid & (stamps >= lo_ns) & (stamps + _MINUTE_NS <= e_ns)
            parts.append((stamps[keep], rows.o[keep], rows.h[keep], rows.l[keep], rows.c[keep], rows.v[keep]))
        if not parts or not sum(len(p[0]) for p in parts):
            return empty_bars()
        cols = [np.concatenate([p[i] for p in parts]) for i in range(6)]
        return _frame(*cols)

    def _daily_frame(self, sym: str, iv: str, s_ns: int, e_ns: int) -> pd.DataFrame:
        sch = schedule()
        lo_ns = s_ns
        if iv == "1W":
            # whole weeks: from the Monday (exchange time) of start's week
            local = pd.Timestamp(s_ns, tz="UTC").tz_convert(EXCHANGE_TZ).normalize()
            lo_ns = int((local - pd.Timedelta(days=local.weekday())).tz_convert("UTC").value)
        a = int(np.searchsorted(sch.opens, lo_ns, side="left"))
        b = int(np.searchsorted(sch.opens, e_ns, side="left"))
        if b <= a:
            return empty_bars()
        idx = np.arange(a, b)
        complete = sch.closes[idx] <= e_ns
        full = idx[complete]
        data = _daily_ohlcv(self.seed, sym, full)
        stamps = sch.opens[full]
        partial = idx[~complete]  # at most the last session, still open at e_ns
        if len(partial):
            p = int(partial[-1])
            done = int((e_ns - sch.opens[p]) // _MINUTE_NS)
            if done >= 1:
                rows = _minute_rows(_path(self.seed, sym), np.array([p]))
                data = np.vstack((data, _aggregate(rows, np.array([done]))))
                stamps = np.append(stamps, sch.opens[p])
        if not len(stamps):
            return empty_bars()
        df = _frame(stamps, *data.T)
        if iv == "1W":
            df = resample_bars(df, "1W")
            df = df[df.index >= pd.Timestamp(s_ns, tz="UTC")]
        return df

    # -- the market-wide session summary

    async def session_volumes(self, day: date) -> SessionVolumes:
        """The listed symbols' regular session `day` (close, volume, VWAP proxy), as a market-wide summary answers.

        The offline market "lists" the symbols it knows by name; each session's volumes differ, so
        a ranking by dollar volume rotates from one session to the next, deterministically.
        """
        sch = schedule()
        i = int(np.searchsorted(sch.dates, np.datetime64(day, "D")))
        if i >= len(sch.dates) or sch.dates[i] != np.datetime64(day, "D"):
            raise UserError(f"{day.isoformat()} is not a trading session")
        if sch.closes[i] > self._now_ns():
            raise UserError(f"the {day.isoformat()} session has not closed yet")
        rows = []
        for sym in sorted(KNOWN):
            o, h, lo, c, v = _daily_ohlcv(self.seed, sym, np.array([i]))[0]
            if np.isfinite(c) and v > 0:
                rows.append(SessionVolume(symbol=sym, close=float(c), volume=float(v), vwap=float((h + lo + c) / 3.0)))
        return SessionVolumes(day=day, rows=tuple(rows), source=NAME)

    # -- quote

    def _last(self, sym: str, m: _Moment) -> tuple[float, float, float]:
        """(last price, volume of that session so far, previous session close) at moment m."""
        path = _path(self.seed, sym)
        full = int(path.minutes[m.sess])
        if m.done >= full:
            o, h, l, c, v = _daily_ohlcv(self.seed, sym, np.array([m.sess]))[0]  # noqa: E741
        else:
            rows = _minute_rows(path, np.array([m.sess]))
            o, h, l, c, v = _aggregate(rows, np.array([m.done]))[0]  # noqa: E741
        prev = float(path.closes[m.sess - 1]) if m.sess > 0 else float(path.opens[0])
        return float(c), float(v), prev

    async def quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """Last = close of the last completed minute at `at` (the last session's close when closed)."""
        sym = self._symbol(symbol)
        m = _moment(self._at_ns(at))
        last, volume, prev = self._last(sym, m)
        prof = profile(self.seed, sym)
        tag = f"{self.seed}:{sym}:quote:{m.t}"
        last_c = int(round(last * 100))
        spread_c = max(1, int(round(last * prof.spread_bps * (0.7 + 0.6 * unit(tag + ":w")) * 1e-2)))
        below_c = min(spread_c, int(unit(tag + ":b") * (spread_c + 1)))
        bid = (last_c - below_c) / 100.0
        ask = (last_c - below_c + spread_c) / 100.0
        return Quote(
            symbol=sym,
            bid=bid,
            ask=ask,
            last=last,
            bid_size=100 * (1 + int(unit(tag + ":bs") * 30)),
            ask_size=100 * (1 + int(unit(tag + ":as") * 30)),
            volume=volume,
            prev_close=prev,
            as_of=utc_from_ns(m.t),
            source=NAME,
            tick=0.01,
        )

    # -- options

    async def expirations(self, symbol: str, at: datetime | None = None) -> list[date]:
        """Listed expirations on or after `at`'s exchange date: weeklies, monthlies, January LEAPS."""
        sym = self._symbol(symbol)
        return _listed_expirations(sym, _exchange_date(self._at_ns(at)))

    async def chain(self, symbol: str, expiration: date, at: datetime | None = None) -> OptionChain:
        """Every strike of one expiration, priced by Black-Scholes off a skewed term structure."""
        sym = self._symbol(symbol)
        if isinstance(expiration, datetime):
            expiration = expiration.date()
        elif isinstance(expiration, str):
            try:
                expiration = date.fromisoformat(expiration.strip())
            except ValueError:
                raise UserError(f"expiration {expiration[:20]!r} is not a date like 2024-01-19") from None
        at_ns = self._at_ns(at)
        listed = _listed_expirations(sym, _exchange_date(at_ns))
        if expiration not in listed:
            nearest = sorted(listed, key=lambda d: (abs((d - expiration).days), d))[:4]
            shown = ", ".join(d.isoformat() for d in sorted(nearest))
            raise NotFoundError(f"no {sym} options expire on {expiration.isoformat()}; nearest listed: {shown}")
        q = await self.quote(sym, utc_from_ns(at_ns))
        m = _moment(at_ns)
        return self._price_chain(sym, expiration, q, m)

    def _price_chain(self, sym: str, expiration: date, q: Quote, m: _Moment) -> OptionChain:
        prof = profile(self.seed, sym)
        path = _path(self.seed, sym)
        spot = q.last
        sch = schedule()
        e64 = np.datetime64(expiration, "D")
        j = int(np.searchsorted(sch.dates, e64))
        if j < len(sch.dates) and sch.dates[j] == e64:
            exp_ns = int(sch.closes[j])
        else:
            exp_ns = int(pd.Timestamp(datetime.combine(expiration, time(16, 0)), tz=EXCHANGE_TZ).tz_convert("UTC").value)
        T = max(0.0, (exp_ns - m.t) / _YEAR_NS)
        days = T * 365.0

        # Term structure: short dated follows today's realised vol, long dated the symbol's norm.
        realised = float(path.sigma[m.sess]) * math.sqrt(252.0)
        atm_long = 1.05 * prof.ann_vol
        atm_short = 1.1 * (0.7 * realised + 0.3 * prof.ann_vol)  # implied vol expects some mean reversion
        atm = max(0.08, atm_long + (atm_short - atm_long) * math.exp(-T / 0.2))

        # Strikes: centred on the previous close (stable through the day), wide enough for spot too.
        center = q.prev_close or spot
        if prof.index_like:
            inc = 1.0 if days <= 60 else 5.0
        else:
            inc = 0.5 if center < 25 else 1.0 if center < 100 else 2.5 if center < 250 else 5.0 if center < 1000 else 10.0
            if days > 90:
                inc *= 2.0
        band = atm * math.sqrt(max(T, 1.0 / 365.0))
        w_down = min(0.85, max(0.25, 2.2 * band))
        w_up = min(1.5, max(0.25, 2.8 * band))
        lo, hi = min(center, spot) * (1 - w_down), max(center, spot) * (1 + w_up)
        while (hi - lo) / inc > 320:
            inc *= 2.0
        strikes = np.arange(math.ceil(lo / inc), math.floor(hi / inc) + 1) * inc
        strikes = np.round(strikes[strikes > 0], 3)

        # Skew and smile on standardised moneyness.
        F = spot * math.exp((RATE - prof.div_yield) * T)
        x = np.clip(np.log(strikes / F) / (atm * math.sqrt(max(T, 1.0 / (365.0 * 24.0)))), -4.0, 4.0)
        skew, smile = (0.12, 0.018) if prof.index_like else (0.09, 0.025)
        iv = np.maximum(0.05, atm * (1.0 - skew * x + smile * x * x))

        K = np.concatenate((strikes, strikes))
        is_call = np.concatenate((np.ones(len(strikes), bool), np.zeros(len(strikes), bool)))
        sig = np.concatenate((iv, iv))
        xx = np.concatenate((x, x))
        theo = np.asarray(bs_price(spot, K, T, RATE, prof.div_yield, sig, is_call), dtype=float)
        # Values below 1e-9 are numerical dust far from the money: report them as 0.
        greeks = {
            k: np.where(np.abs(v) < 1e-9, 0.0, v) for k, v in bs_greeks(spot, K, T, RATE, prof.div_yield, sig, is_call).items()
        }

        # Quotes: wider far from the money and on cheap contracts; nickel ticks over $3 except index ETFs.
        tick = np.where(prof.index_like | (theo < 3.0), 0.01, 0.05)
        liq = 0.01 if prof.index_like else 0.02 if prof.avg_volume >= 1e7 else 0.05
        intrinsic = np.maximum(np.where(is_call, spot - K, K - spot), 0.0)
        extrinsic = np.maximum(theo - intrinsic, 0.0)
        width = np.maximum(tick, liq + 0.012 * extrinsic * (1.0 + 0.75 * np.abs(xx)) + 0.003 * intrinsic)
        bid = np.maximum(0.0, _tick_round(theo - width / 2, tick, up=False))
        ask = _tick_round(theo + width / 2, tick, up=True)
        ask = np.where(ask <= bid, bid + tick, ask)
        ask = np.maximum(ask, 0.01)

        # Activity: peaks at the money and on round strikes; open interest is fixed for the day,
        # volume accrues with the underlying's volume so far.
        sess_date = str(sch.dates[m.sess])
        rng = np.random.Generator(np.random.PCG64(digest(f"{self.seed}:{sym}:chain:{expiration}:{sess_date}")))
        round_k = np.where(
            np.isclose(K % (10 * inc), 0) | np.isclose(K % (10 * inc), 10 * inc),
            2.5,
            np.where(np.isclose(K % (5 * inc), 0) | np.isclose(K % (5 * inc), 5 * inc), 1.6, 1.0),
        )
        otm = np.where(is_call, xx > 0, xx < 0)
        side = np.where(is_call, 1.0, 0.85)
        monthly = expiration == _expiry_day(_third_friday(expiration.year, expiration.month))
        opt_daily = prof.avg_volume * 0.02
        near = math.exp(-days / 25.0) + 0.04
        vol_level = opt_daily * 0.15 * near
        # open interest builds up over the first weeks of a series and is thin far out
        leaps = monthly and expiration.month == 1 and days > 365
        oi_level = (
            opt_daily
            * 0.02
            * (3.0 if monthly else 1.0)
            * (1.5 if leaps else 1.0)
            * min(1.0, (days + 3.0) / 30.0) ** 0.5
            * math.exp(-max(days - 45.0, 0.0) / 200.0)
        )
        shape_v = np.exp(-0.5 * (xx / 0.8) ** 2) * np.where(otm, 1.0, 0.6)
        shape_oi = np.exp(-0.5 * (xx / 1.0) ** 2) * np.where(otm, 1.0, 0.5)
        day_volume = float(_daily_ohlcv(self.seed, sym, np.array([m.sess]))[0, 4])
        elapsed = min(1.0, q.volume / day_volume) if day_volume > 0 else 1.0
        volume = np.rint(vol_level * shape_v * round_k * side * rng.lognormal(0.0, 0.6, len(K)) * elapsed).astype(int)
        oi = np.rint(oi_level * shape_oi * round_k * side * rng.lognormal(0.0, 0.5, len(K))).astype(int)
        last_px = np.clip(_tick_round(theo + rng.normal(0.0, 0.25, len(K)) * width, tick, up=False), bid, ask)
        last_px = np.maximum(last_px, 0.01)

        root = sym.replace(".", "").replace("-", "")[:6]
        ymd = expiration.strftime("%y%m%d")
        contracts = [
            OptionContract(
                symbol=f"{root}{ymd}{'C' if is_call[i] else 'P'}{int(round(K[i] * 1000)):08d}",
                underlying=sym,
                expiration=expiration,
                strike=float(K[i]),
                right="call" if is_call[i] else "put",
                bid=float(bid[i]),
                ask=float(ask[i]),
                last=float(last_px[i]) if volume[i] > 0 else None,
                volume=int(volume[i]),
                open_interest=int(oi[i]),
                iv=float(sig[i]),
                delta=float(greeks["delta"][i]),
                gamma=float(greeks["gamma"][i]),
                theta=float(greeks["theta"][i]),
                vega=float(greeks["vega"][i]),
            )
            for i in np.lexsort((~is_call, K))
        ]
        return OptionChain(
            underlying=sym,
            expiration=expiration,
            underlying_price=spot,
            as_of=q.as_of,
            source=NAME,
            contracts=contracts,
        )
