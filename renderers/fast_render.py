"""The fast render path: a ChartSpec drawn with matplotlib collections on a Figure reused per process.

No pyplot: the Figure and its Agg canvas are built once per image size and kept for the
life of the (worker) process. Each chart removes the previous chart's artists, draws
candles as one PolyCollection of bodies plus one LineCollection of wicks, volume as one
PolyCollection, levels as one LineCollection, then the shared decorations
(`renderers.annotate`). The PNG is encoded straight from the canvas buffer
(`renderers.png`), skipping Pillow's per-row filter search.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # never a GUI backend in a bot process

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from renderers import annotate
from renderers.chart_spec import ChartSpec
from renderers.fasttext import FastCanvas
from renderers.png import encode_rgba_as_rgb, rgb_of
from renderers.theme import Theme, get_theme

BODY_HALF = 0.36
MARKER_PT2 = 70.0


class _Canvas:
    """One reused Figure with its price and volume axes."""

    def __init__(self, width: int, height: int, dpi: int) -> None:
        self.fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
        FastCanvas(self.fig)
        self.ax: Axes = self.fig.add_axes((0.0, 0.3, 1.0, 0.7))
        self.axv: Axes = self.fig.add_axes((0.0, 0.0, 1.0, 0.3))
        self.dynamic: list[Artist] = []
        #: (theme, show_volume) the axes were last styled for; restyled only when it changes.
        self.styled: tuple[str, bool] | None = None

    def clear(self) -> None:
        for artist in self.dynamic:
            try:
                artist.remove()
            except (ValueError, NotImplementedError):  # already detached
                pass
        self.dynamic = []


_CANVASES: dict[tuple[int, int, int], _Canvas] = {}


def _canvas(spec: ChartSpec) -> _Canvas:
    key = (spec.width, spec.height, spec.dpi)
    cv = _CANVASES.get(key)
    if cv is None:
        if len(_CANVASES) >= 4:  # a few sizes at most (single charts, grid panels)
            _CANVASES.pop(next(iter(_CANVASES)))
        cv = _CANVASES[key] = _Canvas(*key)
    return cv


def _rects(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """Rectangles as one (N, 4, 2) array of vertices.

    Collections take such an array whole (their fast path, no per-polygon conversion), though
    matplotlib's stubs type the argument as a Sequence: hence `type: ignore[arg-type]` where
    arrays of vertices or segments are handed to a collection.
    """
    verts = np.empty((len(x0), 4, 2))
    verts[:, 0, 0] = x0
    verts[:, 0, 1] = y0
    verts[:, 1, 0] = x1
    verts[:, 1, 1] = y0
    verts[:, 2, 0] = x1
    verts[:, 2, 1] = y1
    verts[:, 3, 0] = x0
    verts[:, 3, 1] = y1
    return verts


def _candles(ax: Axes, axv: Axes | None, spec: ChartSpec, theme: Theme) -> list[Artist]:
    c = spec.candles
    n = len(c)
    x = np.arange(n, dtype=np.float64)
    ok = np.isfinite(c.open) & np.isfinite(c.close) & np.isfinite(c.high) & np.isfinite(c.low)
    up = c.close >= c.open
    lo, hi = spec.y_range
    lay = annotate.page_layout(spec)
    one_px = (hi - lo) / max(1, lay.price_bottom - lay.price_top)
    bottom = np.minimum(c.open, c.close)
    top = np.maximum(np.maximum(c.open, c.close), bottom + one_px)  # a doji still shows one pixel
    colours = np.where(up, theme.up, theme.down)[ok]
    bodies = PolyCollection(
        _rects(x[ok] - BODY_HALF, x[ok] + BODY_HALF, bottom[ok], top[ok]),  # type: ignore[arg-type]
        facecolors=colours,
        edgecolors="none",
        antialiased=False,
        zorder=2.2,
    )
    segs = np.empty((int(ok.sum()), 2, 2))
    segs[:, 0, 0] = segs[:, 1, 0] = x[ok]
    segs[:, 0, 1] = c.low[ok]
    segs[:, 1, 1] = c.high[ok]
    wicks = LineCollection(segs, colors=colours, linewidths=72.0 / spec.dpi, antialiased=False, zorder=2.1)  # type: ignore[arg-type]
    added: list[Artist] = [ax.add_collection(wicks, autolim=False), ax.add_collection(bodies, autolim=False)]
    if axv is not None:
        v = np.nan_to_num(c.volume, nan=0.0)
        vcol = np.where(up, theme.up_volume, theme.down_volume)
        vols = PolyCollection(
            _rects(x - BODY_HALF, x + BODY_HALF, np.zeros(n), v),  # type: ignore[arg-type]
            facecolors=vcol,
            edgecolors="none",
            antialiased=False,
            zorder=2,
        )
        added.append(axv.add_collection(vols, autolim=False))
    return added


def _overlays(ax: Axes, spec: ChartSpec) -> list[Artist]:
    n = len(spec.candles)
    x = np.arange(n, dtype=np.float64)
    added: list[Artist] = []
    if spec.bands:
        polys = _rects(
            np.array([max(0, b.start) for b in spec.bands], dtype=np.float64),
            np.full(len(spec.bands), n - 1.0),
            np.array([b.low for b in spec.bands]),
            np.array([b.high for b in spec.bands]),
        )
        fills = [to_rgba(b.color, b.alpha) for b in spec.bands]
        bands = PolyCollection(polys, facecolors=fills, edgecolors="none", zorder=1)  # type: ignore[arg-type]
        added.append(ax.add_collection(bands, autolim=False))
    if spec.levels:
        x0, x1 = annotate.x_limits(spec)
        segs = [[(x0, lv.price), (x1, lv.price)] for lv in spec.levels]
        added.append(
            ax.add_collection(
                LineCollection(
                    segs,
                    colors=[lv.color for lv in spec.levels],
                    linewidths=[lv.width for lv in spec.levels],
                    linestyles=[lv.style for lv in spec.levels],
                    zorder=2.5,
                ),
                autolim=False,
            )
        )
    for line in spec.lines:
        added.append(
            ax.add_line(Line2D(x, line.values, color=line.color, linewidth=line.width, linestyle=line.style, zorder=2.6))
        )
    pts = annotate.point_markers(spec)
    for shape in {p[2] for p in pts}:
        sel = [p for p in pts if p[2] == shape]
        added.append(
            ax.scatter(
                [p[0] for p in sel],
                [p[1] for p in sel],
                s=MARKER_PT2,
                marker=shape,
                c=[p[3] for p in sel],
                zorder=4,
                linewidths=0,
            )
        )
    return added


def draw(spec: ChartSpec) -> Figure:
    """Draw `spec` on this process's reused figure and return it (valid until the next call)."""
    theme = get_theme(spec.theme)
    cv = _canvas(spec)
    cv.clear()
    axv = cv.axv if spec.show_volume else None
    if cv.styled != (theme.name, spec.show_volume):
        cv.axv.set_visible(spec.show_volume)
        annotate.prepare_axes(cv.fig, cv.ax, axv, theme, annotate.page_layout(spec))
        cv.styled = (theme.name, spec.show_volume)
    added = _candles(cv.ax, axv, spec, theme)
    added += _overlays(cv.ax, spec)
    added += annotate.decorate(cv.fig, cv.ax, axv, spec, theme)
    cv.dynamic = added
    return cv.fig


def _pixels(fig: Figure) -> np.ndarray:
    """The figure rasterised: an (height, width, 4) RGBA view of its canvas."""
    canvas = fig.canvas
    assert isinstance(canvas, FastCanvas)  # every figure here is made with one (`_Canvas`)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())


def render_rgb(spec: ChartSpec) -> np.ndarray:
    """The chart as an (height, width, 3) uint8 array."""
    return rgb_of(_pixels(draw(spec)))


def render(spec: ChartSpec) -> bytes:
    """PNG bytes of `spec`, drawn on the reused figure."""
    return encode_rgba_as_rgb(_pixels(draw(spec)))
