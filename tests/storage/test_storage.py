"""Storage on SQLite and (when TEST_DATABASE_URL is set) PostgreSQL: migrations, identity, watchlists."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import ConfigError, UserError
from storage import watchlists
from storage.db import current_revisions, make_engine, upgrade
from storage.identity import ensure_owner


async def test_migrations_reach_head(engine):
    revs = await current_revisions(engine)
    assert "0001" in revs or revs  # at least the foundation revision applied
    await upgrade(engine)  # idempotent
    assert await current_revisions(engine) == revs


async def test_identity_created_once_and_scoped(sessionmaker):
    async with sessionmaker() as s, s.begin():
        a = await ensure_owner(s, "discord", "G1", "U1", "ann")
        a2 = await ensure_owner(s, "discord", "G1", "U1")
        b = await ensure_owner(s, "discord", "G2", "U1")  # same user id, other guild: another tenant
        c = await ensure_owner(s, "slack", "G1", "U1")
    assert a == a2
    assert len({a.tenant_id, b.tenant_id, c.tenant_id}) == 3
    assert len({a.user_id, b.user_id, c.user_id}) == 3


async def test_identity_race_creates_one_row(sessionmaker):
    async def one():
        async with sessionmaker() as s, s.begin():
            return await ensure_owner(s, "slack", "T9", "U9")

    owners = await asyncio.gather(*[one() for _ in range(5)])
    assert len(set(owners)) == 1


async def test_watchlist_per_owner(sessionmaker):
    async with sessionmaker() as s, s.begin():
        a = await ensure_owner(s, "discord", "G1", "U1")
        b = await ensure_owner(s, "discord", "G1", "U2")
        assert await watchlists.add(s, a, ["TSLA", "NVDA", "TSLA"]) == ["TSLA", "NVDA"]
        assert await watchlists.add(s, a, ["NVDA", "AAPL"]) == ["AAPL"]
        await watchlists.add(s, b, ["SPY"])
    async with sessionmaker() as s, s.begin():
        assert await watchlists.list_symbols(s, a) == ["TSLA", "NVDA", "AAPL"]
        assert await watchlists.list_symbols(s, b) == ["SPY"]
        assert await watchlists.remove(s, a, ["NVDA", "MSFT"]) == ["NVDA"]
        assert await watchlists.remove(s, b, ["TSLA"]) == []  # b cannot touch a's symbols
    async with sessionmaker() as s, s.begin():
        assert await watchlists.list_symbols(s, a) == ["TSLA", "AAPL"]


async def test_watchlist_limit_leaves_list_untouched(sessionmaker):
    async with sessionmaker() as s, s.begin():
        a = await ensure_owner(s, "console", "local", "me")
        await watchlists.add(s, a, [f"S{i}" for i in range(watchlists.MAX_SYMBOLS - 1)])
    with pytest.raises(UserError):
        async with sessionmaker() as s, s.begin():
            await watchlists.add(s, a, ["AAA", "BBB"])
    async with sessionmaker() as s:
        assert len(await watchlists.list_symbols(s, a)) == watchlists.MAX_SYMBOLS - 1


async def test_unreachable_database_is_a_config_error():
    eng = make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
    with pytest.raises(ConfigError) as ei:
        await upgrade(eng)
    await eng.dispose()
    assert "cannot connect" in str(ei.value) and "DATABASE_URL" in str(ei.value)


def test_bad_database_url_is_a_config_error():
    with pytest.raises(ConfigError, match="accepted"):
        make_engine("not a url")
    with pytest.raises(ConfigError, match="driver"):
        make_engine("mysql+nosuchdriver://x@y/z")


async def test_owner_rows_need_the_user_inside_the_tenant(sessionmaker):
    from storage.identity import Owner, owner_rows

    async with sessionmaker() as s, s.begin():
        a = await ensure_owner(s, "slack", "T1", "U1", "ann")
        b = await ensure_owner(s, "slack", "T2", "U2")
    async with sessionmaker() as s:
        rows = await owner_rows(s, a)
        assert rows is not None
        tenant, user = rows
        assert (tenant.id, tenant.external_id, user.id, user.external_id, user.display_name) == (
            a.tenant_id,
            "T1",
            a.user_id,
            "U1",
            "ann",
        )
        assert await owner_rows(s, Owner(tenant_id=b.tenant_id, user_id=a.user_id)) is None  # a's user, b's tenant
        assert await owner_rows(s, Owner(tenant_id=a.tenant_id, user_id=b.user_id + 1000)) is None


async def test_runtime_watched_symbols_span_tenants_once_each(sessionmaker):
    async with sessionmaker() as s, s.begin():
        a = await ensure_owner(s, "discord", "G1", "U1")
        b = await ensure_owner(s, "slack", "T1", "U1")
        await watchlists.add(s, a, ["TSLA", "NVDA"])
        await watchlists.add(s, a, ["TSLA"], name="swing")
        await watchlists.add(s, b, ["AAPL", "NVDA"])
    async with sessionmaker() as s:
        assert await watchlists.runtime_watched_symbols(s) == ["AAPL", "NVDA", "TSLA"]
