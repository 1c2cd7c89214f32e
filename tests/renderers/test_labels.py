"""Right-edge label layout: merging at equal prices, nudging apart, dropping the least important."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from renderers.labels import LabelItem, format_price, label_text, merge_equal, place, spread_rows


def item(price: float, name: str, role: str = "level", rank: int = 50, color: str = "#ffffff") -> LabelItem:
    return LabelItem(price=price, name=name, color=color, rank=rank, role=role)


def test_equal_prices_merge_into_one_label_coloured_by_the_most_important_role() -> None:
    merged = merge_equal(
        [
            item(251.30, "ORH", color="#ffb547", rank=20),
            item(251.301, "Entry", role="entry", rank=0, color="#3d8bfd"),
            item(249.00, "Stop", role="stop", rank=1),
        ],
        tick=0.01,
    )
    assert len(merged) == 2
    top = next(m for m in merged if m.price > 250)
    assert top.names == ("Entry", "ORH")
    assert top.color == "#3d8bfd"
    assert label_text(top, 0.01, 30) == "Entry / ORH 251.30"
    # both members keep an exact-price rail in their own colour
    assert {r[0] for r in top.rails} == {"#3d8bfd", "#ffb547"}


def test_long_merged_labels_list_fewer_names() -> None:
    (m,) = merge_equal([item(10.0, n) for n in ("ORH", "PDH", "HOD", "VWAP", "EQH")], tick=0.01)
    assert label_text(m, 0.01, 40) == "ORH / PDH / HOD +2 10.00"
    assert label_text(m, 0.01, 14) == "ORH +4 10.00"


def test_bands_never_merge_with_lines() -> None:
    band = LabelItem(price=10.0, name="Supply", color="#f00", rank=36, role="zone", low=9.5, high=10.5, show_price=False)
    merged = merge_equal([band, item(10.0, "ORH")], tick=0.01)
    assert len(merged) == 2


def test_format_price_follows_the_tick() -> None:
    assert format_price(4512.25, 0.01) == "4,512.25"
    assert format_price(0.00421, 0.0001) == "0.0042"
    assert format_price(251.3, 0.05) == "251.30"
    assert format_price(99.6, 1.0) == "100"


def test_spread_rows_keeps_untouched_rows_where_they_are() -> None:
    rows = [100.0, 200.0, 300.0]
    assert np.allclose(spread_rows(rows, 20, 0, 500), rows)


def test_spread_rows_moves_a_cluster_symmetrically() -> None:
    out = spread_rows([100.0, 100.0, 100.0], 20, 0, 500)
    assert np.allclose(np.diff(out), 20)
    assert abs(out.mean() - 100.0) < 1e-9  # least squares: centred on the cluster


def test_spread_rows_stays_inside_the_panel() -> None:
    out = spread_rows([1.0, 2.0, 3.0], 20, 10, 500)
    assert out[0] >= 10 and np.all(np.diff(out) >= 20 - 1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 400), min_size=1, max_size=15), st.floats(8, 24))
def test_spread_rows_never_overlaps(rows, step):
    rows = sorted(rows)
    top, bottom = 0.0, 400.0
    if (len(rows) - 1) * step > bottom - top:
        return
    out = spread_rows(rows, step, top, bottom)
    assert np.all(np.diff(out) >= step - 1e-6)
    assert out[0] >= top - 1e-6 and out[-1] <= bottom + 1e-6


def test_place_drops_the_least_important_when_the_panel_is_full() -> None:
    labels = merge_equal(
        [item(100 + i * 0.01, f"L{i}", rank=50 + i) for i in range(10)] + [item(100.05, "Entry", role="entry", rank=0)],
        tick=0.01,
    )
    # a 100 px panel holds five 18 px boxes (with 2 px gaps)
    placed = place(labels, lambda p: 50.0, top=0, bottom=100, box_h=18, gap=2)
    assert len(placed) == 5
    assert any("Entry" in p.text for p in placed)
    assert not any(p.text.startswith("L9 ") for p in placed)
    rows = sorted(p.row for p in placed)
    assert all(b - a >= 20 - 1e-9 for a, b in zip(rows, rows[1:]))


def test_place_skips_prices_outside_the_panel() -> None:
    labels = merge_equal([item(1.0, "in"), item(2.0, "out")], tick=0.01)
    placed = place(labels, lambda p: 50.0 if p == 1.0 else 900.0, top=0, bottom=100, box_h=18)
    assert [p.text for p in placed] == ["in 1.00"]


def test_plan_labels_hold_their_row_and_zones_make_way() -> None:
    row_of = lambda p: 300.0 - 100.0 * p  # noqa: E731 - price 1.0 at row 200
    stop = LabelItem(price=1.0, name="Stop", color="#f00", rank=1, role="stop")
    level = LabelItem(price=1.01, name="PDC", color="#a0f", rank=26)
    zone = LabelItem(price=1.0, name="Demand", color="#0f0", rank=36, role="zone", low=0.5, high=1.5, show_price=False)
    placed = {p.label.names[0]: p for p in place(merge_equal([stop, level, zone], 0.01), row_of, top=0, bottom=400, box_h=18)}
    assert abs(placed["Stop"].row - 200.0) < 2.5  # a level next to it moves, the stop barely
    assert abs(placed["PDC"].row - placed["Stop"].row) >= 20 - 1e-9
    demand = placed["Demand"].row
    assert 150 - 10 <= demand <= 250 + 10  # over its zone...
    assert all(abs(demand - p.row) >= 20 - 1e-9 for k, p in placed.items() if k != "Demand")  # ...in a free row
