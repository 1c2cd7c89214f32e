"""A plan tracked in a Slack DM re-plans into that DM only, stored for its owner only, adoptable by its owner only.

The re-plan runs the real planner (`bot.planning.make_plan`, on the offline market) the way the
runtime does after a stop-out; the workspace has a webhook that channel events go to.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.request import Ctx, Identity
from bot.runtime.replan import Replanner
from bot.runtime.routing import Origin, route
from storage import alerts as store
from storage import plans as plan_store
from storage.outbox import outbox_rows
from tests.bot.runtime.test_tracker import tsla_plan
from tests.conftest import OPEN_AT, run_text

#: When the offline market gives NVDA an intraday plan (the re-plan's market time).
REPLAN_AT = datetime(2024, 3, 14, 14, 15, tzinfo=UTC)
HOOK = "https://hooks.example.com/workspace"
OWNER_DM = Identity(platform="slack", tenant="T1", user="U1", channel="D0OWNER", display_name="ann", dm=True)
OWNER_CHANNEL = Identity(platform="slack", tenant="T1", user="U1", channel="C0PUBLIC", display_name="ann")
OTHER = Identity(platform="slack", tenant="T1", user="U2", channel="C0PUBLIC", display_name="bob")


async def say(services, who: Identity, text: str):
    return await run_text(Ctx(services=services, identity=who), text)


async def stopped_in(services, who: Identity) -> tuple[int, str]:
    """Track a private NVDA plan from `who`'s conversation and stop it out; returns (tracked row id, plan id)."""
    ctx = Ctx(services=services, identity=who)
    plan = tsla_plan("P-DMTEST", OPEN_AT).model_copy(update={"symbol": "NVDA"})
    async with services.db() as s, s.begin():
        owner = await ctx.owner(s)
        await plan_store.save_plan(s, owner, plan, None)
        # an admin routed the workspace's plan events to a webhook as well
        await store.update_settings(s, owner.tenant_id, "workspace", "", None, webhooks=[{"kind": "webhook", "url": HOOK}])
    tracked = await say(services, who, "/track P-DMTEST")
    assert tracked.severity == "success", tracked.body
    async with services.db() as s, s.begin():
        row = await store.get_tracked(s, owner, "P-DMTEST")
        assert row is not None and row.channel == who.channel
        row.status, row.replan_status = "stopped", "pending"  # what the tracker's stop-out transaction writes
        return row.id, row.plan_id


async def replan(services, tracked_id: int) -> str:
    """Run the runtime's re-plan job for `tracked_id` with the real planner; returns the new plan's id."""
    replanner = Replanner(services, lambda: REPLAN_AT)
    replanner.start(tracked_id)
    await replanner.wait()
    async with services.db() as s:
        row = await store.runtime_tracked_by_id(s, tracked_id)
    assert row is not None and row.replan_status == "done" and row.next_plan_id, "the planner found no NVDA plan"
    return row.next_plan_id


async def test_a_replan_from_a_slack_dm_stays_in_that_dm_and_with_its_owner(services):
    tracked_id, _ = await stopped_in(services, OWNER_DM)
    new_id = await replan(services, tracked_id)

    async with services.db() as s:
        sent = [r for r in await outbox_rows(s) if r.kind == "replan"]
        stored = (await s.execute(select(plan_store.StoredPlan).where(plan_store.StoredPlan.plan_id == new_id))).scalars().all()
    assert [(r.destination, r.target) for r in sent] == [("slack", "channel:D0OWNER")], "never a channel or a webhook"
    assert sent[0].payload["reply"]["actions"][0]["command"] == f"/track {new_id}"
    assert [p.channel for p in stored] == [None], "a re-plan made in a DM is stored for its owner only"

    # the Adopt button works for the owner only: anyone else is told there is no such plan, as for a made-up id
    other = await say(services, OTHER, f"/track {new_id}")
    made_up = await say(services, OTHER, "/track P-ZZZZZZ")
    assert other.severity == "error" and other.body == made_up.body.replace("P-ZZZZZZ", new_id)
    assert (await say(services, OTHER, "/tracked")).data["plans"] == []
    adopted = await say(services, OWNER_DM, f"/track {new_id}")
    assert adopted.severity == "success" and adopted.data.plan_id == new_id


async def test_a_replan_from_a_channel_still_goes_to_the_channel_and_its_webhooks(services):
    tracked_id, _ = await stopped_in(services, OWNER_CHANNEL)
    new_id = await replan(services, tracked_id)
    async with services.db() as s:
        sent = sorted((r.destination, r.target) for r in await outbox_rows(s) if r.kind == "replan")
        (stored,) = (await s.execute(select(plan_store.StoredPlan).where(plan_store.StoredPlan.plan_id == new_id))).scalars()
    assert sent == [("slack", "channel:C0PUBLIC"), ("webhook", HOOK)]
    assert stored.channel == "C0PUBLIC"


@pytest.mark.parametrize("family", ["price", "plan"])
async def test_events_set_up_in_a_slack_dm_skip_the_workspace_routes(services, family):
    ctx = Ctx(services=services, identity=OWNER_DM)
    async with services.db() as s, s.begin():
        owner = await ctx.owner(s)
        await store.update_settings(
            s, owner.tenant_id, "workspace", "", None, route="thread", webhooks=[{"kind": "webhook", "url": HOOK}]
        )
        dm = await route(s, Origin(owner.tenant_id, "slack", "D0OWNER", "U1"), family, "TSLA")
        public = await route(s, Origin(owner.tenant_id, "slack", "C0PUBLIC", "U1"), family, "TSLA")
    assert [(k.destination, k.target) for k in dm] == [("slack", "channel:D0OWNER")]
    assert [(k.destination, k.target) for k in public] == [("slack", "thread:C0PUBLIC:TSLA"), ("webhook", HOOK)]
