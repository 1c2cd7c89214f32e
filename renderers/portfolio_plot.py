"""The portfolio picture: exposure per symbol as % of the account (left) beside the correlation heatmap (right).

Drawn with matplotlib's object API on an Agg canvas (no pyplot state, safe in threads), in the
charts' dark theme.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from renderers.panels import figure, png, style_axes
from renderers.theme import DARK, Theme

if TYPE_CHECKING:  # matplotlib is imported when a picture is drawn, not when this module is
    pass

#: Symbols drawn at most (the largest exposures); the rest are summed into "others".
MAX_BARS = 16
#: Holdings in the heatmap at most (numbers in the cells stay readable).
MAX_HEAT = 12


def render_portfolio(
    symbols: Sequence[str],
    pcts: Sequence[float],
    corr_symbols: Sequence[str],
    corr: Sequence[Sequence[float]],
    *,
    title: str,
    subtitle: str = "",
    limit_pct: float | None = None,
    theme: Theme = DARK,
    width_px: int = 1400,
    height_px: int = 700,
) -> bytes:
    """A PNG: signed exposure bars (long up in green, short in red, with the per-position limit) and the correlation matrix."""
    from matplotlib.colors import LinearSegmentedColormap

    fig = figure(theme, width_px, height_px, title, subtitle)
    gs = fig.add_gridspec(1, 2, width_ratios=(1.2, 1.0), left=0.08, right=0.94, top=0.83, bottom=0.1, wspace=0.28)
    ax = fig.add_subplot(gs[0, 0])
    hx = fig.add_subplot(gs[0, 1])
    for a in (ax, hx):
        style_axes(a, theme)

    # ---- exposure bars, largest at the top
    names, vals = list(symbols[:MAX_BARS]), list(pcts[:MAX_BARS])
    if len(symbols) > MAX_BARS:
        names.append(f"{len(symbols) - MAX_BARS} others")
        vals.append(float(np.sum(pcts[MAX_BARS:])))
    ax.set_title("Exposure, % of account (delta dollars)", fontsize=11, loc="left", color=theme.text)
    ax.set_axisbelow(True)
    if names:
        y = np.arange(len(names))[::-1]
        colours = [theme.up if v >= 0 else theme.down for v in vals]
        ax.barh(y, vals, color=colours, height=0.62)
        ax.set_yticks(y, names, color=theme.text, fontsize=10)
        span = max(max(abs(v) for v in vals), limit_pct or 0.0) * 1.25 or 1.0
        ax.set_xlim(-span if min(vals) < 0 else 0.0, span)
        for yi, v in zip(y, vals, strict=True):
            ax.text(v, yi, f" {v:+.1f}% ", color=theme.text, fontsize=9, va="center", ha="left" if v >= 0 else "right")
        ax.axvline(0.0, color=theme.muted, linewidth=0.8)
        if limit_pct is not None:
            for x in (limit_pct, -limit_pct):
                ax.axvline(x, color=theme.stop, linewidth=1.0, linestyle="--")
            ax.text(limit_pct, y.max() + 0.55, f"limit {limit_pct:g}%", color=theme.stop, fontsize=8, ha="center")
        ax.grid(True, axis="x", color=theme.grid, linewidth=0.8)
    else:
        ax.text(0.5, 0.5, "no positions", color=theme.muted, fontsize=13, ha="center", va="center", transform=ax.transAxes)

    # ---- correlation heatmap
    hx.set_title("Correlation of daily returns", fontsize=11, loc="left", color=theme.text)
    labels = list(corr_symbols[:MAX_HEAT])
    n = len(labels)
    if n >= 2:
        m = np.asarray(corr, dtype=float)[:n, :n]
        cmap = LinearSegmentedColormap.from_list("corr", [theme.down, theme.panel, theme.up])
        im = hx.imshow(m, cmap=cmap, vmin=-1.0, vmax=1.0, aspect="equal")
        hx.set_xticks(range(n), labels, rotation=45, ha="right", color=theme.text, fontsize=9)
        hx.set_yticks(range(n), labels, color=theme.text, fontsize=9)
        for i in range(n):
            for j in range(n):
                hx.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8 if n > 8 else 10, color=theme.text)
        bar = fig.colorbar(im, ax=hx, fraction=0.046, pad=0.04)
        bar.ax.tick_params(colors=theme.muted, labelsize=8)
        bar.outline.set_edgecolor(theme.spine)
    else:
        hx.set_xticks([])
        hx.set_yticks([])
        hx.text(
            0.5,
            0.5,
            "needs two holdings with history",
            color=theme.muted,
            fontsize=12,
            ha="center",
            va="center",
            transform=hx.transAxes,
        )

    return png(fig, theme)
