"""/alerts status and /alerts test: is the alert runtime running, is its feed live, do deliveries arrive.

`status` reads the runtime's heartbeat and the outbox of the caller's workspace; `test` sends a test
alert through the same delivery path as a real one (delivered right here when no runtime runs).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from bot.args import ArgsModel
from bot.registry import command
from bot.reply import Reply, Severity
from bot.request import Ctx
from core.errors import UserError
from storage import alerts as store
from storage.identity import Owner
from storage.outbox import NewMessage, channel_key, enqueue, outbox_rows, outbox_summary

if TYPE_CHECKING:
    from bot.runtime.api import Origin


class NoArgs(ArgsModel):
    pass


class DestinationHealth(BaseModel):
    destination: str
    target: str
    pending: int
    retrying: int
    failed: int
    delivered: int
    last_error: str | None = None


class AlertsStatus(BaseModel):
    runtime: str
    worker: str | None = None
    market_time: datetime | None = None
    feed: dict[str, Any] | None = None
    alerts: int
    tracked_plans: int
    pending: int
    failed: int
    destinations: list[DestinationHealth]


@command(
    "alerts status",
    "Is the alert runtime running, is its feed live, and what is pending or failing here.",
    NoArgs,
    examples=("/alerts status",),
    result="bot.commands.alerts_health:AlertsStatus",
)
async def alerts_status(ctx: Ctx, a: NoArgs) -> Reply:
    from bot.runtime.api import describe_target, feed_state, runtime_alive
    from renderers.text import fmt_time

    hb = await runtime_alive(ctx.services)
    feed = await feed_state(ctx.services) if hb else None
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        health = await outbox_summary(s, owner.tenant_id)
        n_alerts = await store.count_active_alerts(s, owner)
        n_plans = len([t for t in await store.list_tracked(s, owner) if t.status in store.ACTIVE_TRACKED])
    dests = [
        DestinationHealth(
            destination=h.destination,
            target=describe_target(h.destination, h.target).split(" ", 1)[1],
            pending=h.pending,
            retrying=h.retrying,
            failed=h.failed,
            delivered=h.delivered,
            last_error=h.last_error,
        )
        for h in health
    ]
    pending = sum(d.pending for d in dests)
    failed = sum(d.failed for d in dests)
    lines = []
    if hb:
        lines.append(f"Runtime: running ({hb.get('worker')}), market time {fmt_time(datetime.fromisoformat(hb['market_time']))}.")
        if feed:
            lag = feed.get("lag_s")
            lag_txt = f", last event {lag:.0f}s behind" if isinstance(lag, (int, float)) else ""
            state = feed.get("state")
            lines.append(
                f"Feed: {state} ({feed.get('mode')} from {feed.get('source')}, {feed.get('symbols')} symbols{lag_txt})"
                + (f" — {feed.get('error')}" if feed.get("error") else "")
                + "."
            )
            if state == "stale":
                lines.append(
                    "The feed is stale: no fresh prices while the market is open, so alerts cannot fire until it recovers."
                )
    else:
        lines.append(
            "Runtime: not running. Alerts are stored but nothing evaluates or delivers them; start `coach runtime` or `coach serve`."
        )
    lines.append(f"You: {n_alerts} live alert(s), {n_plans} tracked plan(s).")
    if dests:
        lines.append("Deliveries in this workspace:")
        for d in dests:
            flag = " ⚠" if d.failed or d.retrying else ""
            err = f" — last error: {d.last_error}" if d.last_error and (d.failed or d.pending) else ""
            lines.append(
                f"• {d.destination} {d.target}: {d.pending} pending ({d.retrying} retrying), {d.failed} failed, "
                f"{d.delivered} delivered{flag}{err}"
            )
    else:
        lines.append("No deliveries yet in this workspace.")
    sev: Severity = (
        "error" if failed or (feed or {}).get("state") in ("stale", "down") else "warning" if pending or not hb else "success"
    )
    data = AlertsStatus(
        runtime="running" if hb else "stopped",
        worker=hb.get("worker") if hb else None,
        market_time=datetime.fromisoformat(hb["market_time"]) if hb else None,
        feed=feed,
        alerts=n_alerts,
        tracked_plans=n_plans,
        pending=pending,
        failed=failed,
        destinations=dests,
    )
    return Reply(title="Alerts status", body="\n".join(lines), severity=sev, data=data)


@command(
    "alerts test",
    "Send a test alert to this channel (and its webhooks) through the delivery path.",
    NoArgs,
    examples=("/alerts test",),
    acts=True,
    tool=False,
)
async def alerts_test(ctx: Ctx, a: NoArgs) -> Reply:
    from bot.runtime.api import (
        WEBHOOK_KINDS,
        deliver_now,
        describe_target,
        reply_to_payload,
        runtime_alive,
        sinks_for,
        test_reply,
    )
    from core.urls import mask_url

    now = ctx.now()
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        eff = await store.effective_settings(s, owner.tenant_id, ctx.identity.channel)
        if not eff.alerts_enabled:
            raise UserError("alerts are turned off in this channel by an admin; nothing would arrive here")
        sinks = sinks_for(_origin(ctx, owner), eff, eff.allowed_kinds[0] if eff.allowed_kinds else "price", None)
        if not sinks:
            raise UserError("this channel accepts no alert types; an admin can change that with /settings types all")
        tag = secrets.token_hex(6)
        msgs = []
        for k in sinks:
            where = "this channel" if k.destination not in WEBHOOK_KINDS else f"webhook {mask_url(k.target)}"
            payload = reply_to_payload(test_reply(where, now), event_key=f"test:{tag}")
            msgs.append(
                NewMessage(
                    tenant_id=owner.tenant_id,
                    owner_id=owner.user_id,
                    key=f"test:{tag}@{k.tag}",
                    kind="test",
                    destination=k.destination,
                    target=k.target,
                    payload=payload,
                    event_at=now,
                )
            )
        await enqueue(s, msgs)
    keys = {channel_key(m.destination, m.target) for m in msgs}
    described = [describe_target(m.destination, m.target) for m in msgs]
    if await runtime_alive(ctx.services):
        return Reply(
            title="Test alert queued",
            body="Queued for: " + "; ".join(described) + ". The runtime delivers it now.",
            data={"queued": described, "delivered_inline": False},
        )
    # no runtime: deliver right here so the test still exercises the whole delivery path
    await deliver_now(ctx.services, keys, timeout=20)
    async with ctx.tx() as s:
        rows = [r for r in await outbox_rows(s, owner.tenant_id) if r.key.startswith(f"test:{tag}@")]
    lines = []
    for r in rows:
        state = {"delivered": "delivered", "failed": "FAILED", "pending": "not yet delivered"}.get(r.status, r.status)
        err = f" ({r.last_error})" if r.last_error and r.status != "delivered" else ""
        lines.append(f"• {describe_target(r.destination, r.target)}: {state}{err}")
    ok = all(r.status == "delivered" for r in rows)
    return Reply(
        title="Test alert sent" if ok else "Test alert: some deliveries failed",
        body="\n".join(lines),
        severity="success" if ok else "error",
        data={
            "results": [
                {"target": describe_target(r.destination, r.target), "status": r.status, "error": r.last_error} for r in rows
            ],
            "delivered_inline": True,
        },
    )


def _origin(ctx: Ctx, owner: Owner) -> Origin:
    from bot.runtime.api import Origin

    ident = ctx.identity
    return Origin(tenant_id=owner.tenant_id, platform=ident.platform, channel=ident.channel, user_ref=ident.user)
