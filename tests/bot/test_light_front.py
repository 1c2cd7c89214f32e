"""What a chat front declares commands with stays light, and agrees with the heavy modules it stands in for."""

from __future__ import annotations

from analytics.strategy_ids import STRATEGY_IDS


def test_the_light_strategy_ids_are_the_librarys() -> None:
    # /backtest offers STRATEGY_IDS without loading the library: the two must name the same strategies in the same order
    from analytics.strategies import STRATEGIES

    assert STRATEGY_IDS == tuple(s.id for s in STRATEGIES)
