"""The coach's turn: model -> tools -> model ... -> a grounded Reply, within steps, time and a daily token budget.

One turn is at most `COACH_AGENT_MAX_STEPS` model calls. Each call has a timeout and is
retried on 429, 5xx, timeouts and dropped connections with backoff (honouring
`Retry-After`). Tool failures go back to the model as error results; the turn never
raises. Token spend is added to the caller's daily total in storage, and a caller whose
budget is spent gets a reply saying so without a model call.

Each call offers only the tools the message can need (`bot.agent.toolsets`) in their lean
schemas, plus `more_tools` for the rest, and is trimmed to the model's context window
(`bot.agent.window`). `tool_mode="all"` offers every tool with its full schema instead (the
measure the token benchmark compares against).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import BaseModel

from analytics.sessions import session_info
from bot import metrics
from bot.agent import memory
from bot.agent.client import ChatModel, Completion, endpoint_label
from bot.agent.grounding import Citation, ground
from bot.agent.tools import MAX_RESULT_CHARS, ToolBox, ToolResult, error_result
from bot.agent.toolsets import select_tools
from bot.agent.window import Window
from bot.config import Settings
from bot.pipeline import clean_text
from bot.registry import MAX_TEXT
from bot.removals import RemovalProposal
from bot.reply import Action, Attachment, Reply, ReplyField
from bot.request import Ctx
from core.errors import UserError
from core.retry import Backoff
from providers.http import retry_after_header
from renderers.text import fmt_time

log = structlog.get_logger("coach.agent")

PROMPT_FILE = Path(__file__).parent / "prompts" / "system.md"
#: Tool calls run from one model response; more get an error result each.
MAX_PARALLEL_TOOLS = 8
#: Longest Retry-After the loop waits for before giving up on the turn.
MAX_RETRY_WAIT = 20.0
#: Model call retries: about 0.5 s, 1 s, 2 s ... capped at 8 s, each cut by up to half at random.
MODEL_BACKOFF = Backoff(base=0.5, cap=8.0, jitter=(0.5, 1.0))
#: The system prompt tells the time to this step, so it stays the same (and a server's prefix cache holds) for a while.
PROMPT_CLOCK_STEP = timedelta(minutes=15)

#: "select": the tools the message needs, lean, with `more_tools`; "all": every tool with its full schema.
ToolMode = Literal["select", "all"]


class ModelUnavailable(Exception):
    """The model could not answer this turn (after retries); the message is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ToolUse(BaseModel):
    """One tool call of the turn as the server ran it."""

    tool: str
    invocation: str
    ok: bool
    error: str | None = None


class AgentAnswer(BaseModel):
    """The structured result of a coach turn (what `--json` prints)."""

    answer: str
    #: How far the answer rests on checked tool data (not a plan's confidence).
    grounding: float
    citations: list[Citation]
    unverified_prices: list[float]
    stale: bool
    tools: list[ToolUse]
    steps: int
    step_limit_reached: bool
    prompt_tokens: int
    completion_tokens: int
    model: str


@dataclass
class TurnState:
    """What a turn accumulates: tool results, model calls and tokens."""

    results: list[ToolResult] = field(default_factory=list)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, c: Completion) -> None:
        self.calls += 1
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens


def load_system_prompt() -> str:
    """The coach persona from `prompts/system.md`."""
    return PROMPT_FILE.read_text(encoding="utf-8").strip()


class Agent:
    """The LLM coach as a free-text handler: `await agent(ctx, text) -> Reply`. Never raises for bad input."""

    def __init__(
        self,
        model: ChatModel,
        settings: Settings,
        *,
        system_prompt: str | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        tool_mode: ToolMode = "select",
    ) -> None:
        self.model = model
        self.settings = settings
        self.system_prompt = system_prompt or load_system_prompt()
        self._sleep = sleep
        self.tool_mode = tool_mode
        self.window = Window(settings.coach_llm_context)

    @classmethod
    def from_settings(cls, settings: Settings) -> Agent:
        return cls(ChatModel.from_settings(settings), settings)

    async def aclose(self) -> None:
        await self.model.aclose()

    async def __call__(self, ctx: Ctx, text: str) -> Reply:
        return await self.turn(ctx, text)

    # --- one turn ---------------------------------------------------------------------

    async def turn(self, ctx: Ctx, text: str) -> Reply:
        """Answer one message: check input and budget, run the tool loop, ground and store the answer."""
        text = clean_text(text)
        if not text:
            return Reply.error('empty message; ask about a symbol ("plan TSLA swing", "iv on NVDA?") or type /help')
        if len(text) > MAX_TEXT:
            return Reply.error(f"message too long ({len(text):,} characters); keep it under {MAX_TEXT:,}")
        budget = self.settings.coach_daily_token_budget
        used = await memory.tokens_used_today(ctx)
        if budget and used >= budget:
            return _budget_spent(used, budget)

        remembered = await memory.load(ctx, self.settings.coach_memory_tokens)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self.system_text(ctx)},
            *remembered.messages,
            {"role": "user", "content": text},
        ]
        box = self.toolbox(ctx, text, remembered.recent_tools)
        state = TurnState()
        started = time.monotonic()
        try:
            answer, limit_hit = await self._loop(messages, len(messages) - 1, box, state)
        except ModelUnavailable as exc:
            log.warning("agent_model_unavailable", request_id=ctx.request_id, reason=exc.message)
            return Reply(
                title="The coach is unavailable",
                body=f"{exc.message}\nCommands such as /quote and /plan still work. (ref {ctx.request_id})",
                severity="error",
                ephemeral=True,
                data={"error": exc.message},
            )
        finally:
            await memory.record_usage(ctx, state.prompt_tokens, state.completion_tokens, state.calls)
            metrics.LLM_TOKENS.labels(kind="prompt").inc(state.prompt_tokens)
            metrics.LLM_TOKENS.labels(kind="completion").inc(state.completion_tokens)
            if budget:
                metrics.budget_used(memory.usage_day(ctx), (used + state.prompt_tokens + state.completion_tokens) / budget)
            log.info(
                "agent_turn",
                request_id=ctx.request_id,
                calls=state.calls,
                tools=len(state.results),
                prompt_tokens=state.prompt_tokens,
                completion_tokens=state.completion_tokens,
                seconds=round(time.monotonic() - started, 3),
            )

        reply = self._reply(ctx, text, answer, limit_hit, state)
        await memory.save_turn(ctx, text, reply.data.answer, [r.name for r in state.results if r.ok])
        if budget and used + state.prompt_tokens + state.completion_tokens >= budget:
            reply.body += "\n\n_That used up your coach budget for today (resets 00:00 UTC)._"
        return reply

    def toolbox(self, ctx: Ctx, text: str, recent: list[str]) -> ToolBox:
        """The tools of this turn: chosen for the message (lean), or all of them with full schemas."""
        if self.tool_mode == "all":
            return ToolBox(ctx, lean=False)
        return ToolBox(ctx, select_tools(text, ctx.services.registry, recent))

    def system_text(self, ctx: Ctx) -> str:
        """The persona plus the facts of this moment: time (to the quarter hour) and market session."""
        now = ctx.now()
        # the session facts are exact; the clock line moves in steps so the prompt's prefix stays cacheable
        step = int(PROMPT_CLOCK_STEP.total_seconds())
        shown = now - timedelta(seconds=int(now.timestamp()) % step, microseconds=now.microsecond)
        lines = [self.system_prompt, "", "## Now", f"- Time: about {fmt_time(shown)} (tool results carry exact times)"]
        try:
            info = session_info(now)
            lines.append(
                f"- NYSE session: {info.status}"
                + (" (half day)" if info.half_day else "")
                + f"; last close {fmt_time(info.last_close)}; next open {fmt_time(info.next_open)}"
            )
            if info.status != "open":
                lines.append("- The regular session is not open: say so, and that prices are as of the last trade.")
        except UserError:
            lines.append("- NYSE session: unknown for this date")
        return "\n".join(lines)

    async def _loop(self, messages: list[dict[str, Any]], turn_start: int, box: ToolBox, state: TurnState) -> tuple[str, bool]:
        """Call the model until it answers in text or the step limit is reached; returns (answer, limit_hit)."""
        steps = self.settings.coach_agent_max_steps
        for step in range(steps):
            last = step == steps - 1
            turn_start = self.window.fit(messages, turn_start, box)
            tools = box.specs()
            completion = await self._complete(messages, tools, "none" if last and tools else "auto", state)
            if not completion.tool_calls:
                return (completion.content or "").strip(), False
            if last:
                break
            calls = completion.tool_calls
            messages.append(completion.assistant_message())
            box.result_chars = self.window.result_chars(messages, tools, min(len(calls), MAX_PARALLEL_TOOLS), MAX_RESULT_CHARS)
            results = await box.run_all(calls[:MAX_PARALLEL_TOOLS])
            for extra in calls[MAX_PARALLEL_TOOLS:]:  # every tool_call_id must be answered
                results.append(
                    error_result(extra.id, extra.name, f"too many tool calls at once; at most {MAX_PARALLEL_TOOLS} per step")
                )
            state.results.extend(r for r in results if not r.internal)
            messages.extend(r.message() for r in results)
        return "", True

    async def _complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], tool_choice: str, state: TurnState
    ) -> Completion:
        """One model call with retries on 429/5xx/timeouts; raises ModelUnavailable with a safe message."""
        attempt = 0
        while True:
            try:
                c = await self.model.complete(messages, tools if tools else [], tool_choice=tool_choice)
                state.add(c)
                return c
            except Exception as exc:  # classified below; nothing the SDK raises may end the turn uncaught
                retry, wait, message = self._classify(exc)
                if not retry or attempt >= self.settings.coach_llm_retries:
                    if not retry and message.startswith("unexpected"):
                        log.exception("agent_model_error")
                    raise ModelUnavailable(message) from None
                delay = MODEL_BACKOFF.delay(attempt, retry_after=wait)
                if delay > MAX_RETRY_WAIT:
                    raise ModelUnavailable(f"{message}; the server asked to wait {delay:.0f} s, try again later") from None
                log.warning("agent_model_retry", attempt=attempt + 1, delay=round(delay, 3), reason=message)
                await self._sleep(delay)
                attempt += 1

    def _classify(self, exc: BaseException) -> tuple[bool, float | None, str]:
        """(retry?, seconds the server asked to wait, a message safe to show) for a failed model call."""
        import openai

        where = endpoint_label(self.settings)
        if isinstance(exc, TimeoutError | openai.APITimeoutError):
            return True, None, f"the model at {where} did not answer within {self.settings.coach_llm_timeout:g} s"
        if isinstance(exc, openai.APIConnectionError):
            return True, None, f"cannot reach the model server at {where}"
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            wait = retry_after_header(exc.response.headers) if exc.response is not None else None
            if status == 429:
                return True, wait, f"the model server at {where} is rate limiting (429)"
            if status >= 500 or status in (408, 409):
                return True, wait, f"the model server at {where} failed ({status})"
            if status in (401, 403):
                return (
                    False,
                    None,
                    f"the model server at {where} rejected the credentials ({status}); the operator must check OPENAI_API_KEY",
                )
            if status == 404:
                return (
                    False,
                    None,
                    f"model {self.settings.openai_model!r} was not found at {where} (404); the operator must check OPENAI_MODEL",
                )
            detail = _short(getattr(exc, "message", "") or "")
            return False, None, f"the model server at {where} refused the request ({status}{': ' + detail if detail else ''})"
        return False, None, f"unexpected error talking to the model ({exc.__class__.__name__})"

    # --- the reply ----------------------------------------------------------------------

    def _reply(self, ctx: Ctx, user_text: str, answer: str, limit_hit: bool, state: TurnState) -> Reply:
        results = state.results
        now = ctx.now()
        try:
            market_open = session_info(now).status == "open"
        except UserError:
            market_open = False
        if limit_hit:
            looked = [f"- {r.reply.title}" for r in results if r.ok and r.reply is not None][:8]
            answer = (
                f"I reached my limit of {self.settings.coach_agent_max_steps} steps before finishing an answer."
                + ("\nWhat I looked up:\n" + "\n".join(looked) if looked else "")
                + "\nAsk a narrower question, or run a command such as /plan directly."
            )
        elif not answer:
            answer = "The model returned an empty answer. Try rephrasing, or run a command such as /quote TSLA."
        g = ground(answer, results, now=now, market_open=market_open, user_text=user_text)

        body = g.text
        if g.stale_note:
            body += f"\n\n{g.stale_note}"
        if g.unverified:
            body += "\n\n_Prices marked (unverified) are not in the data looked up this turn; check them before acting._"
        fields: list[ReplyField] = []
        used = [r.invocation or r.name for r in results if r.ok]
        if used:
            fields.append(ReplyField(name="Looked up", value=", ".join(dict.fromkeys(used))[:300], inline=False))
        failed = [r for r in results if not r.ok]
        if failed:
            fields.append(ReplyField(name="Tool errors", value=str(len(failed))))
        if g.unverified:
            fields.append(ReplyField(name="Unverified", value=", ".join(f"{p:g}" for p in g.unverified)))

        # a proposed removal is shown as the server wrote it (exactly what would go, and its button first), whatever
        # the model says about it: the person confirms what they can read, never the model's account of it
        proposals = [r.reply for r in results if r.ok and r.reply is not None and isinstance(r.reply.data, RemovalProposal)]
        for p in proposals:
            body += f"\n\n**{p.title}**\n{p.body}"
        images: dict[str, Attachment] = {}
        actions: dict[str, Action] = {act.shown: act for p in proposals for act in p.actions}
        for r in results:
            for a in r.images:
                images.setdefault(a.filename, a)
            if r.ok and r.reply is not None:
                for act in r.reply.actions:
                    actions.setdefault(act.shown, act)

        data = AgentAnswer(
            answer=g.text,
            grounding=g.score,
            citations=g.citations,
            unverified_prices=g.unverified,
            stale=g.stale,
            tools=[ToolUse(tool=r.name, invocation=r.invocation, ok=r.ok, error=None if r.ok else _error_of(r)) for r in results],
            steps=state.calls,
            step_limit_reached=limit_hit,
            prompt_tokens=state.prompt_tokens,
            completion_tokens=state.completion_tokens,
            model=self.model.model,
        )
        return Reply(
            title="Coach",
            body=body,
            fields=fields,
            severity="warning" if (g.unverified or g.stale or limit_hit) else "info",
            attachments=list(images.values()),
            actions=list(actions.values())[:5],
            sources=_sources(g.citations),
            as_of=g.as_of,
            grounding=g.score,
            data=data,
        )


def _sources(citations: list[Citation]) -> list[str]:
    """Source labels for the footer; each carries its own time when they differ."""
    stamps = {c.as_of for c in citations if c.as_of is not None}
    out: list[str] = []
    for c in citations:
        label = c.source
        if len(stamps) > 1 and c.as_of is not None:
            label += f" ({fmt_time(c.as_of, with_date=False)})"
        if label not in out:
            out.append(label)
    return out


def _error_of(r: ToolResult) -> str:
    try:
        return str(json.loads(r.content).get("error", ""))[:200]
    except (ValueError, AttributeError):
        return "error"


def _budget_spent(used: int, budget: int) -> Reply:
    return Reply(
        title="Coach budget spent for today",
        body=(
            f"You have used {used:,} of your {budget:,} coach tokens for today (UTC day). "
            "The coach is back at 00:00 UTC; commands such as /quote and /plan still work."
        ),
        severity="warning",
        ephemeral=True,
        data={"error": "daily token budget spent", "used": used, "budget": budget},
    )


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:160]
