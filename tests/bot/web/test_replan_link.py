"""The runtime's re-plan message links to the new plan's live chart, for the plan's owner."""

from __future__ import annotations

import pytest

from bot.request import Ctx
from storage.outbox import outbox_rows
from tests.bot.runtime.test_replan_privacy import OWNER_CHANNEL, REPLAN_AT, replan, stopped_in
from tests.bot.web.conftest import PUBLIC, SECRET, signer, token_of


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"coach_public_url": PUBLIC, "coach_link_secret": SECRET}


async def test_a_replan_message_carries_the_new_plans_chart_link(services):
    tracked_id, _ = await stopped_in(services, OWNER_CHANNEL)
    new_id = await replan(services, tracked_id)
    async with services.db() as s:
        sent = [r for r in await outbox_rows(s) if r.kind == "replan"]
        owner = await Ctx(services=services, identity=OWNER_CHANNEL).owner(s)
    reply = sent[0].payload["reply"]
    links = [a for a in reply["actions"] if a.get("url")]
    assert [a["label"] for a in links] == ["Open chart"] and reply["data"]["chart_url"] == links[0]["url"]
    scope = signer().verify(token_of(links[0]["url"]), REPLAN_AT)
    assert (scope.tenant_id, scope.user_id, scope.symbol, scope.plan_id) == (owner.tenant_id, owner.user_id, "NVDA", new_id)
    assert scope.intervals == ("5m", "15m", "1h")
