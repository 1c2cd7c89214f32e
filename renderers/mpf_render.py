"""The reference render path: a ChartSpec drawn by `mplfinance.plot`.

Candles and volume come from mplfinance with a style made from the theme
(`make_marketcolors` / `make_mpf_style`), EMAs and VWAP are `make_addplot` lines,
levels its `hlines`, bands its `fill_between`, markers scatter addplots; `returnfig=True`
hands back the figure, which then gets the same decorations as the fast path
(`renderers.annotate`), placed on the same page layout. mplfinance draws through
pyplot and changes rcParams globally, so each call runs inside `rc_context` and closes
its figure.
"""

from __future__ import annotations

import io
import warnings
from functools import lru_cache
from typing import Any

import matplotlib

matplotlib.use("Agg")  # mplfinance draws through pyplot: make sure it is the non-GUI backend

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from renderers import annotate
from renderers.chart_spec import ChartSpec
from renderers.png import rgb_of
from renderers.theme import Theme, get_theme

MARKER_SIZE = 70


def _mpf() -> Any:  # mplfinance ships no type information
    import mplfinance as mpf

    return mpf


@lru_cache(maxsize=4)
def mpf_style(theme_name: str) -> dict[str, Any]:
    """An mplfinance style built from our theme, over its closest built-in style."""
    mpf = _mpf()
    theme = get_theme(theme_name)
    colours = mpf.make_marketcolors(
        up=theme.up,
        down=theme.down,
        edge="inherit",
        wick="inherit",
        volume={"up": theme.up_volume, "down": theme.down_volume},
    )
    style: dict[str, Any] = mpf.make_mpf_style(
        base_mpf_style="nightclouds" if theme.name == "dark" else "yahoo",
        marketcolors=colours,
        facecolor=theme.panel,
        figcolor=theme.bg,
        edgecolor=theme.spine,
        gridcolor=theme.grid,
        gridstyle="-",
        y_on_right=True,
        rc={
            "font.family": "DejaVu Sans",
            "axes.labelcolor": theme.muted,
            "xtick.color": theme.muted,
            "ytick.color": theme.muted,
            "text.color": theme.text,
        },
    )
    return style


def _addplots(spec: ChartSpec) -> list[dict[str, Any]]:
    mpf = _mpf()
    n = len(spec.candles)
    plots: list[dict[str, Any]] = []
    for line in spec.lines:
        if np.isfinite(line.values).any():  # mplfinance rejects an all-NaN series
            plots.append(mpf.make_addplot(line.values, color=line.color, width=line.width, linestyle=line.style, panel=0))
    for x, price, shape, colour in annotate.point_markers(spec):
        ys = np.full(n, np.nan)
        ys[int(x)] = price
        plots.append(mpf.make_addplot(ys, type="scatter", marker=shape, markersize=MARKER_SIZE, color=colour, panel=0))
    return plots


def _hlines(spec: ChartSpec) -> dict[str, Any] | None:
    if not spec.levels:
        return None
    return {
        "hlines": [lv.price for lv in spec.levels],
        "colors": [lv.color for lv in spec.levels],
        "linestyle": [lv.style for lv in spec.levels],
        "linewidths": [float(lv.width) for lv in spec.levels],
        "alpha": 1.0,
    }


def _fill_between(spec: ChartSpec) -> list[dict[str, Any]] | None:
    if not spec.bands:
        return None
    n = len(spec.candles)
    x = np.arange(n)
    return [
        {"y1": b.low, "y2": b.high, "where": x >= b.start, "color": b.color, "alpha": b.alpha, "linewidth": 0} for b in spec.bands
    ]


def _plot(spec: ChartSpec, theme: Theme) -> tuple[Figure, list[Axes]]:
    mpf = _mpf()
    kwargs: dict[str, Any] = {
        "type": "candle",
        "style": mpf_style(theme.name),
        "volume": spec.show_volume,
        "returnfig": True,
        "figsize": (spec.width / spec.dpi, spec.height / spec.dpi),
        "ylim": spec.y_range,
        "xlim": annotate.x_limits(spec),
        "xrotation": 0,
        "tight_layout": False,
        "warn_too_much_data": 100_000,
        "ylabel": "",
        "ylabel_lower": "",
    }
    addplots = _addplots(spec)
    if addplots:
        kwargs["addplot"] = addplots
    hl = _hlines(spec)
    if hl:
        kwargs["hlines"] = hl
    fb = _fill_between(spec)
    if fb:
        kwargs["fill_between"] = fb
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig, axes = mpf.plot(spec.candles.frame(spec.tz), **kwargs)
    return fig, axes


def draw(spec: ChartSpec) -> Figure:
    """Draw `spec` with mplfinance plus the shared decorations; the caller closes the figure (`close`)."""
    theme = get_theme(spec.theme)
    fig, axes = _plot(spec, theme)
    fig.set_dpi(spec.dpi)
    fig.set_size_inches(spec.width / spec.dpi, spec.height / spec.dpi)
    ax = axes[0]
    axv = axes[2] if spec.show_volume and len(axes) > 2 else None
    lay = annotate.page_layout(spec)
    # secondary (twin) axes mplfinance creates must follow their panel
    for i, a in enumerate(axes):
        a.set_position(lay.price_rect if i < 2 or axv is None else lay.volume_rect)
        if i % 2 == 1:  # twins hold nothing we draw; their ticks would duplicate ours
            a.set_visible(False)
    annotate.prepare_axes(fig, ax, axv, theme, lay)
    annotate.decorate(fig, ax, axv, spec, theme)
    return fig


def close(fig: Figure) -> None:
    """Release a figure made by `draw` (mplfinance registers it with pyplot)."""
    import matplotlib.pyplot as plt

    plt.close(fig)


def render_rgb(spec: ChartSpec) -> np.ndarray:
    """The chart as an (height, width, 3) uint8 array."""
    with matplotlib.rc_context():
        fig = draw(spec)
        try:
            canvas = fig.canvas
            assert isinstance(canvas, FigureCanvasAgg)  # pyplot's canvas on the Agg backend chosen above
            canvas.draw()
            return rgb_of(np.asarray(canvas.buffer_rgba()))
        finally:
            close(fig)


def render(spec: ChartSpec) -> bytes:
    """PNG bytes of `spec` drawn by mplfinance (saved with `savefig`, as mplfinance users do)."""
    theme = get_theme(spec.theme)
    with matplotlib.rc_context():
        fig = draw(spec)
        try:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=spec.dpi, facecolor=theme.bg)
            return buf.getvalue()
        finally:
            close(fig)
