"""The runtime's write path: one transaction per batch, all or nothing, on a blocking thread for SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.runtime.routing import Origin, SettingsCache, route_many
from bot.runtime.txn import Writer
from bot.services import Services
from storage import alerts as store
from storage.identity import ensure_owner
from storage.outbox import NewMessage, insert_outbox, outbox_rows
from storage.runtime_state import get_state, upsert_state

NOW = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)


async def _owner(services: Services):
    async with services.db() as s, s.begin():
        return await ensure_owner(s, "discord", "G1", "U1")


def _msg(owner, key: str) -> NewMessage:
    return NewMessage(
        tenant_id=owner.tenant_id,
        owner_id=owner.user_id,
        key=key,
        kind="alert",
        destination="discord",
        target="channel:C1",
        payload={"text": key},
    )


async def test_run_commits_every_statement_together_or_none(services):
    owner = await _owner(services)
    writer = Writer(services)
    try:

        def ok(conn):
            upsert_state(conn, "cursor", {"at": "one"}, NOW)
            return insert_outbox(conn, [_msg(owner, "a@1"), _msg(owner, "b@1")], NOW)

        assert await writer.run(ok, urgent=True) == 2

        def fails(conn):
            upsert_state(conn, "cursor", {"at": "two"}, NOW)
            insert_outbox(conn, [_msg(owner, "c@1")], NOW)
            raise RuntimeError("disk full")

        with pytest.raises(RuntimeError):
            await writer.run(fails, urgent=True)
        # the same key again is skipped, a new one counted
        assert await writer.run(lambda conn: insert_outbox(conn, [_msg(owner, "a@1"), _msg(owner, "d@1")], NOW)) == 1
    finally:
        await writer.aclose()
    async with services.db() as s:
        keys = [r.key for r in await outbox_rows(s)]
        assert await get_state(s, "cursor") == {"at": "one"}
    assert sorted(keys) == ["a@1", "b@1", "d@1"]


async def test_a_fire_is_recorded_once_even_when_two_writers_race(services):
    owner = await _owner(services)
    async with services.db() as s, s.begin():
        row = await store.create_alert(
            s,
            owner,
            symbol="TSLA",
            kind="above",
            value=250.0,
            level=250.0,
            band=0.5,
            params={},
            repeat=False,
            cooldown_s=0,
            session="regular",
            note="",
            platform="discord",
            channel="C1",
            user_ref="U1",
        )
    fire = {
        "id": row.id,
        "expect": 0,
        "fire_count": 1,
        "armed_up": False,
        "armed_down": None,
        "last_fired_at": NOW,
        "status": "fired",
        "last_price": 250.3,
    }
    writer = Writer(services)
    try:
        first = await writer.run(lambda conn: store.record_fires(conn, [fire], NOW))
        # another worker's batch (its own stamp) with the same fire: the guard on the fire count refuses it
        again = await writer.run(lambda conn: store.record_fires(conn, [fire], NOW.replace(microsecond=1)))
    finally:
        await writer.aclose()
    assert (first, again) == ({row.id}, set())
    async with services.db() as s:
        stored = (await s.execute(select(store.Alert).where(store.Alert.id == row.id))).scalar_one()
    assert (stored.fire_count, stored.status, stored.last_price, stored.last_fired_at) == (1, "fired", 250.3, NOW)


def _wal_frames(db: Path) -> int:
    wal = Path(f"{db}-wal")
    if not wal.exists() or wal.stat().st_size < 32:
        return 0
    page = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    return (wal.stat().st_size - 32) // (page + 24)


async def test_sqlite_batch_commits_never_stall_on_a_checkpoint(services):
    """Commits leave the WAL alone (a checkpoint inside a commit is a 10-20 ms stall); `checkpoint` folds it later."""
    if services.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite file's write-ahead log")
    db = Path(services.engine.url.database)
    writer = Writer(services)
    blob = "x" * 8000  # about two pages per commit
    try:
        for i in range(1500):
            await writer.run(lambda conn, i=i: upsert_state(conn, f"k{i}", {"v": blob}, NOW))
        # SQLite's automatic checkpoint would have kept the log near 1,000 frames
        assert _wal_frames(db) > 2000
        before = db.stat().st_size
        await writer.checkpoint()
        # the rows (1,500 x 8 kB) went from the log into the database file itself
        assert db.stat().st_size - before > 1500 * 8000
    finally:
        await writer.aclose()


async def test_settings_cache_is_refreshed_in_bulk_and_triggers_never_read(services):
    owner = await _owner(services)
    origins = [Origin(tenant_id=owner.tenant_id, platform="discord", channel=f"C{i}", user_ref="U1") for i in range(5)]
    opened = 0

    def counting_db():
        nonlocal opened
        opened += 1
        return services.db()

    now = [100.0]
    cache = SettingsCache(ttl=0.2, clock=lambda: now[0])
    events = [(o, "price", "TSLA") for o in origins]
    first = await route_many(counting_db, cache, events)
    assert opened == 1 and [s[0].target for s in first] == [f"channel:C{i}" for i in range(5)]
    assert await route_many(counting_db, cache, events) == first and opened == 1  # all in memory

    async with services.db() as s, s.begin():
        await store.update_settings(s, owner.tenant_id, "channel", "C3", None, alerts_enabled=False)
    now[0] += 0.12  # past half the ttl: due for the housekeeping's refresh
    async with services.db() as s:
        assert await cache.refresh(s) == 5
    after = await route_many(counting_db, cache, events)
    assert opened == 1, "the refreshed entries are served without a read"
    assert after[3] == [] and all(after[i] == first[i] for i in (0, 1, 2, 4))
