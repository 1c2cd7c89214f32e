"""The backtest picture renders for real figures and for an empty run, at the promised size."""

from __future__ import annotations

import struct

from analytics.backtest_stats import report
from renderers.backtest_plot import render_backtest
from tests.analytics.test_backtest_stats import CASE


def _size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", png[16:24])


def test_figures_and_empty_runs_render():
    rep = report(CASE)
    png = render_backtest(
        rep.equity,
        rep.calibration,
        rep.overall,
        title="Backtest · test",
        subtitle="sim",
        by_strategy={"orb": rep.equity[:2], "vwap": rep.equity[2:]},
    )
    assert _size(png) == (1400, 700) and len(png) > 30_000
    empty = report([])
    png = render_backtest(empty.equity, empty.calibration, empty.overall, title="nothing")
    assert _size(png) == (1400, 700)
