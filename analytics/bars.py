"""Bars as DataFrames: the shape check and resampling to higher intervals in exchange time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.intervals import interval_minutes, normalise_interval
from analytics.sessions import EXCHANGE_TZ

COLUMNS = ["open", "high", "low", "close", "volume"]


def empty_bars() -> pd.DataFrame:
    """A zero-row frame with the bar columns and a UTC index."""
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in COLUMNS}, index=pd.DatetimeIndex([], tz="UTC"))


def check_bars(df: pd.DataFrame) -> pd.DataFrame:
    """Return `df` if it follows the bar convention (UTC index, ascending, unique, float64 OHLCV); else raise."""
    if not isinstance(df.index, pd.DatetimeIndex) or df.index.tz is None:
        raise ValueError("bars need a tz-aware DatetimeIndex")
    if str(df.index.tz) != "UTC":
        raise ValueError("bars must be indexed in UTC")
    if not df.index.is_monotonic_increasing or df.index.has_duplicates:
        raise ValueError("bars must be ascending without duplicate stamps")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"bars missing columns {missing}")
    return df


def resample_bars(df: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Aggregate bars to `interval`, bucketing in exchange time.

    Intraday buckets are anchored at the 09:30 ET open (so 1h bars are 09:30, 10:30, ...;
    4h bars 09:30 and 13:30), daily bars are one per session date and weekly bars
    start on the week's first session. Stamps are the bucket's first bar's time, in UTC.
    """
    interval = normalise_interval(interval)
    if df.empty:
        return empty_bars()
    minutes = interval_minutes(interval)
    local = df.index.tz_convert(EXCHANGE_TZ)
    if interval == "1D":
        key = np.asarray(local.normalize().tz_localize(None).values.astype("datetime64[D]"))
    elif interval == "1W":
        d = local.normalize().tz_localize(None).values.astype("datetime64[D]")
        # Monday-anchored week number; 1970-01-01 was a Thursday
        key = ((d.astype(np.int64) + 3) // 7).astype(np.int64)
    else:
        day = local.normalize()
        mins = ((local - day).total_seconds().values // 60).astype(np.int64)
        # anchor buckets at 09:30 so hourly bars line up with the session; pre-open minutes fall in bucket -1
        bucket = np.floor_divide(mins - 570, minutes)
        key = day.tz_localize(None).values.astype("datetime64[D]").astype(np.int64) * 100_000 + bucket
    groups = pd.Series(np.arange(len(df)), index=df.index).groupby(np.asarray(key), sort=True)
    first = groups.min().values
    last = groups.max().values
    o = df["open"].to_numpy()
    c = df["close"].to_numpy()
    g = np.asarray(key)
    out = pd.DataFrame(
        {
            "open": o[first],
            "high": df["high"].groupby(g, sort=True).max().to_numpy(),
            "low": df["low"].groupby(g, sort=True).min().to_numpy(),
            "close": c[last],
            "volume": df["volume"].groupby(g, sort=True).sum().to_numpy(),
        },
        index=df.index[first],
    )
    return out.astype("float64")


def daily_bars(raw: pd.DataFrame) -> pd.DataFrame:
    """Daily bars from a frame indexed by session dates (column names in any case), in the bar convention.

    Each bar is stamped at its session's 09:30 ET open, in UTC, as the offline market and the
    replay files stamp daily bars; a missing volume column reads as 0.
    """
    cols = {str(c).strip().lower(): c for c in raw.columns}
    missing = [c for c in COLUMNS[:4] if c not in cols]
    if missing:
        raise ValueError(f"daily bars need columns open high low close; missing {', '.join(missing)}")
    idx = pd.DatetimeIndex(pd.to_datetime(raw.index))
    if idx.tz is not None:
        idx = idx.tz_convert(EXCHANGE_TZ).tz_localize(None)
    # nanosecond stamps, as every bar frame here has (a CSV reader may hand out microseconds)
    stamps = (idx.normalize() + pd.Timedelta(hours=9, minutes=30)).tz_localize(EXCHANGE_TZ).tz_convert("UTC").as_unit("ns")
    out = pd.DataFrame(
        {c: pd.to_numeric(raw[cols[c]], errors="coerce").to_numpy(dtype="float64") for c in COLUMNS[:4]}, index=stamps
    )
    out["volume"] = (
        pd.to_numeric(raw[cols["volume"]], errors="coerce").fillna(0.0).to_numpy("float64") if "volume" in cols else 0.0
    )
    out = out.dropna(subset=COLUMNS[:4])
    out = out[~out.index.duplicated(keep="last")].sort_index()
    return check_bars(out)
