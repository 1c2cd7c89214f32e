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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.bars import COLUMNS, empty_bars, resample_bars
from analytics.intervals import INTERVALS, STYLE_INTERVALS, interval_minutes, normalise_interval
from analytics.models import OptionChain, Quote
from analytics.sessions import EXCHANGE_TZ, schedule
from analytics.symbols import validate_symbol
from core.errors import CoachError, NotFoundError, UserError
from core.values import ns_from_utc, utc_from_ns
from providers.bar_files import MAX_ROWS, read_bar_file
from providers.base import Bars
from providers.http import UnknownSymbol, Unsupported

__all__ = ["MAX_ROWS", "ReplayMarket", "write_bars"]

NAME = "replay"
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
_MINUTE_NS = 60 * 10**9
_DAY_NS = 86_400 * 10**9


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
        chained: bool = False,
    ) -> None:
        self.folder = Path(folder).expanduser()
        #: In a router's chain a symbol without a file (or without bars then) passes to the next provider.
        self.chained = chained
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

    def _missing(self, sym: str) -> CoachError:
        syms = self.symbols()
        have = ", ".join(syms[:12]) + (f" and {len(syms) - 12} more" if len(syms) > 12 else "") if syms else "none"
        if self.chained:
            return UnknownSymbol(NAME, sym, "no file")
        return NotFoundError(
            f"no replay file for {sym} in {self.folder}; symbols with files: {have} "
            f"(name files like {sym}.csv, {sym}_5m.csv or {sym}_1D.parquet)"
        )

    def _cannot(self, text: str) -> CoachError:
        """The files cannot serve this request: the user's answer alone, a reason to pass on in a chain."""
        return Unsupported(NAME, text) if self.chained else NotFoundError(text)

    def _files_of(self, sym: str) -> dict[str | None, Path]:
        """The files of `sym`; the folder is read again before saying there is none (files added while running)."""
        by_iv = self._files.get(sym)
        if not by_iv:
            self.rescan()
            by_iv = self._files.get(sym)
        if not by_iv:
            raise self._missing(sym)
        return by_iv

    def _source_for(self, sym: str, iv: str) -> tuple[_Loaded, bool]:
        """The loaded file serving `iv` for `sym`, and whether it must be resampled."""
        by_iv = self._files_of(sym)
        loaded: dict[str, _Loaded] = {}
        for file_iv, path in by_iv.items():
            got = self._load(path, file_iv)
            loaded.setdefault(got.interval, got)
        if iv in loaded:
            return loaded[iv], False
        finer = _finer(iv, list(loaded))
        if not finer:
            have = sorted(loaded, key=interval_minutes)
            styles = [st for st, ivs in STYLE_INTERVALS.items() if ivs[0] in have or _finer(ivs[0], have)]
            hint = f"; its files serve the {' and '.join(styles)} style{'s' if len(styles) > 1 else ''}" if styles else ""
            raise self._cannot(
                f"{sym} has {', '.join(have)} bars in {self.folder.name or self.folder}, and {iv} can be built only from a "
                f"finer interval{hint} (e.g. /plan {sym} {styles[0] if styles else 'leaps'})"
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
        df = read_bar_file(path, self.naive_tz, interval)
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
        if len(stamps) and int(src.ends[-1]) <= s_ns:
            last = utc_from_ns(int(src.ends[-1]))
            raise self._cannot(
                f"the replay bars of {sym} end {last:%Y-%m-%d}, before the {iv} window asked (from {utc_from_ns(s_ns):%Y-%m-%d}); "
                f"ask as of a time they cover, e.g. --as-of {last.astimezone(EXCHANGE_TZ).isoformat(timespec='minutes')}"
            )
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
        by_iv = self._files_of(sym)
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


# ---------------------------------------------------------------------------- intervals and bar ends


def _infer_interval(df: pd.DataFrame, path: Path) -> str:
    """The interval the stamps are spaced by (the most common gap within a day, or daily/weekly)."""
    st = df.index.asi8
    if len(st) < 2:
        raise UserError(f"cannot tell the interval of {path.name} from one bar; name it like {path.stem}_5m{path.suffix}")
    d = np.diff(st)
    d = d[d > 0]
    within_day = d[d < 20 * 60 * _MINUTE_NS]  # daily stamps at the open are 23-25 hours apart at the least
    minutes = float(np.median(d)) / _MINUTE_NS
    if len(within_day):  # two bars inside one day: intraday, whatever the nights and weekends add
        d = within_day
    elif minutes >= 0.8 * 24 * 60:
        days = minutes / (24 * 60)
        if days > 8.5:  # monthly or quarterly bars: no style plans on them
            raise UserError(
                f"the bars in {path.name} are about {days:.0f} days apart; accepted: {', '.join(INTERVALS)} "
                "(daily or weekly at most)"
            )
        # weekly when most gaps are about a week, else daily (weekends and holidays make gaps of 3-4 days)
        return "1W" if days >= 5.5 else "1D"
    values, counts = np.unique(np.round(d / _MINUTE_NS).astype(np.int64), return_counts=True)
    common = int(values[counts.argmax()])
    for iv in INTERVALS:
        if interval_minutes(iv) == common:
            return iv
    raise UserError(
        f"the bars in {path.name} are {common} minutes apart; accepted: {', '.join(INTERVALS)}; name the file with its interval"
    )


def _finer(iv: str, have: list[str]) -> list[str]:
    """Intervals among `have` that `iv` can be resampled from."""
    want = interval_minutes(iv)
    return [
        i
        for i in have
        if interval_minutes(i) < want
        and (want % interval_minutes(i) == 0 or iv in ("1D", "1W"))
        and not (iv == "1D" and i == "1W")
    ]


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
