"""/plan, /chart, /scan and /backtest on a folder of the user's own files: COACH_PROVIDER=replay, COACH_REPLAY_DIR.

The files are real ones, from the `backtesting` package: GOOG.csv (daily, pandas' default CSV)
and EURUSD.csv (hourly, a 24-hour market), copied into a temporary folder.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import backtesting.test
import pytest

from bot.config import Settings
from bot.market_setup import build_market
from bot.request import Ctx, Identity
from core.errors import ConfigError
from providers.replay import ReplayMarket
from providers.router import MarketRouter
from tests.conftest import make_services, run_text

REAL = Path(backtesting.test.__file__).parent
ME = Identity(platform="console", tenant="local", user="me")
#: The evening of GOOG.csv's last session.
GOOG_END = datetime(2013, 3, 1, 21, 30, tzinfo=UTC)


@pytest.fixture
def folder(tmp_path) -> Path:
    out = tmp_path / "bars"
    out.mkdir()
    for n in ("GOOG.csv", "EURUSD.csv"):
        shutil.copy(REAL / n, out / n)
    return out


def replay_settings(tmp_path, folder, **kw) -> Settings:
    base: dict[str, object] = {"coach_provider": "replay", "coach_replay_dir": folder, "coach_out_dir": tmp_path / "out"}
    return Settings(_env_file=None, database_url="sqlite+aiosqlite:///:memory:", **{**base, **kw})


@pytest.fixture
async def replay_services(engine, tmp_path, folder):
    s = replay_settings(tmp_path, folder)
    clock = {"now": GOOG_END}
    svc = await make_services(s, engine, build_market(s), lambda: clock["now"])
    svc.test_clock = clock  # type: ignore[attr-defined]
    yield svc
    await svc.close()


def test_configuration_alone_switches_the_replay_folder_on(tmp_path, folder):
    m = build_market(replay_settings(tmp_path, folder))
    assert isinstance(m, ReplayMarket) and m.symbols() == ["EURUSD", "GOOG"]
    with pytest.raises(ConfigError, match="COACH_REPLAY_DIR is not set"):
        build_market(replay_settings(tmp_path, None))
    with pytest.raises(ConfigError, match="COACH_REPLAY_DIR: replay folder .* does not exist"):
        build_market(replay_settings(tmp_path, tmp_path / "nope"))
    with pytest.raises(ConfigError, match="COACH_REPLAY_TZ"):
        build_market(replay_settings(tmp_path, folder, coach_replay_tz="Mars/Olympus"))
    chain = build_market(replay_settings(tmp_path, folder, coach_provider="replay,sim"))
    assert isinstance(chain, MarketRouter)
    assert chain.describe()["routes"] == {
        "bars": ["replay", "sim"],
        "quote": ["replay", "sim"],
        "expirations": ["sim"],
        "chain": ["sim"],
    }


async def test_a_symbol_missing_from_the_chain_folder_goes_to_the_next_provider(tmp_path, folder):
    chain = build_market(replay_settings(tmp_path, folder, coach_provider="replay,sim"))
    got = await chain.bars("SPY", "1D", datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    assert got.source.startswith("sim") and len(got.df) > 30
    goog = await chain.bars("GOOG", "1D", datetime(2013, 1, 2, tzinfo=UTC), GOOG_END)
    assert goog.source.startswith("replay")


async def test_plan_chart_and_scan_read_the_folder(replay_services):
    ctx = Ctx(services=replay_services, identity=ME)
    plan = await run_text(ctx, "/plan GOOG leaps")
    assert plan.severity != "error", plan.body
    assert plan.sources == ["bars 1D/1W: replay"] and plan.as_of is not None and plan.as_of.year == 2013
    chart = await run_text(ctx, "/chart GOOG 1D")
    assert chart.severity != "error", chart.body
    assert chart.attachments and chart.attachments[0].data.startswith(b"\x89PNG")
    scan = await run_text(ctx, "/scan leaps")
    assert scan.severity != "error", scan.body
    assert scan.data.universe == "replay folder" and scan.data.scanned == 1  # GOOG; EURUSD starts in 2017
    assert [k.symbol for k in scan.data.skipped] == ["EURUSD"]


async def test_clear_lines_for_a_missing_file_a_missing_interval_and_data_that_ended(replay_services):
    ctx = Ctx(services=replay_services, identity=ME)
    r = await run_text(ctx, "/plan AAPL leaps")
    assert r.severity == "error" and "no replay file for AAPL" in r.body and "symbols with files: EURUSD, GOOG" in r.body
    r = await run_text(ctx, "/plan GOOG")
    assert r.severity == "error" and "GOOG has 1D bars" in r.body and "leaps style" in r.body
    replay_services.test_clock["now"] = datetime(2024, 3, 13, 15, tzinfo=UTC)
    r = await run_text(ctx, "/plan GOOG leaps")
    assert r.severity == "error" and "bars of GOOG end 2013-03-01" in r.body and "--as-of 2013-03-01" in r.body
    assert "Traceback" not in r.body


async def test_backtest_in_chat_on_the_24_hour_file_decides_and_explains(replay_services):
    replay_services.test_clock["now"] = datetime(2017, 9, 1, 21, tzinfo=UTC)
    ctx = Ctx(services=replay_services, identity=ME)
    r = await run_text(ctx, "/backtest EURUSD swing days=10 every=3")
    assert r.severity != "error", r.body
    assert r.data.decisions > 0
    if r.data.plans == 0:
        assert r.data.empty_reason and f"No plan: {r.data.empty_reason}" in r.body
    replay_services.test_clock["now"] = datetime(2005, 2, 10, 21, tzinfo=UTC)
    r = await run_text(ctx, "/backtest GOOG leaps days=20")
    assert r.severity != "error", r.body
    assert r.data.plans == 0 and r.data.empty_reason.startswith("too little history")
    assert "No plan: too little history: the leaps style needs 40 1D bars" in r.body
