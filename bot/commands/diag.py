"""/diag: the operator's look at the running service, in chat (admins only).

Version and uptime of the process that answers, each market-data provider's last latency, last
error and circuit state, the price feed's age, the job queue's depth, the outbox's backlog and
failures, and the LLM tokens everyone used today. Read from what the service already keeps:
nothing here calls a provider.
"""

from __future__ import annotations

import time
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bot.args import ArgsModel
from bot.registry import command
from bot.reply import Reply, ReplyField
from bot.request import Ctx
from core.clock import utc_now
from storage import conversations
from storage.outbox import outbox_status_counts
from storage.runtime_state import get_state

#: When this process started (its uptime is what /diag reports: the worker that answers).
STARTED = time.monotonic()
#: Where the runtime records its feed (`bot.runtime.worker.FEED_KEY`).
FEED_STATE_KEY = "runtime:feed"


class DiagArgs(ArgsModel):
    pass


def _version() -> str:
    try:
        return version("trading-coach")
    except PackageNotFoundError:
        return "unknown"


def _uptime(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def provider_health(market: Any) -> list[dict[str, Any]]:
    """Each provider of a routed market: last latency, last error, circuit state (empty for a single provider)."""
    records = getattr(market, "records", None)
    describe = getattr(market, "describe", None)
    if records is None or describe is None:
        return []
    health: dict[str, str] = describe().get("health", {})
    out = []
    for name in dict.fromkeys([*health, *records]):
        rec = records.get(name)
        out.append(
            {
                "provider": name,
                "circuit": health.get(name, "closed"),
                "last_ms": round(rec.last_seconds * 1000, 1) if rec is not None and rec.last_seconds is not None else None,
                "last_error": rec.last_error if rec is not None else None,
                "calls": rec.calls if rec is not None else 0,
                "errors": rec.errors if rec is not None else 0,
            }
        )
    return out


def _feed_age(feed: dict[str, Any] | None, now: datetime) -> str:
    if feed is None:
        return "no runtime has reported a feed"
    lag = feed.get("lag_s")
    age = f", last tick {lag:.0f} s ago" if isinstance(lag, int | float) else ""
    return f"{feed.get('source', '?')}: {feed.get('state', '?')}{age}"


@command(
    "diag",
    "The service's health for operators: providers, feed, queue, outbox, LLM use. Admins only.",
    DiagArgs,
    admin=True,
    tool=False,
    examples=("/diag",),
)
async def diag(ctx: Ctx, a: DiagArgs) -> Reply:
    services = ctx.services
    now = utc_now()
    async with services.db() as s:
        feed = await get_state(s, FEED_STATE_KEY)
        outbox = await outbox_status_counts(s)
        prompt, completion = await conversations.tokens_used_by_all(s, now.date())
    depth = await services.executor.depth() if services.executor is not None else {}
    providers = provider_health(services.market)  # building the router calls no provider
    lines = [
        f"{p['provider']}: {p['circuit']}, last {p['last_ms'] if p['last_ms'] is not None else '-'} ms, "
        f"{p['errors']}/{p['calls']} failed" + (f", last error: {p['last_error']}" if p["last_error"] else "")
        for p in providers
    ]
    uptime = round(time.monotonic() - STARTED)
    pending, failed = outbox.get("pending", 0), outbox.get("failed", 0)
    data: dict[str, Any] = {
        "version": _version(),
        "uptime_s": uptime,
        "providers": providers,
        "feed": feed,
        "queue_depth": depth,
        "outbox": {"pending": pending, "failed": failed},
        "llm_tokens_today": {"prompt": prompt, "completion": completion},
    }
    fields = [
        ReplyField(name="Version", value=_version()),
        ReplyField(name="Uptime", value=_uptime(uptime)),
        ReplyField(name="Feed", value=_feed_age(feed, now)),
        ReplyField(name="Queue", value=", ".join(f"{k} {v}" for k, v in depth.items()) or "no queue (jobs run here)"),
        ReplyField(name="Outbox", value=f"{pending} pending, {failed} failed"),
        ReplyField(name="LLM tokens today", value=f"{prompt + completion:,} ({prompt:,} prompt, {completion:,} completion)"),
    ]
    body = "\n".join(lines) if lines else "Providers: none used by this process yet (or a single provider without routing)."
    return Reply(title="Diagnostics", body=body, fields=fields, data=data)
