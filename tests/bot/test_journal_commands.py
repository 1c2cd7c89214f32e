"""/journal as a user types it, per tenant and owner, with a plan chart screenshot; `coach journal export --csv`."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from analytics.models import Plan, Target
from bot.request import Ctx, Identity
from storage import alerts, journal
from tests.bot.test_cli import run as run_cli
from tests.conftest import OPEN_AT, run_text

ALICE = Identity(platform="discord", tenant="g1", user="alice", channel="c1")
BOB = Identity(platform="discord", tenant="g1", user="bob", channel="c1")
ALICE_ELSEWHERE = Identity(platform="discord", tenant="g2", user="alice", channel="c9")


async def say(services, who, text):
    return await run_text(Ctx(services=services, identity=who), text)


async def test_add_list_edit_show_remove(services):
    r = await say(services, ALICE, "/journal add TSLA chased the open, no plan #fomo --tags open,Lesson")
    assert r.severity == "success", r.body
    e = r.data
    assert e.symbol == "TSLA" and e.text == "chased the open, no plan #fomo" and e.tags == ["open", "lesson", "fomo"]
    assert e.created_at == OPEN_AT  # the service clock
    r = await say(services, ALICE, "/journal add $nvda took T1, moved stop to break-even")
    assert r.data.symbol == "NVDA" and r.data.text == "took T1, moved stop to break-even"
    r = await say(services, ALICE, "/journal add felt calm, sized down")  # no ticker: none guessed from ordinary words
    assert r.data.symbol is None

    r = await say(services, ALICE, "/journal list")
    assert r.data.total == 3 and [x.symbol for x in r.data.entries] == [None, "NVDA", "TSLA"]
    assert "#1" in r.body and "chased the open" in r.body
    r = await say(services, ALICE, "/journal list TSLA --tag fomo")
    assert [x.id for x in r.data.entries] == [e.id]

    r = await say(services, ALICE, f"/journal edit {e.id} waited for the retest --append --tags patience")
    assert r.data.text.endswith("\nwaited for the retest") and r.data.tags == ["patience"]
    r = await say(services, ALICE, f"/journal show {e.id}")
    assert "waited for the retest" in r.body and any(f.name == "Edited" for f in r.fields)
    r = await say(services, ALICE, f"/journal remove {e.id}")
    assert r.data == {"removed": e.id}
    r = await say(services, ALICE, "/journal list")
    assert r.data.total == 2


async def test_other_users_and_tenants_never_see_or_touch_an_entry(services):
    r = await say(services, ALICE, "/journal add SPY note to self")
    eid = r.data.id
    for other in (BOB, ALICE_ELSEWHERE):
        assert (await say(services, other, "/journal list")).data.total == 0
        for cmd in (f"/journal show {eid}", f"/journal edit {eid} mine", f"/journal remove {eid}"):
            r = await say(services, other, cmd)
            assert r.severity == "error" and "no journal entry" in r.body
    assert (await say(services, ALICE, "/journal list")).data.total == 1


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("/journal add", "missing text"),
        ("/journal add hi --plan 'P 1;drop'", "not a plan id"),
        ("/journal add hi --tags 'no way!'", "invalid tag"),
        ("/journal edit 1", "nothing to change"),
        ("/journal list --source robot", "unknown source"),
        ("/journal remove abc", "id"),
        ("/journal add " + "x" * 4200, "too long"),
    ],
)
async def test_bad_input_is_one_short_error(services, text, fragment):
    r = await say(services, ALICE, text)
    assert r.severity == "error" and fragment in r.body, r.body
    assert (await say(services, ALICE, "/journal list")).data.total == 0


def _plan() -> Plan:
    return Plan(
        plan_id="P-JRNL01",
        symbol="TSLA",
        style="intraday",
        strategy="orb",
        direction="long",
        interval="5m",
        entry=180.0,
        stop=178.5,
        targets=[Target(price=183.0, rr=2.0, reason="prior-day high")],
        quality=0.6,
        quality_factors={},
        confluence=[],
        invalidation="below 178.5",
        as_of=OPEN_AT - timedelta(hours=1),
        session="open",
        sources=["bars: sim"],
    )


async def test_a_plan_id_stores_the_plan_chart_with_the_entry(services):

    ctx = Ctx(services=services, identity=ALICE)
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        p = _plan()
        await alerts.track(
            s,
            owner,
            plan_id=p.plan_id,
            symbol=p.symbol,
            style=p.style,
            plan=p.model_dump(mode="json"),
            state={},
            status="pending",
            platform="discord",
            channel="c1",
            user_ref="alice",
        )
    r = await say(services, ALICE, "/journal add held for T1 --plan P-JRNL01")
    assert r.severity == "success", r.body
    assert r.data.has_screenshot and r.data.symbol == "TSLA" and r.data.plan_id == "P-JRNL01"
    assert r.attachments and r.attachments[0].data.startswith(b"\x89PNG")
    shown = await say(services, ALICE, f"/journal show {r.data.id}")
    assert shown.attachments[0].data == r.attachments[0].data
    # a plan /plan stored (not tracked) is found too, by its short id
    from storage import plans as plan_store

    async with ctx.tx() as s:
        await plan_store.save_plan(s, await ctx.owner(s), _plan().model_copy(update={"plan_id": "P-STORE1"}))
    r = await say(services, ALICE, "/journal add from the plan reply --plan store1")
    assert r.data.plan_id == "P-STORE1" and r.data.has_screenshot, r.body
    # bob cannot attach alice's plan
    r = await say(services, BOB, "/journal add peeking --plan P-JRNL01")
    assert "not one of your plans" in r.body and not r.data.has_screenshot


async def test_record_outcome_shows_up_in_the_journal_and_the_scorecard(services):
    from analytics.outcomes import evaluate_plan
    from providers.sim import SimMarket

    p = _plan()
    market = SimMarket(seed=0, now=lambda: OPEN_AT + timedelta(days=3))
    bars = (await market.bars("TSLA", "5m", p.as_of, p.as_of + timedelta(days=1))).df
    outcome = evaluate_plan(p, bars)
    ctx = Ctx(services=services, identity=ALICE)
    async with ctx.tx() as s:
        await journal.record_outcome(s, await ctx.owner(s), p.plan_id, outcome)
    r = await say(services, ALICE, "/journal list --source plan")
    assert r.data.total == 1 and r.data.entries[0].plan_id == "P-JRNL01"
    r = await say(services, ALICE, "/scorecard")
    assert r.data.overall.plans == 1 and "Your tracked plans" in r.body
    r = await say(services, ALICE, "/scorecard vwap_reclaim")
    assert "you have outcomes for: orb" in r.body
    r = await say(services, BOB, "/scorecard")
    assert r.data.overall.plans == 0 and "No tracked plan has finished yet" in r.body


def test_cli_export_writes_every_entry_as_csv(cli, tmp_path):
    for text in ("SPY opened weak, waited #patience", 'NVDA "quoted" text, with commas'):
        r = cli(["journal", "add", text])
        assert r.exit_code == 0, r.output
    r = cli(["journal", "export", "--csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0][:3] == ["id", "created_at", "edited_at"] and len(rows) == 3
    assert rows[1][4] == "SPY" and rows[1][6] == "patience" and rows[2][7] == '"quoted" text, with commas'
    out = tmp_path / "sub" / "journal.csv"
    r = cli(["journal", "export", "--csv", str(out)])
    assert r.exit_code == 0 and "wrote 2 entries" in r.stderr
    assert list(csv.reader(out.open())) == rows
    r = cli(["journal", "export", str(out), "--source", "broker"])
    assert r.exit_code == 0 and len(list(csv.reader(out.open()))) == 1  # header only
    r = cli(["journal", "export", "--csv", str(tmp_path)])
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and "folder" in r.stderr


def test_cli_export_runs_as_a_real_process(tmp_path):
    r = run_cli(["journal", "export", "--csv"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["id,created_at,edited_at,source,symbol,plan_id,tags,text,has_screenshot,data"]


async def test_finished_tracked_plans_are_scored_journaled_and_on_the_scorecard_once(services):
    from bot.scorecard import sync_tracked_outcomes

    ctx = Ctx(services=services, identity=ALICE)
    plans = []
    for k, (status, hours) in enumerate((("stopped", 24), ("exited", 23), ("triggered", 1))):
        p = _plan().model_copy(
            update={"plan_id": f"P-TRK{k}", "as_of": OPEN_AT - timedelta(hours=hours), "entry": 179.0 + k, "stop": 177.5 + k}
        )
        plans.append(p)
        async with ctx.tx() as s:
            await alerts.track(
                s,
                await ctx.owner(s),
                plan_id=p.plan_id,
                symbol=p.symbol,
                style=p.style,
                plan=p.model_dump(mode="json"),
                state={},
                status=status,
                platform="discord",
                channel="c1",
                user_ref="alice",
            )
    r = await say(services, ALICE, "/scorecard")
    assert r.data.overall.plans == 2, r.body  # the still-live plan is not scored
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        outs = {o.plan_id: o for o in await journal.list_outcomes(s, owner)}
        notes = await journal.list_entries(s, owner, source="plan")
    assert set(outs) == {"P-TRK0", "P-TRK1"} and all(o.status in ("closed", "no_entry") for o in outs.values())
    assert {e.plan_id for e in notes} == {"P-TRK0", "P-TRK1"}
    # the serve task's pass and another /scorecard find nothing new: no second journal entry
    assert await sync_tracked_outcomes(services) == 0
    await say(services, ALICE, "/scorecard")
    async with ctx.tx() as s:
        assert len(await journal.list_entries(s, await ctx.owner(s), source="plan")) == 2
    assert (await say(services, BOB, "/scorecard")).data.overall.plans == 0
