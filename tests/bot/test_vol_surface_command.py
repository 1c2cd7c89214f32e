"""/vol SYMBOL surface: IV by strike and delta x expiry from the chains' quotes, an image, and the grid in the result."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from analytics.volatility import VolRegime, VolSurfaceAnswer
from bot.app import rebase
from providers.sim import SimMarket
from tests.bot.test_options_commands import NoOptionsMarket, ctx_for
from tests.bot.test_plan_next_steps import WITH_PLAN
from tests.conftest import OPEN_AT, run_text


@pytest.fixture
def sim(services):
    return rebase(services, market=SimMarket(seed=0, now=lambda: OPEN_AT), clock=services.clock)


async def test_the_surface_reply_has_the_grid_the_image_and_the_same_skew_as_vol(sim):
    reply = await run_text(ctx_for(sim), "/vol SPY surface")
    assert reply.severity != "error", reply.body
    ans = reply.data
    assert isinstance(ans, VolSurfaceAnswer) and ans.surface is not None
    s, v = ans.surface, ans.regime
    assert len(s.slices) >= 4 and len(s.grid_iv) == len(s.slices)
    assert all(len(row) == len(s.grid_strikes) for row in s.grid_iv)
    assert any(x is not None for row in s.grid_iv for x in row)
    # /vol's term structure and skew are read from this very surface
    plain = (await run_text(ctx_for(sim), "/vol SPY")).data
    assert isinstance(plain, VolRegime)
    assert plain.skew_25d == v.skew_25d and plain.term_slope == v.term_slope
    assert [p.skew_25d for p in plain.term] == [sl.skew_25d for sl in s.slices]
    # index puts are richer: the 25-delta skew is positive at every expiry
    assert all(sl.skew_25d is not None and sl.skew_25d > 0 for sl in s.slices if sl.dte >= 1)
    (img,) = reply.attachments
    assert img.filename == "SPY-vol-surface.png" and Image.open(io.BytesIO(img.data)).size == (1400, 720)
    assert "25Δ put" in reply.body and "10Δ call" in reply.body and reply.title == f"SPY volatility surface — {v.regime}"
    data = reply.data_json()
    assert set(data["surface"]) >= {"grid_strikes", "grid_iv", "slices", "delta_labels"} and json.dumps(data)
    # the plain regime's JSON stays compact
    assert "surface" not in (await run_text(ctx_for(sim), "/vol SPY")).data_json()


async def test_a_wrong_view_says_what_is_accepted(sim):
    bad = await run_text(ctx_for(sim), "/vol SPY smile")
    assert bad.error_kind == "user" and "regime" in bad.body and "surface" in bad.body


async def test_no_listed_options_is_one_clear_line(services):
    nochain = rebase(services, market=NoOptionsMarket(lambda: OPEN_AT), clock=services.clock)
    reply = await run_text(ctx_for(nochain), "/vol XYZ surface")
    assert reply.error_kind == "user" and "no listed options" in reply.body


async def test_a_plan_on_a_symbol_without_options_says_why_in_its_option_line(services):
    nochain = rebase(services, market=NoOptionsMarket(lambda: WITH_PLAN), clock=lambda: WITH_PLAN)
    reply = await run_text(ctx_for(nochain, as_of=WITH_PLAN), "/plan NVDA --no-chart")
    assert reply.data.plan is not None
    o = reply.data.options
    assert o.contract is None and o.reason == "NVDA has no listed options (no option chain)"
    assert next(f.value for f in reply.fields if f.name == "Option") == "none: NVDA has no listed options (no option chain)"
