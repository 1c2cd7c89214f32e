"""The Replies the runtime posts (alerts, digests, plan transitions, re-plans, tests) and their outbox form.

An outbox payload is a Reply as JSON (attachments base64) plus what the dispatcher needs
later: `covers` (the event keys a digest stands for) and `chart` (what to draw at delivery,
so a plan transition is queued at once, in order, and its chart is rendered when sent).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from analytics.alert_kinds import KIND_LABELS
from bot.reply import Action, Attachment, Reply, ReplyField, Severity
from renderers.text import fmt_pct, fmt_price, fmt_time, plan_story


class AlertEvent(BaseModel):
    """A fired alert, as `data` of its Reply (what --json, webhooks and the LLM see)."""

    key: str
    alert_id: int
    symbol: str
    kind: str
    side: str
    level: float
    price: float
    at: datetime
    fire_count: int
    repeat: bool
    note: str = ""
    value: float | None = None
    interval: str | None = None
    plan_id: str | None = None
    #: For bar conditions: the close of the bar that fired (price is then the indicator reading).
    close: float | None = None


class PlanUpdate(BaseModel):
    """A tracked plan's transition, as `data` of its Reply."""

    key: str
    plan_id: str
    symbol: str
    direction: str
    event: str
    price: float
    at: datetime
    status: str
    stop: float
    entry: float
    targets: list[float]
    targets_hit: int
    r: float | None = None
    suggest_stop: float | None = None
    reason: str = ""


# ---------------------------------------------------------------------- payloads


def reply_to_payload(reply: Reply, **meta: Any) -> dict[str, Any]:
    """A Reply as JSON-able outbox payload, with dispatcher metadata next to it."""
    d = reply.model_dump(mode="json", exclude={"attachments", "data"})
    d["data"] = reply.data_json()
    d["attachments"] = [
        {"filename": a.filename, "mime": a.mime, "description": a.description, "b64": base64.b64encode(a.data).decode()}
        for a in reply.attachments
    ]
    return {"reply": d, **meta}


def payload_to_reply(payload: dict[str, Any]) -> Reply:
    """The Reply stored in an outbox payload."""
    d = dict(payload.get("reply") or {})
    atts = d.pop("attachments", []) or []
    reply = Reply.model_validate(d)
    if isinstance(reply.freshness, dict):  # stored as JSON: the badge's model again, for the footer
        from analytics.freshness import Freshness

        reply.freshness = Freshness.model_validate(reply.freshness)
    reply.attachments = [
        Attachment(
            filename=a["filename"],
            mime=a.get("mime", "image/png"),
            description=a.get("description", ""),
            data=base64.b64decode(a["b64"]),
        )
        for a in atts
    ]
    return reply


# ---------------------------------------------------------------------- alerts


def describe_condition(
    kind: str,
    level: float | None,
    value: float | None = None,
    interval: str | None = None,
    params: dict[str, Any] | None = None,
    tick: float = 0.01,
) -> str:
    """An alert's condition in words: "above 250.00", "RSI(14) above 70 on 5m", "moving +2.00% (to 255.00)"."""
    params = params or {}
    if kind in ("above", "below", "cross"):
        return f"{KIND_LABELS[kind]} {fmt_price(level, tick)}"
    if kind == "pct":
        return f"moving {fmt_pct(value)} (to {fmt_price(level, tick)})"
    if kind in ("rsi_above", "rsi_below"):
        return f"RSI({params.get('period', 14)}) {'above' if kind == 'rsi_above' else 'below'} {value:g} on {interval}"
    if kind in ("ema_cross_up", "ema_cross_down"):
        way = "above" if kind == "ema_cross_up" else "below"
        return f"EMA {params.get('fast', 9)} crossing {way} EMA {params.get('slow', 21)} on {interval}"
    if kind == "vwap_reclaim":
        return f"reclaiming VWAP on {interval}"
    if kind == "vwap_loss":
        return f"losing VWAP on {interval}"
    if kind == "entry":
        return f"touching the plan entry {fmt_price(level, tick)}"
    if kind == "stop":
        return f"hitting the plan stop {fmt_price(level, tick)}"
    if kind == "target":
        return f"reaching the plan target {fmt_price(level, tick)}"
    if kind == "invalidation":
        return f"closing beyond the plan stop {fmt_price(level, tick)} on {interval}"
    return kind


def _reading(ev: AlertEvent, params: dict[str, Any]) -> str:
    """What the market did, in the alert's own terms."""
    when = fmt_time(ev.at)
    close = f" (close {fmt_price(ev.close)})" if ev.close is not None else ""
    if ev.kind in ("rsi_above", "rsi_below"):
        return f"RSI({params.get('period', 14)}) {ev.price:.1f} on the {ev.interval} bar ending {when}{close}."
    if ev.kind in ("ema_cross_up", "ema_cross_down"):
        return (
            f"EMA {params.get('fast', 9)} is {abs(ev.price):.1f} bps {'above' if ev.price >= 0 else 'below'} "
            f"EMA {params.get('slow', 21)} on the {ev.interval} bar ending {when}{close}."
        )
    if ev.kind in ("vwap_reclaim", "vwap_loss"):
        return (
            f"The {ev.interval} close is {abs(ev.price):.1f} bps {'above' if ev.price >= 0 else 'below'} VWAP at {when}{close}."
        )
    if ev.kind == "invalidation":
        return f"The {ev.interval} bar ending {when} closed at {fmt_price(ev.price)}, beyond the stop."
    return f"Last {fmt_price(ev.price)} at {when}."


def alert_reply(ev: AlertEvent, params: dict[str, Any] | None = None, chart_url: str | None = None) -> Reply:
    """The message of a fired alert; `chart_url` adds an "Open chart" link to the symbol's live chart."""
    params = params or {}
    cond = describe_condition(ev.kind, ev.level, ev.value, ev.interval, params)
    title = f"{ev.symbol} {cond}"
    if ev.kind == "cross":
        title = f"{ev.symbol} crossed {'above' if ev.side == 'up' else 'below'} {fmt_price(ev.level)}"
    lines = [_reading(ev, params)]
    if ev.note:
        lines.append(f"Note: {ev.note}")
    how = f"repeating, fired {ev.fire_count}×" if ev.repeat else "one-shot, now done"
    fields = [ReplyField(name="Alert", value=f"#{ev.alert_id} ({how})")]
    if ev.plan_id:
        fields.append(ReplyField(name="Plan", value=ev.plan_id))
    return Reply(
        title=title,
        body="\n".join(lines),
        fields=fields,
        severity="warning",
        direction=("long" if ev.side == "up" else "short") if ev.kind in ("above", "below", "cross", "pct") else None,
        as_of=ev.at,
        sources=["alerts"],
        actions=[
            *([Action(label="Plan it", command=f"/plan {ev.symbol}")] if ev.kind not in ("stop", "invalidation") else []),
            *([Action(label="Open chart", url=chart_url)] if chart_url else []),
        ],
        data=ev,
    )


def digest_reply(replies: list[Reply], keys: list[str]) -> Reply:
    """One message standing for a burst of alerts in one channel (newest last)."""
    found = dict.fromkeys(r.data.get("symbol") if isinstance(r.data, dict) else None for r in replies)
    symbols: list[str] = [s for s in found if s]
    lines = []
    for r in replies:
        at = r.as_of.strftime("%H:%M") if r.as_of else ""
        at = fmt_time(r.as_of, with_date=False) if r.as_of else at
        lines.append(f"• {at} — {r.title}")
    shown = ", ".join(symbols[:6]) + (f" and {len(symbols) - 6} more" if len(symbols) > 6 else "")
    return Reply(
        title=f"{len(replies)} alerts" + (f" on {shown}" if shown else ""),
        body="Many alerts fired at once; here they are together.\n"
        + "\n".join(lines[:40])
        + (f"\n… and {len(lines) - 40} more" if len(lines) > 40 else ""),
        severity="warning",
        as_of=replies[-1].as_of if replies else None,
        sources=["alerts"],
        data={"digest": True, "covers": keys, "alerts": [r.data for r in replies]},
    )


def test_reply(where: str, at: datetime) -> Reply:
    """The /alerts test message."""
    return Reply(
        title="Test alert",
        body=f"If you can read this, alerts reach {where}.",
        severity="info",
        as_of=at,
        sources=["alerts"],
        data={"test": True, "where": where},
    )


# ---------------------------------------------------------------------- plans


_EVENT_TITLES = {
    "triggered": "entry touched — plan is live",
    "target": "target hit",
    "stopped": "stopped out",
    "exited": "exited",
    "expired": "expired",
    "invalidated": "invalidated before entry",
    "stop_moved": "stop moved",
}

_EVENT_SEVERITY: dict[str, Severity] = {
    "stopped": "error",
    "invalidated": "error",
    "target": "success",
    "exited": "success",
    "triggered": "info",
}


def plan_reply(up: PlanUpdate, *, tracked_id: int, chart_url: str | None = None) -> Reply:
    """The message of a tracked plan's transition; `chart_url` adds an "Open chart" link to the plan's live chart."""
    what = _EVENT_TITLES.get(up.event, up.event)
    if up.event == "target" and up.reason:
        what = up.reason.split(";")[0]
    title = f"{up.symbol} {up.direction} plan {up.plan_id}: {what}"
    lines = [f"{fmt_price(up.price)} at {fmt_time(up.at)}."]
    if up.reason and up.event != "target":
        lines.append(up.reason[0].upper() + up.reason[1:] + ".")
    if up.suggest_stop is not None:
        lines.append(f"Consider moving the stop to break-even ({fmt_price(up.suggest_stop)}).")
    if up.event == "stopped":
        lines.append("Building the next plan in the background…")
    fields = [
        ReplyField(name="Entry", value=fmt_price(up.entry)),
        ReplyField(name="Stop", value=fmt_price(up.stop)),
        ReplyField(name="Targets", value=", ".join(fmt_price(t) for t in up.targets) + f" ({up.targets_hit} hit)"),
    ]
    if up.r is not None:
        fields.append(ReplyField(name="R", value=f"{up.r:+.2f}R"))
    actions = []
    if up.suggest_stop is not None:
        actions.append(Action(label="Move stop to break-even", command=f"/track {up.plan_id} stop=be", style="primary"))
    if up.status in ("pending", "triggered"):
        actions.append(Action(label="Stop tracking", command=f"/untrack {up.plan_id}"))
    if chart_url:
        actions.append(Action(label="Open chart", url=chart_url))
    sev = _EVENT_SEVERITY.get(up.event, "info")
    return Reply(
        title=title,
        body="\n".join(lines),
        fields=fields,
        severity=sev,
        direction="long" if up.direction == "long" else "short" if up.direction == "short" else None,
        as_of=up.at,
        sources=["plan tracker"],
        actions=actions,
        data=up,
    )


def replan_reply(
    plan: Any,
    *,
    previous_plan_id: str,
    adopted: bool,
    reason: str | None = None,
    at: datetime | None = None,
    symbol: str | None = None,
    chart_url: str | None = None,
    not_adopted: str | None = None,
) -> Reply:
    """The re-plan after a stop-out: the new plan with an Adopt button, or a note that it was adopted (or none was found).

    `chart_url` adds an "Open chart" link to the new plan's live chart page; `not_adopted`: why auto-rearm
    left this one to the trader's click, said in the message.
    """
    if plan is None:
        return Reply(
            title=f"{symbol}: no new plan after the stop-out of {previous_plan_id}",
            body=reason or "No setup qualifies right now; stand aside.",
            severity="info",
            as_of=at,
            sources=["planner"],
            data={"previous_plan_id": previous_plan_id, "plan": None, "reason": reason},
        )
    targets = " · ".join(f"{fmt_price(t.price)} ({t.rr:.1f}R)" for t in plan.targets) or "—"
    body = [f"After the stop-out of {previous_plan_id}: {plan.strategy} {plan.direction} on {plan.interval}."]
    if plan.summary:
        body.append(plan_story(plan.summary))  # entry, stop and targets are the fields below
    if adopted:
        body.append("Adopted automatically (your auto-rearm setting is on): it is being tracked now.")
        actions = [Action(label="Stop tracking", command=f"/untrack {plan.plan_id}")]
    else:
        if not_adopted:
            body.append(f"Not adopted automatically: {not_adopted}. Adopt it with the button if you want it.")
        actions = [Action(label="Adopt", command=f"/track {plan.plan_id}", style="primary")]
    if chart_url:
        actions.append(Action(label="Open chart", url=chart_url))
    return Reply(
        title=f"{plan.symbol} re-plan {plan.plan_id}: {plan.direction} from {fmt_price(plan.entry)}",
        body="\n".join(body),
        fields=[
            ReplyField(name="T1 before the stop", value=f"{plan.probability:.0%} ({plan.probability_basis or 'no-edge prior'})"),
            ReplyField(name="Entry", value=fmt_price(plan.entry)),
            ReplyField(name="Stop", value=fmt_price(plan.stop)),
            ReplyField(name="Targets", value=targets),
            ReplyField(name="Quality (grade, not odds)", value=f"{plan.quality:.0%}"),
        ],
        severity="info",
        direction=plan.direction,
        as_of=plan.as_of,
        sources=list(plan.sources),
        actions=actions,
        data={
            "previous_plan_id": previous_plan_id,
            "adopted": adopted,
            "not_adopted": not_adopted,
            "plan": plan.model_dump(mode="json"),
            "chart_url": chart_url,
        },
    )
