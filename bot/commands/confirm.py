"""/confirm: carry out a removal the coach proposed; the proposal's button runs it for whoever clicks.

Not a tool: the model can propose a bulk removal but never confirm one (see `bot.removals`).
"""

from __future__ import annotations

import re

from pydantic import Field

from bot.args import ArgsModel
from bot.registry import command
from bot.removals import carry_out, noun
from bot.reply import Reply
from bot.request import Ctx
from core.errors import NotFoundError, UserError
from storage import removals as store

_TOKEN = re.compile(r"^RM-[0-9A-F]{8}$")


class ConfirmArgs(ArgsModel):
    token: str = Field(max_length=24, description="the confirmation id on the proposal's button, e.g. RM-1A2B3C4D")


def _shown(kind: str, item: object) -> str:
    return f"#{item}" if kind in ("alerts", "journal") else str(item)


@command(
    "confirm",
    "Confirm a removal the coach proposed (the proposal's button runs this).",
    ConfirmArgs,
    acts=True,
    tool=False,
    examples=("/confirm RM-1A2B3C4D",),
)
async def confirm(ctx: Ctx, a: ConfirmArgs) -> Reply:
    token = a.token.strip().upper()
    # one answer for an unknown id and for someone else's: a click by another person learns nothing and removes nothing
    nothing = f"no removal {token[:24]} is waiting for your confirmation (only the person who asked can confirm it); nothing was removed"
    if not _TOKEN.match(token):
        raise NotFoundError(nothing)
    now = ctx.services.clock()
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        row = await store.get_owned(s, owner, token)
        if row is None:
            raise NotFoundError(nothing)
        claimed = await store.claim(s, row, now)
        if claimed == "expired":
            minutes = int(store.CONFIRM_TTL.total_seconds() // 60)
            raise UserError(
                f"this confirmation expired (they last {minutes} minutes); nothing was removed. Ask again for a fresh list"
            )
        if claimed == "used":
            raise UserError("this removal was already confirmed; nothing more was removed")
        kind, items = row.kind, list(row.items)
        removed, gone = await carry_out(s, owner, kind, items, now)
    body = f"Removed {', '.join(_shown(kind, i) for i in removed)}." if removed else "Nothing was left to remove."
    if gone:
        body += f" Already gone: {', '.join(_shown(kind, i) for i in gone)}."
    return Reply(
        title=f"Removed {noun(kind, len(removed))}",
        body=body,
        severity="success",
        data={"kind": kind, "removed": removed, "already_gone": gone},
    )
