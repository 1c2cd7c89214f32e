"""Plan odds in the service: the stored fit, replies that lead with the odds on every surface, and `coach calibrate`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics import calibration as cal
from bot.current_odds import current_fit
from bot.odds import calibrate, odds_styles, odds_symbols, refit_pass, store
from bot.request import Ctx, Identity
from bot.surfaces import render_discord, render_slack
from bot.surfaces.console import render_text
from core.errors import UserError
from providers.sim import SimMarket
from storage.odds_fits import latest_fit, save_fit
from tests.bot.test_cli import run
from tests.conftest import run_text

#: Thursday 2024-03-14 10:15 ET: NVDA has an opening-range breakout plan in the offline market.
WITH_PLAN = datetime(2024, 3, 14, 14, 15, tzinfo=UTC)
FITTED = datetime(2024, 3, 13, 21, 0, tzinfo=UTC)


def made_fit(n: int = 400, rate: float = 0.12, at: datetime = FITTED) -> cal.OddsFit:
    """A fit on n resolved ORB intraday plans at 2R, `rate` of them reaching T1 first."""
    rng = np.random.default_rng(3)
    base = cal.ns_of(at - timedelta(days=n))
    rows = [
        ("orb", "intraday", 0.6, 2.0, int(rng.random() < rate), base + i * cal.DAY_NS, base + i * cal.DAY_NS + 1)
        for i in range(n)
    ]
    return cal.fit(cal.samples_of(rows), fitted_at=at, symbols=["SPY"], sources=["sim"])


def ctx_for(services, at=WITH_PLAN) -> Ctx:
    ident = Identity(platform="discord", tenant="G1", user="U1", channel="C1", display_name="U1")
    return Ctx(services=services, identity=ident, as_of=at)


# ---------------------------------------------------------------------------- storage


async def test_a_fit_round_trips_and_the_newest_of_this_version_is_used(sessionmaker):
    async with sessionmaker() as s:
        assert await latest_fit(s) is None
    old, new = made_fit(at=FITTED - timedelta(days=1)), made_fit(n=300, at=FITTED)
    async with sessionmaker() as s, s.begin():
        await save_fit(s, new)
        await save_fit(s, old)  # stored later, fitted earlier: not the newest
    async with sessionmaker() as s:
        got = await latest_fit(s)
    assert got == new and got is not None and got.nodes["orb|intraday"].n == 300
    # a fit of another model version is never read, so plans fall back to the prior rather than misread it
    async with sessionmaker() as s, s.begin():
        await save_fit(s, made_fit(at=FITTED + timedelta(days=1)).model_copy(update={"version": cal.METHOD_VERSION + 1}))
    async with sessionmaker() as s:
        assert await latest_fit(s) == new
        # as of a past moment only a fit made by then counts
        assert await latest_fit(s, FITTED - timedelta(hours=1)) == old
        assert await latest_fit(s, FITTED - timedelta(days=2)) is None


async def test_a_plan_as_of_the_past_never_uses_a_fit_made_after_it(services):
    await store(services, made_fit(at=WITH_PLAN + timedelta(days=1)))
    reply = await run_text(ctx_for(services), "/plan NVDA --no-chart")
    assert reply.data.plan.probability_basis == cal.NO_FIT_BASIS


async def test_old_fits_are_pruned_to_the_newest_ones(sessionmaker):
    async with sessionmaker() as s, s.begin():
        for k in range(5):
            await save_fit(s, made_fit(n=50 + k, at=FITTED + timedelta(days=k)), keep=3)
    async with sessionmaker() as s:
        from sqlalchemy import select

        from storage.odds_fits import OddsFitRow

        sizes = sorted(r[0] for r in await s.execute(select(OddsFitRow.sample_size)))
        assert sizes == [52, 53, 54]
        newest = await latest_fit(s)
        assert newest is not None and newest.n == 54


# ---------------------------------------------------------------------------- replies


def _first_lines(reply) -> dict[str, str]:
    """What each surface shows first: the console's text, the Discord embed, the Slack blocks."""
    console = render_text(reply).splitlines()
    embed = render_discord.render(reply)[0].embeds[0]
    blocks = render_slack.render(reply)[0].blocks
    slack_text = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    slack_fields = [f["text"] for b in blocks if b["type"] == "section" and "fields" in b for f in b["fields"]]
    return {
        "console": console[1],
        "discord": embed["description"].splitlines()[0],
        "discord_field": f"{embed['fields'][0]['name']}: {embed['fields'][0]['value']}",
        "slack": slack_text[0].splitlines()[0],
        "slack_field": slack_fields[0].replace("\n", " "),
    }


async def test_without_a_fit_the_plan_leads_with_the_prior_and_says_so(services):
    reply = await run_text(ctx_for(services), "/plan NVDA --no-chart")
    p = reply.data.plan
    assert p.probability_n == 0 and p.probability == pytest.approx(cal.prior(p.targets[0].rr), abs=0.01)
    shown = _first_lines(reply)
    line = f"T1 before the stop: {p.probability:.0%}, no past outcomes yet: no-edge prior."
    assert shown["console"] == line and shown["discord"] == line and shown["slack"] == line


async def test_with_a_fit_every_surface_leads_with_the_calibrated_odds_and_shows_quality_second(services):
    fit = made_fit()
    await store(services, fit)
    reply = await run_text(ctx_for(services), "/plan NVDA --no-chart")
    p = reply.data.plan
    assert p.strategy == "orb" and p.probability_n == 400
    expected = cal.odds(fit, "orb", "intraday", p.quality, cal.first_rr(p.entry, p.stop, p.targets[0].price))
    assert p.probability == expected.probability and p.probability_basis == "from 400 past ORB breakout intraday plans"
    assert p.probability < cal.prior(p.targets[0].rr) - 0.05  # the fit's 12% pulls it well under the no-edge prior
    line = f"T1 before the stop: {p.probability:.0%}, from 400 past ORB breakout intraday plans."
    shown = _first_lines(reply)
    assert shown["console"] == line and shown["discord"] == line and shown["slack"] == line
    assert shown["discord_field"] == f"T1 before the stop: {p.probability:.0%} (from 400 past ORB breakout intraday plans)"
    assert shown["slack_field"].startswith("*T1 before the stop*")
    names = [f.name for f in reply.fields]
    assert names.index("T1 before the stop") == 0 and names.index("Quality (grade, not odds)") > names.index("Targets")
    assert "Confidence" not in render_text(reply) and "confidence" not in render_text(reply)
    # the LLM tool result carries the odds with what they rest on, and the grade under its own name
    data = reply.data_json()["plan"]
    assert data["probability"] == p.probability and data["probability_n"] == 400 and "quality" in data
    assert "confidence" not in data


async def test_scan_rows_carry_the_odds_before_the_quality_grade(services):
    await store(services, made_fit())
    reply = await run_text(ctx_for(services), "/scan NVDA AAPL TSLA SPY QQQ")
    assert reply.data.candidates
    header = next(ln for ln in reply.body.splitlines() if ln.startswith("#"))
    assert header.index("T1 odds") < header.index("entry") < header.index("quality")
    c = reply.data.candidates[0]
    assert 0 < c.probability < 1 and 0 <= c.quality <= 1
    assert "quality grades the setup and is not odds" in reply.body


async def test_a_new_fit_is_read_at_once_in_the_process_that_stored_it(services):
    assert await current_fit(services) is None
    fit = made_fit(n=120)
    await store(services, fit)
    assert await current_fit(services) == fit


# ---------------------------------------------------------------------------- calibrating


async def test_the_daily_refit_waits_for_the_close_and_skips_a_day_already_fitted(services):
    done: set = set()
    assert await refit_pass(services, done) is None and not done  # the market is open: nothing to do yet
    services.clock = lambda: datetime(2024, 3, 13, 22, 0, tzinfo=UTC)  # after that day's close
    await store(services, made_fit(at=datetime(2024, 3, 13, 21, 30, tzinfo=UTC)))
    assert await refit_pass(services, done) is None  # a fit made after the close already covers the day
    assert [d.isoformat() for d in done] == ["2024-03-13"]


async def test_calibrate_replays_the_offline_market_and_fits_on_what_resolved():
    now = datetime(2024, 3, 15, 21, 0, tzinfo=UTC)
    done = await calibrate(
        SimMarket(seed=0, now=lambda: now), ["SPY", "NVDA"], now, styles=["intraday"], sessions={"intraday": 4}, workers=1
    )
    fit = done.fit
    (r,) = done.runs
    assert r.style == "intraday" and r.plans > 0 and 0 < r.resolved <= r.plans and r.error is None
    assert fit.n == r.resolved and fit.hits == r.hits and fit.styles == ["intraday"] and fit.symbols == ["NVDA", "SPY"]
    assert fit.end is not None and fit.end <= now
    pairs = [k for k in fit.nodes if k.count("|") == 1]
    assert pairs and all(k.endswith("|intraday") for k in pairs)
    assert sum(fit.nodes[k].n for k in pairs) == fit.n


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: odds_styles("weekly"), "unknown style 'weekly'; accepted: all, scalp, intraday, swing, leaps"),
        (lambda: odds_symbols("TS;LA"), "invalid symbol"),
        (lambda: odds_symbols(" , "), "at least one symbol"),
        (lambda: odds_symbols(",".join(f"S{i}" for i in range(30))), "at most 20 symbols"),
    ],
)
def test_bad_calibration_input_names_what_is_accepted(call, needle):
    with pytest.raises(UserError) as err:
        call()
    assert needle in str(err.value)


@pytest.mark.xdist_group("odds_cli")
def test_coach_calibrate_stores_a_fit_that_the_next_plan_uses(tmp_path):
    done = run(
        ["calibrate", "--symbols", "SPY,NVDA", "--styles", "intraday", "--sessions", "5", "--as-of", "2024-03-13T16:30:00-04:00"],
        tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Calibrated plan odds on" in done.stdout and "stored as fit #1" in done.stdout
    assert "Per strategy x style" in done.stdout and "ORB breakout" in done.stdout
    assert "decisions" in done.stderr  # the progress bar
    js = run(["calibrate", "--symbols", "SPY", "--styles", "intraday", "--sessions", "5", "--json"], tmp_path, timeout=300)
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert data["fit_id"] == 2 and data["resolved_plans"] > 0 and data["styles"][0]["style"] == "intraday"
    # a plan as of the 14th uses the fit made on the 13th, not the one made today (its future)
    plan = run(["plan", "NVDA", "--json", "--no-chart", "--as-of", "2024-03-14T10:15:00-04:00"], tmp_path, timeout=300)
    assert plan.returncode == 0, plan.stderr
    p = json.loads(plan.stdout)["plan"]
    assert p["probability_n"] > 0 and p["probability_basis"].startswith("from ") and "intraday plans" in p["probability_basis"]


def test_coach_calibrate_bad_input_is_one_line(tmp_path):
    bad = run(["calibrate", "--styles", "weekly"], tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: unknown style 'weekly'; accepted: all, scalp, intraday, swing, leaps"
    ]
    (tmp_path / "bars").mkdir()
    empty = run(["calibrate", "-s", "SPY", "--styles", "leaps", "--data", str(tmp_path / "bars")], tmp_path)
    lines = empty.stderr.strip().splitlines()
    assert empty.returncode == 2 and len(lines) == 1, empty.stderr
    assert lines[0].startswith("error: no history to calibrate on (leaps: ") and lines[0].endswith("nothing stored")
