"""Discord sharding: a front runs the shards it is given; only the front with shard 0 publishes the commands."""

from __future__ import annotations

import pytest

from bot.surfaces.discord import ShardedCoachClient, shard_options
from core.errors import ConfigError


def test_shard_options_from_the_settings() -> None:
    assert shard_options(None, None) == {}
    assert shard_options(4, None) == {"shard_count": 4}
    assert shard_options(4, "3, 1") == {"shard_count": 4, "shard_ids": [1, 3]}
    for count, ids, words in [
        (None, "0", "needs COACH_DISCORD_SHARD_COUNT"),
        (2, "2", "between 0 and 1"),
        (2, "a,b", "shard numbers like 0,1"),
        (2, "-1", "between 0 and 1"),
    ]:
        with pytest.raises(ConfigError, match=words):
            shard_options(count, ids)


async def test_a_front_with_shard_1_of_2_identifies_as_it_and_answers(start_discord, discord_fake, services) -> None:
    services.settings = services.settings.model_copy(update={"coach_discord_shard_count": 2, "coach_discord_shard_ids": "1"})
    surface = await start_discord()
    fake = discord_fake
    assert isinstance(surface.client, ShardedCoachClient)
    identify = next(f for f in fake.gateway_frames if f.get("op") == 2)
    assert identify["d"]["shard"] == [1, 2]
    assert not fake.matching("PUT", r"/commands$")  # shard 0's front publishes the commands, not this one
    itx = fake.slash("session")
    await fake.dispatch("INTERACTION_CREATE", itx)
    [answer] = await fake.wait_for(fake.is_answer(itx["token"]), timeout=30)
    assert answer.embeds[0]["title"].startswith("NYSE")
