"""The `risk` alert family: a broken risk rule is pushed through the outbox like a price alert.

After a fill (and whenever `/order status` records one), the person's book is checked against
their rules; each rule broken is one message to the channel's destinations (the channel, a DM
route, webhooks), as the channel's alert settings allow for the `risk` family. The idempotency
key holds the rule, what broke it and the exchange date, so one breach is told once a day
however often it is checked, and a delivery retried after a crash is never doubled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select

from analytics.risk_rules import Breach
from analytics.sessions import EXCHANGE_TZ
from bot.reply import Action, Reply
from bot.request import Ctx, Identity
from core.errors import ProviderError, UserError
from storage.identity import Owner
from storage.models import Tenant, User
from storage.orders import Order
from storage.outbox import enqueue

if TYPE_CHECKING:
    from bot.services import Services

log = structlog.get_logger("coach.risk")

FAMILY = "risk"


def breach_reply(breaches: list[Breach], broker: str) -> Reply:
    """The message of broken rules."""
    return Reply(
        title="Risk rule broken" if len(breaches) == 1 else f"{len(breaches)} risk rules broken",
        body="\n".join(f"⛔ {b.describe()}" for b in breaches),
        severity="warning",
        actions=[Action(label="Portfolio", command="/portfolio"), Action(label="Positions", command="/positions")],
        sources=[f"broker: {broker}", "risk rules"],
        data={"breaches": [b.model_dump() for b in breaches]},
    )


async def check_and_notify(ctx: Ctx, owner: Owner) -> list[Breach]:
    """The caller's broken rules now; new ones (today) are queued for delivery. Empty without rules or an account size.

    The messages go where the caller's identity says (its platform, channel and user), routed by that
    channel's alert settings for the `risk` family.
    """
    import pandas as pd

    from bot.holdings import load_positions
    from bot.portfolio import build_portfolio, load_rules, lookup_sectors, rule_closes
    from bot.runtime.messages import reply_to_payload
    from bot.runtime.routing import Origin, fan_out, sinks_for
    from storage.alerts import effective_settings

    rules, account = await load_rules(ctx, owner)
    if rules.empty or not account:
        return []
    held = await load_positions(ctx, owner)
    # closes only when the correlated-exposure rule needs them: the sweep runs every minute
    closes = await rule_closes(ctx, rules, sorted({p.underlying for p in held.positions})) if held.positions else pd.DataFrame()
    underlyings = sorted({p.underlying for p in held.positions})
    sectors = await lookup_sectors(ctx, underlyings) if rules.max_sector_pct is not None and underlyings else None
    breaches = build_portfolio(held, closes, rules, account, sectors).breaches
    if not breaches:
        return []
    ident = ctx.identity
    origin = Origin(tenant_id=owner.tenant_id, platform=ident.platform, channel=ident.channel, user_ref=ident.user)
    now = ctx.services.clock()
    day = ctx.now().astimezone(EXCHANGE_TZ).date().isoformat()
    async with ctx.tx() as s:
        settings = await effective_settings(s, owner.tenant_id, ident.channel)
        sinks = sinks_for(origin, settings, FAMILY, None)
        messages = []
        for b in breaches:
            key = f"risk:{owner.tenant_id}:{owner.user_id}:{b.rule}:{b.subject}:{day}"
            payload = reply_to_payload(breach_reply([b], held.broker), event_key=key)
            messages += fan_out(
                sinks, key=key, kind="alert", payload=payload, tenant_id=owner.tenant_id, owner_id=owner.user_id, at=now
            )
        await enqueue(s, messages, now)
    return breaches


async def sweep(services: Services) -> int:
    """Check everyone with risk rules, an account size and a filled order, as prices have moved; returns breaches found.

    Each person's messages go to the channel of their latest filled order (where they trade from).
    """
    async with services.db() as s:
        rows = (
            await s.execute(select(User, Tenant).join(Tenant, Tenant.id == User.tenant_id).where(User.account_size.is_not(None)))
        ).all()
        people = []
        for user, tenant in rows:
            if not (user.settings or {}).get("risk_rules"):
                continue
            channel = (
                await s.execute(
                    select(Order.channel)
                    .where(Order.tenant_id == tenant.id, Order.owner_id == user.id, Order.filled_quantity > 0)
                    .order_by(Order.updated_at.desc(), Order.id.desc())
                    .limit(1)
                )
            ).first()
            if channel is not None:
                ident = Identity(platform=tenant.platform, tenant=tenant.external_id, user=user.external_id, channel=channel[0])
                people.append((ident, Owner(tenant_id=tenant.id, user_id=user.id)))
    found = 0
    for ident, owner in people:
        try:
            found += len(await check_and_notify(Ctx(services=services, identity=ident, _owner=owner), owner))
        except (ProviderError, UserError) as exc:  # one person's unpriced book does not stop the others'
            log.warning("risk_sweep_skipped", tenant=owner.tenant_id, user=owner.user_id, error=str(exc)[:200])
    return found
