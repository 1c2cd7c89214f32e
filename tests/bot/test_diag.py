"""/diag: the operator's view in chat, admins only, from what the service keeps (providers, feed, outbox, LLM use)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from bot import metrics
from bot.market_setup import observe_router
from bot.pipeline import Invocation
from bot.request import Identity
from bot.services import Later
from core.errors import ProviderError
from providers.router import MarketRouter
from storage import conversations
from storage.runtime_state import put_state


class Flaky:
    """A provider whose quotes always fail the way an overloaded upstream does."""

    name = "flaky"

    async def quote(self, symbol: str, at: datetime | None = None):
        raise ProviderError("flaky", "HTTP 503 from upstream")

    async def bars(self, symbol: str, interval: str, start: datetime, end: datetime):
        raise ProviderError("flaky", "HTTP 503 from upstream")


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_diag_shows_providers_feed_outbox_and_tokens_to_admins_only(services) -> None:
    sim = services.market
    router = observe_router(MarketRouter({"quote": [Flaky(), sim], "bars": [sim], "expirations": [sim], "chain": [sim]}))
    services = dataclasses.replace(services, market_part=Later.of(router))
    admin = Identity(platform="discord", tenant="g1", user="u1", is_admin=True)
    fell_back = _sample("coach_provider_fallbacks_total", provider="flaky", kind="quote")
    failed_calls = _sample("coach_provider_request_seconds_count", provider="flaky", kind="quote", outcome="error")

    quote = await services.pipeline.handle(services.pipeline.request(services, admin), Invocation.line("/quote TSLA"))
    assert quote.error_kind is None, quote.body
    assert _sample("coach_provider_fallbacks_total", provider="flaky", kind="quote") == fell_back + 1
    assert _sample("coach_provider_request_seconds_count", provider="flaky", kind="quote", outcome="error") == failed_calls + 1

    async with services.db() as s, s.begin():
        await put_state(s, "runtime:feed", {"source": "sim", "state": "live", "lag_s": 2.0})
    ctx = services.pipeline.request(services, admin)
    async with ctx.tx() as s:
        await conversations.add_usage(s, await ctx.owner(s), datetime.now().date(), 1200, 300)

    reply = await services.pipeline.handle(services.pipeline.request(services, admin), Invocation.line("/diag"))
    assert reply.error_kind is None, reply.body
    data = reply.data
    [flaky] = [p for p in data["providers"] if p["provider"] == "flaky"]
    assert flaky["last_error"] == "HTTP 503 from upstream" and flaky["errors"] == 1 and flaky["circuit"] == "closed"
    [served] = [p for p in data["providers"] if p["provider"] == sim.name]
    assert served["last_ms"] is not None and served["errors"] == 0
    assert data["feed"]["state"] == "live" and data["outbox"] == {"pending": 0, "failed": 0}
    assert data["llm_tokens_today"] == {"prompt": 1200, "completion": 300}
    assert data["version"] and data["uptime_s"] >= 0
    shown = {f.name: f.value for f in reply.fields}
    assert shown["Feed"] == "sim: live, last tick 2 s ago" and shown["LLM tokens today"].startswith("1,500")
    assert "flaky: closed" in reply.body and "HTTP 503" in reply.body

    someone = Identity(platform="discord", tenant="g1", user="u2")
    refused = await services.pipeline.handle(services.pipeline.request(services, someone), Invocation.line("/diag"))
    assert refused.error_kind is not None and "admins only" in refused.body
    assert metrics.outcome_of(refused.error_kind) != "ok"
