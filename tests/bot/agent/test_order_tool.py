"""The coach may prepare an order preview as a tool; only the person's click on Place places it.

The model is the real openai SDK talking to the loopback OpenAI-compatible server; the click is the
preview's button command run through the request pipeline, as every surface runs a button.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from bot.request import Ctx, ModelTurn
from storage import orders
from tests.bot.agent.conftest import ctx_for
from tests.conftest import run_text

WITH_PLAN = datetime(2024, 3, 14, 14, 15, tzinfo=UTC)


def tool_results(fake, request: int) -> list[dict]:
    return [json.loads(m["content"]) for m in fake.requests[request]["messages"] if m["role"] == "tool"]


async def statuses(svc) -> list[str]:
    async with svc.db() as s:
        return [r.status for r in (await s.execute(select(orders.Order))).scalars()]


async def test_the_coach_prepares_a_preview_and_cannot_place_it(svc, clock, fake, make_agent):
    clock.t = WITH_PLAN
    await run_text(ctx_for(svc), "/risk 25000 1")
    plan = (await run_text(ctx_for(svc), "/plan NVDA --no-chart")).data.plan
    fake.tool_calls(("c1", "order_plan", {"plan": plan.plan_id}))
    fake.tool_calls(("c2", "order_place", {"order": "PV-00000000"}))
    fake.text("Here is the order preview; press Place to send it.")
    reply = await make_agent()(ctx_for(svc), f"prepare the order for {plan.plan_id} and place it")

    (prepared,) = tool_results(fake, 1)
    assert prepared["ok"] is True and prepared["result"]["status"] == "previewed"
    pid = prepared["result"]["preview_id"]
    placing = tool_results(fake, 2)[-1]
    assert placing["ok"] is False and "unknown tool 'order_place'" in placing["error"]
    # the model is never offered a tool that places
    offered = {t["function"]["name"] for req in fake.requests for t in req.get("tools", [])}
    assert "order_place" not in offered and not any("place" in name for name in offered)
    assert await statuses(svc) == ["previewed"], "nothing reached the broker"
    # the person gets the preview's Place button; their click places it
    (place,) = [a for a in reply.actions if a.command == f"/order place {pid}"]
    done = await run_text(ctx_for(svc), place.command)
    assert done.data.status == "filled" and await statuses(svc) == ["filled"]


async def test_a_place_request_marked_as_the_models_is_refused_even_by_direct_dispatch(svc, clock):
    clock.t = WITH_PLAN
    await run_text(ctx_for(svc), "/risk 25000 1")
    plan = (await run_text(ctx_for(svc), "/plan NVDA --no-chart")).data.plan
    pv = await run_text(ctx_for(svc), f"/order plan {plan.plan_id}")
    base = ctx_for(svc)
    as_model = Ctx(services=base.services, identity=base.identity, model_turn=ModelTurn())
    refused = await run_text(as_model, f"/order place {pv.data.preview_id}")
    assert refused.error_kind == "user" and "only by your click" in refused.body
    assert await statuses(svc) == ["previewed"]


async def test_the_coachs_answer_from_market_data_carries_the_freshness_badge(services, fake, make_agent):
    services.free_text = make_agent()
    fake.tool_calls(("c1", "quote", {"symbol": "TSLA"}))
    fake.text("TSLA is trading.")
    reply = await run_text(ctx_for(services), "where is tsla?")
    assert reply.freshness is not None and reply.freshness.kind == "live"
    assert reply.footer().startswith("🟢 live · ")
    fake.text("Hello.")
    plain = await run_text(ctx_for(services, channel="C2"), "hi")
    assert plain.freshness is None, "no market data, no badge"
