"""/plan and its `validate` sub-command both on Discord: a command with sub-commands cannot be run itself, so the
sub-command is registered beside it as /plan-validate, against the loopback Discord fake."""

from __future__ import annotations

from tests.conftest import OPEN_AT


async def test_plan_stays_and_plan_validate_is_its_own_slash_command(start_discord, discord_fake, services):
    await start_discord()
    fake = discord_fake
    [put] = fake.matching("PUT", rf"^/applications/{fake.app_id}/guilds/{fake.guild_id}/commands$")
    cmds = {c["name"]: c for c in put.json}
    assert "plan" in cmds and {o["name"] for o in cmds["plan"]["options"]} >= {"symbol", "style"}
    opts = {o["name"]: o for o in cmds["plan-validate"]["options"]}
    assert [o["name"] for o in cmds["plan-validate"]["options"]] == ["symbol", "entry", "stop", "targets", "style"]
    assert opts["entry"]["type"] == 10 and opts["targets"]["type"] == 3 and opts["targets"]["required"]

    last = (await services.market.quote("NVDA", at=OPEN_AT)).last
    entry, stop = round(last, 2), round(last * 0.99, 2)
    itx = fake.slash(
        "plan-validate",
        [
            {"name": "symbol", "type": 3, "value": "nvda"},
            {"name": "entry", "type": 10, "value": entry},
            {"name": "stop", "type": 10, "value": stop},
            {"name": "targets", "type": 3, "value": f"{last * 1.02:.2f}, {last * 1.04:.2f}"},
        ],
    )
    await fake.dispatch("INTERACTION_CREATE", itx)
    [answer] = await fake.wait_for(fake.is_answer(itx["token"]), timeout=20.0)
    embed = answer.embeds[0]
    assert embed["title"] == "NVDA long plan check (intraday)"
    assert "T1 before the stop" in embed["description"] and "no-edge prior" in embed["description"]
    assert {f["name"] for f in embed["fields"]} >= {"Entry / stop", "Stop distance", "T1 before stop", "Reach"}
