"""The backtest picture: cumulative R over time (with drawdowns) beside the calibration of the plans' odds.

The calibration panel plots the plans' probability of T1 before the stop (the odds) against how
often it happened, and the quality grade the same way, fainter, as the anchor it is measured against.

Drawn with matplotlib's object API on an Agg canvas (no pyplot state, safe in threads), in the
charts' dark theme so it sits well in Discord and Slack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

from analytics.backtest_stats import Calibration, EquityPoint, GroupStats
from renderers.panels import figure, png, style_axes
from renderers.theme import DARK, Theme

if TYPE_CHECKING:  # matplotlib is imported when a picture is drawn, not when this module is
    pass

ET = ZoneInfo("America/New_York")
#: Colours of per-strategy curves, in order.
PALETTE = ("#4fc3f7", "#ffb547", "#d48cf0", "#26a69a", "#ff8a4c", "#f48fb1", "#9ccc65", "#ffe066", "#90a4ae")


#: Above this many distinct exit times the curve is drawn at each day's close (intraday wiggles become ink).
MAX_POINTS = 400


def _by_time(points: Sequence[EquityPoint], daily: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(exchange-time stamps, cumulative R) keeping the last value per stamp, or per day for long runs."""
    t = np.array([p.at.astimezone(ET).replace(tzinfo=None) for p in points], dtype="datetime64[ns]")
    r = np.array([p.r for p in points], dtype=np.float64)
    if daily is None:
        daily = len(np.unique(t)) > MAX_POINTS
    key = t.astype("datetime64[D]") if daily else t
    last = np.concatenate((key[1:] != key[:-1], [True]))
    return (key[last].astype("datetime64[ns]") if daily else t[last]), r[last]


def _skill(cal: Calibration) -> str:
    if cal.skill is None:
        return "—"
    return f"{cal.skill:+.2f}" + (f" ± {cal.skill_se:.2f}" if cal.skill_se is not None else "")


def _fmt_r(x: float | None) -> str:
    return "—" if x is None else f"{x:+.2f}R"


def render_backtest(
    equity: Sequence[EquityPoint],
    calibration: Calibration,
    overall: GroupStats,
    *,
    title: str,
    subtitle: str = "",
    by_strategy: Mapping[str, Sequence[EquityPoint]] | None = None,
    quality: Calibration | None = None,
    theme: Theme = DARK,
    width_px: int = 1400,
    height_px: int = 700,
) -> bytes:
    """A PNG: equity curve in R (left) and calibration of the odds (and, fainter, the quality grade) vs T1-before-stop (right)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    line = (
        f"{overall.trades} trades of {overall.plans} plans · hit rate "
        f"{'—' if overall.hit_rate is None else f'{overall.hit_rate:.0%}'} · expectancy {_fmt_r(overall.expectancy_r)} · "
        f"profit factor {'∞' if overall.profit_factor is None and overall.trades and not overall.losses else ('—' if overall.profit_factor is None else f'{overall.profit_factor:.2f}')} · "
        f"max drawdown {overall.max_drawdown_r:.1f}R"
    )
    fig = figure(theme, width_px, height_px, title, (subtitle + "  ·  " if subtitle else "") + line)
    gs = fig.add_gridspec(1, 2, width_ratios=(1.75, 1.0), left=0.06, right=0.985, top=0.83, bottom=0.1, wspace=0.16)
    ax = fig.add_subplot(gs[0, 0])
    cx = fig.add_subplot(gs[0, 1])
    for a in (ax, cx):
        style_axes(a, theme, grid=True)

    # ---- equity
    ax.set_title("Cumulative R (closed trades, by exit time)", fontsize=11, loc="left", color=theme.text)
    ax.set_ylabel("R")
    if equity:
        daily = len({p.at for p in equity}) > MAX_POINTS
        times, r = _by_time(equity, daily)
        if daily:
            ax.set_title("Cumulative R (closed trades, at each day's end)", fontsize=11, loc="left", color=theme.text)
        peak = np.maximum.accumulate(np.concatenate(([0.0], r)))[1:]
        ax.fill_between(times, r, peak, where=r < peak, step="post", color=theme.stop, alpha=0.18, linewidth=0, label="drawdown")
        if by_strategy:
            for k, (name, pts) in enumerate(sorted(by_strategy.items())):
                if len(pts) < 2:
                    continue
                st, sr = _by_time(pts, daily)
                ax.step(st, sr, where="post", color=PALETTE[k % len(PALETTE)], linewidth=1.0, alpha=0.8, label=name)
        ax.step(times, r, where="post", color=theme.text, linewidth=2.2, label="all")
        ax.axhline(0.0, color=theme.muted, linewidth=0.8, linestyle="--")
        loc = AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
        leg = ax.legend(
            loc="upper left",
            fontsize=8,
            facecolor=theme.panel,
            edgecolor=theme.spine,
            labelcolor=theme.text,
            ncol=2 if by_strategy and len(by_strategy) > 4 else 1,
        )
        leg.get_frame().set_alpha(0.85)
    else:
        ax.text(0.5, 0.5, "no closed trades", color=theme.muted, fontsize=13, ha="center", va="center", transform=ax.transAxes)

    # ---- calibration
    cx.set_title('Calibration: odds said vs "T1 before the stop" happened', fontsize=11, loc="left", color=theme.text)
    cx.set_xlabel("forecast (plan's T1 odds; quality grade for comparison)")
    cx.set_ylabel("observed T1 rate")
    # a little room beyond 0 and 1 so points on the edges are drawn whole
    cx.set_xlim(-0.03, 1.03)
    cx.set_ylim(-0.04, 1.04)
    cx.plot([0, 1], [0, 1], color=theme.muted, linestyle="--", linewidth=1.0, label="perfectly calibrated")
    q_buckets = (
        []
        if quality is None
        else [b for b in quality.buckets if b.n > 0 and b.mean_forecast is not None and b.observed is not None]
    )
    if q_buckets:
        qx = np.array([b.mean_forecast for b in q_buckets])
        qy = np.array([b.observed for b in q_buckets])
        qn = np.array([b.n for b in q_buckets], dtype=np.float64)
        cx.plot(qx, qy, color=theme.muted, linewidth=1.0, zorder=1)
        cx.scatter(
            qx,
            qy,
            s=20 + 180 * np.sqrt(qn / qn.max()),
            marker="s",
            color=theme.muted,
            alpha=0.7,
            zorder=1,
            label="quality grade (not odds)",
        )
    buckets = [b for b in calibration.buckets if b.n > 0 and b.mean_forecast is not None and b.observed is not None]
    if buckets:
        x = np.array([b.mean_forecast for b in buckets])
        y = np.array([b.observed for b in buckets])
        n = np.array([b.n for b in buckets], dtype=np.float64)
        size = 40 + 360 * np.sqrt(n / n.max())
        cx.plot(x, y, color=theme.entry, linewidth=1.6, zorder=2)
        cx.scatter(
            x, y, s=size, color=theme.entry, edgecolors=theme.text, linewidths=0.8, zorder=3, label="T1 odds (size = plans)"
        )
        for xi, yi, ni in zip(x, y, n):
            cx.annotate(
                f"{int(ni)}", (xi, yi), textcoords="offset points", xytext=(0, 11), ha="center", color=theme.text, fontsize=8
            )
        if calibration.base_rate is not None:
            cx.axhline(
                calibration.base_rate,
                color=theme.target,
                linewidth=1.0,
                linestyle=":",
                label=f"base rate {calibration.base_rate:.0%}",
            )
    else:
        cx.text(0.5, 0.5, "no resolved plans", color=theme.muted, fontsize=12, ha="center", va="center", transform=cx.transAxes)
    legend_title = None
    if calibration.brier is not None:
        legend_title = f"odds: Brier {calibration.brier:.3f} vs base rate {calibration.brier_reference:.3f}, skill {_skill(calibration)}, n={calibration.n}"
        if quality is not None and quality.brier is not None:
            legend_title += f"\nquality as odds: Brier {quality.brier:.3f}, skill {_skill(quality)}"
    # the upper left is where an over-cautious coach's points would be; they rarely reach the corner
    leg = cx.legend(
        loc="upper left",
        fontsize=8,
        facecolor=theme.panel,
        edgecolor=theme.spine,
        labelcolor=theme.text,
        title=legend_title,
        title_fontsize=8.5,
        alignment="left",
    )
    leg.get_title().set_color(theme.text)
    leg.get_frame().set_alpha(0.9)

    return png(fig, theme)
