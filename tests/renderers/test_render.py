"""Both render paths on the same plan chart: valid PNG, right size, colours at the plan's rows, stored baselines.

Baselines live in tests/renderers/baseline/. After an intended visual change, look at the
new images and refresh them with `COACH_UPDATE_BASELINES=1 pytest tests/renderers/test_render.py`.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.testing.compare import compare_images
from PIL import Image

from analytics.models import Level
from renderers import annotate, fast_render, jobs, mpf_render
from renderers.chart_spec import Candles, ChartSpec, HLevel
from renderers.labels import boxes_overlap
from renderers.plan_chart import build_spec
from renderers.theme import get_theme
from tests.renderers.conftest import AS_OF, make_plan

#: Each path's chart is rendered once for the module: under xdist these tests run in one process.
pytestmark = pytest.mark.xdist_group("render-once")

BASELINE_DIR = Path(__file__).parent / "baseline"
#: RMS difference (0-255) tolerated against a baseline: absorbs FreeType/Agg build differences, not content changes.
TOLERANCE = 3.0
PATHS = {"fast": fast_render, "mplfinance": mpf_render}


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def rgb(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)])


@pytest.fixture(scope="module")
def plan_spec(tsla_5m) -> ChartSpec:
    return build_spec(
        symbol="TSLA",
        interval="5m",
        bars=tsla_5m,
        plan=make_plan(tsla_5m),
        as_of=AS_OF,
        session_status="open",
        source="sim",
        style="intraday",
    )


@pytest.fixture(scope="module")
def rendered(plan_spec) -> dict[str, bytes]:
    """Each path's PNG of the plan chart, rendered once for the module."""
    return {name: mod.render(plan_spec) for name, mod in PATHS.items()}


@pytest.mark.parametrize("path", PATHS)
def test_png_decodes_at_the_requested_size_and_is_not_blank(rendered, plan_spec, path) -> None:
    png = rendered[path]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = decode(png)
    assert img.shape == (plan_spec.height, plan_spec.width, 3)
    # a real chart has many colours and is not one flat fill
    colours = np.unique(img.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 200
    assert img.std() > 10


@pytest.mark.parametrize("path", PATHS)
def test_right_edge_has_the_plan_colour_at_entry_stop_and_target_rows(rendered, plan_spec, path) -> None:
    img = decode(rendered[path])
    theme = get_theme("dark")
    lay = annotate.page_layout(plan_spec)
    lo, hi = plan_spec.y_range
    plan = make_plan_from_spec(plan_spec)
    checks = [(plan["entry"], theme.entry), (plan["stop"], theme.stop)] + [(t, theme.target) for t in plan["targets"]]
    assert len(checks) == 4
    for price, colour in checks:
        row = int(round(lay.price_to_row(price, lo, hi)))
        for col in (plan_spec.width - 1, plan_spec.width - 3):
            got = img[row, col].astype(int)
            assert np.abs(got - rgb(colour)).max() <= 8, f"{path}: price {price} row {row}: {got} != {colour}"
    # and somewhere else on that edge it is not the stop colour (the check can fail)
    assert np.abs(img[lay.price_top + 2, plan_spec.width - 2].astype(int) - rgb(theme.stop)).max() > 40


def make_plan_from_spec(spec: ChartSpec) -> dict:
    by_role: dict = {"targets": []}
    for lv in spec.levels:
        if lv.role == "entry":
            by_role["entry"] = lv.price
        elif lv.role == "stop":
            by_role["stop"] = lv.price
        elif lv.role == "target":
            by_role["targets"].append(lv.price)
    return by_role


@pytest.mark.parametrize("path", PATHS)
def test_matches_the_stored_baseline(rendered, path, tmp_path) -> None:
    expected = BASELINE_DIR / f"plan-TSLA-5m-{path}.png"
    actual = tmp_path / f"plan-TSLA-5m-{path}.png"
    actual.write_bytes(rendered[path])
    if os.environ.get("COACH_UPDATE_BASELINES") == "1":
        BASELINE_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(actual, expected)
    assert expected.exists(), f"missing baseline {expected.name}; run with COACH_UPDATE_BASELINES=1 and review it"
    result = compare_images(str(expected), str(actual), tol=TOLERANCE)
    assert result is None, result


def _blocks(img: np.ndarray, k: int = 10) -> np.ndarray:
    h, w, _ = img.shape
    return img[: h - h % k, : w - w % k].astype(float).reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))


def test_the_two_paths_agree(rendered, tsla_5m) -> None:
    """Same spec, same content: at 10x10-pixel blocks the images differ only slightly (edges, subpixel text).

    For scale, a different chart of the same market differs by about five times as much.
    """
    fast, ref = _blocks(decode(rendered["fast"])), _blocks(decode(rendered["mplfinance"]))
    same = np.sqrt(((fast - ref) ** 2).mean())
    other_spec = build_spec(
        symbol="TSLA", interval="5m", bars=tsla_5m, plan=None, as_of=AS_OF, session_status="open", source="sim"
    )
    other = _blocks(decode(fast_render.render(other_spec)))
    different = np.sqrt(((fast - other) ** 2).mean())
    assert same < 12.0
    assert different > 2.5 * same


def _tight_spec(prices: list[float], names: list[str], tick: float = 0.01) -> ChartSpec:
    n = 40
    stamps = 1_710_336_600 * 10**9 + np.arange(n, dtype=np.int64) * 300 * 10**9
    close = np.full(n, 100.0) + np.sin(np.arange(n)) * 0.02
    candles = Candles(stamps, close, close + 0.01, close - 0.01, close, np.full(n, 1e5))
    levels = tuple(HLevel(price=p, label=name, color="#ffb547", rank=20 + i) for i, (p, name) in enumerate(zip(prices, names)))
    return ChartSpec(
        symbol="TEST", interval="5m", candles=candles, title="TEST", footer="f", y_range=(99.9, 100.1), levels=levels, tick=tick
    )


def _label_boxes(fig) -> list[tuple[tuple[float, float, float, float], str]]:
    renderer = fig.canvas.get_renderer()
    out = []
    for t in fig.texts:
        if t.get_gid() == annotate.LABEL_GID:
            bb = t.get_window_extent(renderer)
            out.append(((bb.x0, bb.y0, bb.x1, bb.y1), t.get_text()))
    return out


@pytest.mark.parametrize("path", PATHS)
def test_five_levels_within_one_tick_get_labels_that_do_not_overlap(path) -> None:
    names = ["ORH", "PDH", "HOD", "EQH", "HTF"]
    spec = _tight_spec([100.000, 100.002, 100.004, 100.006, 100.008], names)
    fig = PATHS[path].draw(spec)
    try:
        fig.canvas.draw()
        boxes = _label_boxes(fig)
        assert 1 <= len(boxes) <= 5
        for i, (a, ta) in enumerate(boxes):
            for b, tb in boxes[i + 1 :]:
                assert not boxes_overlap(a, b), f"{ta!r} overlaps {tb!r}"
        text = " ".join(t for _, t in boxes)
        # every level is named, in a merged label or counted in its "+n"
        shown = sum(text.count(n) for n in names) + sum(int(w[1:]) for w in text.split() if w.startswith("+"))
        assert shown == 5
    finally:
        if path == "mplfinance":
            mpf_render.close(fig)


@pytest.mark.parametrize("path", PATHS)
def test_crowded_distinct_levels_are_nudged_apart_inside_the_panel(path) -> None:
    prices = [100.0 + 0.004 * i for i in range(12)]
    spec = _tight_spec(prices, [f"L{i}" for i in range(12)], tick=0.001)
    fig = PATHS[path].draw(spec)
    try:
        fig.canvas.draw()
        boxes = _label_boxes(fig)
        assert len(boxes) == 12
        lay = annotate.page_layout(spec)
        for i, (a, _) in enumerate(boxes):
            assert spec.height - lay.price_bottom - 1 <= a[1] and a[3] <= spec.height - lay.price_top + 1
            for b, _ in boxes[i + 1 :]:
                assert not boxes_overlap(a, b)
            assert a[2] <= spec.width - lay.rail_w  # text stays clear of the exact-price rail
    finally:
        if path == "mplfinance":
            mpf_render.close(fig)


def test_light_theme_and_a_grid_image() -> None:
    light = jobs.sample_spec(theme="light")
    (png,) = jobs.run(jobs.RenderJob(specs=(light, jobs.sample_spec()), grid=True))
    img = decode(png)
    assert img.shape == (2 * 700 + jobs.GRID_GAP, 1200, 3)
    assert tuple(img[5, 600]) == (255, 255, 255)  # light panel on top
    assert img[700 + jobs.GRID_GAP + 5, 600].max() < 60  # dark panel below


def test_the_fast_path_reuses_its_figure_without_leftovers() -> None:
    spec = jobs.sample_spec()
    fig1 = fast_render.draw(spec)
    counts = (len(fig1.texts), len(fig1.artists), len(fig1.axes[0].collections), len(fig1.axes[0].lines))
    fig2 = fast_render.draw(spec)
    assert fig2 is fig1
    assert (len(fig2.texts), len(fig2.artists), len(fig2.axes[0].collections), len(fig2.axes[0].lines)) == counts
    assert decode(fast_render.render(spec)).shape == (700, 1200, 3)


def test_zones_and_more_levels(tsla_5m) -> None:
    last = float(tsla_5m["close"].iloc[-1])
    # a strong zone just above the price and a weak swing low further below it
    supply = round(last * 1.01, 2)
    levels = [
        Level(kind="supply", price=supply, low=supply - 0.5, high=supply + 0.5, strength=0.8, label="supply"),
        Level(kind="swing_low", price=round(last * 0.95, 2), strength=0.5, label="swing"),
    ]
    prio = build_spec(symbol="TSLA", interval="5m", bars=tsla_5m, levels=levels, as_of=AS_OF, session_status="open", source="sim")
    more = build_spec(
        symbol="TSLA",
        interval="5m",
        bars=tsla_5m,
        levels=levels,
        as_of=AS_OF,
        session_status="open",
        source="sim",
        levels_mode="more",
    )
    assert [b.label for b in prio.bands] == ["Supply"]
    assert "Swing L" not in {lv.label for lv in prio.levels}
    assert "Swing L" in {lv.label for lv in more.levels}
    for spec in (prio, more):
        assert decode(fast_render.render(spec)).shape == (700, 1200, 3)
