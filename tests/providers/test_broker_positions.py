"""Tradier positions: the documented answer (list, single object, "null") in sandbox and production."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from providers.broker.tradier import TradierBroker
from providers.http import RetryPolicy
from providers.tradier import PRODUCTION_URL, SANDBOX_URL, TradierClient
from tests.providers.fakes import FakeAPI, SleepLog, fixture


def broker(api: FakeAPI, env: str) -> TradierBroker:
    client = TradierClient("tok_SECRET", env=env, transport=api.transport(), sleep=SleepLog(), policy=RetryPolicy(attempts=2))
    return TradierBroker(client, "VA000001")


@pytest.mark.parametrize(("env", "host"), [("sandbox", SANDBOX_URL), ("production", PRODUCTION_URL)])
async def test_positions_list_with_shorts_and_options(env, host):
    api = FakeAPI().on("GET", "/v1/accounts/VA000001/positions", fixture("tradier/positions.json"))
    got = await broker(api, env).positions()
    (req,) = api.calls("/v1/accounts/VA000001/positions")
    assert str(req.url).startswith(host) and req.headers["accept"] == "application/json"
    assert [(p.symbol, p.quantity, p.cost_basis) for p in got] == [
        ("IBM", 13.0, 1772.54),
        ("MSFT", 3.0, 338.64),
        ("AMD", -10.0, -1900.0),
        ("SPY240419C00500000", 2.0, 430.0),
    ]
    ibm, _msft, amd, spy = got
    assert ibm.avg_cost == pytest.approx(1772.54 / 13) and ibm.acquired_at == datetime(2018, 6, 5, 13, 45, 12, 385000, tzinfo=UTC)
    assert amd.avg_cost == pytest.approx(190.0)  # short: negative cost over negative quantity
    assert spy.is_option and spy.avg_cost == pytest.approx(2.15)  # premium per share: 430 / (2 x 100)


async def test_one_position_comes_as_an_object_and_none_as_null():
    api = FakeAPI().on("GET", "/v1/accounts/VA000001/positions", fixture("tradier/positions_single.json"))
    (one,) = await broker(api, "sandbox").positions()
    assert (one.symbol, one.quantity, one.avg_cost) == ("AAPL", 1.0, 207.01)
    api = FakeAPI().on("GET", "/v1/accounts/VA000001/positions", fixture("tradier/positions_null.json"))
    assert await broker(api, "sandbox").positions() == []
    api = FakeAPI().on("GET", "/v1/accounts/VA000001/positions", {"positions": None})
    assert await broker(api, "production").positions() == []
