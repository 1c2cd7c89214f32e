"""Shared chart fixtures: the offline market's TSLA 5m bars at a pinned moment and a plan drawn on them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics.models import Plan, Target
from providers.sim import SimMarket

#: Wednesday 2024-03-13 11:00 ET: inside a regular session.
AS_OF = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)


def sim_bars(symbol: str = "TSLA", interval: str = "5m", days: int = 8, as_of: datetime = AS_OF) -> pd.DataFrame:
    """Bars from the offline market (seed 0) ending at `as_of`."""
    bars = asyncio.run(SimMarket(seed=0, now=lambda: as_of).bars(symbol, interval, as_of - timedelta(days=days), as_of))
    return bars.df


def make_plan(df: pd.DataFrame, *, direction: str = "long", minutes_ago: int = 40, **kw) -> Plan:
    """A plan around the last close: entry 1.5 above, stop 6 below, targets at 2R and 3R (mirrored for shorts)."""
    last = float(df["close"].iloc[-1])
    s = 1.0 if direction == "long" else -1.0
    entry = round(last + 1.5 * s, 2)
    stop = round(entry - 7.5 * s, 2)
    fields = dict(
        plan_id="P-1A2B3C",
        symbol="TSLA",
        style="intraday",
        strategy="orb_breakout",
        direction=direction,
        interval="5m",
        entry=entry,
        stop=stop,
        targets=[
            Target(price=round(entry + 15.0 * s, 2), rr=2.0, reason="2R"),
            Target(price=round(entry + 22.5 * s, 2), rr=3.0, reason="3R"),
        ],
        quality=0.72,
        quality_factors={"trend": 0.8},
        confluence=["ORH"],
        invalidation="back inside the range",
        as_of=df.index[-1].to_pydatetime() - timedelta(minutes=minutes_ago),
        session="open",
        sources=["sim"],
        entry_zone=(entry - 0.6, entry + 0.6),
    )
    fields.update(kw)
    return Plan(**fields)


@pytest.fixture(scope="session")
def tsla_5m() -> pd.DataFrame:
    return sim_bars()
