"""Plans and scans for the bot: fetch the style's bars, run the planner or scanner, store plans, build replies.

`make_plan(ctx, symbol, style)` is what /plan, /contracts, charts and the re-plan job call.
`run_scan(ctx, universe, style)` is what /scan and `coach scan` call. Both read the market as of
`ctx.now()`; when the market is closed they plan as of the last close (analytics.sessions.market_time),
so the same moment always gives the same plan.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import structlog

from analytics.intervals import INTERVALS, STYLE_INTERVALS
from analytics.models import Level, Plan, PlanResult
from analytics.planner import plan_symbol, rr_band, validate_style
from analytics.scan_scope import LEADERS, MAX_LIMIT, NAMED_LISTS
from analytics.scanner import ScanResult, Skipped, scan_frames
from analytics.sessions import last_sessions, market_time, session_info
from analytics.symbols import validate_symbol
from bot.current_odds import current_fit
from bot.leaders_source import living_leaders
from bot.plan_options import option_line
from bot.reply import Action, Reply, ReplyField
from bot.request import Ctx
from core.errors import CoachError, NotFoundError, UserError
from providers.base import Bars, MarketData
from renderers.text import fmt_price, plan_story
from storage import plans as plan_store
from storage import watchlists

log = structlog.get_logger("coach.planning")

#: Style used when none is given.
DEFAULT_STYLE = "intraday"
#: Sessions of history fetched per interval: enough for EMA200 and the higher-timeframe levels.
LOOKBACK_SESSIONS: dict[str, int] = {"1m": 5, "5m": 10, "15m": 20, "30m": 30, "1h": 60, "4h": 250, "1D": 500, "1W": 1300}
#: Most symbols one scan takes.
MAX_UNIVERSE = 500
#: Symbols fetched at once during a scan (real providers rate-limit).
SCAN_CONCURRENCY = 8
#: Words that mean "my watchlist".
WATCHLIST_WORDS = frozenset({"watchlist", "watch", "mine", "my"})
#: Lower-case words people use for a style that are not one: read as a wrong style, not as tickers.
STYLE_LIKE = frozenset(
    {
        "weekly",
        "daily",
        "day",
        "daytrade",
        "daytrading",
        "scalping",
        "scalps",
        "swings",
        "swingtrade",
        "position",
        "positional",
        "longterm",
        "long-term",
        "leap",
        "monthly",
        "hourly",
        "minute",
    }
)

Progress = Callable[[int, int, str], None]


@dataclass
class PlanOutcome:
    """What make_plan found, with the bars and levels it used (for charts and contracts)."""

    result: PlanResult
    bars: dict[str, pd.DataFrame]
    levels: list[Level]
    source: str


@dataclass
class ScanOutcome:
    """A scan's ranked result and the stored plans of its top candidates."""

    result: ScanResult
    plans: list[Plan] = field(default_factory=list)


# ---------------------------------------------------------------------------- bars


def _start(end: datetime, interval: str) -> datetime:
    sch = last_sessions(end, LOOKBACK_SESSIONS.get(interval, 20))
    return pd.Timestamp(int(sch.opens[0]), tz="UTC").to_pydatetime() if len(sch.dates) else end


async def fetch_style_bars(market: MarketData, symbol: str, style: str, end: datetime) -> dict[str, Bars]:
    """Bars of every interval of `style` up to `end` (concurrently)."""
    ivs = STYLE_INTERVALS[style]
    got = await asyncio.gather(*(market.bars(symbol, iv, _start(end, iv), end) for iv in ivs))
    return dict(zip(ivs, got))


def _sources(bars: dict[str, Bars]) -> list[str]:
    """'bars 5m/15m/1h: sim' style citations, one per provider."""
    by_source: dict[str, list[str]] = {}
    for iv, b in bars.items():
        by_source.setdefault(b.source, []).append(iv)
    return [f"bars {'/'.join(ivs)}: {src}" for src, ivs in by_source.items()]


def _channel(ctx: Ctx) -> str | None:
    """Where a plan is shared: the channel, or None for DMs and the console (private)."""
    ident = ctx.identity
    return None if ident.dm or not ident.channel else ident.channel


# ---------------------------------------------------------------------------- plan


async def make_plan(ctx: Ctx, symbol: str, style: str | None = None) -> PlanOutcome:
    """Plan `symbol` in `style` as of ctx.now() (the last close when the market is closed); store it if found."""
    symbol = validate_symbol(symbol)
    style = validate_style(style or DEFAULT_STYLE)
    now = ctx.now()
    info = session_info(now)
    end = market_time(now)
    bars = await fetch_style_bars(ctx.market, symbol, style, end)
    exec_bars = bars[STYLE_INTERVALS[style][0]]
    as_of = exec_bars.as_of if not exec_bars.empty else end
    fit = await current_fit(ctx.services, now)
    answer = plan_symbol(
        symbol, style, {iv: b.df for iv, b in bars.items()}, as_of=as_of, session=info.to_dict(), sources=_sources(bars), fit=fit
    )
    result = answer.result
    if result.plan is not None:
        async with ctx.tx() as s:
            owner = await ctx.owner(s)
            stored = await plan_store.save_plan(s, owner, result.plan, _channel(ctx))
        result = result.model_copy(update={"plan": stored})
    return PlanOutcome(result=result, bars={iv: b.df for iv, b in bars.items()}, levels=answer.levels, source=exec_bars.source)


def _targets_detail(plan: Plan) -> str:
    """One target a line with its R:R, band and the levels it sits at (the summary's targets line lives here only)."""
    return "\n".join(f"{fmt_price(t.price)} · {t.rr:.1f}R {rr_band(t.rr)} · {t.reason}" for t in plan.targets) or "—"


def odds_field(plan: Plan) -> ReplyField:
    """The field every plan reply leads with: the chance of T1 before the stop and what it rests on."""
    return ReplyField(
        name="T1 before the stop", value=f"{plan.probability:.0%} ({plan.probability_basis or 'no-edge prior'})", inline=False
    )


def quality_field(plan: Plan) -> ReplyField:
    """The seven-factor grade, second, labelled as a grade."""
    return ReplyField(name="Quality (grade, not odds)", value=f"{plan.quality:.0%}")


async def stored_plan(ctx: Ctx, plan_id: str) -> Plan:
    """The stored plan with this id that the caller may see, or NotFoundError (others' ids read as unknown ones)."""
    pid = plan_store.normalise_plan_id(plan_id)
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        plan = await plan_store.get_plan(s, owner, pid)
    if plan is None:
        raise NotFoundError(f"no plan {pid} of yours; plan ids come from /plan SYMBOL replies")
    return plan


async def recall_plan(ctx: Ctx, plan_id: str) -> PlanOutcome:
    """A stored plan by id, with the bars and levels of its time (for its chart).

    Only plans the caller may see (their own, or shared in a channel of their tenant); any other id
    is answered as an unknown one. When the bars of the plan's time cannot be had, the plan comes
    back without them (no chart) rather than not at all.
    """
    plan = await stored_plan(ctx, plan_id)
    pid = plan.plan_id
    info = session_info(plan.as_of)
    session = {**info.to_dict(), "status": plan.session}
    bars: dict[str, pd.DataFrame] = {}
    levels: list[Level] = []
    source = plan.sources[0].rsplit(": ", 1)[-1] if plan.sources else ctx.market.name
    try:
        got = await fetch_style_bars(ctx.market, plan.symbol, plan.style, plan.as_of)
        bars = {iv: b.df for iv, b in got.items()}
        source = got[STYLE_INTERVALS[plan.style][0]].source
        # the same bars give the same levels the plan was built from
        levels = plan_symbol(plan.symbol, plan.style, bars, as_of=plan.as_of, session=session, sources=plan.sources).levels
    except CoachError as exc:
        log.info("recall_without_bars", plan_id=pid, error=str(exc), request_id=ctx.request_id)
    result = PlanResult(
        symbol=plan.symbol, style=plan.style, as_of=plan.as_of, session=session, sources=plan.sources, plan=plan, reason=None
    )
    return PlanOutcome(result=result, bars=bars, levels=levels, source=source)


async def latest_style(ctx: Ctx, symbol: str) -> str | None:
    """The style of the caller's most recent plan for `symbol`, if they have one."""
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        return await plan_store.latest_style(s, owner, validate_symbol(symbol))


#: Confluence tags shown on a plan reply.
MAX_CONFLUENCE = 5


def confluence_text(plan: Plan) -> str:
    """Up to MAX_CONFLUENCE confluence tags, in words."""
    tags = [t.replace("_", " ") for t in plan.confluence[:MAX_CONFLUENCE]]
    return "; ".join(tags)


def session_note(session: Mapping[str, object]) -> str | None:
    """When the market is not open: which session a plan is for and as of when, in one sentence."""
    from analytics.sessions import EXCHANGE_TZ

    status = str(session.get("status", "open"))
    if status == "open":
        return None
    try:
        at = datetime.fromisoformat(str(session["as_of"])).astimezone(EXCHANGE_TZ)
        next_open = datetime.fromisoformat(str(session["next_open"])).astimezone(EXCHANGE_TZ)
        last_close = datetime.fromisoformat(str(session["last_close"])).astimezone(EXCHANGE_TZ)
    except (KeyError, ValueError):
        return None
    close_text = f"{last_close:%a %Y-%m-%d %H:%M} ET"
    if status == "pre":
        return f"Pre-market: plans now are for today's session, as of the last close ({close_text})."
    if status == "post":
        why = "after the close"
    elif at.weekday() >= 5:
        why = "weekend"
    elif str(session.get("session_date")) != at.date().isoformat():
        why = "holiday"
    else:
        why = "overnight"
    return (
        f"Market closed ({why}): plans now are for the next session, {next_open:%a %Y-%m-%d}, "
        f"as of the last close ({close_text})."
    )


def plan_reply(outcome: PlanOutcome, *, recalled: bool = False, now: datetime | None = None) -> Reply:
    """The reply for a plan result: the plan with its levels and buttons, or why there is none.

    `recalled`: the plan was looked up by id; the reply says when it was made and whether it still holds at `now`.
    """
    res = outcome.result
    plan = res.plan
    note = None if recalled else session_note(res.session)
    if plan is None:
        body = res.reason or "no setup qualifies right now"
        if note and res.style in ("scalp", "intraday"):
            # the reasons speak of the session that closed; the trader asked about the next one
            body += (
                f" Setups timed by the session (opening range, VWAP, prior-day breakouts) are planned from the next "
                f"open; ask again then, or try /plan {res.symbol} swing now."
            )
        return Reply(
            title=f"{res.symbol} — no setup ({res.style})",
            body=f"{note}\n{body}" if note else body,
            sources=res.sources,
            as_of=res.as_of,
            data=res,
            actions=[
                Action(label="Re-plan", command=f"/plan {res.symbol} {res.style}"),
                Action(label="Scan instead", command=f"/scan {res.style}"),
            ],
        )
    from analytics.strategies import by_id

    name = by_id(plan.strategy).name
    long = plan.direction == "long"
    entry = fmt_price(plan.entry)
    if plan.entry_zone:
        entry += f" (zone {fmt_price(plan.entry_zone[0])}–{fmt_price(plan.entry_zone[1])})"
    body = plan_story(plan.summary)
    if note:
        body = f"{note}\n{body}"
    if recalled:
        body = f"{recall_note(plan, now)}\n{body}"
    # entry, stop, targets and invalidation are fields: the text keeps the idea and the reasons around them;
    # the odds lead, the quality grade comes after the levels, named so no one reads it as odds
    fields = [
        odds_field(plan),
        ReplyField(name="Entry", value=entry),
        ReplyField(name="Stop", value=f"{fmt_price(plan.stop)} (risk {fmt_price(plan.risk_per_share)})"),
        ReplyField(name="Targets", value=_targets_detail(plan), inline=False),
        quality_field(plan),
        ReplyField(name="Invalidation", value=plan.invalidation, inline=False),
    ]
    if plan.confluence:
        fields.append(ReplyField(name="Confluence", value=confluence_text(plan), inline=False))
    fields.append(ReplyField(name="Plan", value=f"{plan.plan_id} v{plan.version} · {plan.interval} bars", inline=False))
    fields.extend(_option_fields(res))
    return Reply(
        title=f"{plan.symbol} {plan.direction} — {name} ({plan.style})",
        body=body,
        fields=fields,
        severity="info",  # the direction carries the colour (green long, red short)
        direction=plan.direction,
        sources=res.sources,
        as_of=res.as_of,
        data=res,
        actions=[
            Action(label="Track plan", command=f"/track {plan.plan_id}", style="primary"),
            Action(label="Alert at entry", command=f"/alert add {plan.symbol} {'above' if long else 'below'} {plan.entry:.2f}"),
            *next_step_actions(plan),
            Action(label="Re-plan", command=f"/plan {plan.symbol} {plan.style}"),
        ],
    )


def _option_fields(res: PlanResult) -> list[ReplyField]:
    """The plan's option pick as one line (when /plan looked it up)."""
    if res.options is None:
        return []
    return [ReplyField(name="Option", value=option_line(res.options), inline=False)]


def next_step_actions(plan: Plan) -> list[Action]:
    """From a plan to an order: size it, preview the order, its contracts, the chart one interval up.

    Each button is an ordinary command invocation; the order preview answers with its own Place
    button, which stays the only way to place.
    """
    up = INTERVALS[min(INTERVALS.index(plan.interval) + 1, len(INTERVALS) - 1)] if plan.interval in INTERVALS else "1D"
    return [
        Action(label="Size it", command=f"/size {plan.symbol} {_px(plan.entry)} {_px(plan.stop)}"),
        Action(label="Preview order", command=f"/order plan {plan.plan_id}", style="success"),
        Action(label="Contracts", command=f"/contracts {plan.plan_id}"),
        Action(label=f"Chart {up}", command=f"/chart {plan.symbol} {up} plan style={plan.style}"),
    ]


def _px(price: float) -> str:
    """A price as a button writes it: to the cent, or to the hundredth of a cent under a dollar."""
    return f"{price:.4f}" if price < 1 else f"{price:.2f}"


def recall_note(plan: Plan, now: datetime | None) -> str:
    """When a recalled plan was made, and until when it holds (or that it expired)."""
    from analytics.plan_window import expired_reason, expires_at
    from analytics.sessions import EXCHANGE_TZ

    made = f"Stored plan, made as of {plan.as_of.astimezone(EXCHANGE_TZ):%a %Y-%m-%d %H:%M} ET"
    why = expired_reason(plan, now) if now is not None else None
    if why:
        return f"{made}. Expired: {why}; make a fresh one with /plan {plan.symbol} {plan.style}."
    return f"{made}; valid until {expires_at(plan).astimezone(EXCHANGE_TZ):%a %Y-%m-%d %H:%M} ET."


# ---------------------------------------------------------------------------- scan


async def resolve_universe(ctx: Ctx, tokens: Sequence[str]) -> tuple[str, list[str]]:
    """(name, symbols) for a scan: your watchlist (or the leaders when it is empty), a named list, or tickers."""
    words = [t.strip() for t in tokens if t and t.strip()]
    styles = list(STYLE_INTERVALS)
    for w in words:
        # a lower-case word that reads like a style is a wrong style, not a ticker
        if w.islower() and (w in STYLE_LIKE or difflib.get_close_matches(w, styles, n=1, cutoff=0.75)):
            raise UserError(f"unknown style {w[:20]!r}; accepted: {', '.join(styles)}")
    lists = [w for w in words if w.lower().removeprefix("list:") in set(NAMED_LISTS) | WATCHLIST_WORDS]
    if lists and len(words) > 1:
        raise UserError(f"{lists[0]!r} is a list name: scan one list, or give tickers; then a style ({', '.join(styles)})")
    if len(words) == 1:
        key = words[0].lower()
        key = key[5:] if key.startswith("list:") else key
        if key in NAMED_LISTS:
            return key, list(NAMED_LISTS[key])
        if key in WATCHLIST_WORDS:
            syms = await _watchlist(ctx, "default")
            if not syms:
                raise UserError(
                    "your watchlist is empty; add symbols with /watch add TSLA NVDA, or scan a list: " + ", ".join(NAMED_LISTS)
                )
            return "watchlist", syms
        named = await _watchlist(ctx, key[:32])
        if named:
            return f"watchlist {key}", named
        if words[0].lower().startswith("list:"):
            raise UserError(f"no list named {key[:32]!r}; lists: {', '.join(NAMED_LISTS)} or your watchlist")
    if not words:
        syms = await _watchlist(ctx, "default")
        if syms:
            return "watchlist", syms
        # a folder of replay files: its symbols, not leaders it may not have
        listed = getattr(ctx.market, "symbols", None)
        folder = listed() if callable(listed) else []
        return ("replay folder", folder[:MAX_UNIVERSE]) if folder else ("leaders", list(LEADERS))
    symbols = list(dict.fromkeys(validate_symbol(w) for w in words))
    if len(symbols) > MAX_UNIVERSE:
        raise UserError(f"a scan takes at most {MAX_UNIVERSE} symbols, got {len(symbols)}")
    return "custom", symbols


async def _watchlist(ctx: Ctx, name: str) -> list[str]:
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        return await watchlists.list_symbols(s, owner, name)


#: Universes at least this large report their progress (`ctx.progress`: the CLI's bar at a terminal).
PROGRESS_FROM = 10


async def run_scan(
    ctx: Ctx,
    universe: Sequence[str] = (),
    style: str | None = None,
    *,
    limit: int = 10,
    progress: Progress | None = None,
) -> ScanOutcome:
    """Scan a universe in `style` as of ctx.now(); store and return the top candidates' plans."""
    style = validate_style(style or DEFAULT_STYLE)
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise UserError(f"limit must be 1-{MAX_LIMIT}")
    name, symbols = await resolve_universe(ctx, universe)
    now = ctx.now()
    basis: str | None = None
    if name == "leaders":
        leaders = await living_leaders(ctx.market, now, len(symbols))
        symbols, basis = leaders.symbols, leaders.basis
    info = session_info(now)
    end = market_time(now)
    frames: dict[str, dict[str, pd.DataFrame]] = {}
    skipped: list[Skipped] = []
    sources: dict[str, None] = {}
    gate = asyncio.Semaphore(SCAN_CONCURRENCY)
    done = 0

    async def one(sym: str) -> None:
        nonlocal done
        async with gate:
            try:
                bars = await fetch_style_bars(ctx.market, sym, style, end)
                frames[sym] = {iv: b.df for iv, b in bars.items()}
                for src in _sources(bars):
                    sources[src] = None
            except CoachError as exc:
                # one bad symbol (unknown upstream, provider hiccup) must not sink the scan
                skipped.append(Skipped(symbol=sym, reason=str(exc)[:200]))
            done += 1
            # a small universe is done before anyone could read a bar
            if progress is not None and len(symbols) >= PROGRESS_FROM:
                progress(done, len(symbols), sym)

    await asyncio.gather(*(one(sym) for sym in symbols))
    ordered = {s: frames[s] for s in symbols if s in frames}
    fit = await current_fit(ctx.services, now)
    result, plans = scan_frames(
        ordered,
        style,
        as_of=end,
        session=info.to_dict(),
        sources=list(sources) or ["bars: none"],
        universe=name,
        limit=limit,
        fit=fit,
    )
    result = result.model_copy(
        update={"skipped": sorted(skipped + result.skipped, key=lambda k: k.symbol), "universe_basis": basis}
    )
    stored: list[Plan] = []
    if plans:
        async with ctx.tx() as s:
            owner = await ctx.owner(s)
            for p in plans:
                stored.append(await plan_store.save_plan(s, owner, p, _channel(ctx)))
    return ScanOutcome(result=result, plans=stored)


def scan_reply(outcome: ScanOutcome) -> Reply:
    """The reply for a scan: the ranked candidates as a small table, with buttons to plan the top ones."""
    res = outcome.result
    title = f"Scan {res.universe} ({res.style}): {res.found} setup{'s' if res.found != 1 else ''} in {res.scanned} symbols"
    lines: list[str] = []
    if res.candidates:
        lines.append("#  symbol  side   strategy               T1 odds  entry      stop       T1 (R:R)         quality")
        for c in res.candidates:
            t1 = c.targets[0]
            lines.append(
                f"{c.rank:<2} {c.symbol:<7} {c.direction:<6} {c.strategy:<22} {c.probability:>7.0%}  "
                f"{fmt_price(c.entry):>9}  {fmt_price(c.stop):>9}  {fmt_price(t1.price):>9} ({t1.rr:.1f}R)  {c.quality:>7.0%}"
            )
        body = "```\n" + "\n".join(lines) + "\n```"
        body += "\nT1 odds: the chance of T1 before the stop, calibrated on past plans; quality grades the setup and is not odds."
    else:
        body = res.reason or "no setup qualifies"
    note = session_note(res.session)
    if note:
        body = f"{note}\n{body}"
    if res.universe_basis:
        body += f"\nUniverse: {res.universe_basis}."
    if res.skipped:
        shown = ", ".join(f"{k.symbol} ({k.reason})" for k in res.skipped[:5])
        more = f" and {len(res.skipped) - 5} more" if len(res.skipped) > 5 else ""
        body += f"\nSkipped: {shown}{more}."
    return Reply(
        title=title,
        body=body,
        sources=res.sources,
        as_of=res.as_of,
        data=res,
        actions=[
            Action(
                label=f"Plan {c.symbol}", command=f"/plan {c.symbol} {res.style}", style="primary" if c.rank == 1 else "secondary"
            )
            for c in res.candidates[:3]
        ],
    )


__all__ = [
    "DEFAULT_STYLE",
    "LOOKBACK_SESSIONS",
    "PlanOutcome",
    "ScanOutcome",
    "fetch_style_bars",
    "make_plan",
    "odds_field",
    "quality_field",
    "latest_style",
    "plan_reply",
    "recall_note",
    "recall_plan",
    "stored_plan",
    "resolve_universe",
    "run_scan",
    "scan_reply",
]
