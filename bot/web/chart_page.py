"""The live chart page behind "Open chart": routes on coach serve's aiohttp app.

    GET /chart/{token}                 the page (HTML); a bad or expired link gets a 403 page saying why
    GET /chart/{token}/data?interval=  what the page draws (JSON; `bot.web.chart_data`)
    GET /chart/{token}/live?interval=  server-sent events: prices of the link's symbol, the plan's state
    GET /chart/static/{name}           the page's script and style, and the vendored chart library

Every route that reads data verifies the token first (`bot.web.links`) and reads only what it
names: one symbol, its intervals, and the one plan version of the tenant and user it was made
for. Nothing else is reachable from a link. `add_chart_page(app, services)` mounts it all.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from bot.web.links import LinkError, LinkScope, LinkSigner, require_signer
from bot.web.live import LiveHub, Price, runtime_stream
from core.cache import TTLCache
from storage import alerts as alert_store
from storage import plans as plan_store
from storage.identity import Owner

if TYPE_CHECKING:
    from analytics.models import Plan
    from bot.services import Services

log = structlog.get_logger("coach.web.chart")

STATIC = Path(__file__).parent / "static"
#: Files served under /chart/static/ (nothing else in the folder is reachable).
STATIC_FILES = {
    "chart.js": "text/javascript",
    "chart.css": "text/css",
    "lightweight-charts.standalone.production.js": "text/javascript",
}
#: Seconds between the live stream's status events (data age, the plan's state).
STATUS_EVERY = 5.0
#: Exchange time zone the page labels times in (the chart library itself shows UTC).
EXCHANGE_TZ = "America/New_York"
#: Response headers of every chart response: nothing cached by proxies, no referrer leaks the token.
NO_LEAK = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
#: Scripts only from this server. Inline styles are allowed: the chart library styles its elements inline,
#: and a style cannot run code.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

#: Seconds one interval's page data is reused: everyone opening a chart at once costs one computation.
DATA_TTL = 10.0

SIGNER_KEY: web.AppKey[LinkSigner] = web.AppKey("chart_signer", LinkSigner)
HUB_KEY: web.AppKey[LiveHub] = web.AppKey("chart_hub", LiveHub)
SERVICES_KEY: web.AppKey[Any] = web.AppKey("chart_services", object)
CACHE_KEY: web.AppKey[TTLCache] = web.AppKey("chart_cache", TTLCache)


def add_chart_page(
    app: web.Application, services: Services, *, signer: LinkSigner | None = None, hub: LiveHub | None = None
) -> bool:
    """Mount the chart page on `app` when links are configured (COACH_PUBLIC_URL); False when they are not.

    Raises ConfigError when COACH_PUBLIC_URL is set without a usable COACH_LINK_SECRET.
    """
    signer = signer or require_signer(services.settings)
    if signer is None:
        return False
    live = hub or LiveHub(runtime_stream(services))
    app[SIGNER_KEY] = signer
    app[HUB_KEY] = live
    app[SERVICES_KEY] = services
    app[CACHE_KEY] = TTLCache(DATA_TTL, maxsize=256)
    app.router.add_get("/chart/static/{name}", _static)
    app.router.add_get("/chart/{token}", _page)
    app.router.add_get("/chart/{token}/data", _data)
    app.router.add_get("/chart/{token}/live", _live)

    async def close_hub(_: web.Application) -> None:
        await live.aclose()

    app.on_cleanup.append(close_hub)
    return True


# --------------------------------------------------------------------------- access


def _now(app: web.Application) -> datetime:
    now: datetime = app[SERVICES_KEY].clock()
    return now


def _scope(request: web.Request) -> LinkScope:
    """The scope of the request's token, or LinkError."""
    return request.app[SIGNER_KEY].verify(request.match_info["token"], _now(request.app))


def _interval(request: web.Request, scope: LinkScope) -> str:
    iv = request.query.get("interval") or scope.intervals[0]
    if iv not in scope.intervals:
        raise LinkError(f"this link shows {', '.join(scope.intervals)} only, not {iv[:8]}")
    return iv


async def _plan(services: Services, scope: LinkScope) -> Plan | None:
    """The plan version the link names, as its tenant and user see it; LinkError when it is not theirs or changed."""
    if scope.plan_id is None:
        return None
    async with services.db() as s:
        plan = await plan_store.get_plan(s, Owner(scope.tenant_id, scope.user_id), scope.plan_id)
    # another tenant's or user's private plan is answered exactly like one that does not exist
    if plan is None or plan.symbol != scope.symbol:
        raise LinkError(f"plan {scope.plan_id} is not available to this link")
    if plan.version != scope.version:
        raise LinkError(f"this link is for version {scope.version} of plan {scope.plan_id}, which has changed")
    return plan


def _forbidden_page(reason: str) -> web.Response:
    body = FORBIDDEN.replace("{reason}", html.escape(reason))
    return web.Response(status=403, text=body, content_type="text/html", headers={**NO_LEAK, "Content-Security-Policy": CSP})


def _forbidden_json(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=403, headers=NO_LEAK)


# --------------------------------------------------------------------------- routes


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    mime = STATIC_FILES.get(name)
    if mime is None:
        raise web.HTTPNotFound()
    data = await asyncio.to_thread((STATIC / name).read_bytes)
    return web.Response(body=data, content_type=mime, headers={"Cache-Control": "public, max-age=3600"})


async def _page(request: web.Request) -> web.Response:
    try:
        scope = _scope(request)
        await _plan(request.app[SERVICES_KEY], scope)
    except LinkError as exc:
        return _forbidden_page(exc.reason)
    title = f"{scope.symbol} {'plan ' + scope.plan_id if scope.plan_id else 'chart'} · trading-coach"
    boot = {"symbol": scope.symbol, "intervals": list(scope.intervals), "plan_id": scope.plan_id, "version": scope.version}
    body = PAGE.replace("{title}", html.escape(title)).replace("{boot}", html.escape(json.dumps(boot), quote=True))
    return web.Response(text=body, content_type="text/html", headers={**NO_LEAK, "Content-Security-Policy": CSP})


async def _data(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    try:
        scope = _scope(request)
        interval = _interval(request, scope)
        plan = await _plan(services, scope)
    except LinkError as exc:
        return _forbidden_json(exc.reason)
    from bot.web.chart_data import chart_payload  # the numeric stack, on the first page only

    now = _now(request.app)

    async def load() -> tuple[dict[str, Any], datetime]:
        return await chart_payload(services.market, scope, interval, plan, now), now

    # what is drawn depends on the symbol, interval and plan version only: shared by every link to them for a moment
    key = (scope.symbol, interval, scope.plan_id, scope.version, tuple(scope.intervals))
    try:
        cached, made = await request.app[CACHE_KEY].get_or_load(key, load)
    except LookupError as exc:
        return web.json_response({"error": str(exc)}, status=404, headers=NO_LEAK)
    except Exception as exc:  # a provider outage: one line for the page, the detail for the log
        log.warning("chart_data_failed", symbol=scope.symbol, interval=interval, error=str(exc)[:200])
        return web.json_response({"error": "market data is not available right now; try again shortly"}, status=503)
    payload = {**cached, "data_age_s": cached["data_age_s"] + max(0.0, (now - made).total_seconds())}
    payload["state"] = await plan_state(services, request.app[SIGNER_KEY], scope, now)
    last = request.app[HUB_KEY].last.get(scope.symbol)
    if last is not None:
        payload["last_price"] = price_event(last, now)
    return web.json_response(payload, headers=NO_LEAK)


async def _live(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES_KEY]
    signer = request.app[SIGNER_KEY]
    try:
        scope = _scope(request)
        _interval(request, scope)
        await _plan(services, scope)
    except LinkError as exc:
        return _forbidden_json(exc.reason)
    resp = web.StreamResponse(
        headers={**NO_LEAK, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
    )
    await resp.prepare(request)
    hub: LiveHub = request.app[HUB_KEY]
    async with hub.subscribe(scope.symbol) as queue:
        last_state: str | None = None
        next_status = 0.0
        while True:
            now = _now(request.app)
            if time.monotonic() >= next_status:
                # the link stops working mid-stream when it expires
                try:
                    signer.verify(request.match_info["token"], now)
                except LinkError as exc:
                    await _send(resp, "expired", {"reason": exc.reason})
                    break
                state = await plan_state(services, signer, scope, now)
                text = json.dumps(state, sort_keys=True)
                last = hub.last.get(scope.symbol)
                status = {"server_time": now.isoformat(), "last": price_event(last, now) if last else None}
                if text != last_state:
                    status["state"] = state
                    last_state = text
                if not await _send(resp, "status", status):
                    break
                next_status = time.monotonic() + STATUS_EVERY
            try:
                p = await asyncio.wait_for(queue.get(), timeout=max(0.05, next_status - time.monotonic()))
            except TimeoutError:
                continue
            if not await _send(resp, "price", price_event(p, _now(request.app))):
                break
    return resp


async def _send(resp: web.StreamResponse, event: str, data: dict[str, Any]) -> bool:
    """Write one server-sent event; False when the page has gone."""
    try:
        await resp.write(f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
        return True
    except (ConnectionResetError, RuntimeError, asyncio.CancelledError):
        return False


def wall(at: datetime) -> int:
    """A moment as exchange wall-clock seconds, the page's time axis."""
    from zoneinfo import ZoneInfo

    local = at.astimezone(ZoneInfo(EXCHANGE_TZ))
    return int(local.replace(tzinfo=UTC).timestamp())


def price_event(p: Price, now: datetime) -> dict[str, Any]:
    """One price as the page reads it: its wall time, and how old it is on the service clock."""
    out: dict[str, Any] = {
        "time": wall(p.at),
        "price": p.price,
        "size": p.size,
        "at": p.at.isoformat(),
        "age_s": max(0.0, (now - p.at).total_seconds()),
        "source": p.source,
    }
    if p.bar is not None:
        out["bar"] = {"time": wall(p.bar.start), "open": p.bar.open, "high": p.bar.high, "low": p.bar.low}
    return out


async def plan_state(services: Services, signer: LinkSigner, scope: LinkScope, now: datetime) -> dict[str, Any] | None:
    """Where the link's plan stands for its user (tracked or not, triggered, targets hit, stopped) and any re-plan."""
    if scope.plan_id is None:
        return None
    owner = Owner(scope.tenant_id, scope.user_id)
    async with services.db() as s:
        row = await alert_store.get_tracked(s, owner, scope.plan_id)
        if row is None:
            return {"tracked": False, "status": "untracked"}
        st = (row.state or {}).get("state") or {}
        out: dict[str, Any] = {
            "tracked": True,
            "status": row.status,
            "entry_at": _wall_ns(st.get("entry_at_ns")),
            "exit_at": _wall_ns(st.get("exit_at_ns")),
            "exit_price": st.get("exit_price"),
            "targets_hit": int(st.get("targets_hit") or 0),
            "stop": st.get("stop"),
            "replan": None,
        }
        if row.next_plan_id:
            new = await plan_store.get_plan(s, owner, row.next_plan_id)
            if new is not None:
                adopted = await alert_store.get_tracked(s, owner, new.plan_id)
                link = LinkScope(
                    tenant_id=scope.tenant_id,
                    user_id=scope.user_id,
                    symbol=new.symbol,
                    intervals=scope.intervals,
                    plan_id=new.plan_id,
                    version=new.version,
                )
                out["replan"] = {
                    "plan_id": new.plan_id,
                    "version": new.version,
                    "direction": new.direction,
                    "entry": new.entry,
                    "stop": new.stop,
                    "targets": [t.price for t in new.targets],
                    "url": signer.url(link, now),
                    "command": f"/track {new.plan_id}",
                    "adopted": adopted is not None and adopted.status != "proposed",
                }
    return out


def _wall_ns(ns: object) -> int | None:
    if not isinstance(ns, int):
        return None
    from core.values import utc_from_ns

    return wall(utc_from_ns(ns))


# --------------------------------------------------------------------------- pages

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>{title}</title>
<link rel="stylesheet" href="/chart/static/chart.css">
<link rel="icon" href="data:,">
</head>
<body data-boot="{boot}">
<header id="top">
  <div id="headline"><span id="direction" class="chip" hidden></span><span id="title">Loading chart…</span>
    <span id="pill" class="pill grey">connecting</span></div>
  <div id="subtitle"></div>
  <div id="banner"></div>
  <nav id="controls">
    <span id="intervals"></span>
    <label class="toggle"><input type="checkbox" id="more"> more levels</label>
    <button id="refocus" type="button">Focus plan</button>
  </nav>
  <div id="replan" hidden></div>
</header>
<main id="chart"></main>
<footer id="footer"></footer>
<div id="error" hidden></div>
<script src="/chart/static/lightweight-charts.standalone.production.js"></script>
<script src="/chart/static/chart.js"></script>
</body>
</html>
"""

FORBIDDEN = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Link not valid · trading-coach</title>
<link rel="stylesheet" href="/chart/static/chart.css">
</head>
<body class="forbidden">
<main>
<h1>This chart link does not open</h1>
<p id="reason">{reason}.</p>
<p class="muted">Chart links work for the person and plan they were made for, for a limited time.</p>
</main>
</body>
</html>
"""

__all__ = ["add_chart_page", "plan_state", "price_event", "wall"]
