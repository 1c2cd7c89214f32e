"""What the report pictures (a backtest, a portfolio) share: an Agg figure, headed, with axes in the charts' theme.

matplotlib's object API on an Agg canvas (no pyplot state, safe in threads); matplotlib is
imported when a picture is drawn, not when this module is.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from renderers.theme import Theme

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Figures are laid out in pixels at this resolution.
DPI = 100


def figure(theme: Theme, width_px: int, height_px: int, title: str, subtitle: str = "") -> Figure:
    """A figure of `width_px` x `height_px` with the title (and a muted subtitle line) at its top left."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor=theme.bg)
    FigureCanvasAgg(fig)
    fig.text(0.06, 0.95, title, color=theme.text, fontsize=15, fontweight="bold", ha="left", va="center")
    if subtitle:
        fig.text(0.06, 0.905, subtitle, color=theme.muted, fontsize=10, ha="left", va="center")
    return fig


def style_axes(ax: Axes, theme: Theme, *, grid: bool = False) -> None:
    """Panel, spines, ticks and labels in the theme's colours."""
    ax.set_facecolor(theme.panel)
    for spine in ax.spines.values():
        spine.set_color(theme.spine)
    ax.tick_params(colors=theme.muted, labelsize=9)
    if grid:
        ax.grid(True, color=theme.grid, linewidth=0.8)
    ax.title.set_color(theme.text)
    ax.xaxis.label.set_color(theme.muted)
    ax.yaxis.label.set_color(theme.muted)


def png(fig: Figure, theme: Theme) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor=theme.bg)
    return buf.getvalue()
