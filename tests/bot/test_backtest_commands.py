"""/backtest in chat answers with the figures and the picture; `coach backtest` replays a folder of the user's files."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.request import Ctx, Identity
from providers.replay import write_bars
from providers.sim import SimMarket
from tests.bot.test_cli import run as run_cli
from tests.conftest import run_text

ME = Identity(platform="console", tenant="local", user="me")


async def say(services, text, as_of=None):
    return await run_text(Ctx(services=services, identity=ME, as_of=as_of), text)


async def test_backtest_in_chat_answers_with_figures_and_a_picture(services):
    r = await say(services, "/backtest SPY,TSLA orb days=2")
    assert r.severity in ("success", "warning"), r.body
    d = r.data
    assert d.symbols == ["SPY", "TSLA"] and d.strategy == "orb" and d.style == "intraday" and d.decisions > 0
    assert d.overall.plans == d.plans and all(g.key == "orb" for g in d.by_strategy)
    assert "```" in r.body and "strategy" in r.body
    # the odds are scored first, the quality grade beside them as the anchor
    c, q = d.calibration, d.quality_calibration
    assert c.forecast == "probability" and q is not None and q.forecast == "quality"
    assert r.body.splitlines()[1].startswith("Odds")
    if c.n:
        assert f"Brier {c.brier:.3f}" in r.body and "T1 odds" in r.body and "quality" in r.body
        assert [f.name for f in r.fields].index("Odds skill") < [f.name for f in r.fields].index("Brier")
    png = r.attachments[0]
    assert png.filename == "backtest.png" and png.data.startswith(b"\x89PNG") and len(png.data) > 20_000
    assert r.as_of is not None and r.as_of <= services.clock()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("/backtest SPY days=300", "planner calls"),
        ("/backtest " + ",".join(f"S{i}" for i in range(11)), "at most 10 symbols"),
        ("/backtest SPY swing orb", "does not serve"),
        ("/backtest", "missing symbols"),
    ],
)
async def test_backtest_refuses_what_chat_cannot_run(services, text, fragment):
    r = await say(services, text)
    assert r.severity == "error" and fragment in r.body, r.body


@pytest.fixture
async def replay_dir(tmp_path):
    now = datetime(2024, 4, 1, tzinfo=UTC)
    sim = SimMarket(seed=3, now=lambda: now)
    folder = tmp_path / "bars"
    for sym in ("AAA", "BBB"):
        five = (await sim.bars(sym, "5m", datetime(2023, 11, 1, tzinfo=UTC), now)).df
        write_bars(five, folder, sym, "5m", fmt="csv" if sym == "AAA" else "parquet")
        daily = (await sim.bars(sym, "1D", datetime(2022, 6, 1, tzinfo=UTC), now)).df
        write_bars(daily, folder, sym, "1D")
    return folder


def test_cli_backtest_on_replay_files_json_png_and_trades(replay_dir, tmp_path):
    png = tmp_path / "bt.png"
    trades = tmp_path / "trades.csv"
    r = run_cli(
        [
            "backtest",
            "--symbols",
            "AAA,BBB",
            "--start",
            "2024-03-11",
            "--end",
            "2024-03-13",
            "--data",
            str(replay_dir),
            "--strategy",
            "all",
            "--workers",
            "1",
            "--out",
            str(png),
            "--trades",
            str(trades),
            "--json",
            "--as-of",
            "2024-03-31T12:00:00-04:00",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["sources"] == ["bars 5m/15m/1h: replay"] and d["symbols"] == ["AAA", "BBB"] and d["decisions"] > 0
    assert d["plans"] == d["overall"]["plans"] and d["png"] == str(png)
    assert png.read_bytes().startswith(b"\x89PNG")
    lines = trades.read_text().splitlines()
    assert lines[0].startswith("plan_id,symbol,strategy") and len(lines) == d["plans"] + 1
    assert "decisions" in r.stderr  # the progress bar goes to stderr, keeping stdout one JSON object


def test_cli_backtest_errors_are_one_line(replay_dir, cli):
    for args, needle in (
        (["--symbols", "ZZZ", "--data", str(replay_dir)], "no replay file for ZZZ"),
        (["--symbols", "AAA", "--data", str(replay_dir / "nope")], "does not exist"),
        (["--symbols", "AAA", "--strategy", "moon"], "does not serve"),
        (["--symbols", "AAA", "--style", "weekly"], "style"),
        (["--symbols", "AAA", "--start", "03/11/2024"], "cannot read --start"),
        (["--symbols", "AAA", "--start", "2024-03-12", "--end", "2024-03-01"], "after its start"),
        (["--symbols", "A;B"], "invalid symbol"),
    ):
        r = cli(["backtest", *args, "--as-of", "2024-03-31T12:00:00-04:00"])
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.strip().splitlines()[-1].startswith("error: ") and needle in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
