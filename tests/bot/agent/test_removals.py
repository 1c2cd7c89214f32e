"""Removals the coach asks for: bulk ones only propose, and only their owner's click carries them out.

The model is the real openai SDK talking to the loopback OpenAI-compatible server; the click is
the proposal's button command run through the request pipeline for whoever clicks, as every
surface runs a button.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.removals import RemovalProposal
from storage import journal, watchlists
from storage import removals as removal_store
from tests.bot.agent.conftest import ctx_for
from tests.conftest import OPEN_AT, run_text


def tool_results(fake, request: int = 1) -> list[dict]:
    return [json.loads(m["content"]) for m in fake.requests[request]["messages"] if m["role"] == "tool"]


async def live_alerts(services, user: str = "U1") -> list[int]:
    r = await run_text(ctx_for(services, user), "/alert list")
    return [a.id for a in r.data["alerts"]]


async def add_alerts(services, *levels: str, user: str = "U1") -> list[int]:
    ids = []
    for level in levels:
        r = await run_text(ctx_for(services, user), f"/alert add TSLA {level}")
        assert r.severity == "success", r.body
        ids.append(r.data.id)
    return ids


def confirm_action(reply):
    (action,) = [a for a in reply.actions if a.command.startswith("/confirm ")]
    return action


async def propose_remove_all(services, fake, make_agent):
    """A model turn that calls alert_remove(all) (as a hijacked prompt would have it); returns the coach's reply."""
    fake.tool_calls(("c1", "alert_remove", {"ids": "all"}))
    fake.text("Done, all your alerts are gone.")
    return await make_agent()(ctx_for(services), "clean up my alerts")


async def test_a_model_remove_all_proposes_and_removes_nothing(services, fake, make_agent):
    ids = await add_alerts(services, "above 600", "below 550", "above 610")
    reply = await propose_remove_all(services, fake, make_agent)

    assert await live_alerts(services) == ids, "a proposal removes nothing"
    (result,) = tool_results(fake)
    assert result["ok"] is True
    assert result["result"]["status"] == "awaiting_confirmation" and result["result"]["removed"] == []
    assert len(result["result"]["would_remove"]) == 3
    assert "RM-" not in json.dumps(result), "the model never sees what would confirm it"
    # the person reads the server's list, whatever the model claimed, and gets the button first
    for i in ids:
        assert f"#{i} TSLA" in reply.body
    assert "Nothing has been removed yet" in reply.body
    action = reply.actions[0]
    assert action.command.startswith("/confirm RM-") and action.style == "danger" and action.label == "Remove 3 alerts"
    # the model cannot reach the confirmation: it is not among its tools
    assert "confirm" not in {t["function"]["name"] for t in fake.requests[0]["tools"]}


async def test_the_owners_click_removes_exactly_the_listed_items(services, fake, make_agent):
    ids = await add_alerts(services, "above 600", "below 550")
    reply = await propose_remove_all(services, fake, make_agent)
    (later,) = await add_alerts(services, "above 620")  # added after the proposal: not on the list

    done = await run_text(ctx_for(services), confirm_action(reply).command)
    assert done.severity == "success", done.body
    assert sorted(done.data["removed"]) == sorted(ids) and done.title == "Removed 2 alerts"
    assert await live_alerts(services) == [later]
    # a second click (or a replayed button) removes nothing more
    again = await run_text(ctx_for(services), confirm_action(reply).command)
    assert again.severity == "error" and "already confirmed" in again.body
    assert await live_alerts(services) == [later]


async def test_someone_elses_click_removes_nothing(services, fake, make_agent):
    ids = await add_alerts(services, "above 600", "below 550")
    theirs = await add_alerts(services, "above 605", user="U2")
    reply = await propose_remove_all(services, fake, make_agent)
    command = confirm_action(reply).command

    other = await run_text(ctx_for(services, "U2"), command)
    assert other.severity == "error" and "nothing was removed" in other.body
    assert "only the person who asked" in other.body
    # the same line as for an id nobody proposed: a click tells nothing about whose it is
    made_up = await run_text(ctx_for(services, "U2"), "/confirm RM-00000000")
    assert other.body.replace(command.split()[1], "RM-00000000") == made_up.body
    stranger = await run_text(ctx_for(services, "U1", tenant="G2"), command)
    assert stranger.severity == "error"
    assert await live_alerts(services) == ids and await live_alerts(services, "U2") == theirs

    # the owner still can
    assert (await run_text(ctx_for(services), command)).severity == "success"
    assert await live_alerts(services) == [] and await live_alerts(services, "U2") == theirs


async def test_a_click_after_the_expiry_removes_nothing(services, fake, make_agent):
    ids = await add_alerts(services, "above 600", "below 550")
    reply = await propose_remove_all(services, fake, make_agent)
    services.clock = lambda: OPEN_AT + removal_store.CONFIRM_TTL + timedelta(seconds=1)

    late = await run_text(ctx_for(services), confirm_action(reply).command)
    assert late.severity == "error" and "expired" in late.body and "nothing was removed" in late.body
    assert await live_alerts(services) == ids


async def test_a_single_removal_by_the_model_still_runs_directly(services, fake, make_agent):
    ids = await add_alerts(services, "above 600", "below 550")
    fake.tool_calls(("c1", "alert_remove", {"ids": str(ids[0])}))
    fake.text(f"Removed alert #{ids[0]}.")
    reply = await make_agent()(ctx_for(services), f"remove alert {ids[0]}")

    (result,) = tool_results(fake)
    assert result["ok"] is True and result["result"]["removed"] == [ids[0]]
    assert await live_alerts(services) == [ids[1]]
    assert not [a for a in reply.actions if a.command.startswith("/confirm ")]


async def test_many_single_removals_in_one_turn_become_proposals(services, fake, make_agent):
    """'All' spelt as one call per item: the first goes, the rest are proposed."""
    ctx = ctx_for(services)
    async with services.db() as s, s.begin():
        owner = await ctx.owner(s)
        entries = [await journal.add_entry(s, owner, symbol="TSLA", text=f"note {n}", created_at=OPEN_AT) for n in range(3)]
    fake.tool_calls(*((f"c{i}", "journal_remove", {"id": e}) for i, e in enumerate(entries)))
    fake.text("Your journal is empty now.")
    reply = await make_agent()(ctx_for(services), "delete my journal")

    results = tool_results(fake)
    direct = [r for r in results if r["result"].get("removed")]
    proposed = [r for r in results if r["result"].get("status") == "awaiting_confirmation"]
    assert len(direct) == 1 and len(proposed) == 2
    left = await run_text(ctx_for(services), "/journal list")
    assert len(left.data.entries) == 2
    confirms = [a for a in reply.actions if a.command.startswith("/confirm ")]
    assert len(confirms) == 2 and reply.actions[: len(confirms)] == confirms
    for a in confirms:
        assert (await run_text(ctx_for(services), a.command)).severity == "success"
    assert (await run_text(ctx_for(services), "/journal list")).data.entries == []


async def test_a_model_watchlist_removal_of_several_symbols_proposes(services, fake, make_agent):
    ctx = ctx_for(services)
    async with services.db() as s, s.begin():
        await watchlists.add(s, await ctx.owner(s), ["TSLA", "NVDA", "AAPL"])
    fake.tool_calls(("c1", "watch_remove", {"symbols": ["TSLA", "NVDA", "MSFT"]}))
    fake.text("Removed them.")
    reply = await make_agent()(ctx_for(services), "drop tsla nvda msft")

    (result,) = tool_results(fake)
    assert result["result"]["would_remove"] == ["TSLA", "NVDA"]
    assert (await run_text(ctx_for(services), "/watch list")).data["watchlist"] == ["TSLA", "NVDA", "AAPL"]
    done = await run_text(ctx_for(services), confirm_action(reply).command)
    assert done.data["removed"] == ["TSLA", "NVDA"]
    assert (await run_text(ctx_for(services), "/watch list")).data["watchlist"] == ["AAPL"]


@pytest.mark.parametrize(
    ("setup", "line"),
    [("alerts", "/alert remove all"), ("watch", "/watch remove TSLA NVDA")],
)
async def test_bulk_removals_typed_by_the_person_run_at_once(services, setup, line):
    ctx = ctx_for(services)
    if setup == "alerts":
        await add_alerts(services, "above 600", "below 550")
    else:
        async with services.db() as s, s.begin():
            await watchlists.add(s, await ctx.owner(s), ["TSLA", "NVDA"])
    r = await run_text(ctx, line)
    assert r.severity != "error" and not isinstance(r.data, RemovalProposal) and len(r.data["removed"]) == 2
    assert not r.actions
