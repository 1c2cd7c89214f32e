"""An Agg canvas whose text drawing caches glyph layout and glyph bitmaps (the fast path's biggest cost).

Matplotlib shapes every string again on every draw (about 1 ms for "Entry 587.96") and
renders each glyph through FreeType again. A chart has ~35 short strings made of the
same few dozen glyphs, so this renderer keeps, per font and size:

- each character's glyph index, hinted advance and box, and pair kerning, so laying out
  a string is a few dictionary look-ups;
- each glyph's anti-aliased bitmap at a quarter-pixel offset grid, blitted with Agg's
  own `draw_text_image`, exactly what matplotlib does after rendering a glyph.

Only plain horizontal text takes this path; mathtext, rotated text, strings with a
glyph missing from the font and any FreeType API this matplotlib lacks fall back to
the stock renderer, so the output is always correct and at worst as slow as before.
Positions differ from matplotlib's by at most 1/8 px.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from matplotlib.backend_bases import GraphicsContextBase
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text

try:  # private FreeType bindings of matplotlib >= 3.10; without them we fall back to the stock renderer
    from matplotlib.ft2font import Kerning, RenderMode

    _OK = hasattr(RendererAgg, "_prepare_font")
except ImportError:  # pragma: no cover - older matplotlib
    _OK = False

#: Sub-pixel positions a glyph bitmap is cached at (per axis).
SUBPIXEL = 4
_MAX_GLYPHS = 20_000

_IDENTITY = np.array([[0x10000, 0], [0, 0x10000]])


class _Face:
    """Cached metrics and bitmaps of one font file at one size and dpi."""

    __slots__ = ("chars", "kern", "bitmaps")

    def __init__(self) -> None:
        self.chars: dict[str, tuple[int, float, float, float]] = {}  # char -> (glyph, advance, ymin, ymax) px
        self.kern: dict[tuple[int, int], float] = {}
        self.bitmaps: dict[tuple[int, int, int, bool], tuple[np.ndarray, int, int]] = {}


_FACES: dict[tuple[str, float, float], _Face] = {}


def _face(font: Any, size: float, dpi: float) -> _Face:
    key = (font.fname, float(size), float(dpi))
    face = _FACES.get(key)
    if face is None:
        if len(_FACES) > 64:
            _FACES.clear()
        face = _FACES[key] = _Face()
    return face


def _layout(font: Any, face: _Face, text: str) -> list[tuple[int, float]] | None:
    """(glyph index, x offset in px) per character, or None when the font lacks a glyph."""
    flags = get_hinting_flag()
    out: list[tuple[int, float]] = []
    pen = 0.0
    prev = -1
    for ch in text:
        info = face.chars.get(ch)
        if info is None:
            idx = font.get_char_index(ord(ch))
            if idx == 0 and ch not in ("\0",):
                return None
            g = font.load_char(ord(ch), flags=flags)
            x0, y0, x1, y1 = g.bbox
            info = face.chars[ch] = (idx, g.horiAdvance / 64.0, y0 / 64.0, y1 / 64.0)
        idx, adv = info[0], info[1]
        if prev >= 0:
            k = face.kern.get((prev, idx))
            if k is None:
                k = face.kern[(prev, idx)] = font.get_kerning(prev, idx, Kerning.UNFITTED) / 64.0
            pen += k
        out.append((idx, pen))
        pen += adv
        prev = idx
    return out


class CachedTextRenderer(RendererAgg):
    """RendererAgg with cached text layout and glyph bitmaps for plain horizontal text."""

    def _plain(self, s: str, ismath: Any, angle: float = 0.0, mtext: Any = None) -> bool:
        if not _OK or ismath or angle:
            return False
        if mtext is not None and (mtext.get_fontfeatures() or mtext.get_language()):
            return False
        return True

    def get_text_width_height_descent(
        self, s: str, prop: FontProperties, ismath: bool | Literal["TeX"]
    ) -> tuple[float, float, float]:
        if not self._plain(s, ismath):
            return self._stock_extent(s, prop, ismath)
        font = self._prepare_font(prop)
        face = _face(font, prop.get_size_in_points(), self.dpi)
        items = _layout(font, face, s)
        if items is None:
            return self._stock_extent(s, prop, ismath)
        if not items:
            return 0.0, 0.0, 0.0
        ymin = min(face.chars[c][2] for c in s)
        ymax = max(face.chars[c][3] for c in s)
        width = items[-1][1] + face.chars[s[-1]][1]
        descent = max(0.0, -ymin)
        return width, ymax + descent, descent

    def _stock_extent(self, s: str, prop: FontProperties, ismath: bool | Literal["TeX"]) -> tuple[float, float, float]:
        extent: tuple[float, float, float] = super().get_text_width_height_descent(s, prop, ismath)
        return extent

    def draw_text(
        self,
        gc: GraphicsContextBase,
        x: float,
        y: float,
        s: str,
        prop: FontProperties,
        angle: float,
        ismath: bool | Literal["TeX"] = False,
        mtext: Text | None = None,
    ) -> None:
        if not self._plain(s, ismath, angle, mtext):
            super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
            return
        font = self._prepare_font(prop)
        size = prop.get_size_in_points()
        face = _face(font, size, self.dpi)
        items = _layout(font, face, s)
        if items is None:
            super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
            return
        aa = bool(gc.get_antialiased())
        flags = get_hinting_flag()
        height = int(self.height)
        base_up = self.height - y  # FreeType's y axis points up
        iy = math.floor(base_up)
        qy = int(round((base_up - iy) * SUBPIXEL))
        if qy == SUBPIXEL:
            iy, qy = iy + 1, 0
        for idx, dx in items:
            px = x + dx
            ix = math.floor(px)
            qx = int(round((px - ix) * SUBPIXEL))
            if qx == SUBPIXEL:
                ix, qx = ix + 1, 0
            key = (idx, qx, qy, aa)
            cached = face.bitmaps.get(key)
            if cached is None:
                font.set_size(size, self.dpi)
                font._set_transform(_IDENTITY, [round(0x40 * qx / SUBPIXEL), round(0x40 * qy / SUBPIXEL)])
                bm = font._render_glyph(idx, flags, RenderMode.NORMAL if aa else RenderMode.MONO)
                buf = np.array(bm.buffer, dtype=np.uint8, copy=True)
                if not aa:
                    buf *= 0xFF
                if len(face.bitmaps) > _MAX_GLYPHS:
                    face.bitmaps.clear()
                cached = face.bitmaps[key] = (buf, int(bm.left), int(bm.top))
            buf, left, top = cached
            if buf.size:
                self._renderer.draw_text_image(buf, left + ix, height - (top + iy) + buf.shape[0], 0, gc)
        return None


class FastCanvas(FigureCanvasAgg):
    """An Agg canvas drawing with `CachedTextRenderer`."""

    def get_renderer(self) -> CachedTextRenderer:
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        renderer = getattr(self, "renderer", None)
        if self._lastKey != key or not isinstance(renderer, CachedTextRenderer):
            renderer = self.renderer = CachedTextRenderer(w, h, self.figure.dpi)
            self._lastKey = key
        return renderer
