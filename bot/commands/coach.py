"""/ask and /reset: reach the coach explicitly from any chat surface, and make it forget."""

from __future__ import annotations

from pydantic import Field

from bot.args import ArgsModel
from bot.registry import MAX_TEXT, command
from bot.reply import Reply
from bot.request import Ctx
from core.errors import UserError


class AskArgs(ArgsModel):
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT,
        description="your question in plain words",
        json_schema_extra={"greedy": True},
    )


class ResetArgs(ArgsModel):
    pass


@command(
    "ask",
    "Ask the coach in plain words (the LLM when configured, else simple phrasings).",
    AskArgs,
    acts=True,
    tool=False,
    examples=("/ask plan TSLA swing", "/ask what's the IV on NVDA?"),
)
async def ask(ctx: Ctx, a: AskArgs) -> Reply:
    text = a.text.strip()
    if text.startswith("/"):
        raise UserError("/ask takes plain words; run commands directly, e.g. /quote TSLA")
    return await ctx.services.free_text(ctx, text)


@command(
    "reset",
    "Make the coach forget this conversation (here, for you only).",
    ResetArgs,
    tool=False,
    examples=("/reset",),
    acts=True,
)
async def reset(ctx: Ctx, a: ResetArgs) -> Reply:
    from bot.agent import memory

    n = await memory.reset(ctx)
    body = f"Forgot {n} message{'s' if n != 1 else ''} of our conversation here." if n else "Nothing to forget here."
    return Reply(title="Conversation reset", body=body, severity="success", ephemeral=True, data={"deleted": n})
