"""Bars of many symbols on one shared time axis, as 2-D arrays (symbols x bars).

The planner and the scanner run the same code on a `Panel`: a single-symbol plan is a
panel with one row, a scan of 500 symbols is a panel with 500 rows. Every level
detector and strategy works on whole columns at once, so the cost of a scan grows with
the number of array elements, not with Python loops over symbols or bars.

Rows are aligned on the union of their stamps. Where a symbol has no bar at a stamp
that others have, its close is carried forward with zero volume (a minute without
trades); stamps before a symbol's first bar stay NaN, and every computation here
tolerates leading NaNs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from analytics.bars import COLUMNS
from analytics.intervals import interval_minutes, is_intraday, normalise_interval
from analytics.sessions import EXCHANGE_TZ

DAY_NS = 86_400 * 10**9
MINUTE_NS = 60 * 10**9
#: Regular session in exchange-time minutes after midnight (09:30-16:00).
RTH_OPEN = 9 * 60 + 30
RTH_CLOSE = 16 * 60


@dataclass(frozen=True, eq=False)
class Panel:
    """OHLCV of `symbols` on a shared UTC `index`; each field is a (len(symbols), len(index)) float64 array."""

    symbols: tuple[str, ...]
    interval: str
    index: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    #: Built by `resample(..., closes_only=True)`: only `close` is real (open/high/low alias it, volume is 0).
    closes_only: bool = False

    def __post_init__(self) -> None:
        shape = (len(self.symbols), len(self.index))
        for name in COLUMNS:
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(f"panel {name} has shape {arr.shape}, expected {shape}")

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_frame(cls, symbol: str, df: pd.DataFrame, interval: str) -> Panel:
        """A one-row panel from one symbol's bar DataFrame."""
        return cls.from_frames({symbol: df}, interval)

    @classmethod
    def from_frames(cls, frames: Mapping[str, pd.DataFrame], interval: str) -> Panel:
        """Stack bar DataFrames of several symbols onto the union of their stamps."""
        interval = normalise_interval(interval)
        symbols = tuple(frames)
        dfs = [frames[s] for s in symbols]
        if not dfs:
            return cls.empty(interval)
        first = dfs[0].index
        if all(len(d.index) == len(first) and d.index.equals(first) for d in dfs[1:]):
            index = first
            arrays = {
                c: np.vstack([d[c].to_numpy(np.float64) for d in dfs]) if len(first) else np.empty((len(dfs), 0)) for c in COLUMNS
            }
            return cls(symbols, interval, index, arrays["open"], arrays["high"], arrays["low"], arrays["close"], arrays["volume"])
        index = first
        for d in dfs[1:]:
            index = index.union(d.index)
        n = len(index)
        arrays = {c: np.full((len(dfs), n), np.nan) for c in COLUMNS}
        for i, d in enumerate(dfs):
            pos = index.get_indexer(d.index)
            for c in COLUMNS:
                arrays[c][i, pos] = d[c].to_numpy(np.float64)
        close = _ffill(arrays["close"])
        missing = np.isnan(arrays["open"]) & ~np.isnan(close)
        for c in ("open", "high", "low"):
            arrays[c] = np.where(missing, close, arrays[c])
        arrays["close"] = close
        arrays["volume"] = np.where(missing, 0.0, arrays["volume"])
        return cls(symbols, interval, index, arrays["open"], arrays["high"], arrays["low"], arrays["close"], arrays["volume"])

    @classmethod
    def from_arrays(
        cls,
        symbols: Sequence[str],
        interval: str,
        index: pd.DatetimeIndex,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
    ) -> Panel:
        """A panel straight from 2-D arrays (benchmarks, tests)."""

        def f(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(a, dtype=np.float64)

        return cls(tuple(symbols), normalise_interval(interval), index, f(open), f(high), f(low), f(close), f(volume))

    @classmethod
    def empty(cls, interval: str, symbols: Sequence[str] = ()) -> Panel:
        z = np.empty((len(symbols), 0))
        return cls(tuple(symbols), interval, pd.DatetimeIndex([], tz="UTC"), z, z, z, z, z)

    # ------------------------------------------------------------------ shape and time

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def n_bars(self) -> int:
        return len(self.index)

    @property
    def intraday(self) -> bool:
        return is_intraday(self.interval)

    @cached_property
    def wall_ns(self) -> np.ndarray:
        """Exchange-time wall clock of each stamp, int64 ns since 1970 (naive)."""
        if not len(self.index):
            return np.empty(0, dtype=np.int64)
        wall: np.ndarray = self.index.tz_convert(EXCHANGE_TZ).tz_localize(None).as_unit("ns").asi8
        return wall

    @cached_property
    def stamps_ns(self) -> np.ndarray:
        """UTC stamps as int64 nanoseconds."""
        stamps: np.ndarray = self.index.as_unit("ns").asi8 if len(self.index) else np.empty(0, dtype=np.int64)
        return stamps

    @cached_property
    def day(self) -> np.ndarray:
        """Exchange-time session date of each stamp as days since 1970 (int64)."""
        days: np.ndarray = np.floor_divide(self.wall_ns, DAY_NS)
        return days

    @cached_property
    def minute(self) -> np.ndarray:
        """Exchange-time minute of day of each stamp (bar open)."""
        minutes: np.ndarray = np.floor_divide(self.wall_ns - self.day * DAY_NS, MINUTE_NS)
        return minutes

    @cached_property
    def session_starts(self) -> np.ndarray:
        """Column positions where a new session date begins (the first is 0)."""
        if not len(self.index):
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(np.concatenate(([True], np.diff(self.day) != 0)))

    # ------------------------------------------------------------------ views

    def tail(self, n: int) -> Panel:
        """The last `n` bars of every row."""
        if n >= self.n_bars:
            return self
        s = slice(self.n_bars - n, None)
        return Panel(
            self.symbols,
            self.interval,
            self.index[s],
            self.open[:, s],
            self.high[:, s],
            self.low[:, s],
            self.close[:, s],
            self.volume[:, s],
            self.closes_only,
        )

    def rows(self, rows: Sequence[int] | np.ndarray) -> Panel:
        """A panel of the selected rows."""
        r = np.asarray(rows, dtype=np.int64)
        return Panel(
            tuple(self.symbols[i] for i in r),
            self.interval,
            self.index,
            self.open[r],
            self.high[r],
            self.low[r],
            self.close[r],
            self.volume[r],
            self.closes_only,
        )

    def frame(self, row: int) -> pd.DataFrame:
        """One row back as a bar DataFrame (stamps where the symbol had no data yet are dropped)."""
        df = pd.DataFrame({c: getattr(self, c)[row] for c in COLUMNS}, index=self.index)
        bars: pd.DataFrame = df[~np.isnan(df["close"].to_numpy())]
        return bars

    def resample(self, interval: str, closes_only: bool = False, volume: bool = True) -> Panel:
        """Every row aggregated to a higher `interval`, bucketed exactly like analytics.bars.resample_bars.

        A bucket containing a row's leading NaN padding is NaN for that row. With `closes_only`, only
        the closes are aggregated (for trend work): far cheaper on wide panels, and flagged as such.
        With `volume=False` the volume is left at zero (for level work, which never reads it).
        """
        interval = normalise_interval(interval)
        if self.closes_only and not closes_only:
            raise ValueError("cannot build full bars from a closes-only panel")
        if interval == self.interval or not self.n_bars:
            return Panel(
                self.symbols,
                interval,
                self.index,
                self.open,
                self.high,
                self.low,
                self.close,
                self.volume,
                self.closes_only or closes_only,
            )
        key = bucket_keys(self.wall_ns, interval)
        first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        last = np.concatenate((first[1:] - 1, [self.n_bars - 1]))
        close = self.close[:, last]
        if closes_only:
            no_volume = np.broadcast_to(np.float64(0.0), close.shape)  # read-only view: nothing reads it
            out = Panel(self.symbols, interval, self.index[first], close, close, close, close, no_volume, True)
        else:
            out = Panel(
                self.symbols,
                interval,
                self.index[first],
                self.open[:, first],
                segment_reduce(self.high, first, last, "max"),
                segment_reduce(self.low, first, last, "min"),
                close,
                segment_reduce(self.volume, first, last, "sum") if volume else np.broadcast_to(np.float64(0.0), close.shape),
            )
        # a bucket is stamped with its first bar: reuse that bar's clock instead of converting time zones again
        out.__dict__["wall_ns"] = self.wall_ns[first]
        return out


def bucket_keys(wall_ns: np.ndarray, interval: str) -> np.ndarray:
    """Resampling bucket of each stamp (exchange wall-clock ns), the same buckets as analytics.bars.resample_bars:
    intraday buckets anchored at 09:30, one per session date for 1D, Monday-anchored weeks for 1W."""
    day: np.ndarray = np.floor_divide(wall_ns, DAY_NS)
    if interval == "1D":
        return day
    if interval == "1W":
        weeks: np.ndarray = (day + 3) // 7  # 1970-01-01 was a Thursday
        return weeks
    minutes = interval_minutes(interval)
    mins = np.floor_divide(wall_ns - day * DAY_NS, MINUTE_NS)
    keys: np.ndarray = day * 100_000 + np.floor_divide(mins - RTH_OPEN, minutes)
    return keys


_REDUCE: dict[str, Callable[..., np.ndarray]] = {"max": np.max, "min": np.min, "sum": np.sum}
_COMBINE: dict[str, np.ufunc] = {"max": np.maximum, "min": np.minimum, "sum": np.add}


def segment_reduce(a: np.ndarray, first: np.ndarray, last: np.ndarray, op: str) -> np.ndarray:
    """Reduce each row of `a` over the column segments [first[k], last[k]] with max, min or sum.

    Row-wise reduceat is slow on wide arrays, so: equal-width segments as one reshaped reduction;
    long ones slice by slice (a loop over buckets, never over bars or symbols); short ones by
    gathering the k-th member of every segment and combining elementwise.
    """
    s = a.shape[0]
    nb = len(first)
    lengths = last - first + 1
    fn = _COMBINE[op]
    if nb == 0:
        return np.empty((s, 0))
    width = int(lengths[1]) if nb > 2 else 0
    if nb > 2 and np.all(lengths[1:-1] == width):
        # regular buckets (5m or 30m from 1m, ...): one reshaped reduction over the middle block
        red = _REDUCE[op]
        out = np.empty((s, nb))
        out[:, 0] = red(a[:, first[0] : last[0] + 1], axis=1)
        out[:, -1] = red(a[:, first[-1] : last[-1] + 1], axis=1)
        lo, hi = int(first[1]), int(last[-2]) + 1
        block = a[:, lo:hi].reshape(s, nb - 2, width)
        if width >= 8:
            out[:, 1:-1] = red(block, axis=2)
        else:
            mid = block[:, :, 0].copy()
            for k in range(1, width):
                fn(mid, block[:, :, k], out=mid)
            out[:, 1:-1] = mid
        return out
    if lengths.max() > 8 and (nb <= 64 or lengths.mean() >= 24):
        red = _REDUCE[op]
        out = np.empty((s, nb))
        for k in range(nb):
            out[:, k] = red(a[:, first[k] : last[k] + 1], axis=1)
        return out
    out = a[:, first].copy()
    for k in range(1, int(lengths.max())):
        cols = first + k
        inside = cols <= last
        part = a[:, np.where(inside, cols, last)]
        if op == "sum":
            part = np.where(inside[None, :], part, 0.0)
        fn(out, part, out=out)
    return out


def _ffill(a: np.ndarray) -> np.ndarray:
    """Carry the last finite value of each row forward (leading NaNs stay NaN)."""
    if a.size == 0:
        return a
    ok = ~np.isnan(a)
    idx = np.where(ok, np.arange(a.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    # rows that start with NaN keep pointing at column 0, which is NaN: what we want
    return a[np.arange(a.shape[0])[:, None], idx]


def rth_mask(panel: Panel) -> np.ndarray:
    """Columns inside the regular session (all True for daily and weekly bars)."""
    if not panel.intraday:
        return np.ones(panel.n_bars, dtype=bool)
    m = panel.minute
    return (m >= RTH_OPEN) & (m < RTH_CLOSE)
