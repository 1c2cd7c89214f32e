"""API keys: only a hash is stored, a key finds its row by prefix, wrong and revoked keys never pass."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from core.errors import UserError
from storage import api_answers, api_keys
from tests.conftest import OPEN_AT


async def test_a_key_is_stored_hashed_and_authenticates_until_revoked(sessionmaker):
    async with sessionmaker() as s, s.begin():
        key, info = await api_keys.create_key(
            s, name="gpt-action", platform="slack", tenant="T1", user="U1", scope="act", admin=False, now=OPEN_AT
        )
    assert key.startswith("coach_" + info.prefix + "_") and len(key) > 50
    async with sessionmaker() as s:
        stored = (await s.execute(text("SELECT * FROM api_keys"))).mappings().one()
    assert key not in str(dict(stored)) and stored["key_hash"] == api_keys.hash_key(key)

    later = OPEN_AT + timedelta(minutes=5)
    async with sessionmaker() as s, s.begin():
        got = await api_keys.authenticate(s, key, later)
    assert got is not None and (got.platform, got.tenant, got.user, got.scope, got.can_act) == ("slack", "T1", "U1", "act", True)
    async with sessionmaker() as s, s.begin():
        assert (await api_keys.list_keys(s))[0].last_used_at == later
        for wrong in (key[:-1] + ("A" if key[-1] != "A" else "B"), key.replace(info.prefix, "00000000"), "", "Bearer x"):
            assert await api_keys.authenticate(s, wrong, later) is None
        revoked = await api_keys.revoke_key(s, "gpt-action", later)
    assert revoked.revoked_at == later
    async with sessionmaker() as s, s.begin():
        assert await api_keys.authenticate(s, key, later) is None
        with pytest.raises(UserError, match="revoked already"):
            await api_keys.revoke_key(s, str(info.id), later)


async def test_names_are_checked_and_unique_and_revoke_finds_by_id(sessionmaker):
    async with sessionmaker() as s, s.begin():
        _, first = await api_keys.create_key(
            s, name="a", platform="console", tenant="local", user="op", scope="read", admin=True, now=OPEN_AT
        )
    async with sessionmaker() as s, s.begin():
        with pytest.raises(UserError, match="exists already"):
            await api_keys.create_key(
                s, name="a", platform="console", tenant="local", user="op", scope="read", admin=False, now=OPEN_AT
            )
    async with sessionmaker() as s, s.begin():
        for bad in ("", "1abc", "has space", "x" * 65):
            with pytest.raises(UserError, match="bad key name"):
                await api_keys.create_key(
                    s, name=bad, platform="console", tenant="local", user="op", scope="read", admin=False, now=OPEN_AT
                )
        with pytest.raises(UserError, match="no API key"):
            await api_keys.revoke_key(s, "nobody", OPEN_AT)
        assert (await api_keys.revoke_key(s, f"#{first.id}", OPEN_AT)).name == "a"
    async with sessionmaker() as s:
        assert (await s.execute(select(api_keys.ApiKey.name))).scalars().all() == ["a"]


async def test_an_answer_is_taken_once_and_old_ones_are_purged(sessionmaker):
    async with sessionmaker() as s, s.begin():
        await api_answers.put(s, "api:1", 200, {"ok": True}, OPEN_AT)
        await api_answers.put(s, "api:1", 500, {"ok": False}, OPEN_AT)  # a repeat does not replace the answer
        await api_answers.put(s, "api:2", 422, {"detail": "x"}, OPEN_AT - timedelta(hours=1))
    async with sessionmaker() as s, s.begin():
        assert await api_answers.take(s, "api:1") == (200, {"ok": True})
        assert await api_answers.take(s, "api:1") is None
        assert await api_answers.purge(s, OPEN_AT - timedelta(minutes=10)) == 1
        assert await api_answers.take(s, "api:2") is None
