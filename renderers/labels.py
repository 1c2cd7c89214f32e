"""Right-edge label layout: merge labels at equal prices, then nudge the rest apart so no two boxes overlap.

Pure arithmetic on pixel rows, shared by both render paths. Steps:

1. `merge_equal`: levels whose prices round to the same tick become one label,
   "Entry / ORH 251.30", coloured by the most important role (entry > stop > target > ...).
2. `place`: sort by price row and find the rows closest (weighted least squares) to the
   exact rows such that neighbours are at least one box height apart and every box stays
   inside the price panel. That is an isotonic regression: subtract ``i * step`` from the
   i-th row, take the weighted nondecreasing fit (pool adjacent violators), clip it to
   the panel (optimal, since every row has the same bounds) and add ``i * step`` back.
   Plan labels weigh more, so zones and minor levels make way for them. When the panel
   cannot hold them all, the least important labels are dropped first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from renderers.chart_spec import ROLE_RANK

#: Most names a merged label lists before "+n".
MAX_NAMES = 3


@dataclass(frozen=True)
class LabelItem:
    """One label to place: its exact price (or band extent), text parts, colour and importance."""

    price: float
    name: str
    color: str
    rank: int
    role: str = "level"
    #: For bands: the extent the rail marks; equal to price for a line.
    low: float | None = None
    high: float | None = None
    #: Show the price after the name (bands show the name only).
    show_price: bool = True


@dataclass(frozen=True)
class MergedLabel:
    """A label after merging equal prices."""

    price: float
    names: tuple[str, ...]
    color: str
    rank: int
    role: str
    low: float
    high: float
    show_price: bool
    #: (colour, low, high, role rank) of every merged member, for the exact-price rails.
    rails: tuple[tuple[str, float, float, int], ...]


@dataclass(frozen=True)
class PlacedLabel:
    """A label with its final box centre row (pixels from the top) and its text."""

    label: MergedLabel
    text: str
    row: float  # placed centre of the box
    exact_row: float  # row of the price itself


def format_price(value: float, tick: float = 0.01) -> str:
    """`value` rounded to the tick, with thousands separators (251.30, 4,512.25, 0.0042)."""
    if not math.isfinite(value):
        return "—"
    decimals = max(0, -int(math.floor(math.log10(tick) + 1e-9))) if tick < 1 else 0
    rounded = round(round(value / tick) * tick, 10)
    return f"{rounded:,.{decimals}f}"


def merge_equal(items: Sequence[LabelItem], tick: float) -> list[MergedLabel]:
    """Labels whose prices round to the same tick merged into one; bands never merge with lines."""
    groups: dict[tuple[str, int], list[LabelItem]] = {}
    for item in items:
        if not math.isfinite(item.price):
            continue
        key = ("band", id(item)) if not item.show_price else ("line", round(item.price / tick))
        groups.setdefault(key, []).append(item)
    merged: list[MergedLabel] = []
    for members in groups.values():
        members.sort(key=lambda it: (ROLE_RANK.get(it.role, 9), it.rank))
        lead = members[0]
        names: list[str] = []
        for m in members:
            if m.name not in names:
                names.append(m.name)
        lows = [m.low if m.low is not None else m.price for m in members]
        highs = [m.high if m.high is not None else m.price for m in members]
        merged.append(
            MergedLabel(
                price=lead.price,
                names=tuple(names),
                color=lead.color,
                rank=min(m.rank for m in members),
                role=lead.role,
                low=min(lows),
                high=max(highs),
                show_price=lead.show_price,
                rails=tuple((m.color, lo, hi, ROLE_RANK.get(m.role, 9)) for m, lo, hi in zip(members, lows, highs)),
            )
        )
    return merged


def label_text(label: MergedLabel, tick: float, max_chars: int = 20, fits: Callable[[str], bool] | None = None) -> str:
    """The box text, "Entry / ORH 251.30", shortened to fit by listing fewer names ("Entry / ORH +2").

    `fits` says whether a text fits the box (a pixel measure); without it, `max_chars` decides.
    """
    ok = fits or (lambda text: len(text) <= max_chars)
    price = format_price(label.price, tick) if label.show_price else ""
    names = list(label.names)
    for shown in range(min(len(names), MAX_NAMES), 0, -1):
        rest = len(names) - shown
        name = " / ".join(names[:shown]) + (f" +{rest}" if rest else "")
        text = f"{name} {price}".strip()
        if ok(text):
            return text
    # even one name is too long: cut the name, keep the price whole
    name = names[0]
    while len(name) > 1 and not ok(f"{name}… {price}".strip()):
        name = name[:-1]
    return f"{name}… {price}".strip() if name != names[0] else f"{name} {price}".strip()


def _pav(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The weighted least-squares nondecreasing fit to `values` (pool adjacent violators)."""
    w_in = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)
    means: list[float] = []
    weights_: list[float] = []
    counts: list[int] = []
    for v, w in zip(values, w_in):
        means.append(float(v))
        weights_.append(float(w))
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            m2, w2, c2 = means.pop(), weights_.pop(), counts.pop()
            m1, w1, c1 = means.pop(), weights_.pop(), counts.pop()
            means.append((m1 * w1 + m2 * w2) / (w1 + w2))
            weights_.append(w1 + w2)
            counts.append(c1 + c2)
    return np.repeat(means, counts)


def spread_rows(
    rows: Sequence[float], step: float, top: float, bottom: float, weights: Sequence[float] | None = None
) -> np.ndarray:
    """Rows moved as little as possible so sorted neighbours are >= `step` apart inside [top, bottom].

    `rows` must be sorted ascending and fit: ``(len(rows) - 1) * step <= bottom - top``.
    `weights` make some rows stiffer than others (a weight-10 row moves a tenth as far).
    """
    r = np.asarray(rows, dtype=np.float64)
    if len(r) == 0:
        return r
    offsets = np.arange(len(r)) * step
    z = _pav(r - offsets, None if weights is None else np.asarray(weights, dtype=np.float64))
    z = np.clip(z, top, bottom - offsets[-1])
    spread: np.ndarray = z + offsets
    return spread


#: How firmly a label holds its exact row when neighbours push: plan lines barely move, zones yield.
ROLE_WEIGHT: dict[str, float] = {"entry": 10.0, "stop": 10.0, "target": 8.0, "last": 3.0, "level": 1.0, "zone": 0.5}


def place(
    labels: Sequence[MergedLabel],
    row_of: Callable[[float], float],
    *,
    top: float,
    bottom: float,
    box_h: float,
    gap: float = 2.0,
    tick: float = 0.01,
    max_chars: int = 20,
    fits: Callable[[str], bool] | None = None,
) -> list[PlacedLabel]:
    """Box centre rows for `labels` within the panel rows [top, bottom], no two boxes overlapping.

    Line labels are spread first (see `spread_rows`); zone labels then take a free row
    inside their zone's extent, nearest its middle, or are left out (the shading and the
    rail still show the zone), so a zone never pushes a level's tag away from its line.
    Labels whose price lies outside the panel are skipped; when more remain than the
    panel can stack, the least important (highest rank) go first.
    """
    step = box_h + gap
    lo_row, hi_row = top + box_h / 2.0, bottom - box_h / 2.0
    rows_of = [(row_of(lb.price), lb) for lb in labels]
    inside = [(r, lb) for r, lb in rows_of if top <= r <= bottom and lb.show_price]
    zones = [(r, lb) for r, lb in rows_of if top <= r <= bottom and not lb.show_price]
    capacity = int((hi_row - lo_row) // step) + 1 if hi_row >= lo_row else 0
    if len(inside) > capacity:
        inside = sorted(inside, key=lambda p: (p[1].rank, ROLE_RANK.get(p[1].role, 9)))[:capacity]
    inside.sort(key=lambda p: p[0])
    weights = [ROLE_WEIGHT.get(lb.role, 1.0) for _, lb in inside]
    rows = spread_rows([r for r, _ in inside], step, lo_row, hi_row, weights)
    placed = [
        PlacedLabel(label=lb, text=label_text(lb, tick, max_chars, fits), row=float(row), exact_row=float(r))
        for (r, lb), row in zip(inside, rows)
    ]
    taken = [p.row for p in placed]
    for r, lb in sorted(zones, key=lambda p: p[1].rank):
        a, b = sorted((row_of(lb.high), row_of(lb.low)))
        # the tag may sit anywhere over the zone (or half a box beyond a thin one)
        z_top, z_bot = max(lo_row, a - step / 2.0), min(hi_row, b + step / 2.0)
        if z_top > z_bot:
            continue
        wanted = min(max(r, z_top), z_bot)
        candidates = [wanted] + [t + d for t in taken for d in (-step, step)]
        free = [c for c in candidates if z_top <= c <= z_bot and all(abs(c - t) >= step - 1e-9 for t in taken)]
        if not free:
            continue
        row = min(free, key=lambda c: abs(c - wanted))
        taken.append(row)
        placed.append(PlacedLabel(label=lb, text=label_text(lb, tick, max_chars, fits), row=float(row), exact_row=float(r)))
    placed.sort(key=lambda p: p.row)
    return placed


def boxes_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """True when two (x0, y0, x1, y1) boxes share any area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
