"""What both render paths draw the same way on top of their candles: axes, ticks, labels, title, footer.

Each path draws its own candles, volume, lines, levels and bands (mplfinance calls or
raw collections); then `decorate` lays out everything around them from the spec and the
theme, so the two images agree pixel for pixel outside the plotted data. Every artist it
adds to the figure is returned so a reused figure can remove them before the next chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.transforms import blended_transform_factory

from renderers.chart_spec import ChartSpec
from renderers.labels import LabelItem, PlacedLabel, format_price, label_text, merge_equal, place
from renderers.theme import (
    FOOTER_PT,
    LABEL_PT,
    SUBTITLE_PT,
    TICK_PT,
    TITLE_PT,
    Layout,
    Theme,
    text_on,
)
from renderers.theme import (
    layout as make_layout,
)

#: Empty bars kept right of the last candle so it does not touch the label gutter.
RIGHT_PAD_BARS = 3
#: Minimum horizontal distance between x tick labels, in pixels.
MIN_XTICK_PX = 78
#: Approximate width of one label character at LABEL_PT, for fitting text into the gutter.
LABEL_CHAR_PX = 7.0
#: Gap between the price axes and the label boxes (the connector runs through it).
CONNECTOR_PX = 6
#: Text inset inside a label box.
LABEL_PAD_PX = 5

LABEL_GID = "level-label"
FONT_FAMILY = "DejaVu Sans"


def page_layout(spec: ChartSpec) -> Layout:
    """The pixel layout of `spec`'s image."""
    return make_layout(spec.width, spec.height, spec.dpi)


def x_limits(spec: ChartSpec) -> tuple[float, float]:
    """The x range shown: all bars plus a little room on the right."""
    return (-0.7, len(spec.candles) - 0.3 + RIGHT_PAD_BARS)


def prepare_axes(fig: Figure, ax: Axes, axv: Axes | None, theme: Theme, lay: Layout) -> None:
    """Positions, colours and spines of the price (and volume) axes; matplotlib's own tick machinery is hidden.

    Ticks, tick labels and grid lines are drawn by `decorate` as plain collections and texts:
    matplotlib's Axis objects cost more to draw than the whole rest of a chart.
    """
    fig.set_facecolor(theme.bg)
    panels = [(ax, lay.price_rect)] + ([(axv, lay.volume_rect)] if axv is not None else [])
    for a, rect in panels:
        a.set_position(rect)
        a.set_facecolor(theme.panel)
        for spine in a.spines.values():
            spine.set_visible(True)
            spine.set_color(theme.spine)
            spine.set_linewidth(0.8)
        a.xaxis.set_visible(False)
        a.yaxis.set_visible(False)
        a.grid(False)


def set_limits(ax: Axes, axv: Axes | None, spec: ChartSpec) -> None:
    """The visible x range on both panels, the price range, and the volume range (0 to 115 % of the peak)."""
    ax.set_xlim(*x_limits(spec))
    ax.set_ylim(*spec.y_range)
    if axv is not None:
        axv.set_xlim(*x_limits(spec))
        vol = spec.candles.volume
        vmax = float(np.nanmax(vol)) if len(vol) and np.isfinite(vol).any() else 0.0
        axv.set_ylim(0.0, vmax * 1.15 if vmax > 0 else 1.0)


def nice_ticks(lo: float, hi: float, target: int = 8, tick: float = 0.01) -> np.ndarray:
    """Round tick values inside [lo, hi]: steps of 1, 2, 2.5 or 5 × 10^k, never finer than `tick`."""
    span = hi - lo
    if span <= 0:
        return np.array([lo])
    raw = span / max(1, target)
    mag = 10.0 ** math.floor(math.log10(raw))

    def on_tick(step: float) -> bool:
        # a label between two ticks (100.025 on a 0.01 tick) would print a price that cannot trade
        q = step / tick
        return abs(q - round(q)) < 1e-6

    step = next((m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0, 20.0) if m * mag >= raw and on_tick(m * mag)), 10 * mag)
    step = max(step, tick)
    first = math.ceil(lo / step) * step
    return np.arange(first, hi + step * 0.001, step)


def y_ticks(spec: ChartSpec, lay: Layout) -> tuple[np.ndarray, list[str]]:
    """Price tick values and their labels, formatted to the instrument's tick (whole numbers for whole steps)."""
    lo, hi = spec.y_range
    target = max(3, int((lay.price_bottom - lay.price_top) / 55))
    ticks = nice_ticks(lo, hi, target, spec.tick)
    ticks = ticks[(ticks >= lo) & (ticks <= hi)]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else spec.tick
    tick = spec.tick if step < 1 or abs(step - round(step)) > 1e-9 else 1.0
    return ticks, [format_price(t, tick) for t in ticks]


def _local_times(spec: ChartSpec) -> list[datetime]:
    tz = ZoneInfo(spec.tz)
    return [datetime.fromtimestamp(int(s) / 1e9, tz) for s in spec.candles.stamps]


def session_starts(spec: ChartSpec) -> list[int]:
    """Bar positions where a new exchange-time session date begins (not counting the first bar)."""
    days = (spec.candles.stamps + _tz_offset_ns(spec)) // 86_400_000_000_000
    return [int(i) for i in np.flatnonzero(np.diff(days) != 0) + 1]


def _tz_offset_ns(spec: ChartSpec) -> np.ndarray:
    # per-bar UTC offset of the exchange zone (DST changes inside the window are honoured)
    idx = pd.DatetimeIndex(pd.to_datetime(spec.candles.stamps, utc=True)).tz_convert(spec.tz)
    local = idx.tz_localize(None).as_unit("ns").asi8
    offsets: np.ndarray = local - spec.candles.stamps
    return offsets


def x_ticks(spec: ChartSpec, lay: Layout) -> tuple[list[int], list[str]]:
    """Bar positions and labels for the time axis: dates at session starts, clock times between."""
    n = len(spec.candles)
    times = _local_times(spec)
    x0, x1 = x_limits(spec)
    px_per_bar = (lay.right - lay.left) / (x1 - x0)
    min_gap = max(1, int(math.ceil(MIN_XTICK_PX / px_per_bar)))
    chosen: list[tuple[int, str, int]] = []  # (pos, label, priority 0=strong)
    if spec.intraday:
        starts = set(session_starts(spec))
        bar_minutes = max(1, int(round((spec.candles.stamps[1] - spec.candles.stamps[0]) / 6e10))) if n > 1 else 1
        steps = (5, 10, 15, 30, 60, 120, 240)
        step = next((s for s in steps if s >= bar_minutes and s / bar_minutes >= min_gap), 390)
        for i, t in enumerate(times):
            if i in starts or i == 0:
                # a real session start outranks the label of a window that opens mid-session
                opens_session = i in starts or t.hour * 60 + t.minute <= 9 * 60 + 30
                chosen.append((i, t.strftime("%b %d"), 0 if opens_session else 1))
            else:
                minute = t.hour * 60 + t.minute
                prev = times[i - 1]
                prev_minute = prev.hour * 60 + prev.minute
                if minute // step != prev_minute // step:
                    chosen.append((i, t.strftime("%H:%M"), 1))
    else:
        weekly = n > 1 and (spec.candles.stamps[1] - spec.candles.stamps[0]) > 3 * 86_400 * 10**9
        for i, t in enumerate(times):
            before = times[i - 1] if i else None
            if before is None or t.year != before.year:
                chosen.append((i, t.strftime("%b %Y"), 0))
            elif t.month != before.month and (not weekly or t.month in (1, 4, 7, 10)):
                chosen.append((i, t.strftime("%b"), 1))
        if len(chosen) < 3 and not weekly:
            for i, t in enumerate(times):
                if i and t.isocalendar()[1] != times[i - 1].isocalendar()[1]:
                    chosen.append((i, t.strftime("%b %d"), 2))
    # keep strong ticks first, then fill in others that keep the spacing
    kept: list[tuple[int, str]] = []
    for pos, label, _ in sorted(chosen, key=lambda c: (c[2], c[0])):
        if all(abs(pos - k) >= min_gap for k, _ in kept):
            kept.append((pos, label))
    kept.sort()
    return [p for p, _ in kept], [lb for _, lb in kept]


def _frac(lay: Layout, x_px: float, row_px: float) -> tuple[float, float]:
    return x_px / lay.width, 1.0 - row_px / lay.height


@lru_cache(maxsize=4)
def _measurer(dpi: int) -> RendererAgg:
    return RendererAgg(8, 8, dpi)


@lru_cache(maxsize=4096)
def text_width(text: str, size: float, weight: str = "normal", dpi: int = 100) -> float:
    """Width in pixels of `text` in the chart font: the same measure Agg uses when it draws."""
    prop = FontProperties(family=FONT_FAMILY, size=size, weight=weight)
    w, _, _ = _measurer(dpi).get_text_width_height_descent(text, prop, ismath=False)
    return float(w)


def _text_run(
    fig: Figure,
    lay: Layout,
    x_px: float,
    row_px: float,
    parts: Sequence[tuple[str, str]],
    size: float,
    *,
    weight: str = "normal",
    align: str = "left",
    gap_px: float = 0.0,
) -> list[Artist]:
    """Texts placed one after another on a row (vertically centred); right-aligned runs end at x_px."""
    widths = [text_width(text, size, weight, lay.dpi) for text, _ in parts]
    total = sum(widths) + gap_px * max(0, len(parts) - 1)
    x = x_px - total if align == "right" else x_px
    texts: list[Artist] = []
    for (text, colour), w in zip(parts, widths):
        texts.append(
            fig.text(*_frac(lay, x, row_px), text, color=colour, fontsize=size, fontweight=weight, va="center", ha="left")
        )
        x += w + gap_px
    return texts


def draw_header(fig: Figure, spec: ChartSpec, theme: Theme, lay: Layout) -> list[Artist]:
    """Direction chip, title, the coloured plan line under it, and the legend of lines on the right."""
    added: list[Artist] = []
    scale = lay.dpi / 100.0
    x = 12 * scale
    row1, row2 = 18 * scale, 42 * scale
    if spec.direction in ("long", "short"):
        colour = theme.target if spec.direction == "long" else theme.stop
        word = spec.direction.upper()
        size = TITLE_PT - 3
        chip = fig.text(
            *_frac(lay, x + 4 * scale, row1),
            word,
            color=text_on(colour),
            fontsize=size,
            fontweight="bold",
            va="center",
            ha="left",
            bbox={"boxstyle": "round,pad=0.3", "facecolor": colour, "edgecolor": "none"},
        )
        added.append(chip)
        x += text_width(word, size, "bold", lay.dpi) + 22 * scale
    added += _text_run(fig, lay, x, row1, [(spec.title, theme.text)], TITLE_PT, weight="bold")
    if spec.subtitle:
        added += _text_run(fig, lay, 12 * scale, row2, spec.subtitle, SUBTITLE_PT, gap_px=16 * scale)
    legend = [(f"━ {line.label}", line.color) for line in spec.lines]
    if legend:
        added += _text_run(fig, lay, lay.width - 12 * scale, row1, legend, SUBTITLE_PT, align="right", gap_px=12 * scale)
    return added


def draw_footer(fig: Figure, spec: ChartSpec, theme: Theme, lay: Layout) -> list[Artist]:
    """As-of time, session status and data source at the bottom left; plan id at the bottom right."""
    scale = lay.dpi / 100.0
    row = lay.height - 13 * scale
    added: list[Artist] = [
        fig.text(*_frac(lay, 12 * scale, row), spec.footer, color=theme.muted, fontsize=FOOTER_PT, va="center", ha="left")
    ]
    if spec.footer_right:
        added.append(
            fig.text(
                *_frac(lay, lay.width - 12 * scale, row),
                spec.footer_right,
                color=theme.muted,
                fontsize=FOOTER_PT,
                va="center",
                ha="right",
            )
        )
    return added


def draw_grid_and_ticks(
    fig: Figure,
    ax: Axes,
    axv: Axes | None,
    spec: ChartSpec,
    theme: Theme,
    lay: Layout,
    label_rows: Sequence[float] = (),
) -> list[Artist]:
    """Grid lines at the price and time ticks, price labels in the right gutter, time labels under the chart.

    A price label that a level's label box would cover (rows in `label_rows`) is left out.
    """
    added: list[Artist] = []
    yt, ylabels = y_ticks(spec, lay)
    xt, xlabels = x_ticks(spec, lay)
    x0, x1 = x_limits(spec)
    lo, hi = spec.y_range
    segs = [[(x0, y), (x1, y)] for y in yt] + [[(x, lo), (x, hi)] for x in xt]
    if segs:
        added.append(ax.add_collection(LineCollection(segs, colors=theme.grid, linewidths=0.6, zorder=0.8), autolim=False))
    if axv is not None and xt:
        vlo, vhi = axv.get_ylim()
        vsegs = [[(x, vlo), (x, vhi)] for x in xt]
        added.append(axv.add_collection(LineCollection(vsegs, colors=theme.grid, linewidths=0.6, zorder=0.8), autolim=False))
    scale = lay.dpi / 100.0
    clear = lay.label_h / 2.0 + 7 * scale
    for y, text in zip(yt, ylabels):
        row = lay.price_to_row(float(y), lo, hi)
        if any(abs(row - r) < clear for r in label_rows):
            continue
        added.append(
            fig.text(
                *_frac(lay, lay.right + CONNECTOR_PX + 6 * scale, row),
                text,
                color=theme.muted,
                fontsize=TICK_PT,
                va="center",
                ha="left",
                zorder=2.5,
            )
        )
    bottom = lay.volume_bottom if axv is not None else lay.price_bottom
    px_per_bar = (lay.right - lay.left) / (x1 - x0)
    for x, text in zip(xt, xlabels):
        col = lay.left + (x - x0) * px_per_bar
        # a label centred on a bar near the left edge would be cut off: start it at the edge instead
        half = text_width(text, TICK_PT, "normal", lay.dpi) / 2.0
        col = max(col, lay.left + half)
        added.append(
            fig.text(*_frac(lay, col, bottom + 12 * scale), text, color=theme.muted, fontsize=TICK_PT, va="center", ha="center")
        )
    return added


def label_items(spec: ChartSpec) -> list[LabelItem]:
    """Right-edge label candidates: every level, and every labelled band (name only, rail over its extent)."""
    items = [LabelItem(price=lv.price, name=lv.label, color=lv.color, rank=lv.rank, role=lv.role) for lv in spec.levels]
    lo, hi = spec.y_range
    for b in spec.bands:
        if not b.labelled:
            continue
        mid = (max(b.low, lo) + min(b.high, hi)) / 2.0
        items.append(
            LabelItem(price=mid, name=b.label, color=b.color, rank=b.rank, role="zone", low=b.low, high=b.high, show_price=False)
        )
    return items


def _label_weight(role: str) -> str:
    return "bold" if role in ("entry", "stop", "target") else "normal"


def layout_labels(spec: ChartSpec, lay: Layout) -> list[PlacedLabel]:
    """Where each right-edge label box goes (merged at equal prices, nudged apart, least important dropped)."""
    lo, hi = spec.y_range
    merged = merge_equal(label_items(spec), spec.tick)
    box_left = lay.right + CONNECTOR_PX
    room = lay.width - lay.rail_w - 3 - (box_left + LABEL_PAD_PX)
    max_chars = int(room / (LABEL_CHAR_PX * lay.dpi / 100.0))
    placed = place(
        merged,
        lambda p: lay.price_to_row(p, lo, hi),
        top=lay.price_top,
        bottom=lay.price_bottom,
        box_h=lay.label_h,
        gap=2.0,
        tick=spec.tick,
        max_chars=max_chars,
    )
    # measured, not estimated: bold labels are wider than the character estimate
    out = []
    for p in placed:
        weight = _label_weight(p.label.role)

        def fits(text: str, w: str = weight) -> bool:
            return text_width(text, LABEL_PT, w, lay.dpi) <= room

        out.append(p if fits(p.text) else replace(p, text=label_text(p.label, spec.tick, max_chars, fits)))
    return out


def draw_labels(
    fig: Figure, spec: ChartSpec, theme: Theme, lay: Layout, placed: Sequence[PlacedLabel] | None = None
) -> list[Artist]:
    """Label boxes in the right gutter, connectors from each price to its box, and exact-price rails."""
    if placed is None:
        placed = layout_labels(spec, lay)
    if not placed:
        return []
    lo, hi = spec.y_range
    W, H = lay.width, lay.height
    box_left = lay.right + CONNECTOR_PX
    half = lay.label_h / 2.0
    boxes, colours, connectors, conn_colours = [], [], [], []
    rails: list[tuple[int, np.ndarray, str]] = []
    texts: list[Artist] = []
    for p in placed:
        lb = p.label
        top, bottom = p.row - half, p.row + half
        boxes.append([(box_left / W, 1 - bottom / H), (W / W, 1 - bottom / H), (W / W, 1 - top / H), (box_left / W, 1 - top / H)])
        colours.append(lb.color)
        if lb.show_price:
            connectors.append([(lay.right / W, 1 - p.exact_row / H), (box_left / W, 1 - p.row / H)])
            conn_colours.append(lb.color)
        for colour, rlo, rhi, rank in lb.rails:
            r_top = lay.price_to_row(min(rhi, hi), lo, hi)
            r_bot = lay.price_to_row(max(rlo, lo), lo, hi)
            # at least 3 px tall so the exact row is solid colour, not an anti-aliased edge
            mid = (r_top + r_bot) / 2.0
            r_top, r_bot = min(r_top, mid - 1.5), max(r_bot, mid + 1.5)
            rails.append((rank, np.array([r_top, r_bot]), colour))
        t = fig.text(
            (box_left + LABEL_PAD_PX) / W,
            1 - p.row / H,
            p.text,
            color=text_on(lb.color),
            fontsize=LABEL_PT,
            va="center_baseline",
            ha="left",
            fontweight=_label_weight(lb.role),
        )
        t.set_gid(LABEL_GID)
        texts.append(t)
    added: list[Artist] = []
    box_coll = PolyCollection(
        boxes, facecolors=colours, edgecolors="none", antialiased=False, transform=fig.transFigure, zorder=3
    )
    fig.add_artist(box_coll)
    added.append(box_coll)
    if connectors:
        conn = LineCollection(connectors, colors=conn_colours, linewidths=1.2, transform=fig.transFigure, zorder=3)
        fig.add_artist(conn)
        added.append(conn)
    # most important rails last, so they sit on top where rails overlap
    rails.sort(key=lambda r: -r[0])
    x0 = (W - lay.rail_w) / W
    rail_polys = [[(x0, 1 - b / H), (1.0, 1 - b / H), (1.0, 1 - t / H), (x0, 1 - t / H)] for _, (t, b), _ in rails]
    rail_coll = PolyCollection(
        rail_polys, facecolors=[c for _, _, c in rails], edgecolors="none", antialiased=False, transform=fig.transFigure, zorder=4
    )
    fig.add_artist(rail_coll)
    added.append(rail_coll)
    for text in texts:
        text.set_zorder(5)
    return added + texts


def draw_markers(ax: Axes, spec: ChartSpec, theme: Theme) -> list[Artist]:
    """Vertical marker lines ("plan" at its creation bar) with their label at the top of the panel."""
    added: list[Artist] = []
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for m in spec.markers:
        if m.shape != "|":
            continue
        added.append(ax.axvline(m.x, color=m.color, linewidth=1.0, linestyle=(0, (2, 3)), alpha=0.9, zorder=1.5))
        added.append(
            ax.text(m.x, 0.985, f" {m.label}", transform=trans, color=m.color, fontsize=TICK_PT, va="top", ha="left", zorder=6)
        )
    return added


def point_markers(spec: ChartSpec) -> list[tuple[int, float, str, str]]:
    """(x, price, shape, colour) of the triangle and dot markers, for the paths to scatter."""
    return [(m.x, m.price, m.shape, m.color) for m in spec.markers if m.shape != "|"]


def draw_session_breaks(ax: Axes, axv: Axes | None, spec: ChartSpec, theme: Theme) -> list[Artist]:
    """A vertical line where each new session starts (intraday charts only)."""
    starts = session_starts(spec) if spec.intraday and spec.session_breaks else []
    if not starts:
        return []
    added: list[Artist] = []
    for a in (ax, axv):
        if a is None:
            continue
        lo, hi = a.get_ylim()
        segs = [[(i - 0.5, lo), (i - 0.5, hi)] for i in starts]
        added.append(
            a.add_collection(LineCollection(segs, colors=theme.session_break, linewidths=1.0, zorder=0.9), autolim=False)
        )
    return added


def decorate(fig: Figure, ax: Axes, axv: Axes | None, spec: ChartSpec, theme: Theme) -> list[Artist]:
    """Everything both paths share around their plotted data; returns the artists added to the figure.

    The caller has run `prepare_axes` on these axes (the fast path once per reused figure).
    """
    lay = page_layout(spec)
    set_limits(ax, axv, spec)
    placed = layout_labels(spec, lay)
    added: list[Artist] = []
    added += draw_grid_and_ticks(fig, ax, axv, spec, theme, lay, [p.row for p in placed])
    added += draw_session_breaks(ax, axv, spec, theme)
    added += draw_markers(ax, spec, theme)
    added += draw_header(fig, spec, theme, lay)
    added += draw_footer(fig, spec, theme, lay)
    added += draw_labels(fig, spec, theme, lay, placed)
    return added
