"""/plan and /scan as users run them: replies, stored versioned plans, tenancy, universes, charts and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analytics.models import PlanResult
from analytics.quality import LABELS
from analytics.scan_scope import LEADERS
from analytics.scanner import ScanResult
from bot.planning import make_plan
from bot.request import Ctx, Identity
from storage import plans as plan_store
from storage import watchlists
from storage.identity import ensure_owner
from tests.conftest import run_text

#: Thursday 2024-03-14 10:15 ET: NVDA has an opening-range breakout plan in the offline market.
WITH_PLAN = datetime(2024, 3, 14, 14, 15, tzinfo=UTC)
#: Wednesday 2024-03-13 11:00 ET: TSLA has no intraday setup.
NO_PLAN = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)
SATURDAY = datetime(2024, 3, 16, 15, 0, tzinfo=UTC)

ROOT = Path(__file__).resolve().parents[2]


def ident(user: str = "U1", tenant: str = "G1", channel: str | None = "C1", dm: bool = False) -> Identity:
    return Identity(platform="discord", tenant=tenant, user=user, channel=channel, display_name=user, dm=dm)


def ctx_for(services, at=WITH_PLAN, **kw) -> Ctx:
    return Ctx(services=services, identity=ident(**kw), as_of=at)


async def owner_of(services, user="U1", tenant="G1"):
    async with services.db() as s, s.begin():
        return await ensure_owner(s, "discord", tenant, user)


async def test_plan_reply_has_levels_buttons_and_the_structured_result(services):
    reply = await run_text(ctx_for(services), "/plan NVDA --no-chart")
    res = reply.data
    assert isinstance(res, PlanResult) and res.plan is not None
    p = res.plan
    assert reply.title == f"NVDA {p.direction} — ORB breakout (intraday)"
    # the odds lead, the quality grade comes second and says it is not odds
    assert [f.name for f in reply.fields] == [
        "T1 before the stop",
        "Entry",
        "Stop",
        "Targets",
        "Quality (grade, not odds)",
        "Invalidation",
        "Confluence",
        "Plan",
        "Option",
    ]
    assert reply.fields[0].value == f"{p.probability:.0%} (no past outcomes yet: no-edge prior)"
    assert reply.body.splitlines()[0] == f"T1 before the stop: {p.probability:.0%}, no past outcomes yet: no-edge prior."
    assert "R:R bands" in reply.body and reply.direction == p.direction
    # the quality line says what the number is, with the factors in words a trader reads
    line = next(ln for ln in reply.body.splitlines() if ln.startswith("Quality"))
    assert f"Quality {p.quality:.0%} (a grade of the setup from 7 factors, not odds)" in line
    best = max(p.quality_factors, key=p.quality_factors.get)
    assert f"strongest {LABELS[best]}" in line and not any(name in line for name in p.quality_factors if "_" in name)
    assert reply.as_of == res.as_of and reply.sources == ["bars 5m/15m/1h: sim"] and not reply.attachments
    commands = [(a.label, a.command) for a in reply.actions]
    assert commands == [
        ("Track plan", f"/track {p.plan_id}"),
        ("Alert at entry", f"/alert add NVDA {'above' if p.direction == 'long' else 'below'} {p.entry:.2f}"),
        ("Size it", f"/size NVDA {p.entry:.2f} {p.stop:.2f}"),
        ("Preview order", f"/order plan {p.plan_id}"),
        ("Contracts", f"/contracts {p.plan_id}"),
        ("Chart 15m", "/chart NVDA 15m plan style=intraday"),
        ("Re-plan", "/plan NVDA intraday"),
    ]
    assert reply.actions[0].style == "primary"
    # the JSON the CLI prints and the LLM tools receive
    data = reply.data_json()
    assert set(data) >= {"symbol", "as_of", "session", "sources", "plan", "reason"} and data["reason"] is None
    assert set(data["plan"]) >= {
        "direction",
        "entry",
        "stop",
        "targets",
        "probability",
        "probability_n",
        "probability_basis",
        "quality",
        "quality_factors",
        "confluence",
        "strategy",
        "invalidation",
        "plan_id",
        "version",
    }
    assert set(data["plan"]["targets"][0]) == {"price", "rr", "reason"}


async def test_discord_and_slack_show_stop_targets_and_invalidation_once(services):
    from bot.surfaces import render_discord, render_slack
    from renderers.text import fmt_price

    reply = await run_text(ctx_for(services), "/plan NVDA --no-chart")
    p = reply.data.plan
    (msg,) = render_discord.render(reply)
    (embed,) = msg.embeds
    description = embed["description"]
    field_text = "\n".join(f["value"] for f in embed["fields"])
    blocks = render_slack.render(reply)[0].blocks
    slack_text = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    slack_fields = "\n".join(f["text"] for b in blocks if b["type"] == "section" for f in b.get("fields", []))
    for shown in [fmt_price(p.stop), *(fmt_price(t.price) for t in p.targets), p.invalidation]:
        # in the fields, and not again in the text above them
        assert shown in field_text and shown not in description, shown
        assert shown in slack_fields and not any(shown in t for t in slack_text), shown
    # the text leads with the odds, then keeps the summary: the idea, the R:R rule and what the quality grade is made of
    first, idea = description.split("\n")[:2]
    assert first.startswith("T1 before the stop: ") and idea.startswith(f"{p.direction.capitalize()} NVDA")
    assert "R:R bands" in description and "Quality" in description
    # each target's reasons moved into the Targets field, one line each
    targets = next(f["value"] for f in embed["fields"] if f["name"] == "Targets").split("\n")
    assert [t.split(" · ")[0] for t in targets] == [fmt_price(t.price) for t in p.targets]
    assert all(t.reason in line for t, line in zip(p.targets, targets))


async def test_no_setup_is_a_normal_reply_with_the_reason(services):
    reply = await run_text(ctx_for(services, at=NO_PLAN), "/plan TSLA intraday --no-chart")
    assert reply.severity != "error" and reply.title == "TSLA — no setup (intraday)"
    assert reply.data.plan is None and "No setup qualifies" in reply.body and reply.body == reply.data.reason
    assert "ORB breakout:" in reply.body  # each strategy's blocker is named


async def test_plans_are_stored_once_per_input_and_versioned_per_replan(services):
    owner = await owner_of(services)
    first = await make_plan(ctx_for(services), "NVDA", "intraday")
    again = await make_plan(ctx_for(services), "NVDA", "intraday")
    p = first.result.plan
    assert p is not None and p.version == 1 and again.result.plan == p
    async with services.db() as s:
        assert await plan_store.get_plan(s, owner, p.plan_id.lower()) == p
        assert await plan_store.latest_version(s, owner, "NVDA", "intraday") == 1
    later = await make_plan(ctx_for(services, at=datetime(2024, 3, 14, 15, 5, tzinfo=UTC)), "NVDA", "intraday")
    if later.result.plan is not None and later.result.plan.plan_id != p.plan_id:
        assert later.result.plan.version == 2
    # the outcome carries what charts and contracts need
    assert set(first.bars) == {"5m", "15m", "1h"} and first.levels and first.source == "sim"
    assert first.bars["5m"].index[-1] < WITH_PLAN


async def test_plan_visibility_follows_tenant_and_channel(services):
    shared = (await make_plan(ctx_for(services, user="A"), "NVDA", "intraday")).result.plan
    private = (
        await make_plan(
            ctx_for(services, user="A", at=datetime(2024, 3, 14, 15, 5, tzinfo=UTC), channel="D1", dm=True), "NVDA", "swing"
        )
    ).result.plan
    b = await owner_of(services, user="B")
    other_tenant = await owner_of(services, user="A", tenant="G2")
    async with services.db() as s:
        assert await plan_store.get_plan(s, b, shared.plan_id) == shared  # posted in a channel: the tenant sees it
        assert await plan_store.get_plan(s, other_tenant, shared.plan_id) is None
        if private is not None:
            assert await plan_store.get_plan(s, b, private.plan_id) is None
        assert await plan_store.get_plan(s, b, "DROP TABLE") is None  # never a plan id: nothing found


async def test_closed_market_plans_as_of_the_last_close(services):
    reply = await run_text(ctx_for(services, at=SATURDAY), "/plan AAPL swing --no-chart")
    res = reply.data
    assert res.session["status"] == "closed"
    assert res.as_of == datetime(2024, 3, 15, 20, 0, tzinfo=UTC)
    again = await run_text(ctx_for(services, at=SATURDAY.replace(hour=22)), "/plan AAPL swing --no-chart")
    assert again.data.model_dump(exclude={"session"}) == res.model_dump(exclude={"session"})


@pytest.mark.parametrize(
    "text,needle",
    [
        ("/plan TSLA weekly", "style: input should be 'scalp', 'intraday', 'swing' or 'leaps'"),
        ("/plan TS;LA", "invalid symbol"),
        ("/plan", "missing symbol"),
        ("/scan leaders weekly", "unknown style 'weekly'"),
        ("/scan aapl swnig", "unknown style"),
        ("/scan leaders AAPL", "is a list name"),
        ("/scan list:nothing", "no list named"),
        ("/scan AAPL --limit 0", "limit"),
    ],
)
async def test_bad_input_is_one_clear_line(services, text, needle):
    reply = await run_text(ctx_for(services), text)
    assert reply.severity == "error" and needle in reply.body and "\n" not in reply.body


async def test_scan_universes_rank_and_store_top_plans(services):
    ctx = ctx_for(services)
    default = await run_text(ctx, "/scan --limit 3")
    res = default.data
    assert isinstance(res, ScanResult) and res.universe == "leaders" and res.scanned == len(LEADERS) == 20
    assert 1 <= len(res.candidates) <= 3 and res.found >= len(res.candidates)
    assert [c.rank for c in res.candidates] == list(range(1, len(res.candidates) + 1))
    assert [c.score for c in res.candidates] == sorted((c.score for c in res.candidates), reverse=True)
    assert default.actions[0].command == f"/plan {res.candidates[0].symbol} intraday"
    data = default.data_json()
    assert data["as_of"] and data["sources"] and isinstance(data["candidates"], list)
    owner = await owner_of(services)
    async with services.db() as s:
        for c in res.candidates:
            assert (await plan_store.get_plan(s, owner, c.plan_id)).symbol == c.symbol
        await watchlists.add(s, owner, ["NVDA", "AAPL"])
        await s.commit()
    mine = (await run_text(ctx, "/scan")).data
    assert mine.universe == "watchlist" and mine.scanned == 2
    named = (await run_text(ctx, "/scan indices swing")).data
    assert named.universe == "indices" and named.style == "swing" and named.scanned == 4
    explicit = (await run_text(ctx, "/scan nvda,amd scalp")).data
    assert explicit.universe == "custom" and explicit.scanned == 2


async def test_plan_with_the_chart_service_attaches_a_png(services):
    reply = await run_text(ctx_for(services), "/plan NVDA")
    assert len(reply.attachments) == 1 and reply.attachments[0].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert reply.data.plan.plan_id in reply.attachments[0].filename
    bare = await run_text(ctx_for(services), "/plan NVDA --no-chart")
    assert not bare.attachments


def _cli(args, tmp_path):
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


def test_cli_plan_json_and_chart_then_scan_json(tmp_path):
    """`coach plan` and `coach scan` as real processes; one plan run checks both its JSON and its chart file."""
    out = tmp_path / "plan.png"
    r = _cli(["plan", "NVDA", "--json", "--chart", str(out), "--as-of", "2024-03-14T10:15:00-04:00"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 1
    doc = json.loads(r.stdout)
    assert doc["symbol"] == "NVDA" and doc["plan"]["plan_id"].startswith("P-") and doc["reason"] is None
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s = _cli(["scan", "AAPL", "MSFT", "scalp", "--json", "--as-of", "2024-03-14T10:15:00-04:00"], tmp_path)
    assert s.returncode == 0, s.stderr
    scan = json.loads(s.stdout)
    assert scan["scanned"] == 2 and scan["as_of"] and scan["sources"] and scan["style"] == "scalp"


@pytest.mark.parametrize("bad", [["plan", "TS;LA", "weekly"], ["scan", "leaders", "weekly"]])
def test_cli_plan_and_scan_bad_input_exits_2_with_one_line(cli, bad):
    b = cli(bad)
    assert b.exit_code == 2 and b.stderr.startswith("error: ") and len(b.stderr.strip().splitlines()) == 1
    assert "Traceback" not in b.stderr
