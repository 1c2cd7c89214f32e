"""/order preview|place|cancel|status|list: orders through the configured broker, always previewed first.

The flow a chat user sees:

1. `/order preview TSLA buy 10 limit 180.50` asks the broker what the order would do
   (nothing is sent to the market), stores the preview with an id such as `PV-1A2B3C4D`,
   and answers with a "Place order" button carrying `/order place PV-1A2B3C4D`.
2. The button places the order only for the person who previewed it, only while the
   preview is fresh (2 minutes), and only once: the stored preview is claimed atomically,
   so a double click or a replayed button cannot place it twice.
3. Placements, fills, rejections and cancels are written to the orders table and to the
   user's journal in the same transaction as the order's new state.

The paper broker (default) fills against the current quote; `COACH_BROKER=tradier` sends
orders to the Tradier account (sandbox or production). The LLM coach may prepare a preview
(`/order plan`, from a stored plan); none of these places an order for it: money moves only on
a person's click.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from analytics.symbols import validate_symbol
from bot.args import ArgsModel
from bot.registry import command
from bot.reply import Action, Reply, ReplyField, Severity
from bot.request import Ctx
from core.errors import ConfigError, NotFoundError, ProviderError, UserError
from core.values import price_text
from providers.broker.base import OrderPreview, OrderRejected, OrderRequest, OrderStatus, is_occ, parse_occ
from storage import journal, orders
from storage.identity import Owner

# The HTTP client's errors and the renderers are imported where they are used: declaring the commands,
# as a chat front does to validate arguments, loads only the broker's light order models.

Side = Literal["buy", "sell", "sell_short", "buy_to_cover", "buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close"]


def _lower(v: object) -> object:
    return v.strip().lower().replace("-", "_") if isinstance(v, str) else v


class PreviewArgs(ArgsModel):
    symbol: str = Field(description="ticker (TSLA) or OCC option symbol (TSLA240419C00250000)")
    side: Annotated[Side, BeforeValidator(_lower)] = Field(
        description="buy, sell, sell_short, buy_to_cover; options: buy_to_open ..."
    )
    quantity: int = Field(ge=1, le=100_000, description="shares, or contracts for options")
    type: Annotated[Literal["market", "limit", "stop", "stop_limit"] | None, BeforeValidator(_lower)] = Field(
        None, description="market, limit, stop, stop_limit (default: limit when a price is given, else market)"
    )
    price: float | None = Field(None, gt=0, lt=1e7, description="limit price")
    stop: float | None = Field(None, gt=0, lt=1e7, description="stop trigger price")
    duration: Annotated[Literal["day", "gtc", "pre", "post"], BeforeValidator(_lower)] = Field(
        "day", description="day, gtc, pre, post"
    )
    plan: str | None = Field(None, max_length=64, description="the plan id this order executes (journaled with it)")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        text = (v or "").strip().upper().lstrip("$")
        if is_occ(text):
            parse_occ(text)  # a clear error for an impossible date
            return text
        return validate_symbol(text)


class RefArgs(ArgsModel):
    order: str = Field(min_length=1, max_length=64, description="preview id (PV-...) or broker order id")


class ListArgs(ArgsModel):
    count: int = Field(10, ge=1, le=50, description="how many recent orders")


def _request(a: PreviewArgs, tag: str) -> tuple[OrderRequest, list[str]]:
    """The order request the arguments describe, plus notes on what was assumed."""
    notes: list[str] = []
    otype = a.type or ("stop_limit" if a.price and a.stop else "limit" if a.price else "stop" if a.stop else "market")
    if is_occ(a.symbol):
        root, *_ = parse_occ(a.symbol)
        side = {"buy": "buy_to_open", "sell": "sell_to_close"}.get(a.side, a.side)
        if side != a.side:
            notes.append(f"option side taken as {side}")
        underlying = root.rstrip("0123456789") or root
        fields: dict[str, Any] = dict(asset_class="option", symbol=underlying, option_symbol=a.symbol, side=side)
    else:
        fields = dict(asset_class="equity", symbol=a.symbol, side=a.side)
    try:
        req = OrderRequest(**fields, quantity=a.quantity, type=otype, price=a.price, stop=a.stop, duration=a.duration, tag=tag)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        msg = str(exc).split("\n")[1].strip() if "\n" in str(exc) else str(exc)
        msg = msg.removeprefix("Value error, ")
        raise UserError(f"{msg.split(' [type=')[0]}; usage: /order preview SYMBOL SIDE QUANTITY [type] [price] [stop]") from None
    return req, notes


async def _rule_warnings(ctx: Ctx, owner: Owner, req: OrderRequest, price: float, plan_id: str | None) -> list[str]:
    """The caller's portfolio risk rules this order would break (nothing when no rule is set or prices are unavailable)."""
    from bot.portfolio import order_rule_warnings
    from storage import plans

    stop = None
    if plan_id:
        async with ctx.tx() as s:
            plan = await plans.get_plan(s, owner, plan_id)
        stop = plan.stop if plan is not None else None
    sign = 1 if req.is_buy else -1
    try:
        return await order_rule_warnings(
            ctx,
            owner,
            instrument=req.instrument,
            underlying=req.symbol,
            signed_units=sign * req.quantity * req.multiplier,
            price=price,
            plan_stop=stop,
        )
    except ProviderError:
        return ["risk rules not checked: the holdings could not be priced"]


async def _after_fill(ctx: Ctx, owner: Owner, st: OrderStatus) -> str:
    """After a fill: the risk rules the book now breaks (queued as `risk` alerts too), as a sentence for the reply."""
    from bot.risk_alerts import check_and_notify

    if st.filled_quantity <= 0:
        return ""
    try:
        broken = await check_and_notify(ctx, owner)
    except (ProviderError, UserError):
        return ""  # the fill is recorded; the check runs again on the next fill or /portfolio
    return "".join(f"\n⛔ {b.describe()}" for b in broken)


def _no_pinned_time(ctx: Ctx, broker: Any) -> None:
    if ctx.as_of is not None and broker.name != "paper":
        raise UserError(f"orders to {broker.name} are placed now; --as-of works only with the paper broker")


def _money(x: float | None) -> str:
    return "—" if x is None else (f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}")


def _cash_field(pv: OrderPreview) -> ReplyField:
    """What the order costs (a buy) or brings in (a sell or short sale), and the net after commission and fees."""
    gross = abs(pv.estimated_cost)  # a broker may sign a sale's order cost negative: the label carries the direction
    fees = pv.commission + pv.fees
    if pv.request.is_buy:
        return ReplyField(
            name="Est. cost", value=f"{_money(gross)} (with fees {_money(gross + fees)})" if fees else _money(gross)
        )
    net = gross - fees
    return ReplyField(name="Est. proceeds", value=f"+{_money(gross)} (after fees {_money(net)})" if fees else f"+{_money(gross)}")


@command(
    "order preview",
    "Preview an order (nothing is sent): cost, checks, and a button to place it.",
    PreviewArgs,
    acts=True,
    tool=False,
    examples=("/order preview TSLA buy 10 limit 180.50", "/order preview SPY240419C00500000 buy_to_open 1 limit 2.15"),
    result="storage.orders:OrderView",
)
async def order_preview(ctx: Ctx, a: PreviewArgs) -> Reply:
    return await _preview(ctx, a)


async def _preview(ctx: Ctx, a: PreviewArgs, extra: list[str] | None = None) -> Reply:
    """Ask the broker what the order would do, store the preview and answer with its Place button; `extra` adds lines."""
    from renderers.text import fmt_time

    broker = ctx.services.broker()
    _no_pinned_time(ctx, broker)
    pid = orders.new_preview_id()
    req, notes = _request(a, pid)
    pv = await broker.preview(req, at=ctx.now())
    now = ctx.services.clock()
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
    rule_notes = await _rule_warnings(ctx, owner, req, pv.price, a.plan)
    async with ctx.tx() as s:
        row = await orders.create_preview(
            s,
            owner,
            request=req.model_dump(mode="json"),
            preview=pv.model_dump(mode="json"),
            broker=broker.name,
            now=now,
            account=getattr(broker, "account_id", None),
            plan_id=a.plan,
            channel=ctx.identity.channel,
            preview_id=pid,
        )
        view = orders.view(row)
    fields = [
        ReplyField(name="Price", value=price_text(pv.price)),
        _cash_field(pv),
        ReplyField(name="Commission + fees", value=_money(pv.commission + pv.fees)),
        ReplyField(name="Broker", value=broker.name),
    ]
    if pv.bid is not None and pv.ask is not None:
        fields.append(ReplyField(name="Bid / ask", value=f"{price_text(pv.bid)} / {price_text(pv.ask)}"))
    fields.append(ReplyField(name="Confirm by", value=fmt_time(view.expires_at)))
    lines = [
        f"Preview {pid}: nothing has been sent. Only you can place it, within "
        f"{int(orders.PREVIEW_TTL.total_seconds() // 60)} minutes."
    ]
    lines += extra or []
    lines += [f"• {w}" for w in notes + rule_notes + pv.warnings]
    return Reply(
        title=f"Preview: {req.describe()}",
        body="\n".join(lines),
        fields=fields,
        severity="warning" if pv.warnings or rule_notes else "info",
        actions=[
            Action(label="Place order", command=f"/order place {pid}", style="danger" if broker.name == "tradier" else "success"),
            Action(label="Discard", command=f"/order cancel {pid}", style="secondary"),
        ],
        sources=[f"broker: {broker.name}"] + ([f"quote: {pv.details['quote_source']}"] if pv.details.get("quote_source") else []),
        as_of=pv.quote_as_of or now,
        data=view,
    )


class PlanOrderArgs(ArgsModel):
    plan: str = Field(min_length=1, max_length=64, description="plan id, e.g. P-1A2B3C (from /plan)")
    risk: float | None = Field(
        None, gt=0, le=1e9, description="dollars to risk at the stop; defaults to your risk profile (/risk)"
    )


@command(
    "order plan",
    "Preview the order for a plan (nothing is sent): a limit at its entry for the quantity your risk sizes, stop and "
    "targets noted, and a button to place it.",
    PlanOrderArgs,
    examples=("/order plan P-1A2B3C", "/order plan P-1A2B3C risk=250"),
    result="storage.orders:OrderView",
    tool_hint="Prepares a preview only: nothing reaches the market. Only the person's click on the preview's Place "
    "button places it; there is no tool that places orders.",
)
async def order_plan(ctx: Ctx, a: PlanOrderArgs) -> Reply:
    # A tool as well as a button: a preview moves no money, and the preview's Place button (`/order place`, not a
    # tool) is the only way from here to the market.
    from analytics.sizing import size_shares
    from renderers.text import fmt_price
    from storage import plans
    from storage.identity import get_user

    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        plan = await plans.get_plan(s, owner, a.plan)
        user = await get_user(s, owner)
        account, pct = user.account_size, user.risk_pct
    if plan is None:
        raise NotFoundError(f"no plan {a.plan[:20]!r} of yours; /plan SYMBOL makes one")
    sized = size_shares(plan.symbol, plan.entry, plan.stop, risk_amount=a.risk, account_size=account, risk_pct=pct)
    if sized.quantity < 1:
        raise UserError(
            f"risking {_money(sized.risk_amount)} buys no {plan.symbol}: one share loses {fmt_price(sized.risk_per_unit)} "
            f"at the stop; give a larger risk, e.g. /order plan {plan.plan_id} risk={sized.risk_per_unit * 10:.0f}"
        )
    tick = 0.0001 if plan.entry < 1 else 0.01
    limit = round(round(plan.entry / tick) * tick, 4)
    side: Side = "buy" if plan.direction == "long" else "sell_short"
    args = PreviewArgs(symbol=plan.symbol, side=side, quantity=sized.quantity, type="limit", price=limit, plan=plan.plan_id)
    src = "your risk profile" if sized.risk_source == "profile" else "the amount given"
    targets = ", ".join(f"{fmt_price(t.price)} ({t.rr:.1f}R)" for t in plan.targets) or "—"
    extra = [
        f"From plan {plan.plan_id} v{plan.version} ({plan.direction}): {sized.quantity:,} shares sized from {src} "
        f"({_money(sized.risk_amount)}), so the stop loses about {_money(sized.max_loss)}.",
        f"Stop {fmt_price(plan.stop)} and targets {targets} are not part of this order: "
        "after the fill, set them at your broker or with /alert add.",
    ]
    return await _preview(ctx, args, extra)


async def _apply(s: Any, owner: Owner, row: orders.Order, st: OrderStatus, now: datetime) -> list[orders.Fill]:
    """Store the broker's state of `row`, its new fills, and journal each new fill (one transaction)."""
    await orders.set_state(
        s,
        row,
        status=st.status,
        now=now,
        broker_order_id=st.broker_order_id,
        filled_quantity=st.filled_quantity,
        avg_fill_price=st.avg_fill_price,
        reason=st.reason,
    )
    new: list[orders.Fill] = []
    if st.filled_quantity > 0:
        at = st.fills[-1].at if st.fills else now
        fill = await orders.record_fills(
            s, row, st.filled_quantity, st.avg_fill_price, at, st.fills[-1].broker_fill_id if st.fills else None
        )
        if fill is not None:
            new.append(fill)
            instrument = row.option_symbol or row.symbol
            await journal.add_entry(
                s,
                owner,
                symbol=row.symbol,
                plan_id=row.plan_id,
                source="broker",
                tags=["fill"],
                text=f"Filled {row.side.replace('_', ' ')} {fill.quantity:g} {instrument} @ {price_text(fill.price)} ({row.broker}, order {row.preview_id})",
                data={
                    "event": "fill",
                    "order": row.preview_id,
                    "broker": row.broker,
                    "broker_order_id": row.broker_order_id,
                    "instrument": instrument,
                    "side": row.side,
                    "quantity": fill.quantity,
                    "price": fill.price,
                    "at": at.isoformat(),
                },
                created_at=now,
            )
    return new


_STATUS_SEVERITY: dict[str, Severity] = {"filled": "success", "rejected": "error", "cancelled": "warning", "placing": "warning"}


def _status_reply(title: str, row: orders.Order, fills: list[orders.Fill], note: str = "") -> Reply:
    v = orders.view(row, fills)
    filled = f"{v.filled_quantity:g} of {v.quantity:g}"
    fields = [
        ReplyField(name="Status", value=v.status),
        ReplyField(name="Filled", value=filled + (f" @ {price_text(v.avg_fill_price)}" if v.avg_fill_price else "")),
        ReplyField(name="Broker", value=v.broker + (f" #{v.broker_order_id}" if v.broker_order_id else "")),
    ]
    sev = _STATUS_SEVERITY.get(v.status, "info")
    body = note or (f"Reason: {v.reason}" if v.reason else "")
    as_of = v.fills[-1].at if v.fills else (v.placed_at or v.created_at)
    return Reply(title=title, body=body, fields=fields, severity=sev, sources=[f"broker: {v.broker}"], as_of=as_of, data=v)


def _order_request(row: orders.Order) -> OrderRequest:
    return OrderRequest.model_validate(row.preview["request"])


@command(
    "order place",
    "Place a previewed order (the preview's Place button runs this).",
    RefArgs,
    tool=False,
    acts=True,
    examples=("/order place PV-1A2B3C4D",),
)
async def order_place(ctx: Ctx, a: RefArgs) -> Reply:
    from providers.http import AuthFailed, BadRequest, NotEntitled, Unsupported

    if ctx.model_turn is not None:
        # not a tool, and refused even if a tool path ever reached it: placing takes the person's click
        raise UserError("an order is placed only by your click on its preview's Place button")
    broker = ctx.services.broker()
    _no_pinned_time(ctx, broker)
    now = ctx.services.clock()
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        row = await orders.get_owned(s, owner, a.order)
        if row.broker != broker.name:
            raise UserError(
                f"{row.preview_id} was previewed with {row.broker} but the broker is now {broker.name}; preview again"
            )
        row = await orders.claim_for_placing(s, owner, row.preview_id, now)
        req = _order_request(row)
        pid = row.preview_id
    try:
        st = await broker.place(req, at=ctx.now())
    except (OrderRejected, AuthFailed, NotEntitled, BadRequest, Unsupported, ConfigError, UserError) as exc:
        # refused before anything reached the market: record why, journal it, say it in one line
        reason = getattr(exc, "message", str(exc))
        async with ctx.tx() as s:
            row = await orders.get_owned(s, owner, pid)
            status = "rejected" if isinstance(exc, OrderRejected) else "failed"
            await orders.set_state(s, row, status=status, now=now, reason=reason)
            await journal.add_entry(
                s,
                owner,
                symbol=row.symbol,
                plan_id=row.plan_id,
                source="broker",
                tags=["order", status],
                text=f"Order {pid} {status}: {reason}",
                data={"event": status, "order": pid, "broker": row.broker, "reason": reason},
                created_at=now,
            )
        return Reply.error(reason, title=f"Order {pid} {status}")
    except ProviderError as exc:
        # the broker may or may not have it: never guess, never resend
        async with ctx.tx() as s:
            row = await orders.get_owned(s, owner, pid)
            await orders.set_state(s, row, status="placing", now=now, reason=f"no answer from the broker: {exc.reason}")
        return Reply(
            title=f"Order {pid}: state unknown",
            severity="warning",
            body=f"{exc.provider} did not confirm ({exc.reason}). It was not resent. Check with `/order status {pid}`.",
            actions=[Action(label="Check status", command=f"/order status {pid}")],
            data={"order": pid, "status": "placing"},
        )
    async with ctx.tx() as s:
        row = await orders.get_owned(s, owner, pid)
        await orders.set_state(s, row, status=st.status, now=now, broker_order_id=st.broker_order_id)
        await journal.add_entry(
            s,
            owner,
            symbol=row.symbol,
            plan_id=row.plan_id,
            source="broker",
            tags=["order"],
            text=f"Placed {req.describe()} ({row.broker}, order {pid}, broker id {st.broker_order_id})",
            data={
                "event": "placed",
                "order": pid,
                "broker": row.broker,
                "broker_order_id": st.broker_order_id,
                "request": row.preview.get("request"),
            },
            created_at=now,
        )
        await _apply(s, owner, row, st, now)
        fills = await orders.fills_of(s, row)
    title = f"Filled: {req.describe()}" if st.status == "filled" else f"Placed: {req.describe()}"
    actions = (
        []
        if st.final
        else [
            Action(label="Check status", command=f"/order status {pid}"),
            Action(label="Cancel", command=f"/order cancel {pid}", style="danger"),
        ]
    )
    note = "Written to your journal." + await _after_fill(ctx, owner, st)
    reply = _status_reply(title, row, fills, note)
    return reply.model_copy(update={"actions": actions})


@command(
    "order cancel",
    "Discard a preview, or cancel an open order.",
    RefArgs,
    tool=False,
    acts=True,
    examples=("/order cancel PV-1A2B3C4D",),
)
async def order_cancel(ctx: Ctx, a: RefArgs) -> Reply:
    now = ctx.services.clock()
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        row = await orders.get_owned(s, owner, a.order)
        if row.status == "previewed":
            await orders.set_state(s, row, status="discarded", now=now)
            return Reply(title=f"Preview {row.preview_id} discarded", body="Nothing was sent.", data=orders.view(row))
        if row.status not in orders.LIVE:
            return Reply(title=f"Order {row.preview_id} is {row.status}", body="Nothing to cancel.", data=orders.view(row))
        if not row.broker_order_id:
            raise UserError(f"{row.preview_id} has no broker order id yet; run /order status {row.preview_id} first")
        req, pid, boid = _order_request(row), row.preview_id, row.broker_order_id
    broker = ctx.services.broker()
    if broker.name != row.broker:
        raise UserError(f"{pid} is at {row.broker}, but the broker is now {broker.name}")
    _no_pinned_time(ctx, broker)
    st = await broker.cancel(boid, req, at=ctx.now())
    async with ctx.tx() as s:
        row = await orders.get_owned(s, owner, pid)
        await _apply(s, owner, row, st, now)
        if st.status == "cancelled":
            await journal.add_entry(
                s,
                owner,
                symbol=row.symbol,
                plan_id=row.plan_id,
                source="broker",
                tags=["order", "cancelled"],
                text=f"Cancelled {req.describe()} ({row.broker}, order {pid})",
                data={"event": "cancelled", "order": pid, "broker": row.broker},
                created_at=now,
            )
        fills = await orders.fills_of(s, row)
    return _status_reply(f"Order {pid}: {st.status}", row, fills)


@command(
    "order status",
    "Refresh one of your orders from the broker (new fills are journaled).",
    RefArgs,
    tool=False,
    acts=True,
    examples=("/order status PV-1A2B3C4D",),
)
async def order_status(ctx: Ctx, a: RefArgs) -> Reply:
    now = ctx.services.clock()
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        row = await orders.get_owned(s, owner, a.order)
        live = row.status in orders.LIVE
        req, pid, boid, at_broker = _order_request(row), row.preview_id, row.broker_order_id, row.broker
        fills = await orders.fills_of(s, row)
    if not live:
        return _status_reply(f"Order {pid}: {row.status}", row, fills)
    broker = ctx.services.broker()
    if broker.name != at_broker:
        raise UserError(f"{pid} is at {at_broker}, but the broker is now {broker.name}")
    st: OrderStatus | None
    if boid:
        st = await broker.status(boid, req, at=ctx.now())
    else:
        finder = getattr(broker, "find_by_tag", None)
        st = await finder(pid) if finder is not None else None
        if st is None:
            return _status_reply(
                f"Order {pid}: not found at {at_broker}",
                row,
                fills,
                "The broker has no order with this id: it was not placed. Preview again to retry.",
            )
    async with ctx.tx() as s:
        row = await orders.get_owned(s, owner, pid)
        new = await _apply(s, owner, row, st, now)
        fills = await orders.fills_of(s, row)
    note = (await _after_fill(ctx, owner, st)).strip() if new else ""
    return _status_reply(f"Order {pid}: {st.status}", row, fills, note)


@command("order list", "Your recent orders and previews.", ListArgs, examples=("/order list",))
async def order_list(ctx: Ctx, a: ListArgs) -> Reply:
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        rows = await orders.list_orders(s, owner, limit=a.count)
        views = [orders.view(r) for r in rows]
    if not views:
        return Reply(
            title="Orders", body="No orders yet. Start with `/order preview TSLA buy 10 limit 180`.", data={"orders": []}
        )
    lines = []
    for v in views:
        px = f" @ {price_text(v.avg_fill_price)}" if v.avg_fill_price else ""
        lim = f" limit {price_text(v.limit_price)}" if v.limit_price else ""
        lines.append(
            f"{v.preview_id}  {v.status:<16} {v.side} {v.quantity:g} {v.option_symbol or v.symbol}{lim}{px}  ({v.broker})"
        )
    return Reply(title=f"Orders — last {len(views)}", body="```\n" + "\n".join(lines) + "\n```", data={"orders": views})
