"""Domain models shared by every layer: quotes, option chains, levels and plans.

These are the compact JSON the LLM tools and `--json` outputs return, so field names
are short and stable. Prices are floats; rounding to the tick happens only at render time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import pandas as pd

Direction = Literal["long", "short"]
Style = Literal["scalp", "intraday", "swing", "leaps"]
Right = Literal["call", "put"]


class Model(BaseModel):
    """Base for domain models: frozen-ish, no extra keys, compact JSON."""

    model_config = ConfigDict(extra="forbid", ser_json_timedelta="float")


class Quote(Model):
    """Top of book and last trade for one symbol."""

    symbol: str
    bid: float
    ask: float
    last: float
    bid_size: int = 0
    ask_size: int = 0
    volume: float = 0.0
    prev_close: float | None = None
    as_of: datetime
    source: str
    #: Minimum price increment used when rendering prices.
    tick: float = 0.01

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0

    @property
    def change_pct(self) -> float | None:
        if not self.prev_close:
            return None
        return (self.last / self.prev_close - 1.0) * 100.0


class OptionContract(Model):
    """One listed option with its quote and (when known) IV and greeks."""

    symbol: str  # OCC symbol, e.g. TSLA240119P00290000
    underlying: str
    expiration: date
    strike: float
    right: Right
    bid: float
    ask: float
    last: float | None = None
    volume: int = 0
    open_interest: int = 0
    iv: float | None = None  # decimal, 0.35 = 35%
    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None  # per calendar day
    vega: float | None = None  # per 1 vol point (0.01)
    multiplier: int = 100

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0


class OptionChain(Model):
    """All contracts of one expiration."""

    underlying: str
    expiration: date
    underlying_price: float
    as_of: datetime
    source: str
    contracts: list[OptionContract]

    def to_frame(self) -> pd.DataFrame:
        """Contracts as a DataFrame (one row per contract) for vectorised analytics."""
        import pandas as pd  # the models are shared by light processes (a chat front) that never need a frame

        return pd.DataFrame([c.model_dump() for c in self.contracts])


class Level(Model):
    """A price level or band on the chart: ORH, prior-day low, a supply zone, an FVG, an anchored VWAP."""

    kind: str  # orh, orl, pdh, pdl, pdc, hod, lod, swing_high, swing_low, htf, supply, demand, liquidity_high, liquidity_low, fvg_bull, fvg_bear, avwap, vwap
    price: float
    low: float | None = None  # band bottom, for zones
    high: float | None = None  # band top, for zones
    strength: float = Field(0.5, ge=0.0, le=1.0)
    label: str
    interval: str | None = None
    filled: bool | None = None  # for FVGs
    since: datetime | None = None  # when the level formed


class Target(Model):
    """A take-profit level with its reward:risk and why it is there."""

    price: float
    rr: float
    reason: str


class Plan(Model):
    """A trade plan: where to get in, where it is wrong, where to take profit, and how sure."""

    plan_id: str
    version: int = 1
    symbol: str
    style: Style
    strategy: str
    direction: Direction
    interval: str
    entry: float
    stop: float
    targets: list[Target]
    confidence: float = Field(ge=0.0, le=1.0)
    confidence_factors: dict[str, float]
    confluence: list[str]
    invalidation: str
    as_of: datetime
    session: str
    sources: list[str]
    entry_zone: tuple[float, float] | None = None
    summary: str = ""
    #: How far price can travel within the style's horizon (analytics.reach); targets lie within it.
    reach: float | None = None
    #: The nearest level that would have been a target but lies beyond the reach (left out).
    beyond_reach: float | None = None

    @property
    def risk_per_share(self) -> float:
        return abs(self.entry - self.stop)


class PlanResult(Model):
    """The answer to "plan SYMBOL": a plan, or none and the reason why (a valid outcome, not an error)."""

    symbol: str
    style: Style
    as_of: datetime
    session: dict[str, Any]
    sources: list[str]
    plan: Plan | None
    reason: str | None
