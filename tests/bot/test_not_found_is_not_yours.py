"""Someone else's id gets the very answer a made-up id gets: no reply tells that an id is in use.

For each owned thing a command names by id (journal entries, alerts, tracked and stored plans,
watchlist symbols; orders are in test_orders.py), the answer to another person's id equals the
answer to an id nobody has, the id itself aside, and nothing of theirs changes.
"""

from __future__ import annotations

import pytest

from bot.request import Ctx, Identity
from storage import journal, watchlists
from storage import plans as plan_store
from tests.bot.runtime.test_tracker import tsla_plan
from tests.conftest import OPEN_AT, run_text

ANN = Identity(platform="slack", tenant="T1", user="U-ann", channel="D0ANN", display_name="ann", dm=True)
BOB = Identity(platform="slack", tenant="T1", user="U-bob", channel="C0PUBLIC", display_name="bob")
MISSING_NUMBER = "987654"
MISSING_PLAN = "P-ZZZZZZ"


async def say(services, who: Identity, text: str):
    return await run_text(Ctx(services=services, identity=who), text)


@pytest.fixture
async def anns(services) -> dict[str, str]:
    """Ann's journal entry, alert, private plan and tracked plan; returns their ids."""
    ctx = Ctx(services=services, identity=ANN)
    async with services.db() as s, s.begin():
        owner = await ctx.owner(s)
        entry = await journal.add_entry(s, owner, symbol="TSLA", text="my private note", created_at=OPEN_AT)
        await plan_store.save_plan(s, owner, tsla_plan("P-ANN001", OPEN_AT), None)  # made in her DM: hers only
        await plan_store.save_plan(s, owner, tsla_plan("P-ANN002", OPEN_AT, entry=577.0, targets=(590.0, 600.0)), None)
        await watchlists.add(s, owner, ["TSLA"])
    alert = await say(services, ANN, "/alert add TSLA above 600")
    assert alert.severity == "success", alert.body
    tracked = await say(services, ANN, "/track P-ANN002")
    assert tracked.severity == "success", tracked.body
    return {"entry": str(entry), "alert": str(alert.data.id), "plan": "P-ANN001", "tracked": "P-ANN002"}


LINES = [
    ("entry", MISSING_NUMBER, "/journal show {}"),
    ("entry", MISSING_NUMBER, "/journal edit {} rewritten"),
    ("entry", MISSING_NUMBER, "/journal remove {}"),
    ("alert", MISSING_NUMBER, "/alert edit {} value=610"),
    ("alert", MISSING_NUMBER, "/alert remove {}"),
    ("plan", MISSING_PLAN, "/track {}"),
    ("plan", MISSING_PLAN, "/plan {}"),
    ("plan", MISSING_PLAN, "/chart {}"),
    ("plan", MISSING_PLAN, "/contracts {}"),
    ("plan", MISSING_PLAN, "/alert add TSLA entry plan={}"),
    ("tracked", MISSING_PLAN, "/untrack {}"),
    ("tracked", MISSING_PLAN, "/track {} stop=be"),
]


@pytest.mark.parametrize(("what", "missing", "line"), LINES, ids=[line.split(" {")[0] + f" ({w})" for w, _, line in LINES])
async def test_someone_elses_id_reads_exactly_like_a_missing_one(services, anns, what, missing, line):
    theirs = await say(services, BOB, line.format(anns[what]))
    nobodys = await say(services, BOB, line.format(missing))
    assert theirs.severity == nobodys.severity == "error"
    assert (theirs.title, theirs.body) == (nobodys.title, nobodys.body.replace(missing, anns[what]))
    for word in ("someone else", "belongs", "not yours", "another"):
        assert word not in theirs.body.lower()
    # and Ann's things are as they were
    assert (await say(services, ANN, f"/journal show {anns['entry']}")).body == "my private note"
    assert [a.id for a in (await say(services, ANN, "/alert list")).data["alerts"]] == [int(anns["alert"])]
    assert [p.plan_id for p in (await say(services, ANN, "/tracked")).data["plans"]] == ["P-ANN002"]


async def test_someone_elses_watchlist_symbol_reads_like_one_nobody_watches(services, anns):
    theirs = await say(services, BOB, "/watch remove TSLA")
    nobodys = await say(services, BOB, "/watch remove NVDA")
    assert theirs.body == nobodys.body.replace("NVDA", "TSLA") and theirs.data["removed"] == []
    assert (await say(services, ANN, "/watch list")).data["watchlist"] == ["TSLA"]


async def test_a_journal_entry_about_someone_elses_private_plan_gets_no_chart_either_way(services, anns):
    theirs = await say(services, BOB, f"/journal add TSLA held it --plan {anns['plan']}")
    nobodys = await say(services, BOB, f"/journal add TSLA held it --plan {MISSING_PLAN}")
    assert not theirs.attachments and not nobodys.attachments
    assert theirs.body.replace(anns["plan"], "?").split("\n", 1)[1] == nobodys.body.replace(MISSING_PLAN, "?").split("\n", 1)[1]
