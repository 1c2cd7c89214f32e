"""Turning provider bar rows into the project's bar frames, the same way for every provider.

Conventions applied here so Polygon, Tradier and Yahoo bars line up with the offline market:

* UTC `DatetimeIndex`, float64 `open high low close volume`, ascending, no duplicate stamps
  (a repeated stamp keeps the last row: providers re-send a bar when a late trade changes it);
* intraday bars are regular-session bars only (09:30-16:00 ET, 13:00 on half days);
* a daily bar is stamped at its session's open (providers stamp midnight ET, 09:30 ET or
  the date alone); rows for dates that were not sessions are dropped;
* higher intervals (30m from 15m, 1h/4h from 30m or 15m, 1W from 1D) are resampled with
  `analytics.bars.resample_bars`, anchored at the 09:30 open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.bars import COLUMNS, empty_bars, resample_bars
from analytics.sessions import schedule

# One column of provider values: JSON numbers or numeric strings, None where a provider left a gap.
Column = Sequence[float | str | None] | np.ndarray


def build_frame(stamps_ns: Sequence[int] | np.ndarray, o: Column, h: Column, l: Column, c: Column, v: Column) -> pd.DataFrame:  # noqa: E741
    """A bar frame from parallel columns; rows with a missing close are dropped, the rest sorted and de-duplicated."""
    t = np.asarray(stamps_ns, dtype=np.int64)
    cols = [np.asarray(_floats(x), dtype=np.float64) for x in (o, h, l, c, v)]
    if not len(t):
        return empty_bars()
    if any(len(x) != len(t) for x in cols):
        raise ValueError("bar columns differ in length")
    df = pd.DataFrame(dict(zip(COLUMNS, cols)), index=pd.DatetimeIndex(pd.to_datetime(t, utc=True)))
    df = df[np.isfinite(df["close"].to_numpy())]
    # a bar with only a close is still a price; fill its missing parts from the close
    for col in ("open", "high", "low"):
        df[col] = df[col].fillna(df["close"])
    df["volume"] = df["volume"].fillna(0.0)
    df = df[~df.index.duplicated(keep="last")].sort_index()
    df.index.name = None
    return df.astype("float64")


def _floats(values: Iterable[float | str | None]) -> list[float]:
    return [np.nan if x is None else float(x) for x in values]


def session_opens(days: Sequence[date] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(open ns, is-a-session mask) for each date: where a daily bar of that date is stamped."""
    sch = schedule()
    d = np.asarray(days, dtype="datetime64[D]")
    i = np.searchsorted(sch.dates, d)
    i_clip = np.minimum(i, len(sch.dates) - 1)
    ok = (i < len(sch.dates)) & (sch.dates[i_clip] == d)
    return sch.opens[i_clip], ok


def daily_frame(days: Sequence[date] | np.ndarray, o: Column, h: Column, l: Column, c: Column, v: Column) -> pd.DataFrame:  # noqa: E741
    """Daily bars keyed by session date, restamped at each session's open; non-session dates dropped."""
    if not len(days):
        return empty_bars()
    stamps, ok = session_opens(days)

    def pick(col: Column) -> list[Any]:
        return [x for x, keep in zip(col, ok) if keep]

    return build_frame(stamps[ok], pick(o), pick(h), pick(l), pick(c), pick(v))


def regular_hours(df: pd.DataFrame) -> pd.DataFrame:
    """Only bars stamped inside a regular session (open <= t < close)."""
    if df.empty:
        return df
    sch = schedule()
    t = df.index.as_unit("ns").asi8
    j = np.searchsorted(sch.opens, t, side="right") - 1
    jc = np.maximum(j, 0)
    inside = (j >= 0) & (t < sch.closes[jc])
    return df[inside]


def clip(df: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """Bars stamped in [start, end)."""
    if df.empty:
        return df
    lo, hi = pd.Timestamp(start).tz_convert("UTC"), pd.Timestamp(end).tz_convert("UTC")
    return df[(df.index >= lo) & (df.index < hi)]


def finish(df: pd.DataFrame, native: str, interval: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Regular-hours filter (intraday), resample `native` -> `interval` when they differ, clip to [start, end)."""
    if native not in ("1D", "1W"):
        df = regular_hours(df)
    if native != interval and not df.empty:
        df = resample_bars(df, interval)
    return clip(df, start, end) if not df.empty else empty_bars()
