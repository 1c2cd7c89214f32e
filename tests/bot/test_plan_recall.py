"""Plans recalled by id (/plan, /chart, /contracts), the trader's own plan checked (/plan validate), confluence,
reach and the closed-market note, as users see them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics.plan_check import PlanCheck
from bot.request import Ctx, Identity
from tests.conftest import run_text

#: Thursday 2024-03-14 10:15 ET: NVDA has an opening-range breakout plan in the offline market.
WITH_PLAN = datetime(2024, 3, 14, 14, 15, tzinfo=UTC)
NEXT_DAY = datetime(2024, 3, 15, 14, 15, tzinfo=UTC)
SATURDAY = datetime(2024, 3, 16, 15, 0, tzinfo=UTC)
GOOD_FRIDAY = datetime(2024, 3, 29, 15, 0, tzinfo=UTC)


def ctx_for(services, at=WITH_PLAN, user="U1", tenant="G1", channel="C1") -> Ctx:
    ident = Identity(platform="discord", tenant=tenant, user=user, channel=channel, display_name=user)
    return Ctx(services=services, identity=ident, as_of=at)


async def say(services, text: str, **kw):
    return await run_text(ctx_for(services, **kw), text)


async def nvda_plan(services):
    reply = await say(services, "/plan NVDA --no-chart")
    assert reply.data.plan is not None, reply.body
    return reply.data.plan


async def test_plan_by_id_recalls_the_stored_plan_with_its_chart_and_validity(services):
    plan = await nvda_plan(services)
    again = await say(services, f"/plan {plan.plan_id}")
    assert again.severity != "error", again.body
    assert again.data.plan == plan and again.data.as_of == plan.as_of
    first = again.body.splitlines()[0]
    assert first == "Stored plan, made as of Thu 2024-03-14 10:15 ET; valid until Thu 2024-03-14 16:00 ET."
    assert again.attachments and again.attachments[0].filename == f"NVDA-5m-{plan.plan_id}.png"
    # lower case works too; the offline market does not invent a ticker called P-...
    lower = await say(services, f"/plan {plan.plan_id.lower()} --no-chart")
    assert lower.data.plan == plan and not lower.attachments
    # the next day it is still shown, and says it expired and what to do instead
    later = await say(services, f"/plan {plan.plan_id} --no-chart", at=NEXT_DAY)
    assert later.data.plan == plan
    assert (
        f"Expired: plan {plan.plan_id} expired Thu 2024-03-14 16:00 ET (an intraday plan lasts the session it was made for); "
        "make a fresh one with /plan NVDA intraday." in later.body
    )


async def test_a_plan_id_is_seen_in_its_tenant_only(services):
    plan = await nvda_plan(services)  # made in channel C1 of G1: shared there
    colleague = await say(services, f"/plan {plan.plan_id} --no-chart", user="U2")
    assert colleague.data.plan.plan_id == plan.plan_id
    elsewhere = await say(services, f"/plan {plan.plan_id} --no-chart", tenant="G2")
    unknown = await say(services, "/plan P-ZZZZZZ --no-chart", tenant="G2")
    assert elsewhere.severity == unknown.severity == "error"
    assert elsewhere.body == unknown.body.replace("P-ZZZZZZ", plan.plan_id)
    assert elsewhere.body == f"no plan {plan.plan_id} of yours; plan ids come from /plan SYMBOL replies"


async def test_chart_by_plan_id_draws_that_plan_as_of_its_time(services):
    plan = await nvda_plan(services)
    reply = await say(services, f"/chart {plan.plan_id}", at=NEXT_DAY)
    assert reply.severity != "error", reply.body
    r = reply.data
    assert r.symbol == "NVDA" and r.plan == plan and r.intervals == ["5m"] and r.as_of == plan.as_of
    assert reply.attachments[0].filename == f"NVDA-5m-{plan.plan_id}.png"
    assert reply.body.startswith("Stored plan, made as of Thu 2024-03-14 10:15 ET. Expired:")


async def test_contracts_take_a_plan_id_or_the_style_of_the_latest_plan(services):
    plan = await nvda_plan(services)  # intraday
    by_id = await say(services, f"/contracts {plan.plan_id}")
    assert by_id.severity != "error", by_id.body
    assert by_id.data.plan.plan_id == plan.plan_id and by_id.data.style == "intraday"
    by_symbol = await say(services, "/contracts NVDA")
    assert by_symbol.data.style == "intraday" and by_symbol.title.startswith("NVDA intraday")
    # a style given wins; a symbol never planned falls back to swing
    assert (await say(services, "/contracts NVDA swing")).data.style == "swing"
    assert (await say(services, "/contracts AMD")).data.style == "swing"
    # the plan reply's Contracts button names the plan
    reply = await say(services, "/plan NVDA --no-chart")
    assert ("Contracts", f"/contracts {plan.plan_id}") in [(a.label, a.command) for a in reply.actions]


async def test_plan_reply_shows_confluence_in_words_and_targets_within_reach(services):
    reply = await say(services, "/plan NVDA --no-chart")
    p = reply.data.plan
    field = next(f for f in reply.fields if f.name == "Confluence")
    tags = field.value.split("; ")
    assert tags == p.confluence[:5] and 1 <= len(tags) <= 5
    assert all("_" not in t for t in tags) and "entry at opening-range high" in tags
    assert p.reach is not None and all(abs(t.price - p.entry) <= p.reach for t in p.targets)
    assert "Reach: one session can move price about" in reply.body


@pytest.mark.parametrize(
    ("at", "why", "next_session", "last_close"),
    [
        (SATURDAY, "weekend", "Mon 2024-03-18", "Fri 2024-03-15 16:00 ET"),
        (GOOD_FRIDAY, "holiday", "Mon 2024-04-01", "Thu 2024-03-28 16:00 ET"),
    ],
)
async def test_a_closed_market_says_the_plan_is_for_the_next_session(services, at, why, next_session, last_close):
    reply = await say(services, "/plan AAPL swing --no-chart", at=at)
    assert reply.body.splitlines()[0] == (
        f"Market closed ({why}): plans now are for the next session, {next_session}, as of the last close ({last_close})."
    )
    open_reply = await say(services, "/plan AAPL swing --no-chart")
    assert not open_reply.body.startswith("Market closed")
    # an intraday question after the close: the session's "too late" reasons point to the next open
    intraday = await say(services, "/plan AAPL intraday --no-chart", at=at)
    assert intraday.data.plan is None and "too late in the session" in intraday.body
    assert intraday.body.endswith("are planned from the next open; ask again then, or try /plan AAPL swing now.")
    assert "planned from the next open" not in (await say(services, "/plan AAPL intraday --no-chart")).body
    # a scan says the same before its table
    scan = await say(services, "/scan AAPL MSFT swing", at=at)
    assert scan.body.splitlines()[0].startswith(f"Market closed ({why}): plans now are for the next session, {next_session}")
    assert not (await say(services, "/scan AAPL MSFT swing")).body.startswith("Market closed")


async def test_plan_validate_checks_the_traders_own_plan(services):
    plan = await nvda_plan(services)
    t = [x.price for x in plan.targets]
    reply = await say(services, f"/plan validate NVDA {plan.entry} {plan.stop} {' '.join(map(str, t))} 200")
    assert reply.severity != "error", reply.body
    c = reply.data
    assert isinstance(c, PlanCheck) and c.direction == plan.direction and c.entry == plan.entry
    assert [x.rr for x in c.targets[: len(t)]] == pytest.approx([x.rr for x in plan.targets], abs=0.01)
    assert c.targets[-1].price == 200.0 and c.targets[-1].beyond_reach
    assert c.probability == pytest.approx(1 / (1 + c.targets[0].rr), abs=1e-3)
    assert c.reach_basis == "implied volatility"  # the offline market has option chains
    lines = reply.body.splitlines()
    assert lines[0].startswith(f"Your intraday {plan.direction} on NVDA ")
    assert any(ln.startswith("• T1 ") for ln in lines) and "beyond reach" in reply.body
    assert [f.name for f in reply.fields] == ["Entry / stop", "Stop distance", "T1 before stop", "Reach"]
    assert "no-edge prior 1/(1+R)" in next(f.value for f in reply.fields if f.name == "T1 before stop")


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("/plan validate NVDA 87 86 85", "target 85.00 is below the entry 87.00"),
        ("/plan validate NVDA 87 88 89", "this is a short, so targets go below it"),
        ("/plan validate NVDA 87 abc 89", "stop: 'abc' is not a price; give a number like 190.50"),
        ("/plan validate NVDA 87 86 89 x", "targets: 'x' is not a price"),
        ("/plan validate NVDA 87 86", "missing targets"),
        ("/plan validate NVDA 87 87 89", "the stop equals the entry"),
        ("/plan validate NVDA 870 860 890", "is far from NVDA's last price"),
    ],
)
async def test_plan_validate_bad_input_is_one_clear_line(services, line, needle):
    reply = await say(services, line)
    assert reply.severity == "error" and needle in reply.body and "\n" not in reply.body.strip()


def test_plan_validate_is_one_command_on_every_surface(services):
    import click

    from bot.cli.main import build_cli

    cmd = services.registry.commands["plan validate"]
    assert cmd.tool_schema()["function"]["name"] == "plan_validate"
    assert services.registry.resolve(["/plan", "validate", "AAPL"])[0] is cmd
    assert services.registry.resolve(["/plan", "AAPL"])[0].name == "plan"
    group = build_cli()
    assert isinstance(group.commands["plan"], click.Command) and "plan-validate" in group.commands
