"""Coach tokens: 40 scripted trader questions through the real agent loop and openai SDK, against the full-tool anchor.

    .venv/bin/python benchmarks/bench_agent_tokens.py [--context 128000]

The model is the loopback OpenAI-compatible server of the tests (tests/fakes/openai_fake.py),
scripted to behave like a model that knows which tool each question needs: on a question it calls
that tool when the call offers it, else `more_tools` and then the tool; after a tool result it
answers in one sentence. The coach (`bot.agent.loop.Agent`) runs on the composition root's
services (a temporary SQLite file, the offline market, the clock pinned to Wednesday 2024-03-13
11:00 ET), so every tool really runs and its real result goes back to the model.

The 40 questions cover plans, scans, IV, option contracts, alerts, the journal, sizing and the
risk profile, plan tracking, the watchlist and the market, in eight conversations; later questions
of a conversation are follow-ups ("and for QQQ?", "track that plan").

Each question runs twice in the same process, for two people with their own memory:
- anchor: `tool_mode="all"`: every tool on every call with its full schema (the old behaviour);
- coach: the default: the tools the message needs, lean, with `more_tools`.

For every model call the input is measured as the server received it: the characters of the JSON
of `messages` plus that of `tools`, and the estimated tokens (characters / 4). Printed: per
question the calls and their input tokens in both modes; then per mode the mean and largest input
per question, the largest first call, "give me a plan for TSLA" over both calls, how many
questions a day the default 200,000-token budget pays for, the share of questions whose needed
tool was offered on the first call, and the ratios coach / anchor. Targets: the TSLA plan in at
most 4,000 input tokens, no first call over 2,500 tokens, the needed tool offered first for at
least 95% of the questions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.openai_fake import FakeOpenAI

AS_OF = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)
BUDGET = 200_000
MORE_TOOLS = "more_tools"

Args = dict[str, Any] | Callable[[list[dict[str, Any]]], dict[str, Any]]


@dataclass(frozen=True)
class Question:
    conversation: str
    text: str
    tool: str
    args: Args


def from_result(tool: str, key: str, default: Any = None) -> Callable[[list[dict[str, Any]]], Any]:
    """The first `key` in the latest result of `tool` in the messages (a plan id, an alert id), as a model reads it."""

    def find(messages: list[dict[str, Any]]) -> Any:
        names = {c["id"]: c["function"]["name"] for m in messages for c in (m.get("tool_calls") or [])}
        for m in reversed(messages):
            if m.get("role") == "tool" and names.get(m.get("tool_call_id")) == tool:
                found = _first(json.loads(m["content"]), key)
                if found is not None:
                    return found
        # an earlier turn's answer, as remembered: the scripted answers quote what they looked up
        for m in reversed(messages):
            said = re.search(rf"\({tool} {key} ([^) ,]+)", str(m.get("content") or "")) if m.get("role") == "assistant" else None
            if said:
                return int(said.group(1)) if said.group(1).isdigit() else said.group(1)
        return default

    return find


def _first(value: Any, key: str) -> Any:
    stack = [value]
    while stack:
        v = stack.pop(0)
        if isinstance(v, dict):
            if v.get(key) is not None:
                return v[key]
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return None


def with_found(base: dict[str, Any], key: str, finder: Callable[[list[dict[str, Any]]], Any]) -> Args:
    return lambda messages: {**base, key: finder(messages)}


# The memory of a conversation holds only questions and answers, so a follow-up that needs an id
# finds it in the answer the scripted model gave, which quotes it (as a real model's answer would).
QUESTIONS: tuple[Question, ...] = (
    Question("plans", "give me a plan for TSLA", "plan", {"symbol": "TSLA"}),
    Question("plans", "and as a swing trade?", "plan", {"symbol": "TSLA", "style": "swing"}),
    Question("plans", "plan AAPL intraday", "plan", {"symbol": "AAPL"}),
    Question("plans", "track that plan", "track", with_found({}, "plan_id", from_result("plan", "plan_id", "P-000000"))),
    Question("plans", "which plans am I tracking?", "tracked", {}),
    Question("plans", "chart AAPL with the plan on the 15m", "chart", {"symbol": "AAPL", "interval": ["15m"], "plan": True}),
    Question("plans", "how did my plans do over the last month?", "scorecard", {"days": 30}),
    Question("scan", "scan the leaders for swing setups", "scan", {"universe": ["leaders"], "style": "swing"}),
    Question("scan", "any scalp setups in semis right now?", "scan", {"universe": ["semis"], "style": "scalp"}),
    Question("scan", "what's setting up on my watchlist?", "scan", {"universe": ["watchlist"]}),
    Question("vol", "iv on NVDA?", "vol", {"symbol": "NVDA"}),
    Question("vol", "and for QQQ?", "vol", {"symbol": "QQQ"}),
    Question("vol", "are TSLA options expensive right now?", "vol", {"symbol": "TSLA"}),
    Question("vol", "best calls on SPY for a swing", "contracts", {"symbol": "SPY", "style": "swing"}),
    Question("vol", "which strike for a NVDA put this week?", "contracts", {"symbol": "NVDA", "style": "intraday"}),
    Question("alerts", "alert me if AAPL drops below 200", "alert_add", {"symbol": "AAPL", "kind": "below", "value": 200}),
    Question(
        "alerts",
        "ping me when NVDA RSI goes above 70 on the 15m",
        "alert_add",
        {"symbol": "NVDA", "kind": "rsi_above", "value": 70, "interval": "15m"},
    ),
    Question("alerts", "notify me if SPY moves -2% today", "alert_add", {"symbol": "SPY", "kind": "pct", "value": -2}),
    Question("alerts", "what alerts do I have?", "alert_list", {}),
    Question(
        "alerts",
        "change that first alert to 195",
        "alert_edit",
        with_found({"value": 195}, "id", from_result("alert_list", "id", 1)),
    ),
    Question(
        "alerts", "and make it repeat", "alert_edit", with_found({"repeat": True}, "id", from_result("alert_list", "id", 1))
    ),
    Question("alerts", "is the alert feed running?", "alerts_status", {}),
    Question(
        "journal",
        "journal: took TSLA long at the open, stopped out, chased the breakout #fomo",
        "journal_add",
        {"text": "took TSLA long at the open, stopped out, chased the breakout #fomo", "symbol": "TSLA"},
    ),
    Question(
        "journal",
        "write down a lesson: wait for the retest before entering",
        "journal_add",
        {"text": "wait for the retest before entering", "tags": ["lesson"]},
    ),
    Question("journal", "show my journal entries about TSLA", "journal_list", {"symbol": "TSLA"}),
    Question(
        "journal", "open the first entry in full", "journal_show", with_found({}, "id", from_result("journal_list", "id", 1))
    ),
    Question(
        "sizing",
        "how many shares of AMD can I buy risking $150 with entry 180 and stop 176?",
        "size",
        {"symbol": "AMD", "entry": 180, "stop": 176, "risk": 150},
    ),
    Question("sizing", "set my account size to 25000 and risk 1% per trade", "risk", {"account_size": 25000, "risk_pct": 1}),
    Question("sizing", "size NVDA entry 875 stop 860", "size", {"symbol": "NVDA", "entry": 875, "stop": 860}),
    Question("sizing", "what's my risk profile?", "risk", {}),
    Question("watch", "add TSLA and NVDA to my watchlist", "watch_add", {"symbols": ["TSLA", "NVDA"]}),
    Question("watch", "what's on my watchlist?", "watch_list", {}),
    Question("watch", "take NVDA off my watchlist", "watch_remove", {"symbols": ["NVDA"]}),
    Question("market", "where is MSFT trading?", "quote", {"symbol": "MSFT"}),
    Question("market", "is the market open?", "session", {}),
    Question("market", "show me the last 20 5m bars for QQQ", "bars", {"symbol": "QQQ", "interval": "5m", "count": 20}),
    Question("market", "what are the key levels and RSI on META?", "context", {"symbol": "META", "intervals": ["5m", "1h"]}),
    Question("market", "chart NVDA on the 1h", "chart", {"symbol": "NVDA", "interval": ["1h"]}),
    Question("market", "backtest SPY over the last 10 days", "backtest", {"symbols": ["SPY"], "days": 10}),
    Question("market", "what orders do I have?", "order_list", {}),
)


@dataclass
class Turn:
    question: Question
    calls: list[int] = field(default_factory=list)  # input characters per call
    offered_first: bool = False

    @property
    def tokens(self) -> list[int]:
        return [tokens(c) for c in self.calls]


def tokens(chars: int) -> int:
    return (chars + 3) // 4


def input_chars(body: dict[str, Any]) -> int:
    """What a call costs the server to read: the JSON of its messages and of its tools."""
    return len(json.dumps(body["messages"])) + (len(json.dumps(body["tools"])) if body.get("tools") else 0)


class ScriptedModel:
    """Answers like a model that knows which tool a question needs (and finds it with more_tools when not shown)."""

    def __init__(self) -> None:
        self.turn: Turn | None = None

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        turn = self.turn
        assert turn is not None
        q = turn.question
        turn.calls.append(input_chars(body))
        offered = {t["function"]["name"] for t in body.get("tools") or []}
        messages = body["messages"]
        last = messages[-1]
        if last["role"] == "user":
            turn.offered_first = q.tool in offered
            if q.tool not in offered and MORE_TOOLS in offered:
                return FakeOpenAI.make_tool_calls(("m1", MORE_TOOLS, {}))
            return self._call(q, messages)
        called = [c["function"]["name"] for c in messages[-2].get("tool_calls") or []] if len(messages) > 1 else []
        if called == [MORE_TOOLS]:
            return self._call(q, messages)
        refs = [f"({q.tool} {k} {v})" for k in ("plan_id", "id") if (v := from_result(q.tool, k)(messages[-2:])) is not None]
        return FakeOpenAI.make_text(f"Done: I looked that up with {q.tool} {' '.join(refs)}; the details are above.")

    def _call(self, q: Question, messages: list[dict[str, Any]]) -> dict[str, Any]:
        args = q.args(messages) if callable(q.args) else q.args
        return FakeOpenAI.make_tool_calls(("c1", q.tool, args))


async def run(context: int) -> dict[str, list[Turn]]:
    from bot.agent.client import ChatModel
    from bot.agent.loop import Agent
    from bot.app import build_services
    from bot.config import Settings
    from bot.logging import setup_logging
    from bot.request import Ctx, Identity
    from providers.sim import SimMarket

    fake = FakeOpenAI()
    model = ScriptedModel()
    fake.fallback = model
    base_url = await fake.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp}/coach.db",
        coach_out_dir=tmp / "out",
        openai_base_url=base_url,
        openai_model="fake-model",
        coach_daily_token_budget=0,
        coach_llm_context=context,
        coach_llm_timeout=120.0,
        coach_log_level="WARNING",
        coach_log_file=tmp / "coach.log",
    )
    setup_logging("cli", settings)  # the service's log goes to the file, the figures to stdout
    services = await build_services(settings, market=SimMarket(seed=0), clock=lambda: AS_OF, chart_workers=0, workers=0)
    out: dict[str, list[Turn]] = {}
    try:
        for mode in ("all", "select"):
            agent = Agent(ChatModel.from_settings(settings), settings, tool_mode="all" if mode == "all" else "select")
            turns: list[Turn] = []
            for q in QUESTIONS:
                identity = Identity(platform="console", tenant="bench", user=f"{mode}-{q.conversation}", channel=None, dm=True)
                model.turn = Turn(q)
                reply = await agent(Ctx(services=services, identity=identity, request_id=f"{mode}{len(turns)}"), q.text)
                if reply.severity == "error":
                    print(f"  ! {mode} {q.text!r}: {reply.body[:160]}", file=sys.stderr)
                turns.append(model.turn)
            await agent.aclose()
            out[mode] = turns
    finally:
        await services.close()
        await fake.close()
    return out


def report(results: dict[str, list[Turn]], context: int) -> None:
    anchor, coach = results["all"], results["select"]
    print(f"coach tokens: {len(QUESTIONS)} questions, input per model call (characters/4), COACH_LLM_CONTEXT={context:,}")
    print(f"{'#':>2}  {'question':<56} {'anchor calls':>18}  {'coach calls':>18}  {'coach/anchor':>12}")
    for i, (a, c) in enumerate(zip(anchor, coach, strict=True), 1):
        miss = "" if c.offered_first else "  (more_tools)"
        ratio = sum(c.tokens) / sum(a.tokens)
        print(
            f"{i:>2}  {c.question.text[:56]:<56} {'+'.join(map(str, a.tokens)):>18}  "
            f"{'+'.join(map(str, c.tokens)):>18}  {ratio:>11.2f}x{miss}"
        )
    print()

    def figures(turns: list[Turn]) -> dict[str, float]:
        per_turn = [sum(t.tokens) for t in turns]
        firsts = [t.tokens[0] for t in turns]
        plan = next(t for t in turns if t.question.text == "give me a plan for TSLA")
        mean = sum(per_turn) / len(per_turn)
        return {
            "mean input tokens per question": mean,
            "largest input per question": max(per_turn),
            "mean first call": sum(firsts) / len(firsts),
            "largest first call": max(firsts),
            "calls per question": sum(len(t.calls) for t in turns) / len(turns),
            "'give me a plan for TSLA', both calls": sum(plan.tokens),
            "questions per day on 200,000 tokens": BUDGET / mean,
            "needed tool offered on the first call (%)": 100 * sum(t.offered_first for t in turns) / len(turns),
        }

    fa, fc = figures(anchor), figures(coach)
    print(f"{'':<44} {'anchor':>10} {'coach':>10} {'ratio':>8}")
    for k in fa:
        ratio = fc[k] / fa[k] if fa[k] else float("nan")
        print(f"{k:<44} {fa[k]:>10,.1f} {fc[k]:>10,.1f} {ratio:>7.2f}x")
    plan = next(t for t in coach if t.question.text == "give me a plan for TSLA")
    plan_a = next(t for t in anchor if t.question.text == "give me a plan for TSLA")
    print()
    print(
        f"'give me a plan for TSLA': anchor {'+'.join(f'{c:,}' for c in plan_a.calls)} characters, "
        f"coach {'+'.join(f'{c:,}' for c in plan.calls)} characters"
    )
    checks = [
        ("TSLA plan <= 4,000 input tokens over both calls", fc["'give me a plan for TSLA', both calls"] <= 4_000),
        ("no first call over 2,500 tokens", fc["largest first call"] <= 2_500),
        ("needed tool offered first for >= 95%", fc["needed tool offered on the first call (%)"] >= 95),
    ]
    for label, ok in checks:
        print(f"target {label}: {'met' if ok else 'MISSED'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--context", type=int, default=128_000, help="COACH_LLM_CONTEXT for both runs")
    a = p.parse_args()
    report(asyncio.run(run(a.context)), a.context)


if __name__ == "__main__":
    main()
