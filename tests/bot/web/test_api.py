"""The HTTP API over a real aiohttp server: keys and scopes, problem+json errors, limits, and the same result as the tools."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from multidict import CIMultiDict
from openapi_spec_validator import validate
from PIL import Image

from bot.agent.tools import ToolBox, _find_tick, compact
from bot.args import ArgsModel
from bot.http_server import HttpServer
from bot.request import Ctx, Identity
from bot.web.api import ApiSurface
from bot.web.openapi import command_path
from core.clock import utc_now
from storage import api_keys
from tests.bot.web.conftest import call, make_key

PROBLEM_KEYS = {"type", "title", "status", "detail"}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"coach_api_max_body": 2048, "coach_rate_per_minute": 30}


def assert_problem(status: int, headers: CIMultiDict[str], body: Any, want: int) -> str:
    assert status == want, body
    assert headers["Content-Type"].startswith("application/problem+json")
    assert PROBLEM_KEYS <= set(body) and body["status"] == want
    assert "Traceback" not in body["detail"] and "\n" not in body["detail"]
    return str(body["detail"])


# ---------------------------------------------------------------------------------------- the document


async def test_openapi_document_is_valid_and_names_every_command(services, api):
    status, headers, doc = await call(api, "/openapi.json", method="GET")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    validate(doc)  # OpenAPI 3.1 (raises on an invalid document)
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": api}]  # no COACH_PUBLIC_URL: the address it was fetched from
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert doc["security"] == [{"bearerAuth": []}]
    ops = {path: item["post"] for path, item in doc["paths"].items()}
    for cmd in services.registry.all():
        op = ops[command_path(cmd)]
        assert op["operationId"] == cmd.tool_name and op["description"].startswith(cmd.summary[:50])
        assert len(op["description"]) <= 300
        assert {"200", "400", "401", "403", "404", "413", "429", "500"} <= set(op["responses"])
    assert len(ops) == len(services.registry.all())
    assert len({op["operationId"] for op in ops.values()}) == len(ops)
    # declared results are real schemas; what acts says so
    plan_result = ops["/api/v1/plan"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["result"]
    assert plan_result == {"$ref": "#/components/schemas/PlanResult"}
    assert ops["/api/v1/alert/add"]["x-coach-scope"] == "act" and ops["/api/v1/quote"]["x-coach-scope"] == "read"
    # CLI-only fields are not offered, and nothing the surfaces use as markers leaks into the schema
    chart_args = doc["components"]["schemas"]["ChartArgs"]["properties"]
    assert "renderer" not in chart_args and "symbol" in chart_args
    assert '"greedy"' not in json.dumps(doc) and '"rare"' not in json.dumps(doc)


async def test_the_server_url_is_the_public_url_when_set(services):
    public = dataclasses.replace(
        services, settings=services.settings.model_copy(update={"coach_public_url": "https://coach.example.com/"})
    )
    server = HttpServer({})
    ApiSurface(public, "127.0.0.1", 0).mount_http(server.app)
    port = await server.start("127.0.0.1", 0)
    try:
        _, _, doc = await call(f"http://127.0.0.1:{port}", "/openapi.json", method="GET")
    finally:
        await server.close()
    assert doc["servers"] == [{"url": "https://coach.example.com"}]


def test_a_light_front_builds_the_same_document_in_a_child_process(services):
    import subprocess
    import sys

    from bot.web.openapi import build_document

    out = subprocess.run([sys.executable, "-m", "bot.web.openapi_dump"], capture_output=True, check=True, timeout=120)
    assert json.loads(out.stdout) == json.loads(json.dumps(build_document(services.registry, server_url="/")))


# ---------------------------------------------------------------------------------------- a real call


@pytest.mark.parametrize("symbol", ["TSLA", "AAPL"])  # on the offline market at OPEN_AT: no setup for TSLA, a plan for AAPL
async def test_plan_answers_the_structured_result_the_coachs_tool_gets(services, api, symbol):
    key = await make_key(services)
    status, headers, body = await call(api, "/api/v1/plan", {"symbol": symbol, "chart": False}, key=key)
    assert status == 200, body
    assert body["ok"] is True and body["command"] == "plan" and body["request_id"] == headers["X-Request-Id"]
    assert body["result"]["symbol"] == symbol and body["sources"] and body["as_of"]

    ctx = Ctx(services=services, identity=Identity(platform="discord", tenant="G1", user="U1"))
    tool = await ToolBox(ctx).run("c1", "plan", {"symbol": symbol, "chart": False})
    assert tool.ok and tool.reply is not None
    via_tool = tool.reply.data_json()
    assert (via_tool["plan"] is None) == (symbol == "TSLA")
    assert body["result"] == via_tool
    # what the model read is this result, compacted for a prompt
    assert json.loads(tool.content)["result"] == compact(body["result"], _find_tick(body["result"]))

    # and the result is what the document promises
    _, _, doc = await call(api, "/openapi.json", method="GET")
    schema = {"$ref": "#/components/schemas/PlanResult", "components": doc["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body["result"]), key=str)
    assert not errors, errors[0]


async def test_chart_images_come_back_as_base64_png_when_asked(services, api):
    key = await make_key(services)
    status, _, body = await call(api, "/api/v1/chart?images=true", {"symbol": "TSLA", "interval": "5m,1h"}, key=key)
    assert status == 200, body
    assert [img["mime"] for img in body["images"]] == ["image/png", "image/png"]
    for img in body["images"]:
        png = base64.b64decode(img["base64"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(io.BytesIO(png)).size[0] >= 800
        assert img["filename"].endswith(".png") and "TSLA" in img["filename"]
    # without the flag: the same result and no images (they are large)
    status, _, plain = await call(api, "/api/v1/chart", {"symbol": "TSLA", "interval": "5m,1h"}, key=key)
    assert status == 200 and "images" not in plain and plain["result"] == body["result"]
    # a reply without images answers an empty list
    status, _, quote = await call(api, "/api/v1/quote?images=1", {"symbol": "TSLA"}, key=key)
    assert status == 200 and quote["images"] == []
    # the flag is documented on every operation, and its answer in the 200 schema
    _, _, doc = await call(api, "/openapi.json", method="GET")
    op = doc["paths"]["/api/v1/chart"]["post"]
    assert [p["name"] for p in op["parameters"]] == ["images"]
    assert "images" in op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    detail = assert_problem(*(await call(api, "/api/v1/chart?images=maybe", {"symbol": "TSLA"}, key=key)), 400)
    assert detail.startswith("images must be true or false")


async def test_a_key_acts_as_its_person(services, api):
    writer = await make_key(services, scope="act", name="writer")
    status, _, body = await call(api, "/api/v1/watch/add", {"symbols": ["TSLA", "NVDA"]}, key=writer)
    assert status == 200 and body["result"]["watchlist"] == ["TSLA", "NVDA"]
    # another person's key sees their own (empty) list; the same person's read key sees theirs
    other = await make_key(services, name="other", user="U2")
    assert (await call(api, "/api/v1/watch/list", {}, key=other))[2]["result"]["watchlist"] == []
    reader = await make_key(services, name="reader")
    status, _, body = await call(api, "/api/v1/watch/list", None, key=reader)
    assert status == 200 and body["result"]["watchlist"] == ["TSLA", "NVDA"]


async def test_a_command_that_refuses_answers_422_with_its_line(services, api):
    key = await make_key(services)
    status, headers, body = await call(api, "/api/v1/journal/show", {"id": 999}, key=key)
    detail = assert_problem(status, headers, body, 422)
    assert "999" in detail and body["request_id"] == headers["X-Request-Id"]


# ---------------------------------------------------------------------------------------- keys and scopes


async def test_missing_wrong_and_revoked_keys_are_401(services, api):
    status, headers, body = await call(api, "/api/v1/quote", {"symbol": "TSLA"})
    assert "Authorization: Bearer" in assert_problem(status, headers, body, 401)
    assert headers["WWW-Authenticate"].startswith("Bearer")
    key = await make_key(services)
    prefix, secret = key.rsplit("_", 1)
    wrong = prefix + "_" + ("A" if secret[0] != "A" else "B") + secret[1:]
    for bad in (wrong, "coach_00000000_" + secret, "not-a-key", key + "x"):
        status, headers, body = await call(api, "/api/v1/quote", {"symbol": "TSLA"}, key=bad)
        assert "wrong or revoked" in assert_problem(status, headers, body, 401)
    assert (await call(api, "/api/v1/quote", {"symbol": "TSLA"}, key=key))[0] == 200
    async with services.db() as s, s.begin():
        await api_keys.revoke_key(s, "k", utc_now())
    status, headers, body = await call(api, "/api/v1/quote", {"symbol": "TSLA"}, key=key)
    assert_problem(status, headers, body, 401)


async def test_commands_that_act_need_the_act_scope(services, api):
    reader = await make_key(services, name="reader")
    for path, body in (
        ("/api/v1/watch/add", {"symbols": ["TSLA"]}),
        ("/api/v1/alert/add", {"symbol": "TSLA", "kind": "above", "value": 500}),
        ("/api/v1/order/place", {"order": "PV-1A2B3C4D"}),
        ("/api/v1/risk", {"account_size": 25000}),  # showing is reading; setting acts
    ):
        status, headers, got = await call(api, path, body, key=reader)
        assert "--scope act" in assert_problem(status, headers, got, 403), path
    assert (await call(api, "/api/v1/risk", {}, key=reader))[0] == 200
    writer = await make_key(services, scope="act", name="writer")
    status, _, got = await call(api, "/api/v1/risk", {"account_size": 25000, "risk_pct": 1}, key=writer)
    assert status == 200, got
    status, headers, got = await call(api, "/api/v1/diag", {}, key=writer)
    assert "admins only" in assert_problem(status, headers, got, 403)
    admin = await make_key(services, name="admin", admin=True)
    assert (await call(api, "/api/v1/diag", {}, key=admin))[0] == 200


# ---------------------------------------------------------------------------------------- bad requests


async def test_bad_bodies_are_400_saying_what_is_accepted(services, api):
    key = await make_key(services)
    cases = {
        "not json": (b"{symbol: TSLA", "not valid JSON"),
        "an array": (b'["TSLA"]', "JSON list"),
        "unknown field": (b'{"symbol": "TSLA", "colour": "red"}', "unknown field 'colour' for plan; accepted: symbol (required)"),
        "missing": (b"{}", "missing field 'symbol'; accepted: symbol (required), style, chart"),
        "bad value": (b'{"symbol": "TSLA", "style": "yolo"}', "style:"),
        "bad symbol": (b'{"symbol": "TSLA!"}', "invalid symbol 'TSLA!'"),
        "bad interval": (b'{"symbol": "TSLA", "interval": "7m"}', "7m"),
        "cli only": (b'{"symbol": "TSLA", "renderer": "fast"}', "unknown field 'renderer'"),
    }
    for label, (raw, want) in cases.items():
        path = "/api/v1/chart" if label in ("cli only", "bad interval") else "/api/v1/plan"
        status, headers, body = await call(api, path, key=key, raw=raw)
        assert want in assert_problem(status, headers, body, 400), label
    status, headers, body = await call(api, "/api/v1/size", {"symbol": "TSLA", "entry": 250, "stop": float("nan")}, key=key)
    assert "stop" in assert_problem(status, headers, body, 400)


async def test_unknown_commands_methods_and_big_bodies(services, api):
    key = await make_key(services)
    status, headers, body = await call(api, "/api/v1/drop_tables", {}, key=key)
    assert "openapi.json" in assert_problem(status, headers, body, 404)
    assert_problem(*(await call(api, "/api/v1/alert/nothing", {}, key=key)), 404)
    status, headers, body = await call(api, "/api/v1/quote", method="GET", key=key)
    assert_problem(status, headers, body, 405)
    big = json.dumps({"symbol": "TSLA", "note": "x" * 5000}).encode()
    status, headers, body = await call(api, "/api/v1/plan", key=key, raw=big)
    assert "2,048" in assert_problem(status, headers, body, 413)

    async def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(10):
            yield b" " * 1000

    async with (
        aiohttp.ClientSession() as http,
        http.post(api + "/api/v1/plan", data=chunks(), headers={"Authorization": f"Bearer {key}"}) as r,
    ):
        assert r.status == 413 and (await r.json())["status"] == 413


async def test_rate_limit_is_the_persons_chat_bucket_and_says_when(services, api):
    svc = services
    svc.pipeline.limiter.capacity = 2.0  # a burst of two, as COACH_RATE_PER_MINUTE=2 would give
    key = await make_key(svc)
    for _ in range(2):
        assert (await call(api, "/api/v1/session", {}, key=key))[0] == 200
    status, headers, body = await call(api, "/api/v1/session", {}, key=key)
    assert_problem(status, headers, body, 429)
    assert int(headers["Retry-After"]) >= 1 and body["retry_after"] == int(headers["Retry-After"])
    # the same bucket as the person's chat requests
    assert await svc.pipeline.limiter.acquire(("discord", "G1", "U1")) > 0
    assert await svc.pipeline.limiter.acquire(("discord", "G1", "U9")) == 0


async def test_a_person_with_requests_running_is_asked_to_wait(services, api):
    key = await make_key(services)
    inflight = services.executor.inflight
    inflight.per_user = 1
    person = Identity(platform="discord", tenant="G1", user="U1")
    inflight.start(person)  # one of their requests is still running (from chat or the API: the same count)
    try:
        status, headers, body = await call(api, "/api/v1/session", {}, key=key)
        assert "1 request running" in assert_problem(status, headers, body, 429)
        assert headers["Retry-After"] == "2" and body["request_id"] == headers["X-Request-Id"]
    finally:
        inflight.finish(person)
    assert (await call(api, "/api/v1/session", {}, key=key))[0] == 200


async def test_a_bug_answers_500_with_the_request_id_only(services, api):
    class Nothing(ArgsModel):
        pass

    @services.registry.command("explode", "Fails on purpose.", Nothing)
    async def explode(ctx, a):
        raise RuntimeError("secret=hunter2 at /srv/coach/bot.py line 12")

    key = await make_key(services)
    status, headers, body = await call(api, "/api/v1/explode", {}, key=key)
    detail = assert_problem(status, headers, body, 500)
    ref = headers["X-Request-Id"]
    assert detail == f"something went wrong (ref {ref})" and body["request_id"] == ref
    assert "hunter2" not in json.dumps(body)


async def test_the_surface_builds_the_document_when_serve_starts(services):
    import asyncio

    surface = ApiSurface(services, "127.0.0.1", 0)
    task = asyncio.create_task(surface.run())
    try:
        async with asyncio.timeout(60):
            while surface.api._document is None:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert len(surface.api._document["paths"]) == len(services.registry.all())
