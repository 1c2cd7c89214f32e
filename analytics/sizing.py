"""Position size from a risk amount and a stop: shares, or option contracts from their loss at the stop.

The risk amount is what the trader accepts to lose if the stop is hit. It is either
given, or taken from the risk profile: account size x risk %. Then

    shares    = floor(risk / |entry - stop|)
    contracts = floor(risk / loss per contract at the stop)

and the resulting max loss is the count times the per-unit loss (at most the risk
amount). A count of 0 is a valid answer (the risk is smaller than one unit's loss) and
says so; it is not an error. Gaps through the stop can lose more: the note says it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import Field

from analytics.models import Model
from analytics.money import check_money, check_prices
from core.errors import UserError

#: Largest risk per trade accepted from a profile, in percent of the account.
MAX_RISK_PCT = 100.0


class SizeResult(Model):
    """How many shares or contracts to trade, and what is lost at the stop."""

    symbol: str
    instrument: Literal["shares", "contracts"]
    #: The trade's view on the underlying (stop below entry: long). Contracts are always bought:
    #: a short view is long puts, not a short position.
    direction: Literal["long", "short"]
    entry: float
    stop: float
    risk_per_unit: float  # dollars lost per share / per contract at the stop
    risk_amount: float
    risk_source: Literal["given", "profile"]
    quantity: int
    max_loss: float
    notional: float  # shares x entry, or contracts x premium x multiplier
    account_size: float | None = None
    risk_pct_of_account: float | None = None
    contract: str | None = None
    premium: float | None = None
    right: Literal["call", "put"] | None = None  # of the contract bought
    #: How the loss per contract was modelled, in words (the same model and words as /contracts).
    model: str | None = None
    note: str | None = None
    as_of: datetime | None = None
    sources: list[str] = Field(default_factory=list)


def resolve_risk(
    risk_amount: float | None, account_size: float | None, risk_pct: float | None
) -> tuple[float, Literal["given", "profile"]]:
    """The risk amount to use and where it came from; a UserError when neither a risk nor a full profile is known."""
    if risk_amount is not None:
        risk = check_money(risk_amount, "risk amount")
        if account_size is not None and risk > account_size:
            raise UserError(f"risk amount {risk:,.2f} is more than the whole account ({account_size:,.2f})")
        return risk, "given"
    if account_size is None or risk_pct is None:
        raise UserError("give a risk amount (e.g. 500), or set your risk profile first with /risk ACCOUNT_SIZE RISK_PCT")
    check_money(account_size, "account size")
    if not (0 < risk_pct <= MAX_RISK_PCT):
        raise UserError(f"risk % must be in (0, {MAX_RISK_PCT:g}]")
    return account_size * risk_pct / 100.0, "profile"


def size_shares(
    symbol: str,
    entry: float,
    stop: float,
    *,
    risk_amount: float | None = None,
    account_size: float | None = None,
    risk_pct: float | None = None,
) -> SizeResult:
    """Shares to trade so that a stop-out loses at most the risk amount."""
    check_prices(entry, stop)
    risk, src = resolve_risk(risk_amount, account_size, risk_pct)
    per = abs(entry - stop)
    qty = int(math.floor(risk / per + 1e-9))
    note = None
    if qty == 0:
        note = f"the risk amount {risk:,.2f} is less than one share's loss at the stop ({per:,.2f}); widen the risk or tighten the stop"
    return SizeResult(
        symbol=symbol,
        instrument="shares",
        direction="long" if stop < entry else "short",
        entry=entry,
        stop=stop,
        risk_per_unit=round(per, 6),
        risk_amount=round(risk, 2),
        risk_source=src,
        quantity=qty,
        max_loss=round(qty * per, 2),
        notional=round(qty * entry, 2),
        account_size=account_size,
        risk_pct_of_account=round(qty * per / account_size * 100.0, 4) if account_size else None,
        note=note or "a gap through the stop can lose more than this",
    )


def size_contracts(
    symbol: str,
    entry: float,
    stop: float,
    *,
    contract: str,
    premium: float,
    loss_per_contract: float,
    multiplier: int = 100,
    risk_amount: float | None = None,
    account_size: float | None = None,
    risk_pct: float | None = None,
) -> SizeResult:
    """Contracts to buy so that the modelled loss at the stop stays within the risk amount."""
    check_prices(entry, stop)
    risk, src = resolve_risk(risk_amount, account_size, risk_pct)
    if not math.isfinite(loss_per_contract) or loss_per_contract <= 0:
        raise UserError(
            f"{contract} does not lose value at the stop in the model, so risk cannot size it; use shares or another strike"
        )
    qty = int(math.floor(risk / loss_per_contract + 1e-9))
    cost = qty * premium * multiplier
    note = f"the whole premium ({cost:,.2f}) is at risk if the option expires worthless"
    if qty == 0:
        note = f"the risk amount {risk:,.2f} is less than one contract's loss at the stop ({loss_per_contract:,.2f})"
    return SizeResult(
        symbol=symbol,
        instrument="contracts",
        direction="long" if stop < entry else "short",
        entry=entry,
        stop=stop,
        risk_per_unit=round(loss_per_contract, 2),
        risk_amount=round(risk, 2),
        risk_source=src,
        quantity=qty,
        max_loss=round(qty * loss_per_contract, 2),
        notional=round(cost, 2),
        account_size=account_size,
        risk_pct_of_account=round(qty * loss_per_contract / account_size * 100.0, 4) if account_size else None,
        contract=contract,
        premium=round(premium, 4),
        note=note,
    )
