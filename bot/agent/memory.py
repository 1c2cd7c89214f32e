"""The coach's memory: one conversation per (tenant, channel or DM, user), trimmed to a token budget."""

from __future__ import annotations

from datetime import date

from bot.request import Ctx, Identity
from storage import conversations


def scope_of(identity: Identity) -> str:
    """ "dm" for direct messages and the console, else "ch:<channel id>": one conversation per place."""
    if identity.dm or not identity.channel:
        return "dm"
    return f"ch:{identity.channel}"[:96]


async def load(ctx: Ctx, budget_tokens: int) -> list[dict[str, str]]:
    """Recent messages of the caller's conversation here, oldest first, as chat messages within the budget."""
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        rows = await conversations.history(s, owner, scope_of(ctx.identity), budget_tokens)
    return [{"role": r.role, "content": r.content} for r in rows]


async def save_turn(ctx: Ctx, user_text: str, answer: str) -> None:
    """Store the question and the answer together (one transaction: both or neither)."""
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        scope = scope_of(ctx.identity)
        await conversations.append(s, owner, scope, "user", user_text)
        await conversations.append(s, owner, scope, "assistant", answer)


async def reset(ctx: Ctx) -> int:
    """Forget the caller's conversation here; returns how many messages were deleted."""
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        return await conversations.clear(s, owner, scope_of(ctx.identity))


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
