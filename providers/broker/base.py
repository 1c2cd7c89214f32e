"""The `Broker` protocol and its vocabulary: order requests, previews, statuses and fills.

Equities and single-leg options only. An `OrderRequest` validates itself (sides per asset
class, prices required by the order type, an OCC symbol whose root is the underlying), so
every broker receives the same well-formed order. Brokers answer with an `OrderPreview`
(what the order would cost, nothing sent) or an `OrderStatus` (the broker's state of a
placed order, with its fills so far).

A broker's refusal of an order (risk checks, buying power, an unapproved account) is an
`OrderRejected`: a user-facing error naming the broker and its reasons.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from analytics.symbols import validate_symbol
from core.errors import UserError
from core.values import price_text

AssetClass = Literal["equity", "option"]
OrderType = Literal["market", "limit", "stop", "stop_limit"]
Duration = Literal["day", "gtc", "pre", "post"]
Status = Literal["pending", "open", "partially_filled", "filled", "cancelled", "rejected", "expired"]

EQUITY_SIDES = ("buy", "sell", "sell_short", "buy_to_cover")
OPTION_SIDES = ("buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close")
BUY_SIDES = frozenset({"buy", "buy_to_cover", "buy_to_open", "buy_to_close"})
#: Statuses after which nothing more will happen to an order.
FINAL = frozenset({"filled", "cancelled", "rejected", "expired"})

_OCC = re.compile(r"^([A-Z][A-Z0-9]{0,5})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")
_TAG = re.compile(r"^[A-Za-z0-9-]{1,255}$")


class OrderRejected(UserError):
    """The broker refused the order; `reasons` are its own words (e.g. DayTradingBuyingPowerExceeded)."""

    def __init__(self, broker: str, reasons: list[str]) -> None:
        self.broker = broker
        self.reasons = reasons or ["no reason given"]
        super().__init__(f"{broker} rejected the order: {'; '.join(self.reasons)}")


def parse_occ(occ: str) -> tuple[str, date, Literal["call", "put"], float]:
    """(root, expiration, right, strike) of an OCC option symbol such as SPY190329C00274000."""
    text = (occ or "").strip().upper().replace(" ", "")
    m = _OCC.match(text)
    if not m:
        raise UserError(
            f"{occ[:30]!r} is not an OCC option symbol; expected root + YYMMDD + C/P + strike x1000, e.g. SPY240419C00500000"
        )
    root, yy, mm, dd, cp, k = m.groups()
    try:
        exp = date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        raise UserError(f"{text}: {yy}{mm}{dd} is not a valid YYMMDD expiration") from None
    return root, exp, "call" if cp == "C" else "put", int(k) / 1000.0


def is_occ(text: str) -> bool:
    return bool(_OCC.match((text or "").strip().upper()))


class OrderRequest(BaseModel):
    """One equity or single-leg option order, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset_class: AssetClass
    symbol: str  # the equity, or the option's underlying
    option_symbol: str | None = None  # OCC, options only
    side: str
    quantity: int = Field(gt=0, le=1_000_000)
    type: OrderType = "market"
    price: float | None = Field(None, gt=0, lt=1e7)  # limit price
    stop: float | None = Field(None, gt=0, lt=1e7)
    duration: Duration = "day"
    tag: str | None = None

    @field_validator("symbol")
    @classmethod
    def _sym(cls, v: str) -> str:
        return validate_symbol(v)

    @field_validator("option_symbol")
    @classmethod
    def _occ(cls, v: str | None) -> str | None:
        return v.strip().upper().replace(" ", "") if isinstance(v, str) and v.strip() else None

    @field_validator("side")
    @classmethod
    def _side(cls, v: str) -> str:
        return str(v).strip().lower()

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str | None) -> str | None:
        if v is not None and not _TAG.match(v):
            raise ValueError("tag must be 1-255 letters, digits or dashes")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> OrderRequest:
        if self.asset_class == "equity":
            if self.side not in EQUITY_SIDES:
                raise ValueError(f"side {self.side!r} is not an equity side; accepted: {', '.join(EQUITY_SIDES)}")
            if self.option_symbol:
                raise ValueError("an equity order has no option symbol")
        else:
            if self.side not in OPTION_SIDES:
                raise ValueError(f"side {self.side!r} is not an option side; accepted: {', '.join(OPTION_SIDES)}")
            if not self.option_symbol:
                raise ValueError("an option order needs its OCC option symbol")
            root, *_ = parse_occ(self.option_symbol)
            base = self.symbol.replace(".", "").replace("-", "")
            if root != base and root.rstrip("0123456789") != base:  # adjusted roots carry a digit (TSLA1)
                raise ValueError(f"option {self.option_symbol} is not on {self.symbol}")
        if self.type in ("limit", "stop_limit") and self.price is None:
            raise ValueError(f"a {self.type} order needs a limit price")
        if self.type in ("stop", "stop_limit") and self.stop is None:
            raise ValueError(f"a {self.type} order needs a stop price")
        if self.type in ("market", "stop") and self.price is not None:
            raise ValueError(f"a {self.type} order takes no limit price")
        if self.type in ("market", "limit") and self.stop is not None:
            raise ValueError(f"a {self.type} order takes no stop price")
        return self

    @property
    def is_buy(self) -> bool:
        return self.side in BUY_SIDES

    @property
    def instrument(self) -> str:
        """What is traded: the equity symbol or the OCC option symbol."""
        return self.option_symbol or self.symbol

    @property
    def multiplier(self) -> int:
        return 100 if self.asset_class == "option" else 1

    def describe(self) -> str:
        """`BUY 10 TSLA limit 180.50 day` style one-liner."""
        px = ""
        if self.type == "limit":
            px = f" limit {price_text(self.price)}"
        elif self.type == "stop":
            px = f" stop {price_text(self.stop)}"
        elif self.type == "stop_limit":
            px = f" stop {price_text(self.stop)} limit {price_text(self.price)}"
        else:
            px = " market"
        return f"{self.side.replace('_', ' ').upper()} {self.quantity} {self.instrument}{px} {self.duration}"

    def form(self) -> dict[str, str]:
        """Tradier's form fields for this order (form-encoded, never JSON)."""
        f = {
            "class": self.asset_class,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": str(self.quantity),
            "type": self.type,
            "duration": self.duration,
        }
        if self.option_symbol:
            f["option_symbol"] = self.option_symbol
        if self.price is not None:
            f["price"] = _px(self.price)
        if self.stop is not None:
            f["stop"] = _px(self.stop)
        if self.tag:
            f["tag"] = self.tag
        return f


def _px(x: float) -> str:
    """A price as Tradier takes it: up to 4 decimals (sub-dollar stocks), no trailing zeros past cents."""
    text = f"{x:.4f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


class Fill(BaseModel):
    """Shares or contracts executed at one price."""

    quantity: float
    price: float
    at: datetime
    broker_fill_id: str | None = None


class OrderPreview(BaseModel):
    """What an order would do, checked by the broker, with nothing sent to the market."""

    broker: str
    request: OrderRequest
    price: float  # reference price per share / contract (fill estimate, or the limit)
    estimated_cost: float  # price x quantity x multiplier, before commission and fees
    commission: float = 0.0
    fees: float = 0.0
    marketable: bool = True  # would fill at once at the current quote
    bid: float | None = None
    ask: float | None = None
    quote_as_of: datetime | None = None
    warnings: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)  # the broker's own preview fields

    @property
    def total(self) -> float:
        return self.estimated_cost + self.commission + self.fees


class OrderStatus(BaseModel):
    """A placed order as the broker sees it; `fills` holds every execution known so far."""

    broker: str
    broker_order_id: str
    status: Status
    filled_quantity: float = 0.0
    avg_fill_price: float | None = None
    fills: list[Fill] = Field(default_factory=list)
    reason: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL


class BrokerPosition(BaseModel):
    """One holding as the broker reports it: signed quantity (negative = short) and its total cost."""

    symbol: str  # equity symbol or OCC option symbol
    quantity: float
    cost_basis: float  # total, in dollars (options: premium x 100 x contracts), negative for shorts
    acquired_at: datetime | None = None

    @property
    def is_option(self) -> bool:
        return is_occ(self.symbol)

    @property
    def avg_cost(self) -> float:
        """Cost per share, or per share of premium for options."""
        mult = 100.0 if self.is_option else 1.0
        return self.cost_basis / (self.quantity * mult) if self.quantity else 0.0


@runtime_checkable
class Broker(Protocol):
    """Preview, place, cancel and check equity and single-leg option orders.

    `at` pins "now" for brokers that simulate (the paper broker); real brokers act now.
    """

    @property
    def name(self) -> str:
        """Who fills the orders, as people see it ("paper", "tradier sandbox")."""
        ...

    async def preview(self, req: OrderRequest, at: datetime | None = None) -> OrderPreview: ...

    async def place(self, req: OrderRequest, at: datetime | None = None) -> OrderStatus: ...

    async def cancel(self, broker_order_id: str, req: OrderRequest, at: datetime | None = None) -> OrderStatus: ...

    async def status(self, broker_order_id: str, req: OrderRequest, at: datetime | None = None) -> OrderStatus: ...
