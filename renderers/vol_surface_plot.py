"""The volatility surface picture: IV heatmap by strike x expiry (left) beside the smiles of the nearest expiries (right).

matplotlib's object API on an Agg canvas (no pyplot state, safe in threads), in the charts' theme,
laid out like the portfolio picture (`renderers.panels`).
"""

from __future__ import annotations

import math

import numpy as np

from analytics.vol_surface import GRID_MONEYNESS, VolSurface
from renderers.panels import figure, png, style_axes
from renderers.theme import DARK, Theme

#: Expiries whose smiles are drawn on the right (the nearest with at least a day left).
SMILES = 3
#: Smile line colours, nearest first.
SMILE_COLOURS = ("#4fd2e6", "#f5c542", "#b18cff")


def _expiry_label(exp_dte: tuple[object, float]) -> str:
    exp, dte = exp_dte
    return f"{exp:%b %d} · {dte:.0f}d" if dte >= 1 else f"{exp:%b %d} · {dte * 24:.0f}h"


def render_surface(
    s: VolSurface, *, title: str, subtitle: str = "", theme: Theme = DARK, width_px: int = 1400, height_px: int = 720
) -> bytes:
    """A PNG: IV (%) by strike and expiry as an annotated heatmap, and IV against strike for the nearest expiries."""
    from matplotlib.colors import LinearSegmentedColormap

    fig = figure(theme, width_px, height_px, title, subtitle)
    gs = fig.add_gridspec(1, 2, width_ratios=(1.45, 1.0), left=0.1, right=0.97, top=0.83, bottom=0.13, wspace=0.16)
    hx = fig.add_subplot(gs[0, 0])
    sx = fig.add_subplot(gs[0, 1])
    for a in (hx, sx):
        style_axes(a, theme)

    # ---- heatmap: rows = expiries (nearest at the top), columns = strikes
    hx.set_title("IV % by strike (moneyness) and expiry", fontsize=11, loc="left", color=theme.text)
    grid = np.array([[np.nan if v is None else v * 100.0 for v in row] for row in s.grid_iv], dtype=float)
    if grid.size and np.isfinite(grid).any():
        cmap = LinearSegmentedColormap.from_list("iv", ["#1d3b5a", "#2a7f8f", "#f5c542", "#ef5350"]).with_extremes(
            bad=theme.panel
        )
        lo, hi = np.nanpercentile(grid, 2), np.nanpercentile(grid, 98)
        im = hx.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=lo, vmax=max(hi, lo + 1.0), aspect="auto")
        cols = len(s.grid_strikes)
        # every other strike labelled: "90%" over the strike itself
        ticks = list(range(0, cols, 2))
        hx.set_xticks(
            ticks,
            [f"{s.grid_moneyness[i] * 100:.0f}%\n{s.grid_strikes[i]:,.0f}" for i in ticks],
            color=theme.text,
            fontsize=8,
        )
        hx.set_yticks(
            range(len(s.slices)), [_expiry_label((sl.expiration, sl.dte)) for sl in s.slices], color=theme.text, fontsize=9
        )
        mid = (lo + hi) / 2.0
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                v = grid[i, j]
                if math.isfinite(v):
                    hx.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7.5, color="#0b0d10" if v > mid else theme.text)
        spot_col = int(np.argmin(np.abs(np.asarray(s.grid_moneyness) - 1.0)))
        hx.axvline(spot_col, color=theme.vwap, linewidth=1.0, linestyle=":", alpha=0.8)
        hx.set_xlabel("strike (% of spot, then price)", fontsize=9)
        bar = fig.colorbar(im, ax=hx, fraction=0.035, pad=0.02)
        bar.ax.tick_params(colors=theme.muted, labelsize=8)
        bar.outline.set_edgecolor(theme.spine)
        # no label: the panel's title says IV %, and one here would sit against the smile's axis label
    else:
        hx.set_xticks([])
        hx.set_yticks([])
        hx.text(0.5, 0.5, "no usable quotes", color=theme.muted, fontsize=13, ha="center", va="center", transform=hx.transAxes)

    # ---- smiles of the nearest expiries
    sx.set_title("Smile of the nearest expiries", fontsize=11, loc="left", color=theme.text)
    near = [sl for sl in s.slices if sl.dte >= 1.0 and len(sl.strikes) >= 2][:SMILES]
    # the same strike range as the heatmap, so both panels read alike
    lo_k, hi_k = s.spot * GRID_MONEYNESS[0], s.spot * GRID_MONEYNESS[-1]
    if near:
        for sl, colour in zip(near, SMILE_COLOURS, strict=False):
            k = np.asarray(sl.strikes)
            inside = (k >= lo_k) & (k <= hi_k)
            sx.plot(
                k[inside],
                np.asarray(sl.ivs)[inside] * 100.0,
                color=colour,
                linewidth=1.8,
                label=_expiry_label((sl.expiration, sl.dte)),
            )
        sx.axvline(s.spot, color=theme.vwap, linewidth=1.0, linestyle=":", alpha=0.8)
        _, ymax = sx.get_ylim()
        sx.text(s.spot, ymax, f" spot {s.spot:,.2f}", color=theme.muted, fontsize=8, va="top", ha="left")
        sx.set_xlim(lo_k, hi_k)
        sx.set_xlabel("strike", fontsize=9)
        sx.set_ylabel("IV %", fontsize=9)
        sx.grid(True, color=theme.grid, linewidth=0.8)
        leg = sx.legend(loc="upper right", fontsize=9, frameon=False)
        for t in leg.get_texts():
            t.set_color(theme.text)
    else:
        sx.text(0.5, 0.5, "no smile to draw", color=theme.muted, fontsize=13, ha="center", va="center", transform=sx.transAxes)
    return png(fig, theme)
