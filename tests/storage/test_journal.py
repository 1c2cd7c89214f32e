"""Journal repository: entries per owner, validation, edits, tenancy; the migration matches the models."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import inspect

from core.errors import NotFoundError, UserError
from storage import journal
from storage.identity import ensure_owner

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _owners(sessionmaker):
    async with sessionmaker() as s, s.begin():
        a = await ensure_owner(s, "discord", "guild-1", "alice")
        b = await ensure_owner(s, "discord", "guild-2", "alice")  # same user id, another tenant
        c = await ensure_owner(s, "discord", "guild-1", "carol")
    return a, b, c


async def test_add_list_edit_remove(sessionmaker):
    a, b, c = await _owners(sessionmaker)
    async with sessionmaker() as s, s.begin():
        first = await journal.add_entry(s, a, symbol="tsla", text="  chased the open, no plan ", tags=["#FOMO", "fomo", "open"])
        second = await journal.add_entry(
            s,
            a,
            symbol=None,
            text="sold NVDA at target",
            plan_id="P-1A2B",
            source="broker",
            data={"qty": 10, "price": 120.5, "bad": float("nan")},
            screenshot=PNG,
        )
    async with sessionmaker() as s, s.begin():
        rows = await journal.list_entries(s, a)
        assert [r.id for r in rows] == [second, first]  # newest first
        assert rows[1].symbol == "TSLA" and rows[1].text == "chased the open, no plan"
        assert rows[1].tags == ["fomo", "open"]
        assert rows[0].source == "broker" and rows[0].data == {"qty": 10, "price": 120.5, "bad": None}
        assert rows[0].has_screenshot and not rows[1].has_screenshot
        assert await journal.get_screenshot(s, a, second) == PNG
        assert [r.id for r in await journal.list_entries(s, a, tag="#Open")] == [first]
        assert [r.id for r in await journal.list_entries(s, a, plan_id="P-1A2B")] == [second]
        assert [r.id for r in await journal.list_entries(s, a, source="broker")] == [second]
        assert await journal.list_entries(s, b) == [] and await journal.list_entries(s, c) == []

    async with sessionmaker() as s, s.begin():
        v = await journal.edit_entry(s, a, first, text="waited for the ORB next time", append=True, tags=["lesson"])
        assert v.text == "chased the open, no plan\nwaited for the ORB next time"
        assert v.tags == ["lesson"] and v.edited_at is not None
        v = await journal.edit_entry(s, a, first, symbol=None)
        assert v.symbol is None

    # another tenant's user with the same platform id, and another user, cannot touch it
    for other in (b, c):
        async with sessionmaker() as s, s.begin():
            with pytest.raises(NotFoundError):
                await journal.edit_entry(s, other, first, text="mine now")
            with pytest.raises(NotFoundError):
                await journal.remove_entry(s, other, first)
            with pytest.raises(NotFoundError):
                await journal.get_screenshot(s, other, second)

    async with sessionmaker() as s, s.begin():
        gone = await journal.remove_entry(s, a, first)
        assert gone.id == first
        assert await journal.count_entries(s, a) == 1


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"text": "   "}, "empty"),
        ({"text": "x" * (journal.MAX_TEXT + 1)}, "too long"),
        ({"text": "ok", "symbol": "not a symbol"}, "invalid symbol"),
        ({"text": "ok", "tags": ["white space!"]}, "invalid tag"),
        ({"text": "ok", "tags": [f"t{i}" for i in range(journal.MAX_TAGS + 1)]}, "at most"),
        ({"text": "ok", "plan_id": "P 1; drop table"}, "invalid plan id"),
        ({"text": "ok", "source": "robot"}, "unknown journal source"),
        ({"text": "ok", "screenshot": b"GIF89a"}, "PNG"),
    ],
)
async def test_bad_input_is_one_clear_error_and_nothing_is_stored(sessionmaker, kwargs, fragment):
    a, _, _ = await _owners(sessionmaker)
    kwargs = {"symbol": None, **kwargs}
    with pytest.raises(UserError, match=fragment):
        async with sessionmaker() as s, s.begin():
            await journal.add_entry(s, a, **kwargs)
    async with sessionmaker() as s, s.begin():
        assert await journal.count_entries(s, a) == 0


async def test_migration_creates_what_the_models_declare(engine):
    def columns(sync_conn):
        insp = inspect(sync_conn)
        return {t: {c["name"]: c["nullable"] for c in insp.get_columns(t)} for t in ("journal_entries", "plan_outcomes")}

    async with engine.connect() as conn:
        found = await conn.run_sync(columns)
    for table in (journal.JournalEntry.__table__, journal.PlanOutcomeRow.__table__):
        declared = {c.name: c.nullable for c in table.columns}
        assert found[table.name] == declared, table.name


def _outcome(plan_id="P-9", status="closed", r=1.5, version=1):
    from datetime import datetime

    from analytics.outcomes import TradeOutcome

    t = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)
    return TradeOutcome(
        plan_id=plan_id,
        version=version,
        symbol="TSLA",
        strategy="orb",
        style="intraday",
        direction="long",
        quality=0.7,
        entry=100.0,
        stop=98.0,
        targets=[104.0],
        planned_at=t,
        status=status,
        exit_reason="target" if status == "closed" else None,
        first="t1" if status == "closed" else None,
        hit_t1=status == "closed",
        targets_hit=1 if status == "closed" else 0,
        r_multiple=r,
        mae_r=0.2,
        mfe_r=2.0,
        entry_fill=100.0,
        entered_at=t,
        exited_at=t if status == "closed" else None,
        time_in_trade_s=2700.0,
    )


async def test_record_outcome_upserts_and_journals_the_final_state_once(sessionmaker):
    a, b, _ = await _owners(sessionmaker)
    async with sessionmaker() as s, s.begin():
        await journal.record_outcome(s, a, "P-9", _outcome(status="open", r=0.4))
    async with sessionmaker() as s, s.begin():
        assert await journal.list_entries(s, a, source="plan") == []  # not final yet: nothing journaled
        first_id = await journal.record_outcome(s, a, "P-9", _outcome())
    async with sessionmaker() as s, s.begin():
        again = await journal.record_outcome(s, a, "P-9", _outcome().model_dump(mode="json"))
        assert again == first_id
        entries = await journal.list_entries(s, a, source="plan")
        assert len(entries) == 1
        e = entries[0]
        assert e.plan_id == "P-9" and e.symbol == "TSLA" and "outcome" in e.tags
        assert "T1 before the stop" in e.text and "+1.50R" in e.text and "45m" in e.text
        outs = await journal.list_outcomes(s, a)
        assert len(outs) == 1 and outs[0].status == "closed" and outs[0].r_multiple == 1.5
        assert await journal.list_outcomes(s, b) == []
        assert await journal.list_outcomes(s, a, strategy="vwap") == []
        assert await journal.outcome_strategies(s, a) == ["orb"]


async def test_automatic_entries_never_fail_on_odd_input(sessionmaker):
    a, _, _ = await _owners(sessionmaker)
    async with sessionmaker() as s, s.begin():
        eid = await journal.add_entry(
            s,
            a,
            symbol="TSLA240119P00290000!",
            text="x" * (journal.MAX_TEXT + 50),
            plan_id="my plan #3",
            tags=["fill", "bad tag!"],
            source="broker",
            data={"price": float("inf")},
        )
        e = await journal.get_entry(s, a, eid)
    assert e.symbol is None and e.plan_id is None and e.tags == ["fill"] and len(e.text) == journal.MAX_TEXT
    assert e.data == {"price": None, "unparsed": {"symbol": "TSLA240119P00290000!", "plan_id": "my plan #3"}}


async def test_finished_tracked_without_outcome_skips_live_cancelled_and_scored_plans(sessionmaker):
    from datetime import datetime, timedelta

    from storage import alerts

    a, b, _ = await _owners(sessionmaker)
    t0 = datetime(2024, 3, 13, 20, 0, tzinfo=UTC)

    async def track(s, owner, plan_id, status, minutes):
        await alerts.track(
            s,
            owner,
            plan_id=plan_id,
            symbol="TSLA",
            style="intraday",
            plan={},
            state={},
            status=status,
            platform="discord",
            user_ref="alice",
            updated_at=t0 + timedelta(minutes=minutes),
        )

    async with sessionmaker() as s, s.begin():
        await track(s, a, "P-STOP", "stopped", 3)
        await track(s, a, "P-OPEN", "exited", 1)  # scored, but not final yet: still wanted
        await track(s, a, "P-DONE", "expired", 0)  # has its final outcome
        await track(s, a, "P-LIVE", "triggered", 0)
        await track(s, a, "P-GONE", "cancelled", 0)
        await track(s, b, "P-DONE", "invalidated", 2)  # same plan id, another tenant: a's outcome is not b's
        await journal.record_outcome(s, a, "P-OPEN", _outcome(plan_id="P-OPEN", status="open"))
        await journal.record_outcome(s, a, "P-DONE", _outcome(plan_id="P-DONE"))
    async with sessionmaker() as s:
        every = await journal.finished_tracked_without_outcome(s)
        assert [(r.owner_id, r.plan_id) for r in every] == [
            (a.user_id, "P-OPEN"),
            (b.user_id, "P-DONE"),
            (a.user_id, "P-STOP"),  # longest finished first
        ]
        assert [r.plan_id for r in await journal.finished_tracked_without_outcome(s, a)] == ["P-OPEN", "P-STOP"]
        assert [r.plan_id for r in await journal.finished_tracked_without_outcome(s, b)] == ["P-DONE"]
        assert [r.plan_id for r in await journal.finished_tracked_without_outcome(s, limit=1)] == ["P-OPEN"]
