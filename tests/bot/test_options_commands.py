"""/vol, /contracts, /size, /risk, /context and the IV recorder, through the dispatcher and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from analytics.sessions import last_sessions
from analytics.volatility import MIN_HISTORY, VolRegime
from bot.app import rebase
from bot.options_service import parse_occ, record_iv
from bot.request import Ctx, Identity
from core.errors import NotFoundError
from providers.sim import SimMarket
from storage.iv_history import IVHistory
from tests.bot.test_cli import AS_OF, run
from tests.conftest import OPEN_AT, run_text

ME = Identity(platform="console", tenant="local", user="alice", display_name="alice")
OTHER = Identity(platform="console", tenant="local", user="bob", display_name="bob")


def ctx_for(services, identity=ME, as_of=None):
    return Ctx(services=services, identity=identity, as_of=as_of)


class NoOptionsMarket:
    """A MarketData with bars and quotes but no listed options (like an unoptionable small cap)."""

    name = "nochain"

    def __init__(self, clock):
        self._sim = SimMarket(seed=0, now=clock)

    async def bars(self, symbol, interval, start, end):
        return await self._sim.bars(symbol, interval, start, end)

    async def quote(self, symbol, at=None):
        return await self._sim.quote(symbol, at)

    async def expirations(self, symbol, at=None):
        return []

    async def chain(self, symbol, expiration, at=None):
        raise NotFoundError(f"no {symbol} options expire on {expiration}")


class LiveOnlyMarket(SimMarket):
    """Answers chains only for the present, like a live provider: `at` is ignored."""

    name = "live"

    async def chain(self, symbol, expiration, at=None):
        return await super().chain(symbol, expiration, None)


@pytest.fixture
def sim(services):
    return rebase(services, market=SimMarket(seed=0, now=lambda: OPEN_AT), clock=services.clock)


async def test_vol_reply_carries_the_regime_as_of_and_sources(sim):
    reply = await run_text(ctx_for(sim), "/vol TSLA")
    assert reply.severity != "error", reply.body
    v = reply.data
    assert isinstance(v, VolRegime)
    assert v.symbol == "TSLA" and v.as_of <= OPEN_AT and v.sources
    assert 0.05 < v.atm_iv_30d < 3.0 and v.hv20 and v.hv60 and v.hv120
    assert v.rank_basis == "hv_proxy" and v.iv_rank is None and "proxy" in reply.body
    assert len(v.term) >= 4 and all(p.dte >= 1 for p in v.term)
    data = reply.data_json()
    assert data["as_of"] and data["sources"] and json.dumps(data)


async def test_vol_is_cached_for_120_seconds(sim):
    svc = sim.options
    now = [0.0]
    svc.vol_cache.clock = lambda: now[0]
    first = await run_text(ctx_for(sim), "/vol NVDA")
    second = await run_text(ctx_for(sim), "/vol NVDA")
    assert second.data is first.data
    assert (svc.vol_cache.hits, svc.vol_cache.misses) == (1, 1)
    assert svc.vol_cache.ttl == 120.0
    now[0] = 119.9
    assert (await run_text(ctx_for(sim), "/vol NVDA")).data is first.data
    # past the TTL the regime is computed again
    now[0] = 120.0
    third = await run_text(ctx_for(sim), "/vol NVDA")
    assert third.data is not first.data and svc.vol_cache.misses == 2
    # a pinned --as-of has its own entry
    pinned = await run_text(ctx_for(sim, as_of=last_sessions(OPEN_AT, 3).frame()["close"].iloc[0].to_pydatetime()), "/vol NVDA")
    assert pinned.data.as_of < first.data.as_of and svc.vol_cache.misses == 3


async def test_recorder_builds_history_and_iv_rank_replaces_the_proxy(sim):
    closes = list(last_sessions(OPEN_AT, MIN_HISTORY + 6).frame()["close"].dt.to_pydatetime())[:-1]
    for c in closes:
        recs = await record_iv(sim, ["SPY"], c)
        assert [r.status for r in recs] == ["recorded"], recs
    today = await record_iv(sim, ["SPY"], OPEN_AT)
    again = await record_iv(sim, ["SPY"], OPEN_AT)
    assert today[0].date == date(2024, 3, 13) and today[0].atm_iv_30d == again[0].atm_iv_30d
    async with sim.db() as s:
        n = (await s.execute(select(func.count()).select_from(IVHistory).where(IVHistory.symbol == "SPY"))).scalar_one()
    assert n == len(closes) + 1  # one row per day, recording twice replaces
    v = (await run_text(ctx_for(sim), "/vol SPY")).data
    assert v.rank_basis == "iv_history" and v.history_days == len(closes)
    assert 0 <= v.iv_rank <= 100 and 0 <= v.iv_percentile <= 100 and v.hv_rank_proxy is None
    assert v.atm_iv_30d == pytest.approx(today[0].atm_iv_30d, abs=1e-6)


async def test_recorder_refuses_to_store_todays_chain_under_a_past_date(services):
    services = rebase(services, market=LiveOnlyMarket(seed=0, now=lambda: OPEN_AT), clock=services.clock)
    past = last_sessions(OPEN_AT, 5).frame()["close"].iloc[0].to_pydatetime()
    recs = await record_iv(services, ["TSLA"], past)
    assert recs[0].status == "skipped" and "cannot give past chains" in recs[0].reason
    async with services.db() as s:
        assert (await s.execute(select(func.count()).select_from(IVHistory))).scalar_one() == 0


async def test_symbol_without_options_is_one_clear_line(services):
    services = rebase(services, market=NoOptionsMarket(lambda: OPEN_AT), clock=services.clock)
    reply = await run_text(ctx_for(services), "/vol ZZZQ")
    assert reply.severity == "error" and "no listed options" in reply.body and "\n" not in reply.body
    recs = await record_iv(services, ["ZZZQ"], OPEN_AT)
    assert recs[0].status == "rejected"
    # the context still answers, without a volatility block, and says why
    ctxr = await run_text(ctx_for(services), "/context ZZZQ 5m lookback=3")
    assert ctxr.severity != "error" and ctxr.data.volatility is None and "no listed options" in ctxr.data.volatility_note


async def test_context_block_trims_series_and_is_cached(sim):
    reply = await run_text(ctx_for(sim), "/context TSLA 5m,1h,1D lookback=5")
    assert reply.severity != "error", reply.body
    c = reply.data
    assert [ic.interval for ic in c.intervals] == ["5m", "1h", "1D"]
    for ic in c.intervals:
        assert len(ic.bars) == 5 and all(len(s) == 5 for s in ic.series.values())
        assert ic.bars[-1].t <= OPEN_AT and ic.trend in ("up", "down", "mixed")
        # indicators were computed over a longer history: no warm-up NaN in the trimmed window
        assert all(v is not None for v in ic.series["ema200"])
    assert "vwap" in c.intervals[0].series and "vwap" not in c.intervals[2].series
    # each interval carries its own key levels from the level engine
    for ic in c.intervals:
        assert 0 < len(ic.levels) <= 12
        assert all(lv.price > 0 for lv in ic.levels)
        assert [lv.price for lv in ic.levels] == sorted(lv.price for lv in ic.levels)
    assert {"pdh", "pdl"} <= {lv.kind for lv in c.intervals[0].levels}
    assert c.volatility is not None and c.sources and c.as_of <= OPEN_AT
    svc = sim.options
    hits = svc.context_cache.hits
    await run_text(ctx_for(sim), "/context TSLA 5m,1h,1D lookback=5")
    assert svc.context_cache.hits == hits + 3 and svc.context_cache.ttl == 30.0
    style = await run_text(ctx_for(sim), "/context TSLA swing lookback=2")
    assert [ic.interval for ic in style.data.intervals] == ["1h", "4h", "1D"]
    bad = await run_text(ctx_for(sim), "/context TSLA 7m")
    assert bad.severity == "error" and "interval" in bad.body


async def test_size_and_risk_profile_are_per_user(sim):
    r = await run_text(ctx_for(sim), "/size TSLA 250 245 $500")
    assert r.data.quantity == 100 and r.data.max_loss == 500.0
    assert r.data.as_of == OPEN_AT and r.data.sources and r.data_json()["as_of"]
    none = await run_text(ctx_for(sim), "/size TSLA 250 245")
    assert none.severity == "error" and "/risk" in none.body
    saved = await run_text(ctx_for(sim), "/risk 25000 1%")
    assert {k: saved.data[k] for k in ("account_size", "risk_pct", "risk_per_trade")} == {
        "account_size": 25000.0,
        "risk_pct": 1.0,
        "risk_per_trade": 250.0,
    }
    mine = await run_text(ctx_for(sim), "/size AAPL 190 187.5")
    assert mine.data.risk_source == "profile" and mine.data.quantity == 100
    theirs = await run_text(ctx_for(sim, OTHER), "/size AAPL 190 187.5")
    assert theirs.severity == "error"  # bob has no profile; alice's is not his


@pytest.mark.parametrize(
    "line,needle",
    [
        ("/size TSLA 250 250 500", "entry equals stop"),
        ("/size TSLA 250 245 -5", "must be positive"),
        ("/size TSLA 250 245 1e15", "not plausible"),
        ("/size TSLA 250 245 lots", "not a number"),
        ("/size TSLA 250 245 nan", "must be a number"),
        ("/risk 25000", "both"),
        ("/contracts TSLA swing -100", "must be positive"),
        ("/contracts TSLA yolo", "style"),
        ("/contracts TSLA swing 500 expiration=2024-03-14", "no TSLA options expire on 2024-03-14"),
        ("/contracts TSLA swing 500 expiration=soon", "not a date"),
        ("/size TSLA 250 245 500 contract=TSLA240419X00250000", "OCC"),
    ],
)
async def test_bad_input_is_one_line(sim, line, needle):
    reply = await run_text(ctx_for(sim), line)
    assert reply.severity == "error", reply.body
    assert needle in reply.body and "\n" not in reply.body


async def test_size_in_contracts_of_a_listed_option(sim):
    exps = await sim.market.expirations("TSLA", OPEN_AT)
    chain = await sim.market.chain("TSLA", exps[5], OPEN_AT)
    spot = chain.underlying_price
    call = min((c for c in chain.contracts if c.right == "call"), key=lambda c: abs(c.strike - spot))
    r = await run_text(ctx_for(sim), f"/size TSLA {spot:.2f} {spot - 10:.2f} 2000 contract={call.symbol}")
    assert r.severity != "error", r.body
    d = r.data
    assert d.instrument == "contracts" and d.contract == call.symbol
    assert d.quantity == int(2000 // d.risk_per_unit) and d.max_loss <= 2000
    # the modelled premium sits inside the quoted market
    assert call.bid <= d.premium <= call.ask + 0.01
    wrong = await run_text(ctx_for(sim), f"/size TSLA {spot:.2f} {spot + 10:.2f} 2000 contract={call.symbol}")
    assert wrong.severity == "error" and "call fits a long" in wrong.body
    missing = await run_text(ctx_for(sim), f"/size TSLA {spot:.2f} {spot - 10:.2f} 2000 contract=TSLA{exps[5]:%y%m%d}C09999000")
    assert missing.severity == "error" and "not listed" in missing.body


#: Moments and symbols where the offline market has setups (and some where it has none).
PLAN_CASES = [
    (datetime(2024, 3, 5, 16, 0, tzinfo=UTC), "NVDA", "swing"),
    (datetime(2024, 3, 4, 15, 0, tzinfo=UTC), "QQQ", "intraday"),
    (datetime(2024, 3, 5, 16, 0, tzinfo=UTC), "SPY", "intraday"),
    (datetime(2024, 3, 4, 15, 0, tzinfo=UTC), "QQQ", "swing"),
    (datetime(2024, 3, 5, 16, 0, tzinfo=UTC), "META", "swing"),
    (OPEN_AT, "TSLA", "swing"),
    (OPEN_AT, "TSLA", "intraday"),
]


async def test_contracts_for_the_plan_end_to_end(sim):
    seen_plan = seen_none = False
    for at, sym, style in PLAN_CASES:
        reply = await run_text(ctx_for(sim, as_of=at), f"/contracts {sym} {style} 500")
        assert reply.severity != "error", reply.body
        r = reply.data
        data = reply.data_json()
        assert data["as_of"] and data["sources"] and data["symbol"] == sym
        if r.plan is None:
            assert r.reason and r.candidates == [] and sym in reply.title
            seen_none = True
            continue
        if seen_plan:
            continue
        seen_plan = True
        assert r.right == ("call" if r.plan.direction == "long" else "put")
        assert any(src.startswith("chains:") for src in r.sources) and any(src.startswith("plan:") for src in r.sources)
        assert r.candidates, r.reason
        g = r.gates
        for c in r.candidates:
            assert c.right == r.right and g.delta_min <= abs(c.delta) <= g.delta_max and c.spread_pct <= g.max_spread_pct
            assert [s.anchor for s in c.scenarios][:2] == ["entry", "stop"] and len(c.scenarios) == 2 + len(r.plan.targets)
            assert c.contracts == int(500 // c.loss_at_stop) and c.max_loss <= 500
        # the plan ranked is the stored plan /plan would show
        assert r.plan.plan_id.startswith("P-")
        # risk only changes counts: the same contracts come back without it
        again = (await run_text(ctx_for(sim, as_of=at), f"/contracts {sym} {style}")).data
        assert [c.symbol for c in again.candidates] == [c.symbol for c in r.candidates]
        assert all(c.contracts is None for c in again.candidates)
    assert seen_plan and seen_none


def test_parse_occ():
    assert parse_occ("TSLA240419C00250000") == ("TSLA", date(2024, 4, 19), "call", 250.0)
    assert parse_occ("spy240315p00512500") == ("SPY", date(2024, 3, 15), "put", 512.5)


# ---------------------------------------------------------------------------- CLI


def test_cli_vol_json_is_one_object_with_as_of_and_sources(tmp_path):
    r = run(["vol", "TSLA", "--json", "--as-of", AS_OF], tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["symbol"] == "TSLA" and data["as_of"] and data["sources"]
    assert data["rank_basis"] == "hv_proxy" and data["atm_iv_30d"] > 0


@pytest.mark.parametrize(
    "args,needle",
    [
        (["size", "TSLA", "250", "250", "500"], "entry equals stop"),
        (["size", "TSLA", "250", "245", "-500"], "must be positive"),
        (["size", "TSLA", "250", "245", "9e99"], "not plausible"),
        (
            ["contracts", "TSLA", "swing", "500", "expiration=2024-03-14", "--as-of", AS_OF],
            "no TSLA options expire on 2024-03-14",
        ),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(cli, args, needle):
    r = cli(args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stdout + r.stderr


def test_cli_iv_record_then_history(tmp_path, cli):
    r = run(["iv", "record", "TSLA,SPY", "--as-of", AS_OF, "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["recorded"] == 2 and data["as_of"] and data["sources"] == ["sim"]
    assert {x["symbol"]: x["status"] for x in data["results"]} == {"TSLA": "recorded", "SPY": "recorded"}
    h = run(["iv", "history", "SPY", "--days", "3650", "--json"], tmp_path)
    rows = json.loads(h.stdout)["history"]
    assert [x["date"] for x in rows] == ["2024-03-13"] and abs(rows[0]["atm_iv_30d"] - data["results"][1]["atm_iv_30d"]) < 1e-6
    bad = cli(["iv", "record", "TS;LA"])  # in this process: a real one leaves the same way (tests/bot/test_cli.py)
    assert bad.exit_code == 2 and bad.stderr.startswith("error: invalid symbol")


#: A moment when the offline market's QQQ swing plan is short (a 1.3% stop).
SHORT_QQQ_AT = datetime(2024, 3, 1, 16, 0, tzinfo=UTC)


async def test_calls_asked_on_a_short_plan_say_why_puts_are_shown(sim):
    reply = await run_text(ctx_for(sim, as_of=SHORT_QQQ_AT), "/contracts QQQ swing side=calls")
    r = reply.data
    assert r.plan.direction == "short" and r.right == "put" and r.asked == "call"
    first = reply.body.split("\n")[0]
    assert "You asked for calls" in first and "short" in first and "puts" in first
    assert "not calls" in reply.title and reply.severity == "warning"
    agreed = await run_text(ctx_for(sim, as_of=SHORT_QQQ_AT), "/contracts QQQ swing side=puts")
    assert agreed.data.side_note is None and "asked" not in agreed.body
    # plain words take the same path: the side reaches the command
    words = await run_text(ctx_for(sim, as_of=SHORT_QQQ_AT), "best calls on QQQ swing")
    assert "side=calls" in words.body and "You asked for calls" in words.body
    bad = await run_text(ctx_for(sim, as_of=SHORT_QQQ_AT), "/contracts QQQ swing side=straddles")
    assert bad.severity == "error" and "calls" in bad.body and "\n" not in bad.body


async def test_size_of_a_ranked_put_is_long_puts_and_loses_what_contracts_says(sim):
    ranked = (await run_text(ctx_for(sim, as_of=SHORT_QQQ_AT), "/contracts QQQ swing 700")).data
    best = ranked.candidates[0]
    p = ranked.plan
    reply = await run_text(ctx_for(sim, as_of=SHORT_QQQ_AT), f"/size QQQ {p.entry} {p.stop} 700 contract={best.symbol}")
    assert reply.severity != "error", reply.body
    d = reply.data
    # one model: the same loss per contract at the stop, to the cent, and the same words
    assert d.risk_per_unit == best.loss_at_stop and d.premium == pytest.approx(best.premium, abs=1e-4)
    assert d.quantity == int(700 // best.loss_at_stop)
    assert reply.body.startswith(f"Buy {d.quantity} × {best.symbol} (long puts, bearish)")
    assert "Short" not in reply.body and "priced 7 days out, IV held" in reply.body
    # a shorter hold prices the stop sooner: less theta, a smaller loss
    intraday = await run_text(
        ctx_for(sim, as_of=SHORT_QQQ_AT), f"/size QQQ {p.entry} {p.stop} 700 contract={best.symbol} style=intraday"
    )
    assert intraday.data.risk_per_unit < d.risk_per_unit and "6.5 h" in intraday.body


async def test_contracts_under_the_plans_minimum_are_flagged_in_the_reply(sim):
    # a tight swing stop (0.2%): the option pays about 1R at T1 where the plan needs 2R
    reply = await run_text(ctx_for(sim, as_of=datetime(2024, 3, 7, 16, 0, tzinfo=UTC)), "/contracts QQQ swing")
    r = reply.data
    assert r.plan.min_rr == 2.0 and r.candidates
    assert abs(r.plan.entry - r.plan.stop) / r.plan.entry < 0.003
    assert all(c.below_min_rr for c in r.candidates)
    rows = [line for line in reply.body.split("\n") if line.startswith("QQQ2")]
    assert len(rows) == len(r.candidates) and all(row.endswith("⚠ under 2R") for row in rows)
    assert "none reach 2R at T1" in reply.title and "None of these reach the plan's 2R minimum" in reply.body
    fine = await run_text(ctx_for(sim, as_of=SHORT_QQQ_AT), "/contracts QQQ swing top=20")
    passing = [c for c in fine.data.candidates if not c.below_min_rr]
    assert passing and "⚠" not in fine.body.split("```")[1].split("\n")[2]
