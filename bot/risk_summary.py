"""The daily risk summary: after each regular close, each opted-in channel gets its traders' portfolio risk.

Off by default; `/settings summary on` turns it on for a channel (or, with `--workspace`, for
every channel that does not say otherwise). A channel's traders are the people whose latest
filled order came from it (where they trade from, as for risk alerts). One message per channel
and session holds each trader's exposure, open risk to stops and broken rules; it goes through
the outbox to the channel's destinations like a `risk` alert (a channel that refuses the `risk`
family gets no summary). The outbox key holds the channel and the session date, so a restart or
a second pass never sends a session's summary twice.

It runs inside `coach serve` (one of `bot.app.background_tasks`), waking every few minutes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import func, select

from analytics.sessions import session_info
from bot.reply import Action, Reply
from bot.request import Ctx, Identity
from core.errors import ConfigError, ProviderError, UserError
from storage.identity import Owner
from storage.models import Tenant, User
from storage.orders import Order
from storage.outbox import enqueue

if TYPE_CHECKING:
    from bot.portfolio import PortfolioResult
    from bot.services import Services

log = structlog.get_logger("coach.risk_summary")

#: How often the job wakes to see whether a session has closed since its last pass.
EVERY_S = 300.0
#: A summary later than this after the close is stale (the service was down): that session is skipped.
FRESH_FOR = timedelta(hours=12)
#: The destinations and routing of the summary are those of this alert family.
FAMILY = "risk"


@dataclass(frozen=True)
class Trader:
    ident: Identity
    owner: Owner
    name: str


def summary_key(tenant_id: int, channel: str, day: date) -> str:
    """The idempotency key of one channel's summary of one session (the sink's tag is appended per destination)."""
    return f"risk_summary:{tenant_id}:{channel}:{day.isoformat()}"


def trader_lines(name: str, res: PortfolioResult) -> list[str]:
    """One trader's part of the summary."""
    if not res.symbols:
        return [f"**{name}**: no open positions at {res.broker}"]
    head = (
        f"**{name}** ({res.broker}): gross {res.gross_pct:.0f}%, net {res.net_pct:+.0f}% of ${res.account_size:,.0f} "
        f"({res.account_source}); open risk ${res.open_risk:,.0f} ({res.open_risk_pct:.2f}%)"
    )
    top = ", ".join(f"{s.symbol} {s.pct:+.0f}%" for s in res.symbols[:5])
    lines = [head, f"  largest: {top}"]
    lines += [f"  ⛔ {b.describe()}" for b in res.breaches]
    if not res.breaches and not res.rules.empty:
        lines.append("  ✅ within your risk rules")
    return lines


def summary_reply(day: date, parts: list[tuple[str, PortfolioResult | None]]) -> Reply:
    """The channel's message: each trader's lines (a book that could not be priced says so)."""
    lines: list[str] = []
    breaches = 0
    for name, res in parts:
        if res is None:
            lines.append(f"**{name}**: the book could not be priced now")
            continue
        lines += trader_lines(name, res)
        breaches += len(res.breaches)
    return Reply(
        title=f"Daily risk summary — {day.isoformat()}",
        body="\n".join(lines),
        severity="warning" if breaches else "info",
        actions=[Action(label="Portfolio", command="/portfolio"), Action(label="Risk rules", command="/risk")],
        sources=["broker positions", "risk rules"],
        data={"session": day.isoformat(), "breaches": breaches, "traders": [n for n, _ in parts]},
    )


async def channel_traders(services: Services) -> dict[tuple[int, str], list[Trader]]:
    """(tenant id, channel) -> the people whose latest filled order came from that channel."""
    async with services.db() as s:
        latest = (
            select(Order.tenant_id, Order.owner_id, func.max(Order.id).label("last"))
            .where(Order.filled_quantity > 0, Order.channel.is_not(None))
            .group_by(Order.tenant_id, Order.owner_id)
            .subquery()
        )
        rows = (
            await s.execute(
                select(Order.channel, User, Tenant)
                .join(latest, Order.id == latest.c.last)
                .join(User, User.id == Order.owner_id)
                .join(Tenant, Tenant.id == Order.tenant_id)
                .order_by(Order.tenant_id, Order.channel, User.id)
            )
        ).all()
    out: dict[tuple[int, str], list[Trader]] = {}
    for channel, user, tenant in rows:
        if not channel:
            continue
        ident = Identity(platform=tenant.platform, tenant=tenant.external_id, user=user.external_id, channel=channel)
        name = user.display_name or user.external_id
        out.setdefault((tenant.id, channel), []).append(Trader(ident, Owner(tenant_id=tenant.id, user_id=user.id), name))
    return out


async def summary_pass(services: Services, done: set[date]) -> int:
    """Queue the summary of the last closed session once per opted-in channel (tracked in `done`); returns messages queued."""
    from bot.portfolio import load_portfolio
    from bot.runtime.messages import reply_to_payload
    from bot.runtime.routing import Origin, fan_out, sinks_for
    from storage.alerts import effective_settings_many

    now = services.clock()
    info = session_info(now)
    if info.status == "open":
        return 0
    day = info.last_close.date()
    if day in done or now - info.last_close > FRESH_FOR:
        return 0
    by_channel = await channel_traders(services)
    async with services.db() as s:
        settings = await effective_settings_many(s, by_channel)
    queued = 0
    for (tenant_id, channel), traders in by_channel.items():
        eff = settings[(tenant_id, channel)]
        if not eff.daily_summary:
            continue
        first = traders[0]
        origin = Origin(tenant_id=tenant_id, platform=first.ident.platform, channel=channel, user_ref=first.ident.user)
        sinks = sinks_for(origin, eff, FAMILY, None)
        if not sinks:
            continue
        parts: list[tuple[str, PortfolioResult | None]] = []
        for t in traders:
            try:
                parts.append((t.name, await load_portfolio(Ctx(services=services, identity=t.ident, _owner=t.owner), t.owner)))
            except (ProviderError, UserError, ConfigError) as exc:  # one unpriced book does not hold back the others
                log.warning("risk_summary_unpriced", tenant=tenant_id, user=t.owner.user_id, error=str(exc)[:200])
                parts.append((t.name, None))
        key = summary_key(tenant_id, channel, day)
        payload = reply_to_payload(summary_reply(day, parts), event_key=key)
        messages = fan_out(
            sinks, key=key, kind="alert", payload=payload, tenant_id=tenant_id, owner_id=first.owner.user_id, at=now
        )
        async with services.db() as s, s.begin():
            queued += await enqueue(s, messages, now)
    done.add(day)
    log.info("risk_summary_queued", day=str(day), messages=queued)
    return queued


async def risk_summary_task(services: Services) -> None:
    """Wake every EVERY_S seconds and queue each newly closed session's summaries once."""
    done: set[date] = set()
    while True:
        try:
            await summary_pass(services, done)
        except asyncio.CancelledError:
            raise
        except Exception:  # one bad pass must not stop the service; the next one retries
            log.exception("risk_summary_failed")
        await asyncio.sleep(EVERY_S)
