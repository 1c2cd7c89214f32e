"""The coach's memory: one conversation per (tenant, channel or DM, user), trimmed to a token budget.

Besides the questions and answers, a turn that used tools stores their names (a `tools` row), so a
follow-up ("and on the hourly?") is offered the tools the talk was using.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from bot.request import Ctx, Identity
from storage import conversations


def scope_of(identity: Identity) -> str:
    """ "dm" for direct messages and the console, else "ch:<channel id>": one conversation per place."""
    if identity.dm or not identity.channel:
        return "dm"
    return f"ch:{identity.channel}"[:96]


#: The role of the row that lists a turn's tools (never sent to the model as a message).
TOOLS_ROLE = "tools"
#: Turns whose tools a follow-up is offered again.
RECENT_TURNS = 2


@dataclass
class Memory:
    """What the coach remembers of a conversation: its messages, and the tools its last turns used."""

    messages: list[dict[str, str]] = field(default_factory=list)
    #: Most recent first.
    recent_tools: list[str] = field(default_factory=list)


async def load(ctx: Ctx, budget_tokens: int) -> Memory:
    """Recent messages of the caller's conversation here, oldest first, within the budget, and their tools."""
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        rows = await conversations.history(s, owner, scope_of(ctx.identity), budget_tokens)
    tool_rows = [r.content.split() for r in rows if r.role == TOOLS_ROLE][-RECENT_TURNS:]
    recent = list(dict.fromkeys(name for names in reversed(tool_rows) for name in names))
    return Memory([{"role": r.role, "content": r.content} for r in rows if r.role != TOOLS_ROLE], recent)


async def save_turn(ctx: Ctx, user_text: str, answer: str, tools: list[str] | None = None) -> None:
    """Store the question, the answer and the tools used together (one transaction: all or nothing)."""
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        scope = scope_of(ctx.identity)
        await conversations.append(s, owner, scope, "user", user_text)
        await conversations.append(s, owner, scope, "assistant", answer)
        if tools:
            await conversations.append(s, owner, scope, TOOLS_ROLE, " ".join(dict.fromkeys(tools)))


async def reset(ctx: Ctx) -> int:
    """Forget the caller's conversation here; returns how many questions and answers were deleted."""
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        scope = scope_of(ctx.identity)
        await conversations.clear(s, owner, scope, role=TOOLS_ROLE)  # bookkeeping, not messages the person counts
        return await conversations.clear(s, owner, scope)


def usage_day(ctx: Ctx) -> date:
    """The UTC day token spend counts against: the service clock, never a pinned --as-of."""
    return ctx.services.clock().date()


async def tokens_used_today(ctx: Ctx) -> int:
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        return await conversations.tokens_used(s, owner, usage_day(ctx))


async def record_usage(ctx: Ctx, prompt_tokens: int, completion_tokens: int, calls: int) -> None:
    """Add a turn's token spend to the caller's total for today."""
    if calls <= 0:
        return
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        await conversations.add_usage(s, owner, usage_day(ctx), prompt_tokens, completion_tokens, calls)
