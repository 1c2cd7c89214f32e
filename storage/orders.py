"""Orders and fills, per tenant and owner: the record of every preview, placement, cancel and execution.

An order row is born as a preview (`status="previewed"`, with an expiry). Placing it first
*claims* the row with one conditional UPDATE (previewed and unexpired -> placing), so two
clicks, two processes or a replayed button can place an order at most once. The broker's
answer then moves it on (open, filled, rejected, ...). A row left in `placing` means the
broker's answer was lost: `/order status` reconciles it (Tradier orders carry the preview id
as their tag).

Fills are stored as increments: the broker reports cumulative executions, `record_fills`
adds only what is new, at the price that makes the running average match the broker's.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utc_now
from core.errors import NotFoundError, UserError
from core.values import as_utc
from storage.base import Base, Owned, rowcount
from storage.identity import Owner

#: How long a preview may be confirmed.
PREVIEW_TTL = timedelta(minutes=2)
#: Statuses of a placed order that can still change.
LIVE = ("placing", "pending", "open", "partially_filled")


class Order(Owned, Base):
    """One order, from preview to its final state."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_owner_created", "tenant_id", "owner_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    preview_id: Mapped[str] = mapped_column(String(16), unique=True)
    broker: Mapped[str] = mapped_column(String(32))
    account: Mapped[str | None] = mapped_column(String(32), default=None)
    broker_order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    asset_class: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(16))
    option_symbol: Mapped[str | None] = mapped_column(String(32), default=None)
    side: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[float] = mapped_column(Float)
    order_type: Mapped[str] = mapped_column(String(16))
    limit_price: Mapped[float | None] = mapped_column(Float, default=None)
    stop_price: Mapped[float | None] = mapped_column(Float, default=None)
    duration: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20), default="previewed")
    filled_quantity: Mapped[float] = mapped_column(Float, default=0.0)
    avg_fill_price: Mapped[float | None] = mapped_column(Float, default=None)
    preview: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
    plan_id: Mapped[str | None] = mapped_column(String(64), default=None)
    channel: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(default=utc_now)
    placed_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class Fill(Owned, Base):
    """One execution increment of an order."""

    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column()
    broker_fill_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class FillView(BaseModel):
    quantity: float
    price: float
    at: datetime


class OrderView(BaseModel):
    """An order as replies and `--json` show it."""

    preview_id: str
    broker: str
    broker_order_id: str | None
    asset_class: str
    symbol: str
    option_symbol: str | None
    side: str
    quantity: float
    type: str
    limit_price: float | None
    stop_price: float | None
    duration: str
    status: str
    filled_quantity: float
    avg_fill_price: float | None
    reason: str | None
    plan_id: str | None
    created_at: datetime
    expires_at: datetime
    placed_at: datetime | None
    preview: dict[str, Any]
    fills: list[FillView] = []


def view(row: Order, fills: list[Fill] | None = None) -> OrderView:
    return OrderView(
        preview_id=row.preview_id,
        broker=row.broker,
        broker_order_id=row.broker_order_id,
        asset_class=row.asset_class,
        symbol=row.symbol,
        option_symbol=row.option_symbol,
        side=row.side,
        quantity=row.quantity,
        type=row.order_type,
        limit_price=row.limit_price,
        stop_price=row.stop_price,
        duration=row.duration,
        status=row.status,
        filled_quantity=row.filled_quantity,
        avg_fill_price=row.avg_fill_price,
        reason=row.reason,
        plan_id=row.plan_id,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        placed_at=as_utc(row.placed_at),
        preview=row.preview or {},
        fills=[FillView(quantity=f.quantity, price=f.price, at=as_utc(f.at)) for f in (fills or [])],
    )


def new_preview_id() -> str:
    """`PV-` and 8 hex digits: short to type, valid as a Tradier order tag."""
    return "PV-" + secrets.token_hex(4).upper()


async def create_preview(
    session: AsyncSession,
    owner: Owner,
    *,
    request: dict[str, Any],
    preview: dict[str, Any],
    broker: str,
    now: datetime,
    account: str | None = None,
    plan_id: str | None = None,
    channel: str | None = None,
    ttl: timedelta = PREVIEW_TTL,
    preview_id: str | None = None,
) -> Order:
    """Store a previewed order (not placed) that its owner may confirm until `now + ttl`."""
    now = now.astimezone(UTC)
    row = Order(
        tenant_id=owner.tenant_id,
        owner_id=owner.user_id,
        preview_id=preview_id or new_preview_id(),
        broker=broker[:32],
        account=account,
        asset_class=request["asset_class"],
        symbol=request["symbol"],
        option_symbol=request.get("option_symbol"),
        side=request["side"],
        quantity=float(request["quantity"]),
        order_type=request["type"],
        limit_price=request.get("price"),
        stop_price=request.get("stop"),
        duration=request["duration"],
        status="previewed",
        preview=preview,
        plan_id=plan_id,
        channel=(channel or "")[:64] or None,
        created_at=now,
        expires_at=now + ttl,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def find(session: AsyncSession, owner: Owner, ref: str) -> Order | None:
    """The owner's order by preview id or broker order id; None when there is none of theirs."""
    ref = (ref or "").strip()
    q = select(Order).where(Order.tenant_id == owner.tenant_id, Order.owner_id == owner.user_id)
    row = (await session.execute(q.where(Order.preview_id == ref.upper()))).scalar_one_or_none()
    if row is None and ref:
        row = (
            await session.execute(q.where(Order.broker_order_id == ref).order_by(Order.id.desc()).limit(1))
        ).scalar_one_or_none()
    return row


async def get_owned(session: AsyncSession, owner: Owner, ref: str) -> Order:
    """The caller's order `ref`, or NotFoundError.

    Someone else's order is "not found" in the very same words as one that does not exist: the answer
    must not tell anyone that an id is in use.
    """
    row = await find(session, owner, ref)
    if row is None:
        raise NotFoundError(f"no order {ref[:24]!r}; /order list shows yours")
    return row


async def claim_for_placing(session: AsyncSession, owner: Owner, preview_id: str, now: datetime) -> Order:
    """Move the caller's fresh preview to `placing`, atomically; a UserError says why when it cannot be placed."""
    now = now.astimezone(UTC)  # stored stamps are UTC (SQLite compares them as text)
    row = await get_owned(session, owner, preview_id)
    result = await session.execute(
        update(Order)
        .where(
            Order.id == row.id,
            Order.owner_id == owner.user_id,
            Order.tenant_id == owner.tenant_id,
            Order.status == "previewed",
            Order.expires_at > now,
        )
        .values(status="placing", placed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        await session.refresh(row)
        if row.status == "previewed":
            raise UserError(
                f"preview {row.preview_id} expired (previews last {int(PREVIEW_TTL.total_seconds() // 60)} min); "
                "preview the order again"
            )
        if row.status == "discarded":
            raise UserError(f"preview {row.preview_id} was discarded; preview the order again")
        raise UserError(f"order {row.preview_id} was already placed (status {row.status}); it is never placed twice")
    await session.refresh(row)
    return row


async def set_state(
    session: AsyncSession,
    row: Order,
    *,
    status: str,
    now: datetime,
    broker_order_id: str | None = None,
    filled_quantity: float | None = None,
    avg_fill_price: float | None = None,
    reason: str | None = None,
) -> None:
    """Record the broker's view of the order."""
    row.status = status
    row.updated_at = now.astimezone(UTC)
    if broker_order_id is not None:
        row.broker_order_id = broker_order_id
    if filled_quantity is not None:
        row.filled_quantity = filled_quantity
    if avg_fill_price is not None:
        row.avg_fill_price = avg_fill_price
    if reason is not None:
        row.reason = reason[:500]
    await session.flush()


async def fills_of(session: AsyncSession, row: Order) -> list[Fill]:
    rows = await session.execute(
        select(Fill)
        .where(Fill.order_id == row.id, Fill.tenant_id == row.tenant_id, Fill.owner_id == row.owner_id)
        .order_by(Fill.id)
    )
    return list(rows.scalars())


async def record_fills(
    session: AsyncSession, row: Order, cum_qty: float, avg_price: float | None, at: datetime, broker_fill_id: str | None = None
) -> Fill | None:
    """Add the execution beyond what is stored (cumulative `cum_qty` at average `avg_price`); None when nothing is new."""
    stored = (
        await session.execute(
            select(func.coalesce(func.sum(Fill.quantity), 0.0), func.coalesce(func.sum(Fill.quantity * Fill.price), 0.0)).where(
                Fill.order_id == row.id
            )
        )
    ).one()
    have_qty, have_notional = float(stored[0]), float(stored[1])
    new_qty = round(cum_qty - have_qty, 8)
    if new_qty <= 0 or avg_price is None:
        return None
    price = (cum_qty * avg_price - have_notional) / new_qty
    fill = Fill(
        tenant_id=row.tenant_id,
        owner_id=row.owner_id,
        order_id=row.id,
        quantity=new_qty,
        price=round(price, 6),
        at=at,
        broker_fill_id=(broker_fill_id or "")[:64] or None,
    )
    session.add(fill)
    await session.flush()
    return fill


async def list_orders(session: AsyncSession, owner: Owner, limit: int = 20, live_only: bool = False) -> list[Order]:
    """The caller's orders, newest first (previews included)."""
    q = select(Order).where(Order.tenant_id == owner.tenant_id, Order.owner_id == owner.user_id)
    if live_only:
        q = q.where(Order.status.in_(LIVE))
    rows = await session.execute(q.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit))
    return list(rows.scalars())


async def executions(session: AsyncSession, owner: Owner, broker: str) -> list[tuple[Order, Fill]]:
    """Every fill of the owner's orders at `broker`, oldest first, each with its order."""
    rows = await session.execute(
        select(Order, Fill)
        .join(Fill, Fill.order_id == Order.id)
        .where(
            Order.tenant_id == owner.tenant_id,
            Order.owner_id == owner.user_id,
            Fill.tenant_id == owner.tenant_id,
            Fill.owner_id == owner.user_id,
            Order.broker == broker,
        )
        .order_by(Fill.at, Fill.id)
    )
    return [(o, f) for o, f in rows.all()]


async def plan_of_instruments(session: AsyncSession, owner: Owner, broker: str) -> dict[str, str]:
    """Instrument -> the plan id of the owner's latest filled order of it that carried one."""
    rows = await session.execute(
        select(Order.symbol, Order.option_symbol, Order.plan_id)
        .where(
            Order.tenant_id == owner.tenant_id,
            Order.owner_id == owner.user_id,
            Order.broker == broker,
            Order.plan_id.is_not(None),
            Order.filled_quantity > 0,
        )
        .order_by(Order.updated_at, Order.id)
    )
    out: dict[str, str] = {}
    for symbol, option_symbol, plan_id in rows.all():
        if plan_id:
            out[option_symbol or symbol] = plan_id
    return out
