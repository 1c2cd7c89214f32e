"""Dispatch: replies for every kind of failure, identity from the context, the console renderer."""

from __future__ import annotations

import io
import logging

from bot.app import rebase
from bot.args import ArgsModel
from bot.registry import Registry
from bot.reply import Reply
from bot.request import Ctx, Identity
from bot.surfaces.console import chat, render_text
from core.errors import ProviderError
from tests.conftest import run_text


class NoArgs(ArgsModel):
    pass


ME = Identity(platform="discord", tenant="G1", user="U1")
OTHER = Identity(platform="discord", tenant="G1", user="U2")


async def test_bug_becomes_reference_reply(services, caplog):
    reg = Registry()

    async def boom(ctx, a):
        raise RuntimeError("secret internals")

    async def upstream(ctx, a):
        raise ProviderError("polygon", "403 not entitled")

    reg.command("boom", "Fails.", NoArgs)(boom)
    reg.command("up", "Upstream.", NoArgs)(upstream)
    ctx = Ctx(services=services, identity=ME)
    with caplog.at_level(logging.ERROR):
        r = await run_text(ctx, "/boom", registry=reg)
    assert r.severity == "error" and f"ref {ctx.request_id}" in r.body
    assert "secret internals" not in r.body
    r2 = await run_text(ctx, "/up", registry=reg)
    assert "polygon" in r2.body and "403" in r2.body


async def test_watch_commands_are_scoped_to_identity(services):
    await run_text(Ctx(services=services, identity=ME), "/watch add TSLA AAPL")
    await run_text(Ctx(services=services, identity=OTHER), "/watch add SPY")
    mine = await run_text(Ctx(services=services, identity=ME), "/watch list")
    theirs = await run_text(Ctx(services=services, identity=OTHER), "/watch list")
    assert mine.data["watchlist"] == ["TSLA", "AAPL"] and theirs.data["watchlist"] == ["SPY"]


async def test_text_edge_cases(services):
    ctx = Ctx(services=services, identity=ME)
    assert (await run_text(ctx, "")).severity == "error"
    assert "too long" in (await run_text(ctx, "/quote " + "A" * 20000)).body
    assert (await run_text(ctx, "/nope")).body.startswith("unknown command")
    r = await run_text(ctx, "/quote TSLA")
    assert r.data.symbol == "TSLA" and r.sources == ["quote: sim"]


async def test_console_chat_saves_images(services, tmp_path):
    reg_reply = Reply(title="t", body="b")
    assert "t\nb" in render_text(reg_reply)
    out = io.StringIO()
    n = await chat(services, stdin=io.StringIO("/session\n# comment\n\n/quote NVDA\nquit\n/quote TSLA\n"), stdout=out)
    assert n == 2
    text = out.getvalue()
    assert "NYSE open" in text and "NVDA" in text and "TSLA" not in text.split("NVDA", 1)[0]


async def test_apostrophe_in_free_text_command(services):
    cmd, args = services.pipeline.parse_line("/ask what's the IV on NVDA?")
    assert cmd.name == "ask" and "what's" in args.model_dump()["text"]
    ctx = Ctx(services=services, identity=ME)
    r = await run_text(ctx, "/quote 'TSLA")
    assert "unbalanced quotes" in r.body


async def test_provider_that_cannot_serve_says_so_instead_of_try_again(services):
    """A Tradier sandbox token as the only provider: quotes are not served, and retrying will not change that."""

    from providers.http import RetryPolicy
    from providers.tradier import TradierClient, TradierMarket
    from tests.providers.fakes import FakeAPI, SleepLog, resp

    def tradier(env: str, api: FakeAPI) -> TradierMarket:
        client = TradierClient("tok_SECRET", env=env, transport=api.transport(), sleep=SleepLog(), policy=RetryPolicy(attempts=2))
        return TradierMarket(client, clock=services.clock)

    sandbox = rebase(services, market=tradier("sandbox", FakeAPI()), clock=services.clock)
    r = await run_text(Ctx(services=sandbox, identity=ME), "/quote TSLA")
    assert r.severity == "error" and "sandbox quotes unavailable" in r.body
    assert "Try again" not in r.body and "will not help" in r.body and "tok_SECRET" not in r.body

    down = FakeAPI().on("GET", "/v1/markets/quotes", resp(503, "Service Unavailable"))
    r2 = await run_text(
        Ctx(services=rebase(services, market=tradier("production", down), clock=services.clock), identity=ME), "/quote TSLA"
    )
    assert r2.severity == "error" and "Try again shortly" in r2.body and "503" in r2.body
