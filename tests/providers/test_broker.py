"""Brokers: the paper broker on the offline market, Tradier against documented order payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from core.errors import ConfigError, UserError
from providers.broker.base import Broker, OrderRejected, OrderRequest, parse_occ
from providers.broker.paper import PaperBroker
from providers.broker.tradier import TradierBroker
from providers.http import RetryPolicy
from providers.sim import SimMarket
from providers.tradier import TradierClient
from tests.providers.fakes import FakeAPI, SleepLog, fixture, resp

OPEN = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)
CLOSED = datetime(2024, 3, 16, 15, 0, tzinfo=UTC)  # a Saturday


def eq(**kw) -> OrderRequest:
    return OrderRequest(**{"asset_class": "equity", "symbol": "TSLA", "side": "buy", "quantity": 10, **kw})


# ---------------------------------------------------------------- requests


def test_order_requests_validate_sides_prices_and_occ():
    assert eq(type="limit", price=180.5).form() == {
        "class": "equity",
        "symbol": "TSLA",
        "side": "buy",
        "quantity": "10",
        "type": "limit",
        "duration": "day",
        "price": "180.50",
    }
    opt = OrderRequest(
        asset_class="option",
        symbol="SPY",
        option_symbol="SPY190329C00274000",
        side="buy_to_open",
        quantity=1,
        type="limit",
        price=1.0,
    )
    assert opt.form()["option_symbol"] == "SPY190329C00274000" and opt.form()["class"] == "option" and opt.multiplier == 100
    for bad in (
        dict(side="buy_to_open"),
        dict(type="limit"),
        dict(type="stop"),
        dict(type="market", price=1.0),
        dict(quantity=0),
        dict(tag="no spaces allowed"),
    ):
        with pytest.raises(ValueError):
            eq(**bad)
    with pytest.raises(ValueError, match="not on SPY"):
        OrderRequest(asset_class="option", symbol="SPY", option_symbol="QQQ190329C00274000", side="buy_to_open", quantity=1)
    assert parse_occ("TSLA240119P00290000")[1:] == (datetime(2024, 1, 19).date(), "put", 290.0)
    with pytest.raises(UserError):
        parse_occ("TSLA241319P00290000")


# ---------------------------------------------------------------- paper


async def test_paper_market_order_fills_at_the_ask_and_sell_at_the_bid():
    sim = SimMarket(seed=0, now=lambda: OPEN)
    pb = PaperBroker(sim, clock=lambda: OPEN)
    assert isinstance(pb, Broker)
    q = await sim.quote("TSLA", OPEN)
    pv = await pb.preview(eq())
    assert pv.marketable and pv.price == q.ask and pv.estimated_cost == round(q.ask * 10, 2)
    st = await pb.place(eq())
    assert st.status == "filled" and st.filled_quantity == 10 and st.avg_fill_price == q.ask
    st = await pb.place(eq(side="sell"))
    assert st.avg_fill_price == q.bid


async def test_paper_limits_rest_until_marketable_and_stops_trigger_on_last():
    sim = SimMarket(seed=0, now=lambda: OPEN)
    pb = PaperBroker(sim, clock=lambda: OPEN)
    q = await sim.quote("TSLA", OPEN)
    low = eq(type="limit", price=round(q.ask * 0.9, 2))
    pv = await pb.preview(low)
    assert not pv.marketable and any("rest open" in w for w in pv.warnings)
    st = await pb.place(low)
    assert st.status == "open" and st.filled_quantity == 0
    through = eq(type="limit", price=round(q.ask + 1, 2))
    st = await pb.place(through)
    assert st.status == "filled" and st.avg_fill_price == q.ask  # at the touch, better than the limit
    assert (await pb.place(eq(type="stop", stop=round(q.last * 1.1, 2)))).status == "open"
    assert (await pb.place(eq(type="stop", stop=round(q.last * 0.9, 2)))).status == "filled"


async def test_paper_orders_rest_while_the_market_is_closed():
    sim = SimMarket(seed=0, now=lambda: CLOSED)
    pb = PaperBroker(sim, clock=lambda: CLOSED)
    pv = await pb.preview(eq())
    assert not pv.marketable and "closed" in pv.warnings[0]
    assert (await pb.place(eq())).status == "open"


async def test_paper_option_fills_against_the_contract_quote():
    sim = SimMarket(seed=0, now=lambda: OPEN)
    exp = (await sim.expirations("SPY", OPEN))[1]
    chain = await sim.chain("SPY", exp, OPEN)
    c = min(chain.contracts, key=lambda c: abs(c.strike - chain.underlying_price))
    req = OrderRequest(asset_class="option", symbol="SPY", option_symbol=c.symbol, side="buy_to_open", quantity=2)
    pb = PaperBroker(sim, clock=lambda: OPEN)
    pv = await pb.preview(req)
    assert pv.price == c.ask and pv.estimated_cost == round(c.ask * 2 * 100, 2)
    st = await pb.place(req)
    assert st.status == "filled" and st.avg_fill_price == c.ask


# ---------------------------------------------------------------- tradier


def broker(api: FakeAPI, account: str | None = "VA000001", env: str = "sandbox") -> TradierBroker:
    client = TradierClient("tok_SECRET", env=env, transport=api.transport(), sleep=SleepLog(), policy=RetryPolicy(attempts=2))
    return TradierBroker(client, account)


def form(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


async def test_tradier_preview_sends_form_fields_with_preview_flag():
    api = FakeAPI().on("POST", "/v1/accounts/VA000001/orders", fixture("tradier/order_preview.json"))
    tb = broker(api)
    pv = await tb.preview(eq(symbol="T", quantity=1, tag="PV-1A2B3C4D"))
    req = api.requests[0]
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(req) == {
        "class": "equity",
        "symbol": "T",
        "side": "buy",
        "quantity": "1",
        "type": "market",
        "duration": "day",
        "tag": "PV-1A2B3C4D",
        "preview": "true",
    }
    assert req.url.host == "sandbox.tradier.com"
    assert (pv.estimated_cost, pv.commission, pv.broker) == (31.23, 3.49, "tradier sandbox")
    assert pv.details["day_trades"] == 3


async def test_tradier_production_preview_warns_it_is_live():
    api = FakeAPI().on("POST", "/v1/accounts/VA000001/orders", fixture("tradier/order_preview.json"))
    pv = await broker(api, env="production").preview(eq(symbol="T", quantity=1))
    assert any("LIVE" in w for w in pv.warnings) and pv.broker == "tradier"


@pytest.mark.parametrize(
    "payload,words",
    [
        (fixture("tradier/order_rejected.json"), "DayTradingBuyingPowerExceeded"),
        (fixture("tradier/order_rejected_list.json"), "IncorrectOrderQuantity; AccountIsNotApproved"),
    ],
)
async def test_tradier_refusals_inside_200_are_rejections(payload, words):
    api = FakeAPI().on("POST", "/v1/accounts/VA000001/orders", payload)
    with pytest.raises(OrderRejected) as ei:
        await broker(api).place(eq())
    assert str(ei.value) == f"tradier sandbox rejected the order: {words}"
    assert len(api.requests) == 1


async def test_tradier_place_then_reads_real_status_and_fills():
    api = FakeAPI().on("POST", "/v1/accounts/VA000001/orders", fixture("tradier/order_ok.json"))
    api.on("GET", "/v1/accounts/VA000001/orders/257459", fixture("tradier/order_status_filled.json"))
    st = await broker(api).place(eq(symbol="AAPL", type="limit", price=186.1))
    assert st.broker_order_id == "257459" and st.status == "filled"
    assert st.filled_quantity == 10 and st.avg_fill_price == 186.08
    assert st.fills[0].at == datetime(2024, 3, 13, 15, 0, 2, tzinfo=UTC)
    assert api.requests[1].url.params["includeTags"] == "true"


async def test_tradier_place_is_never_resent_after_a_lost_answer():
    import httpx

    api = FakeAPI().on("POST", "/v1/accounts/VA000001/orders", httpx.ReadTimeout("lost"), fixture("tradier/order_ok.json"))
    with pytest.raises(Exception) as ei:
        await broker(api).place(eq())
    assert "timed out" in str(ei.value)
    assert len(api.calls("/v1/accounts/VA000001/orders")) == 1


async def test_tradier_cancel_then_status_and_find_by_tag():
    api = FakeAPI().on("DELETE", "/v1/accounts/VA000001/orders/257459", fixture("tradier/order_cancel.json"))
    canceled = dict(fixture("tradier/order_status_open.json")["order"], status="canceled")
    api.on("GET", "/v1/accounts/VA000001/orders/257459", {"order": canceled})
    tagged = dict(fixture("tradier/order_status_open.json")["order"], tag="PV-1A2B3C4D")
    api.on("GET", "/v1/accounts/VA000001/orders", {"orders": {"order": tagged}})  # one order: an object, not a list
    tb = broker(api)
    st = await tb.cancel("257459", eq())
    assert st.status == "cancelled"
    found = await tb.find_by_tag("PV-1A2B3C4D")
    assert found is not None and found.broker_order_id == "257459" and found.status == "open"
    assert await tb.find_by_tag("PV-FFFFFFFF") is None


async def test_tradier_account_from_the_profile_or_a_clear_config_error():
    api = FakeAPI().on("GET", "/v1/user/profile", fixture("tradier/profile.json"))
    tb = broker(api, account=None)
    assert await tb.account() == "VA000001"
    two = fixture("tradier/profile.json")
    acct = two["profile"]["account"]
    two["profile"]["account"] = [acct, dict(acct, account_number="VA000002")]
    api2 = FakeAPI().on("GET", "/v1/user/profile", two)
    with pytest.raises(ConfigError, match="set TRADIER_ACCOUNT_ID: this token has 2 accounts"):
        await broker(api2, account=None).account()


async def test_tradier_bad_request_body_is_a_rejection_with_its_message():
    api = FakeAPI().on("POST", "/v1/accounts/VA000001/orders", resp(400, "Invalid Parameter: quantity"))
    with pytest.raises(OrderRejected, match="Invalid Parameter: quantity"):
        await broker(api).preview(eq())
