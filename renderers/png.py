"""A minimal PNG writer for RGB arrays: no per-row filter, fast zlib level.

Pillow's encoder tries filters per row and costs about three times as long on a
1200x700 chart; charts are mostly flat colour, so unfiltered rows at zlib level 2
compress about as well (within 5%) in a third of the time.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

ZLIB_LEVEL = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def rgb_of(rgba: np.ndarray) -> np.ndarray:
    """The (h, w, 3) colour planes of an (h, w, 4) RGBA buffer, contiguous.

    Copied one channel at a time: numpy's generic strided copy of `rgba[..., :3]` is several
    times slower on a chart-sized buffer.
    """
    h, w, _ = rgba.shape
    out = np.empty((h, w, 3), dtype=np.uint8)
    for k in range(3):
        out[..., k] = rgba[..., k]
    return out


def _encode_rows(raw: np.ndarray, w: int, h: int, level: int) -> bytes:
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw.data, level)),
            _chunk(b"IEND", b""),
        )
    )


def encode_rgb(rgb: np.ndarray, level: int = ZLIB_LEVEL) -> bytes:
    """PNG bytes of an (height, width, 3) uint8 array (8-bit truecolour, filter type 0)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    h, w, _ = rgb.shape
    raw = np.empty((h, w * 3 + 1), dtype=np.uint8)
    raw[:, 0] = 0  # filter type None for every row
    raw[:, 1:] = rgb.reshape(h, w * 3)
    return _encode_rows(raw, w, h, level)


def encode_rgba_as_rgb(rgba: np.ndarray, level: int = ZLIB_LEVEL) -> bytes:
    """PNG bytes (RGB, alpha dropped) of an (height, width, 4) uint8 buffer such as Agg's canvas."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 4) uint8 array, got {rgba.shape} {rgba.dtype}")
    h, w, _ = rgba.shape
    raw = np.empty((h, w * 3 + 1), dtype=np.uint8)
    raw[:, 0] = 0
    planes = raw[:, 1:].reshape(h, w, 3)
    for k in range(3):
        planes[..., k] = rgba[..., k]
    return _encode_rows(raw, w, h, level)
