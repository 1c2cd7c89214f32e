"""Tradier as a broker: preview, place, cancel and poll equity and single-leg option orders.

`POST /v1/accounts/{account}/orders` takes form fields (never JSON); the same form with
`preview=true` runs every check without placing. A refusal can come back as HTTP 200 with
`{"errors": {"error": ...}}` (one string or a list): that is an `OrderRejected`. After placing,
the order's real state comes from `GET /v1/accounts/{account}/orders/{id}`.

Placing is never retried after the request may have reached Tradier. Every order carries
the preview id as its `tag`, so an order whose answer was lost can be found again
(`find_by_tag`) instead of being sent twice.

The account comes from TRADIER_ACCOUNT_ID, or from the user profile when the token has
exactly one account. The same class serves the sandbox (paper trading) and production:
the token's environment decides (see `providers.tradier.TradierClient`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.errors import ConfigError
from core.values import as_utc, to_float
from providers.broker.base import BrokerPosition, Fill, OrderPreview, OrderRejected, OrderRequest, OrderStatus, Status
from providers.http import BadRequest, ProviderError
from providers.tradier import TradierClient, items

_STATUS: dict[str, Status] = {
    "open": "open",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "expired": "expired",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "pending": "pending",
    "submitted": "pending",
    "rejected": "rejected",
    "error": "rejected",
}


class TradierBroker:
    """A `Broker` on a Tradier account (sandbox or production)."""

    def __init__(self, client: TradierClient, account_id: str | None = None) -> None:
        self.client = client
        self.account_id = account_id

    @property
    def name(self) -> str:
        return "tradier sandbox" if self.client.sandbox else "tradier"

    async def aclose(self) -> None:
        await self.client.aclose()

    async def account(self) -> str:
        """The account orders go to: configured, or the token's only account."""
        if self.account_id:
            return self.account_id
        body = await self.client.get("/v1/user/profile", what="profile")
        numbers = [a.get("account_number") for a in items(body, "profile", "account") if isinstance(a, dict)]
        accounts: list[str] = [a for a in numbers if a]
        if len(accounts) != 1:
            listed = ", ".join(accounts) or "none"
            raise ConfigError(f"set TRADIER_ACCOUNT_ID: this token has {len(accounts)} accounts ({listed})")
        self.account_id = str(accounts[0])
        return self.account_id

    async def _order_call(self, method: str, path: str, data: dict[str, Any] | None, what: str, retry: bool) -> dict[str, Any]:
        try:
            return await self.client.call(method, path, data=data, what=what, retry=retry)
        except BadRequest as exc:
            body = exc.payload if isinstance(exc.payload, dict) else None
            if body and "errors" in body:
                raise OrderRejected(self.name, [str(e) for e in items(body, "errors", "error")]) from None
            raise OrderRejected(self.name, [exc.reason.split(": ", 1)[-1]]) from None

    async def preview(self, req: OrderRequest, at: datetime | None = None) -> OrderPreview:
        """Tradier's own preview: cost, commission, fees, buying-power checks; nothing placed."""
        acct = await self.account()
        body = await self._order_call(
            "POST",
            f"/v1/accounts/{acct}/orders",
            {**req.form(), "preview": "true"},
            f"{req.instrument} order preview",
            retry=True,
        )
        order = body.get("order")
        o = order if isinstance(order, dict) else None
        if o is None:
            raise ProviderError(self.name, "order preview came back without an `order` object")
        if o.get("result") is False or str(o.get("status", "ok")).lower() not in ("ok", "success"):
            raise OrderRejected(self.name, [str(o.get("status") or "preview failed")])
        cost = to_float(o.get("order_cost")) or to_float(o.get("cost")) or 0.0
        qty = req.quantity * req.multiplier
        price = req.price or (cost / qty if qty and cost else 0.0)
        warnings = []
        if not self.client.sandbox:
            warnings.append("LIVE production account: placing sends a real order")
        return OrderPreview(
            broker=self.name,
            request=req,
            price=round(price, 4),
            estimated_cost=round(cost, 2),
            commission=to_float(o.get("commission")) or 0.0,
            fees=to_float(o.get("fees")) or 0.0,
            marketable=req.type == "market",
            warnings=warnings,
            details={k: o[k] for k in ("margin_change", "day_trades", "extended_hours", "strategy", "request_date") if k in o},
        )

    async def place(self, req: OrderRequest, at: datetime | None = None) -> OrderStatus:
        """Send the order once, then read its real state."""
        acct = await self.account()
        body = await self._order_call("POST", f"/v1/accounts/{acct}/orders", req.form(), f"{req.instrument} order", retry=False)
        order = body.get("order")
        o: dict[str, Any] = order if isinstance(order, dict) else {}
        oid = o.get("id")
        if oid is None or str(o.get("status", "ok")).lower() != "ok":
            raise OrderRejected(self.name, [str(o.get("status") or "no order id returned")])
        try:
            return await self.status(str(oid), req)
        except ProviderError:
            # placed, but its state could not be read yet: say so rather than guess
            return OrderStatus(broker=self.name, broker_order_id=str(oid), status="pending", reason="placed; status not read yet")

    async def status(self, broker_order_id: str, req: OrderRequest, at: datetime | None = None) -> OrderStatus:
        """The order as Tradier has it now, with its executions so far as one aggregate fill."""
        acct = await self.account()
        body = await self.client.get(
            f"/v1/accounts/{acct}/orders/{broker_order_id}", {"includeTags": "true"}, f"order {broker_order_id}"
        )
        o = body.get("order")
        if not isinstance(o, dict):
            raise ProviderError(self.name, f"order {broker_order_id}: no `order` object in the answer")
        return self._status(o, broker_order_id)

    def _status(self, o: dict[str, Any], oid: str) -> OrderStatus:
        st = _STATUS.get(str(o.get("status", "")).lower(), "pending")
        qty = to_float(o.get("exec_quantity")) or 0.0
        avg = to_float(o.get("avg_fill_price"))
        fills = []
        if qty > 0 and avg:
            when = _when(o.get("transaction_date")) or datetime.now(UTC)
            fills.append(Fill(quantity=qty, price=avg, at=when, broker_fill_id=f"{oid}:{qty:g}"))
        return OrderStatus(
            broker=self.name,
            broker_order_id=str(o.get("id", oid)),
            status=st,
            filled_quantity=qty,
            avg_fill_price=avg if qty > 0 else None,
            fills=fills,
            reason=o.get("reason_description") if st == "rejected" else None,
        )

    async def cancel(self, broker_order_id: str, req: OrderRequest, at: datetime | None = None) -> OrderStatus:
        """Ask Tradier to cancel, then read the order's state (a fill may have won the race)."""
        acct = await self.account()
        await self._order_call(
            "DELETE", f"/v1/accounts/{acct}/orders/{broker_order_id}", None, f"cancel order {broker_order_id}", retry=True
        )
        try:
            return await self.status(broker_order_id, req)
        except ProviderError:
            return OrderStatus(broker=self.name, broker_order_id=broker_order_id, status="pending", reason="cancel requested")

    async def positions(self) -> list[BrokerPosition]:
        """The account's open positions (`GET /v1/accounts/{id}/positions`; none comes back as `"null"`)."""
        acct = await self.account()
        body = await self.client.get(f"/v1/accounts/{acct}/positions", None, "positions")
        out = []
        for p in items(body, "positions", "position"):
            if not isinstance(p, dict) or not p.get("symbol"):
                continue
            qty = to_float(p.get("quantity")) or 0.0
            if qty == 0:
                continue
            out.append(
                BrokerPosition(
                    symbol=str(p["symbol"]).upper(),
                    quantity=qty,
                    cost_basis=to_float(p.get("cost_basis")) or 0.0,
                    acquired_at=_when(p.get("date_acquired")),
                )
            )
        return out

    async def find_by_tag(self, tag: str) -> OrderStatus | None:
        """The account's order carrying `tag` (our preview id), if Tradier has one."""
        acct = await self.account()
        body = await self.client.get(f"/v1/accounts/{acct}/orders", {"includeTags": "true"}, "orders")
        for o in items(body, "orders", "order"):
            if isinstance(o, dict) and o.get("tag") == tag and o.get("id") is not None:
                return self._status(o, str(o["id"]))
        return None


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return as_utc(dt)
