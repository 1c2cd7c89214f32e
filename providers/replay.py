"""Market data replayed from a folder of the user's own bar files (CSV or Parquet, one per symbol and interval).

File names say the symbol and the interval: `TSLA_5m.csv`, `SPY-1D.parquet`, `BRK.B_1h.csv.gz`,
or a folder per symbol (`TSLA/5m.csv`). A file without an interval in its name (`AAPL.csv`)
gets the interval its stamps are spaced by.

Columns are matched case-insensitively: a time column (`timestamp`, `time`, `datetime`, `date`,
`t`, or the Parquet index), `open high low close` (or `o h l c`) and an optional `volume`/`v`.
Times may carry an offset (used as given), be naive (read in `naive_tz`, New York by default,
which is how most exported intraday files are written), be dates (daily bars, stamped at the
09:30 ET open like the rest of the project), or be epoch seconds / milliseconds (UTC).

Like the offline market, a request sees only bars that have completed by its `end` and by the
provider's clock, so a replay can never show the future. An interval with no file is built
from the finest finer file that exists (1m -> 5m, 5m -> 1h, 1D -> 1W), in exchange time.
Quotes come from the last completed bar. There are no options in a replay.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.bars import COLUMNS, empty_bars, resample_bars
from analytics.intervals import INTERVALS, interval_minutes, normalise_interval
from analytics.models import OptionChain, Quote
from analytics.sessions import EXCHANGE_TZ, schedule
from analytics.symbols import validate_symbol
from core.errors import NotFoundError, UserError
from core.values import ns_from_utc, utc_from_ns
from providers.base import Bars

NAME = "replay"
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
_TIME_COLUMNS = ("timestamp", "time", "datetime", "date_time", "date", "t", "ts", "stamp", "index")
_ALIASES = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume", "vol": "volume"}
_MINUTE_NS = 60 * 10**9
_DAY_NS = 86_400 * 10**9
#: Cap on rows read from one file (about 40 years of 1-minute bars): refuse runaway inputs with a clear line.
MAX_ROWS = 10_000_000


@dataclass(frozen=True)
class _Loaded:
    """One file's bars and the stamps at which each bar is complete."""

    df: pd.DataFrame
    interval: str
    ends: np.ndarray  # int64 ns: when each bar has completed


def _split_name(path: Path, root: Path) -> tuple[str, str | None] | None:
    """(symbol, interval or None) from a file's name, or None when the name says neither."""
    name = path.name
    suffix = next((s for s in SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)]
    rel = path.relative_to(root).parts
    if len(rel) == 2:  # SYMBOL/5m.csv
        try:
            return validate_symbol(rel[0]), normalise_interval(stem)
        except UserError:
            return None
    m = re.match(r"^(.+?)[_\-\s.]([0-9A-Za-z]+)$", stem)
    if m:
        try:
            return validate_symbol(m.group(1)), normalise_interval(m.group(2))
        except UserError:
            pass
    try:
        return validate_symbol(stem), None
    except UserError:
        return None


class ReplayMarket:
    """MarketData over a folder of bar files; implements providers.base.MarketData (bars and quotes only)."""

    name = NAME

    def __init__(
        self,
        folder: str | Path,
        now: Callable[[], datetime] | None = None,
        naive_tz: str = "America/New_York",
    ) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise UserError(f"replay folder {str(self.folder)[:120]!r} does not exist or is not a folder")
        self._now = now or (lambda: datetime.now(UTC))
        self.naive_tz = naive_tz
        self._files: dict[str, dict[str | None, Path]] = {}
        self._cache: dict[tuple[Path, float], _Loaded] = {}
        self._lock = threading.Lock()
        self.rescan()

    # -- the folder

    def rescan(self) -> None:
        """Re-read the folder's file list (new files become visible)."""
        files: dict[str, dict[str | None, Path]] = {}
        for path in sorted(self.folder.rglob("*")):
            if not path.is_file() or len(path.relative_to(self.folder).parts) > 2:
                continue
            parsed = _split_name(path, self.folder)
            if parsed is None:
                continue
            sym, iv = parsed
            files.setdefault(sym, {}).setdefault(iv, path)
        self._files = files

    def symbols(self) -> list[str]:
        """Symbols that have at least one file."""
        return sorted(self._files)

    def intervals(self, symbol: str) -> list[str]:
        """Intervals that have a file for `symbol` (files without one in their name are loaded to find out)."""
        sym = validate_symbol(symbol)
        out = set()
        for iv, path in self._files.get(sym, {}).items():
            out.add(iv if iv is not None else self._load(path, None).interval)
        return [i for i in INTERVALS if i in out]

    def _missing(self, sym: str, what: str) -> NotFoundError:
        have = ", ".join(self.symbols()[:12]) or "none"
        return NotFoundError(
            f"no replay file for {sym}{' ' + what if what else ''} in {self.folder}; symbols with files: {have} "
            "(name files like TSLA_5m.csv or SPY_1D.parquet)"
        )

    def _source_for(self, sym: str, iv: str) -> tuple[_Loaded, bool]:
        """The loaded file serving `iv` for `sym`, and whether it must be resampled."""
        by_iv = self._files.get(sym)
        if not by_iv:
            raise self._missing(sym, "")
        loaded: dict[str, _Loaded] = {}
        for file_iv, path in by_iv.items():
            got = self._load(path, file_iv)
            loaded.setdefault(got.interval, got)
        if iv in loaded:
            return loaded[iv], False
        want = interval_minutes(iv)
        finer = [
            i
            for i in loaded
            if interval_minutes(i) < want
            and (want % interval_minutes(i) == 0 or iv in ("1D", "1W"))
            and not (iv == "1D" and i == "1W")
        ]
        if not finer:
            raise self._missing(
                sym,
                f"at {iv} (files: {', '.join(sorted(loaded, key=interval_minutes))}; "
                f"{iv} can be built only from a finer interval)",
            )
        return loaded[min(finer, key=interval_minutes)], True

    # -- loading

    def _load(self, path: Path, interval: str | None) -> _Loaded:
        try:
            key = (path, path.stat().st_mtime)
        except OSError:
            raise UserError(f"replay file {path.name} cannot be read") from None
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        df = _read(path, self.naive_tz, interval)
        iv = interval or _infer_interval(df, path)
        ends = _bar_ends(df.index.asi8, iv)
        loaded = _Loaded(df=df, interval=iv, ends=ends)
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if k[0] != path}
            self._cache[key] = loaded
        return loaded

    # -- MarketData

    def _now_ns(self) -> int:
        return _ns(self._now(), "now")

    async def bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> Bars:
        """Bars stamped in [start, end) that have completed by `end` (and by the clock)."""
        sym = validate_symbol(symbol)
        iv = normalise_interval(interval)
        s_ns = _ns(start, "start")
        e_ns = min(_ns(end, "end"), self._now_ns())
        src, resample = self._source_for(sym, iv)
        stamps = src.df.index.asi8
        if e_ns <= s_ns:
            return Bars(sym, iv, empty_bars(), utc_from_ns(e_ns), NAME)
        done = int(np.searchsorted(src.ends, e_ns, side="right"))  # ends are ascending with stamps
        if resample:
            # whole buckets from their first bar, so the first returned bar is complete
            lo = int(np.searchsorted(stamps, _bucket_floor(s_ns, iv), side="left"))
            part = src.df.iloc[lo:done]
            df = resample_bars(part, iv) if len(part) else empty_bars()
            df = df[(df.index.asi8 >= s_ns) & (df.index.asi8 < e_ns)]
        else:
            lo = int(np.searchsorted(stamps, s_ns, side="left"))
            df = src.df.iloc[lo:done]
            df = df[df.index.asi8 < e_ns]
        last_end = int(src.ends[done - 1]) if done else e_ns
        return Bars(sym, iv, df, utc_from_ns(min(last_end, e_ns)), NAME)

    async def quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """A quote from the last bar completed at `at` (or now): last = its close, bid = ask = last."""
        sym = validate_symbol(symbol)
        now = self._now_ns()
        at_ns = now if at is None else min(_ns(at, "at"), now)
        by_iv = self._files.get(sym)
        if not by_iv:
            raise self._missing(sym, "")
        finest = min((self._load(p, iv) for iv, p in by_iv.items()), key=lambda x: interval_minutes(x.interval))
        done = int(np.searchsorted(finest.ends, at_ns, side="right"))
        if done == 0:
            raise NotFoundError(f"replay data for {sym} starts after {utc_from_ns(at_ns).isoformat()}; no quote yet")
        df = finest.df
        last = float(df["close"].iat[done - 1])
        stamp = int(df.index.asi8[done - 1])
        prev = _prev_close(df.iloc[:done], stamp)
        day_vol = (
            _session_volume(df.iloc[:done], stamp) if finest.interval not in ("1D", "1W") else float(df["volume"].iat[done - 1])
        )
        return Quote(
            symbol=sym,
            bid=last,
            ask=last,
            last=last,
            volume=day_vol,
            prev_close=prev,
            as_of=utc_from_ns(int(finest.ends[done - 1])),
            source=NAME,
            tick=0.01,
        )

    async def expirations(self, symbol: str, at: datetime | None = None) -> list[date]:
        raise NotFoundError(f"replay data has no options for {validate_symbol(symbol)}: replay files hold bars only")

    async def chain(self, symbol: str, expiration: date, at: datetime | None = None) -> OptionChain:
        raise NotFoundError(f"replay data has no options for {validate_symbol(symbol)}: replay files hold bars only")


# ---------------------------------------------------------------------------- reading files


def _read(path: Path, naive_tz: str, interval: str | None) -> pd.DataFrame:
    """The file as a bar-convention DataFrame, or UserError naming the file and what is wrong."""
    shown = path.name
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            raw = pd.read_parquet(path)
            if not any(str(c).lower() in _TIME_COLUMNS for c in raw.columns):
                raw = raw.reset_index()
        else:
            raw = pd.read_csv(path, nrows=MAX_ROWS + 1)
    except (OSError, ValueError, ImportError) as exc:
        raise UserError(f"replay file {shown} cannot be read: {str(exc).splitlines()[0][:120]}") from None
    except Exception as exc:  # parser errors of the CSV and Parquet engines
        raise UserError(f"replay file {shown} is not valid CSV/Parquet ({exc.__class__.__name__})") from None
    if len(raw) > MAX_ROWS:
        raise UserError(f"replay file {shown} has more than {MAX_ROWS:,} rows; split it by year")
    cols: dict[str, Hashable] = {}  # normalised name -> the file's own column label
    for c in raw.columns:
        k = str(c).strip().lower().replace(" ", "_")
        k = _ALIASES.get(k, k)
        cols.setdefault(k, c)
    tcol = next((cols[k] for k in _TIME_COLUMNS if k in cols), None)
    if tcol is None:
        raise UserError(f"replay file {shown} has no time column; name one timestamp, time, datetime or date")
    missing = [c for c in ("open", "high", "low", "close") if c not in cols]
    if missing:
        raise UserError(f"replay file {shown} lacks columns {', '.join(missing)}; needs open, high, low, close (volume optional)")
    if raw.empty:
        return empty_bars()
    index = _parse_times(raw[tcol], naive_tz, shown, daily=interval in ("1D", "1W"))
    data = {}
    for c in COLUMNS:
        if c == "volume" and c not in cols:
            data[c] = np.zeros(len(raw))
            continue
        vals = pd.to_numeric(raw[cols[c]], errors="coerce").to_numpy(dtype="float64")
        data[c] = vals
    df = pd.DataFrame(data, index=index)
    df["volume"] = df["volume"].fillna(0.0)
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


def _parse_times(col: pd.Series, naive_tz: str, shown: str, daily: bool) -> pd.DatetimeIndex:
    """Stamps in UTC from offsets, naive exchange times, dates or epoch numbers."""
    try:
        if pd.api.types.is_numeric_dtype(col):
            v = pd.to_numeric(col).to_numpy(dtype="float64")
            big = np.nanmax(np.abs(v)) if len(v) else 0
            unit = "ns" if big > 1e17 else "us" if big > 1e14 else "ms" if big > 1e11 else "s"
            idx = pd.DatetimeIndex(pd.to_datetime(v, unit=unit, utc=True))
        elif isinstance(col.dtype, pd.DatetimeTZDtype):
            idx = pd.DatetimeIndex(col)
        else:
            text = col.astype(str).str.strip()
            has_offset = text.str.contains(r"(?:[+-]\d{2}:?\d{2}|Z)$", regex=True).all()
            if has_offset:
                idx = pd.DatetimeIndex(pd.to_datetime(text, utc=True, format="ISO8601"))
            else:
                idx = pd.DatetimeIndex(pd.to_datetime(text, format="mixed"))
    except (ValueError, TypeError, OverflowError):
        raise UserError(
            f"replay file {shown} has times that cannot be read; use ISO 8601 like 2024-03-15 09:35:00-04:00"
        ) from None
    idx = idx.as_unit("ns")
    if idx.tz is None:
        midnight = len(idx) > 0 and bool((idx.normalize() == idx).all())
        if midnight and (daily or _looks_daily(idx)):
            # dates: daily bars are stamped at the 09:30 ET open, like the offline market's
            idx = (idx + pd.Timedelta(hours=9, minutes=30)).tz_localize(EXCHANGE_TZ)
        else:
            try:
                idx = idx.tz_localize(naive_tz, ambiguous="NaT", nonexistent="NaT")
            except Exception:
                raise UserError(f"unknown time zone {naive_tz!r} for naive times in {shown}") from None
    return idx.tz_convert("UTC").as_unit("ns")


def _looks_daily(idx: pd.DatetimeIndex) -> bool:
    if len(idx) < 2:
        return True
    d = np.diff(np.sort(idx.asi8))
    d = d[d > 0]
    return len(d) > 0 and np.median(d) >= 20 * 3600 * 10**9


def _infer_interval(df: pd.DataFrame, path: Path) -> str:
    """The interval the stamps are spaced by (the most common gap within a day, or daily/weekly)."""
    st = df.index.asi8
    if len(st) < 2:
        raise UserError(f"cannot tell the interval of {path.name} from one bar; name it like {path.stem}_5m{path.suffix}")
    d = np.diff(st)
    d = d[d > 0]
    minutes = float(np.median(d)) / _MINUTE_NS
    if minutes >= 0.8 * 24 * 60:
        # weekly when most gaps are about a week, else daily (weekends and holidays make gaps of 3-4 days)
        return "1W" if minutes >= 5.5 * 24 * 60 else "1D"
    values, counts = np.unique(np.round(d / _MINUTE_NS).astype(np.int64), return_counts=True)
    common = int(values[counts.argmax()])
    for iv in INTERVALS:
        if interval_minutes(iv) == common:
            return iv
    raise UserError(
        f"the bars in {path.name} are {common} minutes apart; accepted: {', '.join(INTERVALS)}; name the file with its interval"
    )


def _bar_ends(stamps: np.ndarray, iv: str) -> np.ndarray:
    """When each bar has completed: stamp + interval, or the session's close for daily and weekly bars."""
    if iv not in ("1D", "1W"):
        return stamps + interval_minutes(iv) * _MINUTE_NS
    sch = schedule()
    days = pd.DatetimeIndex(stamps, tz="UTC").tz_convert(EXCHANGE_TZ).tz_localize(None).normalize().values.astype("datetime64[D]")
    # stamps off the NYSE calendar (other markets, other years) complete a day (a week) after they start
    fallback = stamps + (_DAY_NS if iv == "1D" else 7 * _DAY_NS)
    if iv == "1D":
        pos = np.clip(np.searchsorted(sch.dates, days, side="left"), 0, len(sch.dates) - 1)
        on = sch.dates[pos] == days
    else:
        weekday = (days.astype(np.int64) + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
        friday = days + (4 - weekday).astype("timedelta64[D]")
        pos = np.searchsorted(sch.dates, friday, side="right") - 1
        on = pos >= 0
        pos = np.clip(pos, 0, len(sch.dates) - 1)
        on &= sch.dates[pos] >= days
    ends = np.where(on, sch.closes[pos], fallback).astype(np.int64)
    return np.maximum.accumulate(ends)


def _bucket_floor(ns: int, iv: str) -> int:
    """The start of the exchange-time bucket of `iv` holding `ns` (a lower bound is enough: extra bars are cut)."""
    local = pd.Timestamp(ns, tz="UTC").tz_convert(EXCHANGE_TZ)
    if iv == "1W":
        day = local.normalize() - pd.Timedelta(days=local.weekday())
        return int(day.tz_convert("UTC").value)
    if iv == "1D":
        return int(local.normalize().tz_convert("UTC").value)
    return ns - interval_minutes(iv) * _MINUTE_NS


def _prev_close(df: pd.DataFrame, stamp: int) -> float | None:
    """The last close of an earlier exchange date than `stamp`'s."""
    days = pd.DatetimeIndex(df.index).tz_convert(EXCHANGE_TZ).normalize()
    today = pd.Timestamp(stamp, tz="UTC").tz_convert(EXCHANGE_TZ).normalize()
    earlier = np.flatnonzero(days < today)
    return float(df["close"].iat[int(earlier[-1])]) if len(earlier) else None


def _session_volume(df: pd.DataFrame, stamp: int) -> float:
    days = pd.DatetimeIndex(df.index).tz_convert(EXCHANGE_TZ).normalize()
    today = pd.Timestamp(stamp, tz="UTC").tz_convert(EXCHANGE_TZ).normalize()
    return float(df["volume"].to_numpy()[days == today].sum())


def _ns(at: datetime, what: str) -> int:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise UserError(f"{what} must be a date-time with a UTC offset, e.g. 2024-03-15T15:30:00-04:00")
    return ns_from_utc(at)


def write_bars(df: pd.DataFrame, folder: str | Path, symbol: str, interval: str, fmt: str = "parquet") -> Path:
    """Write bars as a replay file (`SYMBOL_INTERVAL.parquet` or `.csv` with ISO UTC stamps); returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sym, iv = validate_symbol(symbol), normalise_interval(interval)
    out = df[COLUMNS].copy()
    out.index.name = "timestamp"
    if fmt == "csv":
        path = folder / f"{sym}_{iv}.csv"
        tmp = path.with_suffix(".csv.tmp")
        out.to_csv(tmp, date_format="%Y-%m-%dT%H:%M:%S%z")
    elif fmt == "parquet":
        path = folder / f"{sym}_{iv}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        out.to_parquet(tmp)
    else:
        raise UserError(f"unknown replay format {fmt!r}; accepted: csv, parquet")
    tmp.replace(path)  # never a half-written file under the real name
    return path
