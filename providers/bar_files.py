"""Reading one bar file (CSV or Parquet) the way people save them, into the project's bar frame.

What is accepted, so a file saved by pandas, Yahoo, Stooq or a data vendor loads as it is:

* the time in a column named `timestamp`, `time`, `datetime`, `date`, `t`, `gmt time`, `open time`,
  `window_start` (and a few more, any case, `<DATE>` brackets and spaces ignored), in the
  Parquet index, or in an unnamed first column (what `DataFrame.to_csv()` writes); a `date`
  column beside a `time` column (Stooq's `<DATE>,<TIME>`) is read as one stamp;
* yfinance's three-row header (`Price / Ticker / Date` rows above the data);
* `open high low close` (or `o h l c`, `<OPEN>` ...), an optional `volume` (`vol`, `v`);
  `Adj Close` is ignored: dividends would no longer match the bars' open, high and low;
* times with an offset or `Z` (used as given), naive times (read in `naive_tz`), dates,
  epoch seconds / milliseconds / microseconds / nanoseconds (UTC).

Daily bars are stamped at their date's 09:30 New York open like every provider's, whatever time
of day the file wrote (midnight, midnight UTC, 16:00): the date is the one the file shows.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.bars import COLUMNS, empty_bars
from analytics.sessions import EXCHANGE_TZ
from core.errors import UserError

#: Cap on rows read from one file (about 40 years of 1-minute bars): refuse runaway inputs with a clear line.
MAX_ROWS = 10_000_000
#: Names of a time column, normalised (lower case, spaces and dashes as `_`, brackets dropped), in order of preference.
TIME_COLUMNS = (
    "timestamp",
    "datetime",
    "date_time",
    "time",
    "date",
    "t",
    "ts",
    "stamp",
    "gmt_time",
    "local_time",
    "open_time",
    "time_utc",
    "datetime_utc",
    "timestamp_utc",
    "ts_event",
    "window_start",
    "index",
)
_ALIASES = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume", "vol": "volume"}
_UNNAMED = re.compile(r"^(unnamed:_?0|)$")
_OFFSET = re.compile(r"(?:[+-]\d{2}:?\d{2}|Z)$")
_ACCEPTED = (
    "a date/time column (the unnamed first column pandas writes, or one named Date, Datetime, timestamp, time) "
    "and open, high, low, close (volume optional)"
)


def normalise_label(label: Hashable) -> str:
    """`' Adj Close'` -> `adj_close`, `<VOL>` -> `volume`: the key a column is matched by."""
    k = str(label).strip().strip("<>").strip().lower()
    k = re.sub(r"[\s\-/]+", "_", k)
    return _ALIASES.get(k, k)


def read_bar_file(path: Path, naive_tz: str, interval: str | None) -> pd.DataFrame:
    """The file as a bar-convention DataFrame, or UserError naming the file and what is wrong."""
    shown = path.name
    raw = _raw(path)
    if len(raw) > MAX_ROWS:
        raise UserError(f"replay file {shown} has more than {MAX_ROWS:,} rows; split it by year")
    raw = _drop_yfinance_header(raw)
    cols: dict[str, Hashable] = {}  # normalised name -> the file's own column label
    for c in raw.columns:
        cols.setdefault(normalise_label(c), c)
    found = ", ".join(str(c).strip() or "(unnamed)" for c in list(raw.columns)[:12]) or "none"
    times = _time_values(raw, cols)
    if times is None:
        raise UserError(f"replay file {shown} has no time column (found: {found}); accepted: {_ACCEPTED}")
    missing = [c for c in ("open", "high", "low", "close") if c not in cols]
    if missing:
        raise UserError(f"replay file {shown} lacks columns {', '.join(missing)} (found: {found}); accepted: {_ACCEPTED}")
    if raw.empty:
        return empty_bars()
    index = parse_times(times, naive_tz, shown, daily=interval in ("1D", "1W") if interval else None)
    data = {}
    for c in COLUMNS:
        if c == "volume" and c not in cols:
            data[c] = np.zeros(len(raw))
            continue
        data[c] = pd.to_numeric(raw[cols[c]], errors="coerce").to_numpy(dtype="float64")
    df = pd.DataFrame(data, index=index)
    df["volume"] = df["volume"].fillna(0.0).clip(lower=0.0)
    bad = df[["open", "high", "low", "close"]].isna().any(axis=1) | df.index.isna()
    df = df[~bad]
    if (df[["open", "high", "low", "close"]] <= 0).any().any():
        raise UserError(f"replay file {shown} has zero or negative prices")
    if not len(df):
        raise UserError(f"replay file {shown} has no rows with numbers in open, high, low and close")
    # high/low must bound the bar; exported data sometimes rounds them inside open/close
    df["high"] = df[["open", "high", "low", "close"]].max(axis=1)
    df["low"] = df[["open", "high", "low", "close"]].min(axis=1)
    df = df.sort_index(kind="stable")
    df = df[~df.index.duplicated(keep="last")]
    df.index.name = None
    return df[COLUMNS].astype("float64")


def _raw(path: Path) -> pd.DataFrame:
    shown = path.name
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            raw = pd.read_parquet(path)
            index_is_time = isinstance(raw.index, pd.DatetimeIndex) or normalise_label(raw.index.name or "") in TIME_COLUMNS
            if index_is_time and not any(normalise_label(c) in TIME_COLUMNS for c in raw.columns):
                raw = raw.reset_index()
            return raw
        return pd.read_csv(path, nrows=MAX_ROWS + 1)
    except (OSError, ValueError, ImportError) as exc:
        raise UserError(f"replay file {shown} cannot be read: {str(exc).splitlines()[0][:120]}") from None
    except Exception as exc:  # parser errors of the CSV and Parquet engines
        raise UserError(f"replay file {shown} is not valid CSV/Parquet ({exc.__class__.__name__})") from None


def _drop_yfinance_header(raw: pd.DataFrame) -> pd.DataFrame:
    """yfinance's `download().to_csv()`: a `Price` header, then `Ticker,...` and `Date,,,` rows before the data."""
    if raw.empty or normalise_label(raw.columns[0]) != "price":
        return raw
    first = raw.iloc[:3, 0].astype(str).str.strip().str.lower().tolist()
    drop = 0
    while drop < len(first) and first[drop] in ("ticker", "date", "datetime"):
        drop += 1
    if not drop:
        return raw
    out = raw.iloc[drop:].reset_index(drop=True)
    return out.rename(columns={raw.columns[0]: "timestamp"})


def _time_values(raw: pd.DataFrame, cols: dict[str, Hashable]) -> pd.Series | None:
    """The column holding the stamps (a Stooq-like date + time pair joined), or None when there is none."""
    if "date" in cols and "time" in cols and not _is_full_stamp(raw[cols["time"]]):
        d = raw[cols["date"]].astype(str).str.strip()
        t = raw[cols["time"]].astype(str).str.strip()
        if d.str.fullmatch(r"\d{8}").all() and t.str.fullmatch(r"\d{1,6}").all():
            # Stooq: 20240102 and 153000 (000000 on daily rows)
            return d + "T" + t.str.zfill(6)
        return d + " " + t
    name = next((cols[k] for k in TIME_COLUMNS if k in cols), None)
    if name is not None:
        return raw[name]
    first = raw.columns[0] if len(raw.columns) else None
    if first is not None and _UNNAMED.match(normalise_label(first)) and normalise_label(first) not in COLUMNS:
        return raw[first]  # pandas' index column: `df.to_csv()` leaves its header empty
    return None


def _is_full_stamp(col: pd.Series) -> bool:
    """Whether a `time` column already holds whole date-times (then it is the time column on its own)."""
    if pd.api.types.is_numeric_dtype(col) or isinstance(col.dtype, pd.DatetimeTZDtype):
        return bool(pd.api.types.is_datetime64_any_dtype(col)) or bool(
            len(col) and np.nanmax(np.abs(col.to_numpy(dtype="float64"))) > 1e8
        )
    if pd.api.types.is_datetime64_any_dtype(col):
        return True
    return bool(col.astype(str).str.contains(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}", regex=True).any())


def parse_times(col: pd.Series, naive_tz: str, shown: str, daily: bool | None) -> pd.DatetimeIndex:
    """Stamps in UTC from offsets, naive times, dates or epoch numbers; daily rows at their date's 09:30 ET.

    `daily` True/False says what the file name declared; None lets the stamps tell (a day or more
    apart, every row at the same time of day).
    """
    try:
        aware, wall = _stamps(col, shown)
    except (ValueError, TypeError, OverflowError):
        raise UserError(
            f"replay file {shown} has times that cannot be read; use ISO 8601 like 2024-03-15 09:35:00-04:00 or a date like 2024-03-15"
        ) from None
    if daily is None:
        daily = _looks_daily(wall)
    if daily:
        # the date the file shows, at the 09:30 New York open like every provider's daily bars
        dates = wall.normalize()
        return (
            (dates + pd.Timedelta(hours=9, minutes=30))
            .tz_localize(EXCHANGE_TZ, nonexistent="NaT", ambiguous="NaT")
            .tz_convert("UTC")
            .as_unit("ns")
        )
    if aware is not None:
        return aware.tz_convert("UTC").as_unit("ns")
    try:
        idx = wall.tz_localize(naive_tz, ambiguous="NaT", nonexistent="NaT")
    except Exception:
        raise UserError(f"unknown time zone {naive_tz!r} for naive times in {shown}") from None
    return idx.tz_convert("UTC").as_unit("ns")


def _stamps(col: pd.Series, shown: str) -> tuple[pd.DatetimeIndex | None, pd.DatetimeIndex]:
    """(UTC stamps when the file says the zone, else None; the wall-clock stamps as written)."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        idx = pd.DatetimeIndex(col)
        return idx, idx.tz_localize(None).as_unit("ns")
    if pd.api.types.is_datetime64_any_dtype(col):
        return None, pd.DatetimeIndex(col).as_unit("ns")
    if pd.api.types.is_numeric_dtype(col):
        v = pd.to_numeric(col).to_numpy(dtype="float64")
        if not np.isfinite(v).any():
            raise ValueError("no numbers")
        big = np.nanmax(np.abs(v))
        if big < 1e8 and np.nanmin(v) >= 19000101:  # 20240102 as a number: a date
            return None, pd.DatetimeIndex(pd.to_datetime(pd.Series(v).astype("Int64").astype(str), format="%Y%m%d"))
        unit = "ns" if big > 1e17 else "us" if big > 1e14 else "ms" if big > 1e11 else "s"
        idx = pd.DatetimeIndex(pd.to_datetime(v, unit=unit, utc=True))
        return idx, idx.tz_localize(None).as_unit("ns")
    text = col.astype(str).str.strip()
    if text.str.fullmatch(r"\d{8}T\d{6}").all():
        return None, pd.DatetimeIndex(pd.to_datetime(text, format="%Y%m%dT%H%M%S"))
    if text.str.fullmatch(r"\d{8}").all():
        return None, pd.DatetimeIndex(pd.to_datetime(text, format="%Y%m%d"))
    has_offset = text.str.contains(_OFFSET, regex=True)
    if has_offset.all():
        aware = pd.DatetimeIndex(pd.to_datetime(text, utc=True, format="ISO8601"))
        # the wall clock as written (before the offset): a daily file's dates are these
        wall = pd.DatetimeIndex(pd.to_datetime(text.str.replace(_OFFSET, "", regex=True).str.rstrip(), format="ISO8601"))
        return aware, wall.as_unit("ns")
    if has_offset.any():
        raise ValueError("some times carry an offset and some do not")
    dayfirst = bool(text.str.match(r"^\d{1,2}\.\d{1,2}\.\d{4}").all())  # Dukascopy: 31.12.2019 22:00:00.000
    return None, pd.DatetimeIndex(pd.to_datetime(text, format="mixed", dayfirst=dayfirst))


def _looks_daily(wall: pd.DatetimeIndex) -> bool:
    """A day or more between stamps (median) and every row at one time of day."""
    ok = wall[~wall.isna()].as_unit("ns")
    if len(ok) == 0:
        return False
    tod = ok - ok.normalize()
    if len(ok) < 2:
        return bool((tod == pd.Timedelta(0)).all())
    if tod.nunique() > 1:
        return False
    d = np.diff(np.sort(ok.asi8))
    d = d[d > 0]
    return len(d) > 0 and float(np.median(d)) >= 20 * 3600 * 10**9
