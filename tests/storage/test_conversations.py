"""Coach conversations and token usage: scoped per owner and conversation, trimmed, race-safe."""

from __future__ import annotations

import asyncio
from datetime import date

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage import conversations
from storage.base import Base
from storage.identity import ensure_owner

DAY = date(2024, 3, 13)


async def test_migration_matches_the_models(engine):
    def diff(sync_conn):
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return [repr(d) for d in compare_metadata(ctx, Base.metadata)]

    async with engine.connect() as conn:
        found = await conn.run_sync(diff)
    assert [d for d in found if "conversation_messages" in d or "llm_usage" in d] == []


async def test_history_is_per_owner_and_scope_and_fits_the_budget(sessionmaker):
    async with sessionmaker() as s, s.begin():
        a = await ensure_owner(s, "slack", "T1", "U1")
        b = await ensure_owner(s, "slack", "T1", "U2")
        for i in range(5):
            await conversations.append(s, a, "ch:C1", "user", f"q{i} " + "x" * 36)  # 10 tokens each
            await conversations.append(s, a, "ch:C1", "assistant", f"a{i} " + "y" * 36)
        await conversations.append(s, a, "dm", "user", "private")
        await conversations.append(s, b, "ch:C1", "user", "other person")
    async with sessionmaker() as s:
        hist = await conversations.history(s, a, "ch:C1", budget_tokens=35)
        assert [m.content[:2] for m in hist] == ["q4", "a4"]  # 3 fit, but history starts with a user message
        assert [m.content for m in await conversations.history(s, a, "dm", 100)] == ["private"]
        assert [m.content for m in await conversations.history(s, b, "ch:C1", 100)] == ["other person"]
        assert await conversations.history(s, a, "ch:C1", 0) == []
    async with sessionmaker() as s, s.begin():
        assert await conversations.clear(s, a, "ch:C1") == 10
    async with sessionmaker() as s:
        assert await conversations.history(s, a, "ch:C1", 10**9) == []
        assert [m.content for m in await conversations.history(s, a, "dm", 10**9)] == ["private"]
        assert [m.content for m in await conversations.history(s, b, "ch:C1", 10**9)] == ["other person"]


async def test_rows_are_capped_per_conversation(sessionmaker, monkeypatch):
    monkeypatch.setattr(conversations, "MAX_ROWS", 6)
    async with sessionmaker() as s, s.begin():
        a = await ensure_owner(s, "console", "local", "me")
        for i in range(10):
            await conversations.append(s, a, "dm", "user", f"m{i}" + "z" * 20_000)
    async with sessionmaker() as s:
        hist = await conversations.history(s, a, "dm", 10**9)
        assert [m.content[:2] for m in hist] == [f"m{i}" for i in range(4, 10)]
        assert all(len(m.content) == conversations.MAX_CHARS for m in hist)


async def test_usage_adds_up_per_day_and_survives_races(sessionmaker):
    async with sessionmaker() as s, s.begin():
        a = await ensure_owner(s, "discord", "G", "U")
        b = await ensure_owner(s, "discord", "G", "V")

    async def spend():
        async with sessionmaker() as s, s.begin():
            await conversations.add_usage(s, a, DAY, 100, 20)

    await asyncio.gather(*[spend() for _ in range(5)])
    async with sessionmaker() as s:
        assert await conversations.tokens_used(s, a, DAY) == 600
        assert await conversations.tokens_used(s, a, date(2024, 3, 14)) == 0
        assert await conversations.tokens_used(s, b, DAY) == 0
