"""The neutral chart specification: what a chart shows, independent of who draws it.

A `ChartSpec` holds bars (candles + volume), labelled lines (EMAs, VWAP), horizontal
levels with right-edge price labels, shaded bands, markers, a title and a footer, plus
the visible price range. Both render paths (`mpf_render`, `fast_render`) draw exactly
this, so their images agree. Specs are plain frozen dataclasses over NumPy arrays: cheap
to pickle into a worker process and with no matplotlib objects inside.

The x axis is the bar position (0..n-1), not time: nights and weekends take no room.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from analytics.models import Level
from core.errors import UserError

Role = Literal["entry", "stop", "target", "last", "level", "zone"]
MarkerShape = Literal["^", "v", "o", "|"]
#: matplotlib's short line styles: solid, dashed, dotted, dash-dot.
LineStyle = Literal["-", "--", ":", "-."]

#: Label precedence when several labels share a price: the first role names the merged label's colour.
ROLE_RANK: dict[str, int] = {"entry": 0, "stop": 1, "target": 2, "last": 3, "level": 4, "zone": 5}

MIN_SIZE, MAX_SIZE = 320, 4000


@dataclass(frozen=True)
class Candles:
    """OHLCV bars as aligned float64 arrays; `stamps` are bar open times in UTC nanoseconds."""

    stamps: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Candles:
        """Candles from a bar DataFrame (UTC DatetimeIndex, open high low close volume)."""
        idx = pd.DatetimeIndex(df.index)
        if idx.tz is None:
            raise ValueError("bars need a tz-aware DatetimeIndex")
        stamps = idx.tz_convert("UTC").as_unit("ns").asi8.astype(np.int64)

        def col(name: str) -> np.ndarray:
            return np.ascontiguousarray(df[name].to_numpy(dtype=np.float64, na_value=np.nan))

        return cls(stamps, col("open"), col("high"), col("low"), col("close"), col("volume"))

    def __len__(self) -> int:
        return len(self.stamps)

    def frame(self, tz: str) -> pd.DataFrame:
        """The bars as a DataFrame with a naive exchange-time index and capitalised columns (mplfinance's shape)."""
        idx = pd.DatetimeIndex(pd.to_datetime(self.stamps, utc=True)).tz_convert(tz).tz_localize(None)
        return pd.DataFrame(
            {"Open": self.open, "High": self.high, "Low": self.low, "Close": self.close, "Volume": self.volume},
            index=idx,
        )


@dataclass(frozen=True)
class Line:
    """A labelled series drawn over the candles (EMA 9, VWAP); `values` align with the candles, NaN = gap."""

    label: str
    values: np.ndarray
    color: str
    width: float = 1.4
    style: LineStyle = "-"


@dataclass(frozen=True)
class HLevel:
    """A horizontal level across the chart with a price label at the right edge.

    `rank` orders labels when there is no room for all of them (lower is kept first);
    `role` picks the merged label's colour when several levels share a price.
    """

    price: float
    label: str
    color: str
    role: Role = "level"
    style: LineStyle = "--"
    width: float = 1.0
    rank: int = 50
    kind: str = ""


@dataclass(frozen=True)
class Band:
    """A shaded price band (supply/demand zone, FVG, entry zone) from bar `start` to the right edge."""

    low: float
    high: float
    label: str
    color: str
    alpha: float = 0.16
    start: int = 0
    rank: int = 60
    kind: str = ""
    #: Give the band a right-edge label (the entry zone does not: the entry line is labelled).
    labelled: bool = True


@dataclass(frozen=True)
class Marker:
    """A mark at bar `x`: a triangle/dot at `price`, or a vertical line ("|") with its label at the top."""

    x: int
    price: float
    label: str
    color: str
    shape: MarkerShape = "^"


@dataclass(frozen=True)
class ChartSpec:
    """Everything one chart image shows. Build it with `renderers.plan_chart.build_spec`."""

    symbol: str
    interval: str
    candles: Candles
    title: str
    footer: str
    y_range: tuple[float, float]
    theme: str = "dark"
    #: The line under the title as (text, colour) runs: "Entry 251.30" in the entry colour, ...
    subtitle: tuple[tuple[str, str], ...] = ()
    #: "long" / "short" / None: colours the direction chip in the title.
    direction: str | None = None
    footer_right: str = ""
    lines: tuple[Line, ...] = ()
    levels: tuple[HLevel, ...] = ()
    bands: tuple[Band, ...] = ()
    markers: tuple[Marker, ...] = ()
    tick: float = 0.01
    intraday: bool = True
    #: Draw a vertical line where each session starts (useful up to 30m bars; noise above).
    session_breaks: bool = True
    tz: str = "America/New_York"
    width: int = 1200
    height: int = 700
    dpi: int = 100
    show_volume: bool = True
    #: The levels and zones this chart shows, as the level engine scored them (what `--json` lists);
    #: the session VWAP among them when it is drawn as its line.
    shown_levels: tuple[Level, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.candles)
        if n == 0:
            raise UserError(f"no bars to chart for {self.symbol} {self.interval}")
        for line in self.lines:
            if len(line.values) != n:
                raise ValueError(f"line {line.label!r} has {len(line.values)} values for {n} bars")
        lo, hi = self.y_range
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ValueError(f"bad y_range {self.y_range}")
        for name, value in (("width", self.width), ("height", self.height)):
            if not MIN_SIZE <= value <= MAX_SIZE:
                raise UserError(f"chart {name} {value}px out of range; accepted: {MIN_SIZE}-{MAX_SIZE}")
        if self.tick <= 0:
            raise ValueError("tick must be positive")

    def with_size(self, width: int, height: int) -> ChartSpec:
        """The same chart at another pixel size (grid panels)."""
        return replace(self, width=width, height=height)
