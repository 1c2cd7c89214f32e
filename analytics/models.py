"""Domain models shared by every layer: quotes, option chains, levels and plans.

These are the compact JSON the LLM tools and `--json` outputs return, so field names
are short and stable. Prices are floats; rounding to the tick happens only at render time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from analytics.no_edge import NO_FIT_BASIS, first_rr, no_edge_probability

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
    """A trade plan: where to get in, where it is wrong, where to take profit, and its odds.

    `probability` is the chance of reaching T1 before the stop, calibrated on resolved past
    plans (analytics.calibration), resting on `probability_n` of them; `quality` grades the
    setup from seven factors (analytics.quality) and is not odds.
    """

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
    quality: float = Field(ge=0.0, le=1.0)
    quality_factors: dict[str, float]
    #: Chance of T1 before the stop. When not given, the validator below fills in the no-edge prior
    #: 1 / (1 + R) (the default here only stands for a plan without a usable T1).
    probability: float = Field(0.0, ge=0.0, le=1.0)
    #: Resolved past plans the probability rests on (0: the no-edge prior).
    probability_n: int = Field(0, ge=0)
    #: What the probability rests on, in words ("from 412 past ORB breakout intraday plans").
    probability_basis: str = ""
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

    @model_validator(mode="before")
    @classmethod
    def _odds_and_old_names(cls, data: Any) -> Any:
        """Plans stored before the rename read `confidence` as `quality`; a plan without odds gets the no-edge prior."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "confidence" in data and "quality" not in data:
            data["quality"] = data.pop("confidence")
        if "confidence_factors" in data and "quality_factors" not in data:
            data["quality_factors"] = data.pop("confidence_factors")
        if data.get("probability") is None:
            targets = data.get("targets") or []
            t1 = targets[0] if targets else None
            price = t1.price if isinstance(t1, Target) else (t1 or {}).get("price") if isinstance(t1, dict) else None
            try:
                rr = first_rr(float(data["entry"]), float(data["stop"]), float(price)) if price is not None else float("nan")
            except (KeyError, TypeError, ValueError):
                return data  # let the field validation name what is missing
            data["probability"] = round(no_edge_probability(rr), 4) if rr == rr else 0.0
            data.setdefault("probability_n", 0)
            data.setdefault("probability_basis", NO_FIT_BASIS)
        return data

    @property
    def risk_per_share(self) -> float:
        return abs(self.entry - self.stop)


class PlanOption(Model):
    """The top option contract for a plan (from the contract ranking), or the reason there is none."""

    contract: str | None = None  # OCC symbol
    right: Literal["call", "put"] | None = None
    strike: float | None = None
    expiration: date | None = None
    dte: float | None = None
    delta: float | None = None
    mid: float | None = None
    spread_pct: float | None = None
    rr_t1: float | None = None  # option R:R at the plan's first target (IV held)
    contracts: int | None = None  # for the risk budget, when one is known
    risk_amount: float | None = None
    reason: str | None = None
    sources: list[str] = Field(default_factory=list)


class PlanResult(Model):
    """The answer to "plan SYMBOL": a plan, or none and the reason why (a valid outcome, not an error)."""

    symbol: str
    style: Style
    as_of: datetime
    session: dict[str, Any]
    sources: list[str]
    plan: Plan | None
    reason: str | None
    #: The live chart page of this result (signed, expiring), or None when COACH_PUBLIC_URL is not set.
    chart_url: str | None = None
    #: The top contract for the plan (set by /plan; None where options were not looked at).
    options: PlanOption | None = None
