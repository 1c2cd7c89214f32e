"""Render jobs as a worker process runs them: spec(s) in, PNG bytes out, through either path.

A `RenderJob` is what crosses the process boundary (plain dataclasses and NumPy arrays
pickle quickly). `run` renders each spec, or composes them into one grid image;
`warm_up` is the worker initializer: it imports matplotlib and draws a throwaway chart
so fonts, glyph bitmaps and the reused figure exist before the first real request.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from core.errors import UserError
from renderers.chart_spec import Candles, ChartSpec, HLevel, Line
from renderers.png import encode_rgb

#: Render paths by name. "fast" is the default: see benchmarks/bench_charts.py and the README.
RENDERERS = ("fast", "mplfinance")
DEFAULT_RENDERER = "fast"
#: Most specs one job may hold (a grid of up to 6 panels).
MAX_PANELS = 6
GRID_GAP = 6

# The fast path keeps one figure per process; a lock keeps threads (the in-process mode) off it at once.
_LOCK = threading.Lock()


@dataclass(frozen=True)
class RenderJob:
    """Specs to render with one path; `grid` composes them into a single image."""

    specs: tuple[ChartSpec, ...]
    renderer: str = DEFAULT_RENDERER
    grid: bool = False

    def __post_init__(self) -> None:
        if self.renderer not in RENDERERS:
            raise UserError(f"unknown renderer {str(self.renderer)[:20]!r}; accepted: {', '.join(RENDERERS)}")
        if not self.specs:
            raise ValueError("a render job needs at least one spec")
        if len(self.specs) > MAX_PANELS:
            raise UserError(f"at most {MAX_PANELS} charts per request, got {len(self.specs)}")


def _rgb(spec: ChartSpec, renderer: str) -> np.ndarray:
    if renderer == "fast":
        from renderers import fast_render

        return fast_render.render_rgb(spec)
    from renderers import mpf_render

    return mpf_render.render_rgb(spec)


def _png(spec: ChartSpec, renderer: str) -> bytes:
    if renderer == "fast":
        from renderers import fast_render

        return fast_render.render(spec)
    from renderers import mpf_render

    return mpf_render.render(spec)


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of a grid of n panels: stacked up to three, then two columns."""
    if n <= 3:
        return n, 1
    return math.ceil(n / 2), 2


def compose(panels: list[np.ndarray], background: tuple[int, int, int]) -> np.ndarray:
    """Panels (equal-sized RGB arrays) tiled into one image with a small gap."""
    rows, cols = grid_shape(len(panels))
    h, w, _ = panels[0].shape
    out = np.empty((rows * h + (rows - 1) * GRID_GAP, cols * w + (cols - 1) * GRID_GAP, 3), dtype=np.uint8)
    out[:] = background
    for i, p in enumerate(panels):
        r, c = divmod(i, cols)
        y, x = r * (h + GRID_GAP), c * (w + GRID_GAP)
        out[y : y + h, x : x + w] = p
    return out


def run(job: RenderJob) -> list[bytes]:
    """PNG bytes per spec, or a one-element list holding the grid image."""
    with _LOCK:
        if not job.grid or len(job.specs) == 1:
            return [_png(spec, job.renderer) for spec in job.specs]
        first = job.specs[0]
        panels = [_rgb(spec.with_size(first.width, first.height), job.renderer) for spec in job.specs]
        from renderers.theme import get_theme

        bg = get_theme(first.theme).spine.lstrip("#")
        red, green, blue = (int(bg[i : i + 2], 16) for i in (0, 2, 4))
        return [encode_rgb(compose(panels, (red, green, blue)))]


def sample_spec(theme: str = "dark", width: int = 1200, height: int = 700) -> ChartSpec:
    """A small synthetic chart (warm-up and smoke tests): 60 bars, one EMA, a few levels."""
    n = 60
    t0 = 1_710_336_600 * 10**9  # 2024-03-13 13:30 UTC, a session open
    stamps = t0 + np.arange(n, dtype=np.int64) * 300 * 10**9
    rng = np.random.default_rng(7)
    close = 100 + np.cumsum(rng.normal(0, 0.3, n))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + 0.2
    low = np.minimum(open_, close) - 0.2
    candles = Candles(stamps, open_, high, low, close, rng.uniform(1e5, 5e5, n))
    return ChartSpec(
        symbol="WARM",
        interval="5m",
        candles=candles,
        title="WARM  ·  5m  ·  0123456789",
        subtitle=(("Entry 100.00", "#3d8bfd"), ("Stop 99.00", "#ff3b3b")),
        direction="long",
        footer="as of 2024-03-13 11:00 EDT  ·  market open  ·  data: sim",
        footer_right="plan P-000000 v1",
        y_range=(float(low.min()) - 0.5, float(high.max()) + 0.5),
        theme=theme,
        lines=(Line("EMA 9", close.copy(), "#f5c542"),),
        levels=(
            HLevel(float(close[-1]), "Entry", "#3d8bfd", role="entry", style="-"),
            HLevel(float(close.min()), "ORL / PDH", "#ffb547"),
        ),
        width=width,
        height=height,
    )


def warm_up() -> None:
    """Import the renderer and draw a throwaway chart (process-pool initializer)."""
    _png(sample_spec(), "fast")
