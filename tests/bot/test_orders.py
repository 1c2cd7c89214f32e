"""/order: preview first, place only by the previewer while fresh and only once; orders, fills and journal stored."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.request import Ctx, Identity
from bot.services import Services
from providers.broker.tradier import TradierBroker
from providers.http import RetryPolicy
from providers.tradier import TradierClient
from storage import journal, orders
from storage.identity import ensure_owner
from tests.conftest import OPEN_AT, run_text
from tests.providers.fakes import FakeAPI, SleepLog, fixture

ANN = Identity(platform="discord", tenant="G1", user="U-ann", channel="C1", display_name="ann")
BOB = Identity(platform="discord", tenant="G1", user="U-bob", channel="C1", display_name="bob")
EVE = Identity(platform="discord", tenant="G2", user="U-ann", channel="C9", display_name="eve")


async def say(svc: Services, who: Identity, text: str, as_of: datetime | None = None):
    return await run_text(Ctx(services=svc, identity=who, as_of=as_of), text)


def pid_of(reply) -> str:
    return reply.actions[0].command.split()[-1]


async def count(svc: Services, model) -> int:
    async with svc.db() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def entries(svc: Services, who: Identity):
    async with svc.db() as s, s.begin():
        owner = await ensure_owner(s, who.platform, who.tenant, who.user)
        return await journal.list_entries(s, owner, limit=None, newest_first=False)


async def test_preview_sends_nothing_and_offers_place_and_discard(svc):
    r = await say(svc, ANN, "/order preview TSLA buy 10")
    assert r.severity != "error", r.body
    pid = pid_of(r)
    assert [a.command for a in r.actions] == [f"/order place {pid}", f"/order cancel {pid}"]
    assert "nothing has been sent" in r.body and r.data.status == "previewed"
    assert r.title == "Preview: BUY 10 TSLA market day"
    assert await count(svc, orders.Fill) == 0 and await entries(svc, ANN) == []


async def test_place_by_the_previewer_fills_records_and_journals(svc):
    pid = pid_of(await say(svc, ANN, "/order preview TSLA buy 10 plan=P-TSLA-1"))
    q = await svc.market.quote("TSLA", OPEN_AT)
    r = await say(svc, ANN, f"/order place {pid}")
    assert r.title == "Filled: BUY 10 TSLA market day" and r.data.status == "filled"
    assert r.data.filled_quantity == 10 and r.data.avg_fill_price == q.ask
    assert [(f.quantity, f.price) for f in r.data.fills] == [(10.0, q.ask)]
    got = await entries(svc, ANN)
    assert [e.tags for e in got] == [["order"], ["fill"]]
    assert all(e.source == "broker" and e.symbol == "TSLA" and e.plan_id == "P-TSLA-1" for e in got)
    assert got[1].data["price"] == q.ask and got[1].data["order"] == pid


async def test_a_second_click_never_places_twice(svc):
    pid = pid_of(await say(svc, ANN, "/order preview TSLA buy 10"))
    first, second = await asyncio.gather(say(svc, ANN, f"/order place {pid}"), say(svc, ANN, f"/order place {pid}"))
    outcomes = sorted([first.severity == "error", second.severity == "error"])
    assert outcomes == [False, True]
    err = first if first.severity == "error" else second
    assert "already placed" in err.body
    assert await count(svc, orders.Fill) == 1
    again = await say(svc, ANN, f"/order place {pid}")
    assert "never placed twice" in again.body


async def test_only_the_previewer_can_place_and_other_tenants_cannot_see_it(svc):
    pid = pid_of(await say(svc, ANN, "/order preview TSLA buy 10"))
    r = await say(svc, BOB, f"/order place {pid}")
    assert r.severity == "error" and "no order" in r.body
    r = await say(svc, EVE, f"/order place {pid}")
    assert r.severity == "error" and "no order" in r.body
    assert (await say(svc, BOB, f"/order cancel {pid}")).severity == "error"
    assert (await say(svc, ANN, f"/order place {pid}")).data.status == "filled"


@pytest.mark.parametrize("verb", ["status", "place", "cancel"])
async def test_someone_elses_order_reads_exactly_like_a_missing_one(svc, verb):
    pid = pid_of(await say(svc, ANN, "/order preview TSLA buy 10"))
    unused = "PV-00000000" if pid != "PV-00000000" else "PV-11111111"
    theirs = await say(svc, BOB, f"/order {verb} {pid}")
    missing = await say(svc, BOB, f"/order {verb} {unused}")
    assert theirs.severity == missing.severity == "error"
    assert theirs.title == missing.title
    assert theirs.body == missing.body.replace(unused, pid), "the answer must not tell that the id is in use"
    assert "someone else" not in theirs.body
    # nothing happened to Ann's preview
    assert (await say(svc, ANN, f"/order status {pid}")).data.status == "previewed"


async def test_a_stale_preview_cannot_be_placed(svc, clock):
    pid = pid_of(await say(svc, ANN, "/order preview TSLA buy 10"))
    clock.t = OPEN_AT + orders.PREVIEW_TTL + timedelta(seconds=1)
    r = await say(svc, ANN, f"/order place {pid}")
    assert r.severity == "error" and "expired" in r.body
    assert await count(svc, orders.Fill) == 0


async def test_resting_limit_status_then_cancel_and_discard(svc):
    q = await svc.market.quote("TSLA", OPEN_AT)
    pid = pid_of(await say(svc, ANN, f"/order preview TSLA buy 5 limit {q.ask * 0.8:.2f}"))
    r = await say(svc, ANN, f"/order place {pid}")
    assert r.data.status == "open" and [a.label for a in r.actions] == ["Check status", "Cancel"]
    assert (await say(svc, ANN, f"/order status {pid}")).data.status == "open"
    r = await say(svc, ANN, f"/order cancel {pid}")
    assert r.data.status == "cancelled"
    assert [e.tags for e in await entries(svc, ANN)] == [["order"], ["order", "cancelled"]]
    pid2 = pid_of(await say(svc, ANN, "/order preview TSLA sell 1"))
    assert "discarded" in (await say(svc, ANN, f"/order cancel {pid2}")).title
    assert "discarded" in (await say(svc, ANN, f"/order place {pid2}")).body
    listing = await say(svc, ANN, "/order list")
    assert [v.status for v in listing.data["orders"]] == ["discarded", "cancelled"]


async def test_bad_input_gets_one_clear_line(svc):
    cases = {
        "/order preview TSLA buy 0": "quantity",
        "/order preview TSLA buy_to_open 1": "not an equity side",
        "/order preview TS;LA buy 1": "invalid symbol",
        "/order preview TSLA buy 1 stop_limit 10": "needs a stop price",
        "/order preview TSLA241319C00250000 buy 1": "not a valid YYMMDD",
        "/order place PV-FFFFFFFF": "no order",
    }
    for text, words in cases.items():
        r = await say(svc, ANN, text)
        assert r.severity == "error" and words in r.body, (text, r.body)
        assert "\n" not in r.body


def tradier_services(svc: Services, api: FakeAPI) -> Services:
    client = TradierClient("tok", env="sandbox", transport=api.transport(), sleep=SleepLog(), policy=RetryPolicy(attempts=1))
    broker = TradierBroker(client, "VA000001")
    return dataclasses.replace(svc, broker_factory=lambda: broker, closers=[])


async def test_tradier_flow_preview_place_fill_journal(svc):
    api = FakeAPI()

    def orders_post(request):
        from urllib.parse import parse_qs

        from tests.providers.fakes import resp

        body = parse_qs(request.content.decode())
        if body.get("preview") == ["true"]:
            return resp(200, fixture("tradier/order_preview.json"))
        assert body["tag"][0].startswith("PV-")  # the preview id travels as the order tag
        return resp(200, fixture("tradier/order_ok.json"))

    api.on("POST", "/v1/accounts/VA000001/orders", orders_post)
    api.on("GET", "/v1/accounts/VA000001/orders/257459", fixture("tradier/order_status_filled.json"))
    svc = tradier_services(svc, api)
    r = await say(svc, ANN, "/order preview AAPL buy 10 limit 186.10")
    assert r.fields[3].value == "tradier sandbox" and r.fields[2].value == "$3.49"
    pid = pid_of(r)
    r = await say(svc, ANN, f"/order place {pid}")
    assert r.data.status == "filled" and r.data.broker_order_id == "257459" and r.data.avg_fill_price == 186.08
    assert [e.tags for e in await entries(svc, ANN)] == [["order"], ["fill"]]
    r = await say(svc, ANN, f"/order status {pid}")
    assert r.data.status == "filled" and len(r.data.fills) == 1
    assert (await say(svc, ANN, "/order preview AAPL buy 1", as_of=OPEN_AT)).body.startswith(
        "orders to tradier sandbox are placed now"
    )


@pytest.mark.parametrize("fill,shown", [(208.44, "208.44"), (208.4, "208.40"), (208.4425, "208.4425")])
async def test_a_broker_fill_keeps_its_cents_in_the_journal_and_the_replies(svc, fill, shown):
    api = FakeAPI()
    filled = fixture("tradier/order_status_filled.json")
    filled["order"].update(price=208.5, avg_fill_price=fill, last_fill_price=fill)
    api.on("POST", "/v1/accounts/VA000001/orders", fixture("tradier/order_preview.json"), fixture("tradier/order_ok.json"))
    api.on("GET", "/v1/accounts/VA000001/orders/257459", filled)
    svc = tradier_services(svc, api)
    r = await say(svc, ANN, "/order preview AAPL buy 10 limit 208.50")
    assert r.title == "Preview: BUY 10 AAPL limit 208.50 day"
    r = await say(svc, ANN, f"/order place {pid_of(r)}")
    assert r.data.avg_fill_price == fill
    assert dict((f.name, f.value) for f in r.fields)["Filled"] == f"10 of 10 @ {shown}"
    fill_entry = (await entries(svc, ANN))[-1]
    assert fill_entry.tags == ["fill"] and f"@ {shown} (" in fill_entry.text
    listing = await say(svc, ANN, "/order list")
    assert f"limit 208.50 @ {shown}" in listing.body


async def test_a_sale_previews_its_proceeds_and_a_buy_its_cost(svc):
    q = await svc.market.quote("TSLA", OPEN_AT)
    short = await say(svc, ANN, "/order preview TSLA sell_short 10")
    got = {f.name: f.value for f in short.fields}
    assert "Est. cost" not in got and got["Est. proceeds"] == f"+${q.bid * 10:,.2f}"
    buy = await say(svc, ANN, "/order preview TSLA buy 10")
    got = {f.name: f.value for f in buy.fields}
    assert "Est. proceeds" not in got and got["Est. cost"] == f"${q.ask * 10:,.2f}"


async def test_a_tradier_sale_shows_proceeds_net_of_fees_whatever_the_sign_of_its_order_cost(svc):
    api = FakeAPI()
    preview = fixture("tradier/order_preview.json")
    preview["order"].update(side="sell", order_cost=-1861.0, cost=-1857.51)
    api.on("POST", "/v1/accounts/VA000001/orders", preview)
    svc = tradier_services(svc, api)
    r = await say(svc, ANN, "/order preview AAPL sell 10 limit 186.10")
    got = {f.name: f.value for f in r.fields}
    assert got["Est. proceeds"] == "+$1,861.00 (after fees $1,857.51)"


async def test_tradier_rejection_is_stored_and_journaled(svc):
    api = FakeAPI()
    api.on("POST", "/v1/accounts/VA000001/orders", fixture("tradier/order_preview.json"), fixture("tradier/order_rejected.json"))
    svc = tradier_services(svc, api)
    pid = pid_of(await say(svc, ANN, "/order preview AAPL buy 10"))
    r = await say(svc, ANN, f"/order place {pid}")
    assert r.severity == "error" and "DayTradingBuyingPowerExceeded" in r.body
    got = await entries(svc, ANN)
    assert got[-1].tags == ["order", "rejected"]
    listing = await say(svc, ANN, "/order list")
    assert listing.data["orders"][0].status == "rejected"


async def test_lost_answer_leaves_placing_then_status_reconciles_by_tag(svc):
    import httpx

    api = FakeAPI()
    api.on("POST", "/v1/accounts/VA000001/orders", fixture("tradier/order_preview.json"), httpx.ReadTimeout("lost"))
    svc = tradier_services(svc, api)
    pid = pid_of(await say(svc, ANN, "/order preview AAPL buy 10"))
    r = await say(svc, ANN, f"/order place {pid}")
    assert r.severity == "warning" and "was not resent" in r.body
    tagged = dict(fixture("tradier/order_status_filled.json")["order"], tag=pid)
    api.on("GET", "/v1/accounts/VA000001/orders", {"orders": {"order": [tagged]}})
    r = await say(svc, ANN, f"/order status {pid}")
    assert r.data.status == "filled" and r.data.broker_order_id == "257459"
    assert [e.tags for e in await entries(svc, ANN)] == [["fill"]]
    assert len(api.calls("/v1/accounts/VA000001/orders")) == 3  # preview, one place (never resent), the lookup


async def test_orders_are_not_llm_tools():
    from bot.app import command_registry

    for name in ("order preview", "order place", "order cancel", "order status"):
        assert command_registry().commands[name].tool is False
