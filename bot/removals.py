"""Bulk removals the coach asks for: proposed with a button, carried out only when their owner clicks it.

Who asked decides the path:

- A removal the person typed, or a button they clicked, runs at once, bulk or not: they named
  what to remove themselves, and a second step would only slow them down.
- A removal the coach's model asks for may have been steered by text the person never wrote (a
  pasted message, a journal entry read back, a quoted web page: a hijacked prompt). So a tool call
  that removes more than one item, or "all", only proposes: the reply lists exactly what would go
  and carries a button that runs `/confirm RM-...`. `/confirm` is not a tool, so only a person can
  run it, and it acts only for the person who was asked (`storage.removals`), only on the listed
  items (anything added since stays), and only within `CONFIRM_TTL`.
- One item at a time still works directly for the model ("remove alert 3"), but a turn removes at
  most `MODEL_DIRECT_LIMIT` item directly: a model calling single removals one after another gets
  a proposal from the second on, so "all" cannot be spelt as many single calls.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bot.reply import Action, Reply
from bot.request import Ctx
from core.errors import NotFoundError
from core.values import as_utc
from storage import alerts as alert_store
from storage import journal, watchlists
from storage import removals as store
from storage.identity import Owner

#: Items one coach turn may remove without a confirmation.
MODEL_DIRECT_LIMIT = 1

Kind = Literal["alerts", "watchlist", "journal", "tracked"]

#: (one, many) for each kind, as replies name them.
NOUNS: dict[str, tuple[str, str]] = {
    "alerts": ("alert", "alerts"),
    "watchlist": ("watchlist symbol", "watchlist symbols"),
    "journal": ("journal entry", "journal entries"),
    "tracked": ("tracked plan", "tracked plans"),
}


def noun(kind: str, n: int) -> str:
    """`3 alerts`, `1 journal entry`."""
    one, many = NOUNS[kind]
    return f"{n} {one if n == 1 else many}"


def must_confirm(ctx: Ctx, count: int, *, everything: bool = False) -> bool:
    """True when removing `count` items (or everything) must be proposed rather than done; counts what it lets through."""
    turn = ctx.model_turn
    if turn is None or count <= 0:
        return False  # typed or clicked by the person (or nothing to remove)
    if everything or count > 1 or turn.removed + count > MODEL_DIRECT_LIMIT:
        return True
    turn.removed += count
    return False


class RemovalProposal(BaseModel):
    """What a proposing reply carries as data (what the model reads): nothing was removed, and what would be."""

    status: Literal["awaiting_confirmation"] = "awaiting_confirmation"
    kind: str
    would_remove: list[str]
    removed: list[Any] = []
    expires_at: datetime
    note: str = (
        "Nothing was removed. The person must press the confirmation button on this reply; "
        "no tool can confirm it. Tell them what would be removed."
    )


async def propose(ctx: Ctx, kind: Kind, items: list[Any], lines: list[str]) -> Reply:
    """Store the proposal and answer with the exact list and the button that confirms it."""
    now = ctx.services.clock()
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        row = await store.propose(s, owner, kind, items, now)
        token, expires_at = row.token, as_utc(row.expires_at)
    minutes = int(store.CONFIRM_TTL.total_seconds() // 60)
    what = noun(kind, len(items))
    body = (
        "Nothing has been removed yet. The button removes exactly these:\n"
        + "\n".join(f"• {line}" for line in lines)
        + f"\nOnly you can confirm, within {minutes} minutes; anything added since stays."
    )
    return Reply(
        title=f"Confirm: remove {what}?",
        body=body,
        severity="warning",
        actions=[Action(label=f"Remove {what}"[:80], command=f"/confirm {token}", style="danger")],
        data=RemovalProposal(kind=kind, would_remove=lines, expires_at=expires_at),
    )


async def carry_out(
    session: AsyncSession, owner: Owner, kind: str, items: list[Any], now: datetime
) -> tuple[list[Any], list[Any]]:
    """Remove exactly `items` of `kind` for `owner`; returns (removed, already gone)."""
    removed: list[Any]
    if kind == "alerts":
        ids = [int(i) for i in items]
        removed = await alert_store.remove_alerts(session, owner, ids, now)
    elif kind == "watchlist":
        removed = await watchlists.remove(session, owner, [str(i) for i in items])
    elif kind == "journal":
        removed = []
        for i in items:
            try:
                await journal.remove_entry(session, owner, int(i))
                removed.append(int(i))
            except NotFoundError:
                pass
    elif kind == "tracked":
        removed = []
        for pid in items:
            row = await alert_store.get_tracked(session, owner, str(pid))
            if row is not None and row.status in (*alert_store.ACTIVE_TRACKED, "proposed"):
                row.status, row.updated_at = "cancelled", now
                removed.append(str(pid))
    else:
        raise ValueError(f"unknown removal kind {kind!r}")
    return removed, [i for i in items if i not in removed]
