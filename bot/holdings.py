"""What a person holds: open positions from the broker, priced now, tied to the plans they came from.

The paper broker keeps no book, so its positions are netted from the caller's stored fills;
Tradier reports the account's positions itself (sandbox or production) and the caller's own
orders only say which plan each instrument came from. Each position is priced from the
configured market (equity quotes; an option's own contract in its chain, greeks by
Black-Scholes on the contract's implied volatility), and when it came from a plan its stop
gives the dollars and R still at risk.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from analytics.models import Plan
from analytics.positions import FillEvent, NetPosition, net_positions, r_multiple, risk_to_stop
from analytics.sectors import sector_of
from analytics.sessions import EXCHANGE_TZ
from bot.request import Ctx
from core.errors import ConfigError, NotFoundError, ProviderError
from providers.broker.base import is_occ, parse_occ
from storage import orders, plans
from storage.identity import Owner


class PositionView(BaseModel):
    """One open position, priced, with its plan and what it risks."""

    symbol: str  # what is held: the equity or the OCC option symbol
    underlying: str
    asset_class: Literal["equity", "option"]
    side: Literal["long", "short"]
    quantity: float  # signed: negative is short
    multiplier: int
    avg_cost: float  # per share (options: premium per share)
    last: float | None
    underlying_price: float | None
    market_value: float | None  # signed: a short is negative
    unrealized_pnl: float | None
    unrealized_pct: float | None
    today_pnl: float | None
    opened_at: datetime | None
    sector: str
    plan_id: str | None = None
    plan_entry: float | None = None
    plan_stop: float | None = None
    plan_targets: list[float] = Field(default_factory=list)
    risk_to_stop: float | None = None  # dollars lost from here to the stop (long options without a plan: the premium)
    r_at_risk: float | None = None  # that loss in R (equity with a plan)
    r_now: float | None = None  # unrealised, in R
    # options
    option_type: Literal["call", "put"] | None = None
    strike: float | None = None
    expiration: date | None = None
    dte: float | None = None
    iv: float | None = None
    delta: float | None = None  # per share of one contract
    gamma: float | None = None
    theta: float | None = None  # per calendar day
    vega: float | None = None  # per vol point
    delta_dollars: float | None = None  # the stock-equivalent exposure: shares x price, or delta x 100 x contracts x spot


class PositionsResult(BaseModel):
    """The answer to /positions."""

    broker: str
    positions: list[PositionView]
    market_value: float
    unrealized_pnl: float
    today_pnl: float
    risk_to_stops: float
    unpriced: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    as_of: datetime
    sources: list[str]


def _close_side(p: PositionView) -> str:
    if p.asset_class == "option":
        return "sell_to_close" if p.quantity > 0 else "buy_to_close"
    return "sell" if p.quantity > 0 else "buy_to_cover"


def close_command(p: PositionView) -> str:
    """The `/order preview` that would flatten `p` (previewed first, like every order)."""
    plan = f" plan={p.plan_id}" if p.plan_id else ""
    return f"/order preview {p.symbol} {_close_side(p)} {abs(p.quantity):g}{plan}"


async def _raw_positions(ctx: Ctx, owner: Owner, broker: Any) -> tuple[list[NetPosition], dict[str, str]]:
    """Open positions before pricing, and instrument -> plan id."""
    if broker.name == "paper":
        async with ctx.tx() as s:
            rows = await orders.executions(s, owner, broker.name)
        fills = [
            FillEvent(
                instrument=o.option_symbol or o.symbol,
                underlying=o.symbol,
                asset_class=o.asset_class,
                side=o.side,
                quantity=f.quantity,
                price=f.price,
                at=f.at,
                plan_id=o.plan_id,
            )
            for o, f in rows
        ]
        book = net_positions(fills)
        return book, {p.instrument: p.plan_id for p in book if p.plan_id}
    lister = getattr(broker, "positions", None)
    if lister is None:
        raise ConfigError(f"the {broker.name} broker does not report positions")
    reported = await lister()
    async with ctx.tx() as s:
        plan_ids = await orders.plan_of_instruments(s, owner, broker.name)
    book = []
    for bp in reported:
        underlying = bp.symbol
        if bp.is_option:
            root, *_ = parse_occ(bp.symbol)
            underlying = root.rstrip("0123456789") or root
        book.append(
            NetPosition(
                instrument=bp.symbol,
                underlying=underlying,
                asset_class="option" if bp.is_option else "equity",
                quantity=bp.quantity,
                avg_cost=bp.avg_cost,
                opened_at=bp.acquired_at or ctx.now(),
                plan_id=plan_ids.get(bp.symbol),
            )
        )
    return book, plan_ids


async def _price_equity(ctx: Ctx, p: NetPosition) -> dict[str, Any]:
    q = await ctx.services.market.quote(p.underlying, at=ctx.now())
    return {"last": q.last, "prev_close": q.prev_close, "spot": q.last, "source": q.source, "as_of": q.as_of}


async def _price_option(ctx: Ctx, p: NetPosition) -> dict[str, Any]:
    from analytics.chains import analyse_chain

    _root, exp, right, strike = parse_occ(p.instrument)
    at = ctx.now()
    chain = await ctx.services.market.chain(p.underlying, exp, at=at)
    view = await asyncio.to_thread(analyse_chain, chain, at)
    rows = view.frame[view.frame.symbol == p.instrument]
    if rows.empty:
        raise NotFoundError(f"{p.instrument} is not in the {p.underlying} {exp.isoformat()} chain")
    r = rows.iloc[0]

    def num(key: str) -> float | None:
        x = float(r[key])
        return x if x == x else None  # NaN: not known

    mid = num("mid")
    contract = next(c for c in chain.contracts if c.symbol == p.instrument)
    last = mid if mid is not None else contract.last
    return {
        "last": last,
        "prev_close": None,
        "spot": view.spot,
        "source": chain.source,
        "as_of": chain.as_of,
        "option_type": right,
        "strike": strike,
        "expiration": exp,
        "dte": round(view.dte, 2),
        "iv": num("iv"),
        "delta": num("delta"),
        "gamma": num("gamma"),
        "theta": num("theta"),
        "vega": num("vega"),
    }


def _view(p: NetPosition, px: dict[str, Any] | None, plan: Plan | None, today: date) -> PositionView:
    option = p.asset_class == "option"
    mult = 100 if option else 1
    last = px.get("last") if px else None
    spot = px.get("spot") if px else None
    mv = upnl = upct = today_pnl = None
    if last is not None:
        mv = p.quantity * last * mult
        upnl = p.quantity * (last - p.avg_cost) * mult
        upct = 100.0 * (last - p.avg_cost) / p.avg_cost * (1 if p.quantity > 0 else -1) if p.avg_cost else None
        opened_today = p.opened_at.astimezone(EXCHANGE_TZ).date() == today
        prev = px.get("prev_close") if px else None
        if opened_today:
            today_pnl = upnl
        elif prev is not None:
            today_pnl = p.quantity * (last - prev) * mult
    view = PositionView(
        symbol=p.instrument,
        underlying=p.underlying,
        asset_class="option" if option else "equity",
        side="long" if p.quantity > 0 else "short",
        quantity=p.quantity,
        multiplier=mult,
        avg_cost=p.avg_cost,
        last=last,
        underlying_price=spot,
        market_value=mv,
        unrealized_pnl=upnl,
        unrealized_pct=upct,
        today_pnl=today_pnl,
        opened_at=p.opened_at,
        sector=sector_of(p.underlying),
        plan_id=p.plan_id,
    )
    upd: dict[str, Any] = {}
    if option and px:
        for k in ("option_type", "strike", "expiration", "dte", "iv", "delta", "gamma", "theta", "vega"):
            upd[k] = px.get(k)
        if px.get("delta") is not None and spot is not None:
            upd["delta_dollars"] = px["delta"] * mult * p.quantity * spot
    elif last is not None:
        upd["delta_dollars"] = mv
    if plan is not None:
        upd |= {"plan_entry": plan.entry, "plan_stop": plan.stop, "plan_targets": [t.price for t in plan.targets]}
        if not option and last is not None:
            upd["risk_to_stop"] = risk_to_stop(p.quantity, last, plan.stop)
            per_r = plan.risk_per_share * abs(p.quantity)
            upd["r_at_risk"] = upd["risk_to_stop"] / per_r if per_r > 0 else None
            upd["r_now"] = r_multiple(p.quantity, p.avg_cost, last, plan.entry, plan.stop)
        elif option and spot is not None and px and px.get("delta") is not None:
            # the plan's stop is on the underlying: the option's loss there, to first order in delta
            move = (plan.stop - spot) * px["delta"] * mult * p.quantity
            loss = max(0.0, -move)
            upd["risk_to_stop"] = min(loss, mv) if p.quantity > 0 and mv is not None else loss
    elif option and p.quantity > 0 and mv is not None:
        upd["risk_to_stop"] = mv  # a long option can lose its whole premium
    return view.model_copy(update=upd)


async def load_positions(ctx: Ctx, owner: Owner) -> PositionsResult:
    """The caller's open positions at the configured broker, priced now."""
    broker = ctx.services.broker()
    book, _ = await _raw_positions(ctx, owner, broker)
    plan_ids = sorted({p.plan_id for p in book if p.plan_id})
    found: dict[str, Plan] = {}
    if plan_ids:
        async with ctx.tx() as s:
            for pid in plan_ids:
                plan = await plans.get_plan(s, owner, pid)
                if plan is not None:
                    found[pid] = plan

    async def price(p: NetPosition) -> dict[str, Any] | None:
        try:
            return await (_price_option(ctx, p) if p.asset_class == "option" or is_occ(p.instrument) else _price_equity(ctx, p))
        except (NotFoundError, ProviderError):
            return None  # shown unpriced rather than failing the whole list

    prices = await asyncio.gather(*(price(p) for p in book))
    now = ctx.now()
    today = now.astimezone(EXCHANGE_TZ).date()
    views = [_view(p, px, found.get(p.plan_id or ""), today) for p, px in zip(book, prices, strict=True)]
    sources = sorted({str(px["source"]) for px in prices if px})
    stamps = [px["as_of"] for px in prices if px and px.get("as_of")]
    notes = []
    missing = sorted({p.plan_id for p in book if p.plan_id and p.plan_id not in found})
    if missing:
        notes.append(f"plan{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found: no stop known")
    return PositionsResult(
        broker=broker.name,
        positions=views,
        market_value=sum(v.market_value or 0.0 for v in views),
        unrealized_pnl=sum(v.unrealized_pnl or 0.0 for v in views),
        today_pnl=sum(v.today_pnl or 0.0 for v in views),
        risk_to_stops=sum(v.risk_to_stop or 0.0 for v in views),
        unpriced=[v.symbol for v in views if v.last is None],
        notes=notes,
        as_of=max(stamps) if stamps else now,
        sources=[f"broker: {broker.name}", *(f"quotes: {s}" for s in sources)],
    )
