"""/chart as users type it (console text and tool calls) and `coach chart` as a real process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bot.app import command_registry
from bot.chart_service import ChartResult
from bot.request import Ctx, Identity
from tests.conftest import run_text

ROOT = Path(__file__).resolve().parents[2]


def parse_text(cmd, text: str):
    """The argument model the request pipeline reads from `/<cmd> text`."""
    from bot.pipeline import Pipeline
    from bot.ratelimit import RateLimiter
    from bot.registry import Registry

    return Pipeline(Registry(commands={cmd.name: cmd}), RateLimiter(30)).parse_line(f"/{cmd.name} {text}")[1]


@pytest.fixture
async def ctx(services):
    """In-process rendering (cheap to start): these tests are about the command, the pool has its own tests."""
    assert services.charts.workers == 0
    yield Ctx(services=services, identity=Identity(platform="console", tenant="local", user="tester"))


def size_of(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


async def test_chart_with_the_plan_word(ctx) -> None:
    reply = await run_text(ctx, "/chart tsla 5m plan")
    assert reply.severity != "error", reply.body
    (att,) = reply.attachments
    assert att.filename.startswith("TSLA-5m-") and att.filename.endswith(".png")
    assert size_of(att.data) == (1200, 700)
    data = reply.data
    assert isinstance(data, ChartResult)
    assert data.intervals == ["5m"] and data.sources == ["bars: sim"]
    assert {lv.kind for lv in data.levels} >= {"orh", "orl", "pdh", "pdl"}
    assert data.plan is not None or data.note  # a plan, or the planner's reason why there is none
    if data.plan is None:
        assert data.note[0].upper() + data.note[1:] in reply.body
    json.dumps(reply.data_json())  # what --json and the LLM tools receive


async def test_without_an_interval_the_plan_is_drawn_on_its_own_interval(ctx) -> None:
    reply = await run_text(ctx, "/chart NVDA plan scalp")
    assert reply.severity != "error", reply.body
    data = reply.data
    expected = data.plan.interval if data.plan is not None else "5m"
    assert data.intervals == [expected]
    (att,) = reply.attachments
    if data.plan is not None:
        assert att.filename == f"NVDA-{expected}-{data.plan.plan_id}.png"
        assert reply.title.endswith("with plan") and reply.direction == data.plan.direction
    plain = await run_text(ctx, "/chart NVDA")
    assert plain.data.intervals == ["5m"] and plain.data.plan is None


async def test_several_intervals_as_images_or_one_grid(ctx) -> None:
    reply = await run_text(ctx, "/chart SPY 1D,5m,1h theme=light")
    assert [a.filename.split("-")[1] for a in reply.attachments] == ["5m", "1h", "1D"]  # fastest first
    grid = await run_text(ctx, "/chart SPY 5m,1h --grid")
    (att,) = grid.attachments
    assert att.filename.startswith("SPY-5m+1h-")
    assert size_of(att.data)[1] > 1400


@pytest.mark.parametrize(
    "line,needle",
    [
        ("/chart TSLA 7m", "unknown interval"),
        ("/chart TS;LA", "invalid symbol"),
        ("/chart TSLA 1m,5m,15m,1h,1D", "interval"),
        ("/chart TSLA theme=neon", "theme"),
        ("/chart", "missing symbol"),
    ],
)
async def test_bad_input_gets_one_clear_line(ctx, line, needle) -> None:
    reply = await run_text(ctx, line)
    assert reply.severity == "error"
    assert needle in reply.body and "\n" not in reply.body
    assert not reply.attachments


@pytest.mark.parametrize(
    "text,interval,plan,style",
    [
        ("TSLA", [], False, None),  # no interval: 5m, or the plan's own interval
        ("TSLA plan", [], True, None),
        ("TSLA 5m plan swing", ["5m"], True, "swing"),
        ("TSLA 5m,1h plan", ["5m", "1h"], True, None),
        ("TSLA 5m 1h --plan", ["5m", "1h"], True, None),
        ("TSLA 15m plan=on", ["15m"], True, None),
        ("TSLA 5m noplan", ["5m"], False, None),
    ],
)
def test_the_plan_word_and_intervals_parse_the_way_people_type_them(text, interval, plan, style) -> None:
    args = parse_text(command_registry().commands["chart"], text)
    assert (args.interval, args.plan, args.style) == (interval, plan, style)


def test_tool_schema_lists_the_options() -> None:
    schema = command_registry().commands["chart"].tool_schema()["function"]["parameters"]
    assert schema["required"] == ["symbol"]
    assert {"interval", "plan", "theme", "levels", "grid"} <= set(schema["properties"])


def _coach(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "DISCORD", "SLACK", "POLYGON", "TRADIER"))}
    env.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/coach.db",
            "COACH_OUT_DIR": str(tmp_path / "out"),
            "COACH_LOG_FILE": str(tmp_path / "coach.log"),
            "PYTHONPATH": str(ROOT),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=180
    )


def test_coach_chart_writes_one_png_per_interval(tmp_path) -> None:
    out = tmp_path / "charts" / "tsla.png"
    r = _coach(
        [
            "chart",
            "TSLA",
            "--interval",
            "5m,1h",
            "--theme",
            "light",
            "--as-of",
            "2024-03-13T11:00:00-04:00",
            "--out",
            str(out),
            "--json",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    paths = [Path(p) for p in data["paths"]]
    assert [p.name for p in paths] == ["tsla-5m.png", "tsla-1h.png"]
    for p in paths:
        assert size_of(p.read_bytes()) == (1200, 700)
    assert data["as_of"].startswith("2024-03-13T15:00")
    assert not list(out.parent.glob("*.part"))


@pytest.mark.parametrize(
    "args,needle",
    [
        (["TSLA", "--interval", "7m"], "unknown interval"),
        (["TS;LA"], "invalid symbol"),
        (["TSLA", "--interval", "1m,5m,15m,1h,1D"], "interval"),
        (["TSLA", "--as-of", "last tuesday"], "malformed"),
    ],
)
def test_coach_chart_bad_input_is_one_line_exit_2(tmp_path, args, needle) -> None:
    import click
    from click.testing import CliRunner

    from bot.app import command_registry
    from bot.cli.twins import make_twin

    group = click.Group()
    group.add_command(make_twin(command_registry().commands["chart"]))  # the generated `coach chart`
    out = tmp_path / "x.png"
    r = CliRunner().invoke(group, ["chart", *args, "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert not out.exists()


async def test_chart_levels_carry_engine_strengths_zones_and_vwap_names(ctx) -> None:
    # more levels on an intraday chart: zones, anchored VWAPs and the session VWAP line are all in view
    reply = await run_text(ctx, "/chart QQQ 15m levels=more")
    assert reply.severity != "error", reply.body
    levels = reply.data.levels
    by_kind = {lv.kind for lv in levels}
    assert len({lv.strength for lv in levels}) > 2, "strengths are scored, not one constant"
    zones = [lv for lv in levels if lv.kind in ("supply", "demand", "fvg_bull", "fvg_bear")]
    assert zones and all(lv.low is not None and lv.high is not None and lv.low < lv.high for lv in zones)
    assert "vwap" in by_kind and all(lv.label == "VWAP" for lv in levels if lv.kind == "vwap")
    anchored = [lv for lv in levels if lv.kind == "avwap"]
    assert anchored and all(lv.label.startswith("AVWAP from ") for lv in anchored)
    assert not any(lv.label.startswith("AVWAP") for lv in levels if lv.kind != "avwap")
    shown = reply.data_json()["levels"]
    assert all(0.0 <= lv["strength"] <= 1.0 for lv in shown)
    # the prior-day levels keep the engine's weight (0.8 and up), swings fade below it
    pd_levels = [lv for lv in levels if lv.kind in ("pdh", "pdl")]
    swings = [lv for lv in levels if lv.kind in ("swing_high", "swing_low")]
    assert pd_levels and swings and min(lv.strength for lv in pd_levels) > min(lv.strength for lv in swings)
