"""Coach conversation history per (tenant, channel or DM, user) and LLM token usage per user per day.

Every query filters by the caller's tenant and user; a scope string ("dm" or "ch:<channel>")
separates the conversations one user holds in different places.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, Index, Integer, String, Text, UniqueConstraint, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utc_now
from storage.base import Base, Owned, rowcount
from storage.identity import Owner, owned_by

#: Rows kept per conversation; older ones are deleted when a turn is saved.
MAX_ROWS = 200
#: Characters kept per stored message (a user cannot grow the table with one huge message).
MAX_CHARS = 8_000


class ConversationMessage(Owned, Base):
    """One user or assistant message of a coach conversation."""

    __tablename__ = "conversation_messages"
    __table_args__ = (Index("ix_conversation_messages_scope", "tenant_id", "owner_id", "scope", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(96))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class LlmUsage(Owned, Base):
    """Tokens one user spent with the LLM on one UTC day."""

    __tablename__ = "llm_usage"
    __table_args__ = (UniqueConstraint("tenant_id", "owner_id", "day", name="uq_llm_usage_owner_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class StoredMessage:
    role: str
    content: str
    tokens: int


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters per token), never below one for non-empty text."""
    return (len(text) + 3) // 4 if text else 0


async def append(session: AsyncSession, owner: Owner, scope: str, role: str, content: str) -> None:
    """Store one message (capped in length) and drop the oldest rows beyond MAX_ROWS for this scope."""
    content = content[:MAX_CHARS]
    session.add(
        ConversationMessage(
            tenant_id=owner.tenant_id,
            owner_id=owner.user_id,
            scope=scope,
            role=role,
            content=content,
            tokens=estimate_tokens(content),
        )
    )
    await session.flush()
    keep = (
        select(ConversationMessage.id)
        .where(owned_by(ConversationMessage, owner), ConversationMessage.scope == scope)
        .order_by(ConversationMessage.id.desc())
        .limit(MAX_ROWS)
    )
    ids = [r[0] for r in await session.execute(keep)]
    if len(ids) == MAX_ROWS:
        await session.execute(
            delete(ConversationMessage).where(
                owned_by(ConversationMessage, owner), ConversationMessage.scope == scope, ConversationMessage.id < min(ids)
            )
        )


async def history(session: AsyncSession, owner: Owner, scope: str, budget_tokens: int) -> list[StoredMessage]:
    """The most recent messages whose tokens fit `budget_tokens`, oldest first, starting with a user message."""
    if budget_tokens <= 0:
        return []
    rows = await session.execute(
        select(ConversationMessage.role, ConversationMessage.content, ConversationMessage.tokens)
        .where(owned_by(ConversationMessage, owner), ConversationMessage.scope == scope)
        .order_by(ConversationMessage.id.desc())
        .limit(MAX_ROWS)
    )
    picked: list[StoredMessage] = []
    used = 0
    for role, content, tokens in rows:
        if used + tokens > budget_tokens:
            break
        picked.append(StoredMessage(role, content, tokens))
        used += tokens
    picked.reverse()
    # a history that starts with an assistant answer reads as if the model spoke unprompted
    while picked and picked[0].role != "user":
        picked.pop(0)
    return picked


async def clear(session: AsyncSession, owner: Owner, scope: str | None = None, role: str | None = None) -> int:
    """Delete the owner's messages in `scope` (every scope when None), only those of `role` if given; returns how many."""
    conds = [owned_by(ConversationMessage, owner)]
    if scope is not None:
        conds.append(ConversationMessage.scope == scope)
    if role is not None:
        conds.append(ConversationMessage.role == role)
    res = await session.execute(delete(ConversationMessage).where(*conds))
    return rowcount(res)


async def tokens_used(session: AsyncSession, owner: Owner, day: date) -> int:
    """Prompt + completion tokens the owner spent on `day`."""
    q = select(LlmUsage.prompt_tokens + LlmUsage.completion_tokens).where(owned_by(LlmUsage, owner), LlmUsage.day == day)
    return int((await session.execute(q)).scalar_one_or_none() or 0)


async def tokens_used_by_all(session: AsyncSession, day: date) -> tuple[int, int]:
    """Prompt and completion tokens everyone together spent on `day` (the operator's view)."""
    q = select(func.coalesce(func.sum(LlmUsage.prompt_tokens), 0), func.coalesce(func.sum(LlmUsage.completion_tokens), 0))
    prompt, completion = (await session.execute(q.where(LlmUsage.day == day))).one()
    return int(prompt), int(completion)


async def add_usage(
    session: AsyncSession, owner: Owner, day: date, prompt_tokens: int, completion_tokens: int, calls: int = 1
) -> None:
    """Add to the owner's usage for `day`, creating the row on the first call of the day (race-safe)."""
    values = {
        "prompt_tokens": LlmUsage.prompt_tokens + max(0, prompt_tokens),
        "completion_tokens": LlmUsage.completion_tokens + max(0, completion_tokens),
        "calls": LlmUsage.calls + max(0, calls),
    }
    where = (owned_by(LlmUsage, owner), LlmUsage.day == day)
    res = await session.execute(update(LlmUsage).where(*where).values(**values))
    if rowcount(res):
        return
    try:
        async with session.begin_nested():
            session.add(
                LlmUsage(
                    tenant_id=owner.tenant_id,
                    owner_id=owner.user_id,
                    day=day,
                    prompt_tokens=max(0, prompt_tokens),
                    completion_tokens=max(0, completion_tokens),
                    calls=max(0, calls),
                )
            )
    except IntegrityError:  # another request created today's row first: add to it
        await session.execute(update(LlmUsage).where(*where).values(**values))
