"""The paper broker: fills against the current quote of the configured market. The default broker.

Rules, kept simple and stated so a paper fill is never mistaken for a real one:

* a market order fills whole at the ask (buys) or the bid (sells);
* a limit order fills whole at the touch when marketable (ask <= limit for buys, bid >= limit
  for sells), at the touch price (never worse than the limit); otherwise it rests `open`;
* a stop triggers when the last price reaches it (>= for buys, <= for sells) and then acts as a
  market order (stop) or a limit order (stop_limit); untriggered it rests `open`;
* orders fill only while their session is on: regular hours for `day`/`gtc`, extended hours
  for `pre`/`post`; a resting order is re-checked by `status()` against the then-current quote;
* options are priced from the contract's own quote in the expiration's chain;
* no commission, no partial fills, no slippage beyond the spread.

The broker holds no state: the orders table is the record, and `status()` decides from the
request and the market at that moment, so a restart loses nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from analytics.sessions import session_info
from core.clock import utc_now
from core.errors import NotFoundError
from providers.base import MarketData
from providers.broker.base import Fill, OrderPreview, OrderRequest, OrderStatus, parse_occ

NAME = "paper"


class PaperBroker:
    """A `Broker` that simulates fills against `market` quotes."""

    name = NAME

    def __init__(self, market: MarketData, clock: Callable[[], datetime] = utc_now) -> None:
        self.market = market
        self._clock = clock

    async def _touch(self, req: OrderRequest, at: datetime) -> tuple[float, float, float, datetime, str]:
        """(bid, ask, last, as_of, source) of what the order trades."""
        if req.asset_class == "equity":
            q = await self.market.quote(req.symbol, at=at)
            return q.bid, q.ask, q.last, q.as_of, q.source
        _root, exp, _right, _k = parse_occ(req.option_symbol or "")
        chain = await self.market.chain(req.symbol, exp, at=at)
        for c in chain.contracts:
            if c.symbol == req.option_symbol:
                last = c.last if c.last else (c.bid + c.ask) / 2
                return c.bid, c.ask, last, chain.as_of, chain.source
        raise NotFoundError(f"{req.option_symbol} is not in the {req.symbol} {exp.isoformat()} chain")

    def _session_ok(self, req: OrderRequest, at: datetime) -> bool:
        status = session_info(at).status
        return status == "open" or (req.duration in ("pre", "post") and status in ("pre", "post"))

    def _decide(self, req: OrderRequest, bid: float, ask: float, last: float) -> float | None:
        """The fill price when the order is marketable now, else None."""
        touch = ask if req.is_buy else bid
        if touch <= 0:
            return None  # no one on that side of the book
        if req.type in ("stop", "stop_limit"):
            assert req.stop is not None
            triggered = last >= req.stop if req.is_buy else last <= req.stop
            if not triggered:
                return None
        if req.type in ("limit", "stop_limit"):
            assert req.price is not None
            ok = touch <= req.price if req.is_buy else touch >= req.price
            return touch if ok else None
        return touch

    async def preview(self, req: OrderRequest, at: datetime | None = None) -> OrderPreview:
        """The fill price it would get now (or the limit), the cost, and any warnings."""
        at = at or self._clock()
        bid, ask, last, as_of, source = await self._touch(req, at)
        fill = self._decide(req, bid, ask, last)
        session = self._session_ok(req, at)
        warnings = []
        if not session:
            warnings.append("market closed for this order's session: it will rest until the session opens")
        if fill is None:
            what = (
                "stop not reached" if req.type in ("stop", "stop_limit") and req.stop is not None else "limit away from the touch"
            )
            warnings.append(f"not marketable now ({what}): the order will rest open")
        price = fill if fill is not None else (req.price or req.stop or (ask if req.is_buy else bid))
        if req.type == "market" and ask > 0 and bid > 0 and (ask - bid) / ((ask + bid) / 2) > 0.05:
            warnings.append("wide spread: a market order pays it; consider a limit")
        return OrderPreview(
            broker=NAME,
            request=req,
            price=price,
            estimated_cost=round(price * req.quantity * req.multiplier, 2),
            marketable=fill is not None and session,
            bid=bid,
            ask=ask,
            quote_as_of=as_of,
            warnings=warnings,
            details={"quote_source": source},
        )

    async def place(self, req: OrderRequest, at: datetime | None = None) -> OrderStatus:
        """A paper order id, filled at once when marketable, else resting open."""
        oid = "PAPER-" + secrets.token_hex(5).upper()
        return await self.status(oid, req, at)

    async def status(self, broker_order_id: str, req: OrderRequest, at: datetime | None = None) -> OrderStatus:
        """Fill a resting order if it is marketable now."""
        at = at or self._clock()
        fill = None
        if self._session_ok(req, at):
            bid, ask, last, _as_of, _src = await self._touch(req, at)
            fill = self._decide(req, bid, ask, last)
        if fill is None:
            return OrderStatus(broker=NAME, broker_order_id=broker_order_id, status="open")
        return OrderStatus(
            broker=NAME,
            broker_order_id=broker_order_id,
            status="filled",
            filled_quantity=float(req.quantity),
            avg_fill_price=fill,
            fills=[Fill(quantity=float(req.quantity), price=fill, at=at, broker_fill_id=f"{broker_order_id}-1")],
        )

    async def cancel(self, broker_order_id: str, req: OrderRequest, at: datetime | None = None) -> OrderStatus:
        """A resting paper order is cancelled at once."""
        return OrderStatus(broker=NAME, broker_order_id=broker_order_id, status="cancelled")
