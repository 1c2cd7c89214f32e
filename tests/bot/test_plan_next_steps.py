"""From plan to order: the plan's next-step buttons (size, preview, contracts, chart), its option line, on every surface."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.plan_options import option_line, plan_option
from bot.request import Ctx, Identity
from bot.surfaces import render_discord, render_slack
from bot.surfaces.console import render_text
from storage import orders
from tests.conftest import run_text

#: Thursday 2024-03-14 10:15 ET: NVDA has a long opening-range breakout plan in the offline market.
WITH_PLAN = datetime(2024, 3, 14, 14, 15, tzinfo=UTC)
ANN = Identity(platform="discord", tenant="G1", user="U-ann", channel="C1", display_name="ann")
BOB = Identity(platform="discord", tenant="G1", user="U-bob", channel="C1", display_name="bob")


async def say(svc, text: str, who: Identity = ANN):
    return await run_text(Ctx(services=svc, identity=who), text)


async def placed(svc) -> int:
    async with svc.db() as s:
        q = select(func.count()).select_from(orders.Order).where(orders.Order.status != "previewed")
        return int((await s.execute(q)).scalar_one())


def action(reply, label: str):
    (a,) = [a for a in reply.actions if a.label == label]
    return a


async def test_a_plan_offers_its_next_steps_as_buttons(svc, clock):
    clock.t = WITH_PLAN
    reply = await say(svc, "/plan NVDA --no-chart")
    p = reply.data.plan
    assert p is not None and p.direction == "long" and p.interval == "5m"
    assert [(a.label, a.command) for a in reply.actions] == [
        ("Track plan", f"/track {p.plan_id}"),
        ("Alert at entry", f"/alert add NVDA above {p.entry:.2f}"),
        ("Size it", f"/size NVDA {p.entry:.2f} {p.stop:.2f}"),
        ("Preview order", f"/order plan {p.plan_id}"),
        ("Contracts", f"/contracts {p.plan_id}"),
        ("Chart 15m", "/chart NVDA 15m plan style=intraday"),
        ("Re-plan", "/plan NVDA intraday"),
    ]
    # Discord buttons carry the invocation in their custom id, Slack buttons in their value; the console lists them
    (msg,) = render_discord.render(reply)
    ids = [b["custom_id"] for row in render_discord.components(msg.actions) for b in row["components"]]
    assert f"coach:/order plan {p.plan_id}" in ids and f"coach:/size NVDA {p.entry:.2f} {p.stop:.2f}" in ids
    blocks = [b for m in render_slack.render(reply) for b in m.blocks if b["type"] == "actions"]
    assert [e["value"] for e in blocks[-1]["elements"]] == [a.command for a in reply.actions]
    assert f"[Preview order: /order plan {p.plan_id}]" in render_text(reply)


async def test_size_it_asks_for_a_risk_profile_then_sizes_with_it(svc, clock):
    clock.t = WITH_PLAN
    reply = await say(svc, "/plan NVDA --no-chart")
    p = reply.data.plan
    ask = await say(svc, action(reply, "Size it").command)
    assert ask.error_kind == "user" and "set your risk profile first with /risk ACCOUNT_SIZE RISK_PCT" in ask.body
    assert (await say(svc, "/risk 25000 1")).severity == "success"
    sized = await say(svc, action(reply, "Size it").command)
    assert sized.data.risk_source == "profile" and sized.data.quantity == math.floor(250 / (round(p.entry, 2) - round(p.stop, 2)))


async def test_preview_order_is_a_limit_at_the_entry_for_the_sized_quantity_and_places_only_on_click(svc, clock):
    clock.t = WITH_PLAN
    await say(svc, "/risk 25000 1")
    reply = await say(svc, "/plan NVDA --no-chart")
    p = reply.data.plan
    pv = await say(svc, action(reply, "Preview order").command)
    assert pv.severity != "error", pv.body
    qty = math.floor(250 / (p.entry - p.stop))
    assert pv.title == f"Preview: BUY {qty} NVDA limit {p.entry:.2f} day"
    assert pv.data.status == "previewed" and pv.data.plan_id == p.plan_id and pv.data.quantity == qty
    assert f"Stop {p.stop:.2f} and targets" in pv.body and f"{p.targets[0].price:.2f} ({p.targets[0].rr:.1f}R)" in pv.body
    assert await placed(svc) == 0, "a preview sends nothing"
    place = action(pv, "Place order")
    # someone else's click finds no such order; the previewer's click places it
    other = await say(svc, place.command, BOB)
    assert other.error_kind == "user" and await placed(svc) == 0
    done = await say(svc, place.command)
    assert done.data.status in ("filled", "open") and await placed(svc) == 1


async def test_preview_order_of_an_unknown_plan_or_a_tiny_risk_says_what_to_do(svc, clock):
    clock.t = WITH_PLAN
    missing = await say(svc, "/order plan P-ZZZZZZ")
    assert missing.error_kind == "user" and "no plan 'P-ZZZZZZ' of yours" in missing.body
    reply = await say(svc, "/plan NVDA --no-chart")
    tiny = await say(svc, f"/order plan {reply.data.plan.plan_id} risk=0.1")
    assert tiny.error_kind == "user" and "buys no NVDA" in tiny.body and "risk=" in tiny.body


async def test_the_plan_carries_its_top_contract_in_one_line(svc, clock):
    clock.t = WITH_PLAN
    reply = await say(svc, "/plan NVDA --no-chart")
    o = reply.data.options
    assert o.contract is not None and o.contract.startswith("NVDA") and o.right == "call" and o.reason is None
    assert 0.2 < o.delta < 0.8 and o.mid > 0 and 0 <= o.spread_pct < 0.2 and o.strike > 0 and o.expiration is not None
    assert o.contracts is None, "no risk profile: no count"
    line = next(f.value for f in reply.fields if f.name == "Option")
    assert line == option_line(o) and line.startswith(o.contract) and line.endswith("set /risk for a count")
    # it is the same contract /contracts ranks first
    ranked = await say(svc, "/contracts NVDA intraday")
    assert ranked.data.candidates[0].symbol == o.contract
    data = reply.data_json()["options"]
    assert set(data) >= {"contract", "strike", "expiration", "delta", "mid", "spread_pct", "rr_t1", "contracts", "reason"}

    await say(svc, "/risk 25000 1")
    sized = (await say(svc, "/plan NVDA --no-chart")).data.options
    again = await say(svc, "/contracts NVDA intraday risk_amount=250")
    assert sized.contract == again.data.candidates[0].symbol and sized.contracts == again.data.candidates[0].contracts
    assert sized.risk_amount == 250.0


async def test_a_slow_chain_never_holds_up_the_plan(svc, clock):
    clock.t = WITH_PLAN
    result = (await say(svc, "/plan NVDA --no-chart")).data
    ctx = Ctx(services=svc, identity=ANN)
    started = time.perf_counter()
    o = await plan_option(ctx, result, timeout=0.0)
    assert time.perf_counter() - started < 1.0
    assert o.contract is None and o.reason.startswith("the option chains took longer than 0 s")
    assert option_line(o).startswith("none: the option chains took longer")


async def test_no_plan_means_no_option_line(svc):
    reply = await say(svc, "/plan TSLA --no-chart")  # Wednesday 11:00 ET: no intraday setup
    assert reply.data.plan is None and reply.data.options is None
    assert not [f for f in reply.fields if f.name == "Option"]
