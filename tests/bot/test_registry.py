"""The registry: text parsing, argument specs, tool schemas, resolution and error lines."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

from bot.app import command_registry
from bot.args import ArgsModel, IntervalArg, StyleArg, SymbolArg, SymbolsArg
from bot.registry import Registry
from bot.reply import Reply
from core.errors import UserError


def parse_text(cmd, text: str):
    """The argument model the request pipeline reads from `/<cmd> text`."""
    from bot.pipeline import Pipeline
    from bot.ratelimit import RateLimiter
    from bot.registry import Registry

    return Pipeline(Registry(commands={cmd.name: cmd}), RateLimiter(30)).parse_line(f"/{cmd.name} {text}")[1]


class DemoArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker")
    style: StyleArg = Field("intraday", description="style")
    interval: IntervalArg = Field("5m", description="interval")
    risk: float | None = Field(None, gt=0, le=1_000_000, description="risk in dollars")
    chart: bool = Field(True, description="attach a chart")


class NoteArgs(ArgsModel):
    symbol: SymbolArg
    text: str = Field(json_schema_extra={"greedy": True}, description="the note")


class ScanArgs(ArgsModel):
    symbols: SymbolsArg = Field(default_factory=list)
    style: Literal["scalp", "swing"] = "swing"


@pytest.fixture
def reg() -> Registry:
    r = Registry()

    async def h(ctx, a):
        return Reply(title="ok", data=a)

    r.command("demo", "A demo.", DemoArgs)(h)
    r.command("note add", "Add a note.", NoteArgs)(h)
    r.command("note list", "List notes.", ArgsModel)(h)
    r.command("scan", "Scan.", ScanArgs)(h)
    return r


def test_positional_keyword_and_flags(reg):
    cmd = reg.commands["demo"]
    a = parse_text(cmd, "tsla swing 15min --risk 250 --no-chart")
    assert (a.symbol, a.style, a.interval, a.risk, a.chart) == ("TSLA", "swing", "15m", 250.0, False)
    b = parse_text(cmd, "NVDA interval=1h risk=100")
    assert (b.symbol, b.style, b.interval, b.risk) == ("NVDA", "intraday", "1h", 100.0)
    c = parse_text(cmd, "SPY --style=scalp")
    assert c.style == "scalp" and c.chart is True


@pytest.mark.parametrize(
    "text,needle",
    [
        ("", "missing symbol"),
        ("TS;LA", "invalid symbol"),
        ("TSLA weekly", "style"),
        ("TSLA swing 7m", "unknown interval"),
        ("TSLA --risk -5", "risk"),
        ("TSLA --risk 1e12", "risk"),
        ("TSLA --bogus 1", "unknown option"),
        ("TSLA swing 5m extra words", "unexpected"),
        ('TSLA "unbalanced', "unbalanced quotes"),
        ("TSLA --risk", "needs a value"),
    ],
)
def test_bad_input_is_one_line_user_error(reg, text, needle):
    with pytest.raises(UserError) as ei:
        parse_text(reg.commands["demo"], text)
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg
    assert len(msg) < 300


def test_greedy_text_and_lists(reg):
    n = parse_text(reg.commands["note add"], "tsla took the ORB long, felt good")
    assert n.symbol == "TSLA" and n.text == "took the ORB long, felt good"
    s = parse_text(reg.commands["scan"], "aapl,msft nvda")
    assert s.symbols == ["AAPL", "MSFT", "NVDA"] and s.style == "swing"
    s3 = parse_text(reg.commands["scan"], "AAPL MSFT scalp")
    assert s3.symbols == ["AAPL", "MSFT"] and s3.style == "scalp"
    s2 = parse_text(reg.commands["scan"], "--style scalp")
    assert s2.symbols == [] and s2.style == "scalp"
    with pytest.raises(UserError, match="invalid symbol"):
        parse_text(reg.commands["scan"], "AAPL B;AD")


def test_resolve_groups(reg):
    cmd, rest = reg.resolve(["/note", "add", "TSLA", "hi"])
    assert cmd.name == "note add" and rest == ["TSLA", "hi"]
    with pytest.raises(UserError, match="accepted: add, list"):
        reg.resolve(["note", "delete"])
    with pytest.raises(UserError, match="needs an action"):
        reg.resolve(["note"])
    with pytest.raises(UserError, match="unknown command"):
        reg.resolve(["nope"])


def test_arg_specs_for_chat_surfaces(reg):
    specs = {s.name: s for s in reg.commands["demo"].arg_specs()}
    assert specs["symbol"].required and specs["symbol"].kind == "string"
    assert specs["style"].choices == ("scalp", "intraday", "swing", "leaps")
    assert specs["risk"].kind == "number" and not specs["risk"].required
    assert specs["chart"].kind == "boolean" and specs["chart"].default is True
    scan = {s.name: s for s in reg.commands["scan"].arg_specs()}
    assert scan["symbols"].kind == "list" and scan["symbols"].default == []
    assert reg.commands["demo"].usage().startswith("/demo SYMBOL [")


def test_tool_schema_is_openai_shaped(reg):
    t = reg.commands["demo"].tool_schema()
    assert t["type"] == "function" and t["function"]["name"] == "demo"
    p = t["function"]["parameters"]
    assert p["type"] == "object" and p["required"] == ["symbol"]
    assert set(p["properties"]) == {"symbol", "style", "interval", "risk", "chart"}
    assert "title" not in p["properties"]["symbol"]
    assert p["properties"]["style"]["enum"] == ["scalp", "intraday", "swing", "leaps"]
    assert reg.commands["note add"].tool_schema()["function"]["name"] == "note_add"


def test_declaring_twice_fails(reg):
    with pytest.raises(ValueError):
        reg.command("demo", "again", DemoArgs)(lambda c, a: None)


def test_real_commands_are_registered():
    names = set(command_registry().commands)
    assert {"help", "quote", "session", "bars", "watch add", "watch remove", "watch list"} <= names
    for c in command_registry().all():
        assert c.summary and c.tool_schema()["function"]["parameters"]["type"] == "object"
