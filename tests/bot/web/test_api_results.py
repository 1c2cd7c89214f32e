"""Every result model a command declares is what its answer holds: each declared command, called over HTTP, validates
against its own operation's schema in /openapi.json."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bot.app import command_registry
from tests.bot.web.conftest import call, make_key


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"coach_rate_per_minute": 600}


def result_errors(doc: dict[str, Any], path: str, result: Any) -> list[str]:
    schema = doc["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["result"]
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(result)]


async def test_every_declared_result_is_what_the_command_answers(services, api):
    key = await make_key(services, scope="act", admin=True)
    _, _, doc = await call(api, "/openapi.json", method="GET")
    checked: dict[str, Any] = {}

    async def ask(path: str, body: dict[str, Any]) -> Any:
        status, _, answer = await call(api, path, body, key=key)
        assert status == 200, (path, answer)
        errors = result_errors(doc, path, answer["result"])
        assert not errors, (path, errors[:3])
        checked[path] = answer["result"]
        return answer["result"]

    last = (await ask("/api/v1/quote", {"symbol": "AAPL"}))["last"]
    plan = (await ask("/api/v1/plan", {"symbol": "AAPL", "chart": False}))["plan"]
    assert plan is not None, "AAPL has a plan at the test clock"
    pid = plan["plan_id"]
    targets = [t["price"] for t in plan["targets"]]
    await ask("/api/v1/plan/validate", {"symbol": "AAPL", "entry": plan["entry"], "stop": plan["stop"], "targets": targets})
    await ask("/api/v1/scan", {"universe": ["AAPL", "MSFT", "NVDA"], "style": "swing", "limit": 3})
    await ask("/api/v1/chart", {"symbol": "AAPL", "interval": "5m"})
    await ask("/api/v1/context", {"symbol": "AAPL"})
    await ask("/api/v1/vol", {"symbol": "SPY"})
    await ask("/api/v1/contracts", {"symbol": pid})
    await ask("/api/v1/size", {"symbol": "AAPL", "entry": plan["entry"], "stop": plan["stop"], "risk": 250})
    alert = await ask("/api/v1/alert/add", {"symbol": "AAPL", "kind": "above", "value": round(last * 1.05, 2)})
    await ask("/api/v1/alert/edit", {"id": alert["id"], "value": round(last * 1.06, 2)})
    await ask("/api/v1/alerts/status", {})
    await ask("/api/v1/settings/show", {})
    await ask("/api/v1/settings/alerts", {"enabled": True})
    await ask("/api/v1/settings/types", {"types": ["price", "plan"]})
    await ask("/api/v1/settings/route", {"route": "channel"})
    await ask("/api/v1/track", {"plan_id": pid})
    entry = await ask("/api/v1/journal/add", {"text": "AAPL waited for the retest #patience"})
    await ask("/api/v1/journal/list", {})
    await ask("/api/v1/journal/show", {"id": entry["id"]})
    await ask("/api/v1/journal/edit", {"id": entry["id"], "text": "AAPL waited for the retest, held to T1"})
    await ask(
        "/api/v1/order/preview", {"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "limit", "price": round(last * 0.97, 2)}
    )
    status, _, _ = await call(api, "/api/v1/risk", {"account_size": 50000, "risk_pct": 1}, key=key)
    assert status == 200
    await ask("/api/v1/order/plan", {"plan": pid})
    await ask("/api/v1/positions", {})
    await ask("/api/v1/portfolio", {"chart": False})
    await ask("/api/v1/backtest", {"symbols": ["SPY"], "strategy": "orb", "days": 2})
    await ask("/api/v1/scorecard", {})

    # every command that declares a result was called above
    from bot.web.openapi import command_path

    declared = {command_path(c) for c in command_registry().commands.values() if c.result}
    assert declared == set(checked), declared ^ set(checked)
