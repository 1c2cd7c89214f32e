"""/plan and /scan: a trade plan for one symbol, and the best setups across a universe."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import structlog
from pydantic import BeforeValidator, Field

from analytics.intervals import STYLE_INTERVALS
from analytics.scan_scope import MAX_LIMIT, NAMED_LISTS
from bot.args import ArgsModel, StyleArg, SymbolArg
from bot.registry import command
from bot.reply import Action, Reply
from bot.request import Ctx

if TYPE_CHECKING:
    from analytics.models import PlanResult
    from bot.planning import PlanOutcome

# The handlers import the planner (pandas, numpy, the analytics) when they run: declaring the commands,
# as a chat front does to validate arguments, loads none of it.

log = structlog.get_logger("coach.plan")


class PlanArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. TSLA; or a plan id (P-1A2B3C) to recall that plan")
    style: StyleArg = Field(
        "intraday", description="trading style: scalp (1m/5m), intraday (5m/15m/1h), swing (1h/4h/1D), leaps (1D/1W)"
    )
    chart: bool = Field(True, description="attach a chart image", json_schema_extra={"no_tool": True})


@command(
    "plan",
    "A trade plan: its odds of T1 before the stop, entry, stop, targets with R:R, invalidation and a quality grade (or why there is none).",
    PlanArgs,
    result="analytics.models:PlanResult",
    examples=("/plan TSLA", "/plan NVDA swing", "/plan SPY scalp --no-chart", "/plan P-1A2B3C"),
    tool_hint="Returns {symbol, as_of, session, sources, plan|null, reason|null, chart_url|null (live chart link)}; a plan has direction, entry, stop, "
    "targets [{price, rr, reason}], probability (chance of T1 before the stop: the only figure to present as odds), "
    "probability_n (resolved past plans it rests on), probability_basis, quality (a setup grade, never odds), "
    "quality_factors, confluence, strategy, invalidation, plan_id, version, reach, beyond_reach. "
    "A plan id as symbol returns that stored plan (the style is its own). options is the top contract "
    "{contract, strike, expiration, delta, mid, spread_pct, rr_t1, contracts} or {reason}.",
)
async def plan_cmd(ctx: Ctx, a: PlanArgs) -> Reply:
    from bot.plan_options import plan_option
    from bot.planning import make_plan, recall_plan
    from storage.plans import looks_like_plan_id

    recalled = looks_like_plan_id(a.symbol)
    outcome = await recall_plan(ctx, a.symbol) if recalled else await make_plan(ctx, a.symbol, a.style)
    # the option lookup runs while the chart is drawn: the two together take about the longer of them
    options = asyncio.create_task(plan_option(ctx, outcome.result)) if outcome.result.plan is not None else None
    reply = await _with_chart(ctx, a, outcome, recalled)
    if options is not None:
        outcome.result = outcome.result.model_copy(update={"options": await options})
        reply = _plan_reply(ctx, outcome, recalled).model_copy(update={"attachments": reply.attachments})
    return await with_chart_link(ctx, reply, outcome.result)


def _plan_reply(ctx: Ctx, outcome: PlanOutcome, recalled: bool) -> Reply:
    from bot.planning import plan_reply

    return plan_reply(outcome, recalled=True, now=ctx.now()) if recalled else plan_reply(outcome)


async def _with_chart(ctx: Ctx, a: PlanArgs, outcome: PlanOutcome, recalled: bool) -> Reply:
    """The plan's reply, with its chart attached when asked for (the plan stands without it if drawing fails)."""
    reply = _plan_reply(ctx, outcome, recalled)
    charts = ctx.services.charts
    if a.chart:
        res = outcome.result
        interval = STYLE_INTERVALS[res.style][0]
        if interval not in outcome.bars:  # a recalled plan whose bars could not be had
            return reply
        try:
            image = await charts.plan_chart(
                symbol=res.symbol,
                interval=interval,
                bars=outcome.bars[interval],
                plan=res.plan,
                levels=outcome.levels,
                as_of=res.as_of,
                session_status=str(res.session.get("status", "")),
                source=outcome.source,
                style=res.style,
            )
            reply = reply.model_copy(update={"attachments": [image]})
        except Exception:  # the plan stands without its picture
            log.exception("plan_chart_failed", symbol=res.symbol, request_id=ctx.request_id)
    return reply


async def with_chart_link(ctx: Ctx, reply: Reply, res: PlanResult) -> Reply:
    """The reply with an "Open chart" link button and `chart_url` in its result, when links are configured."""
    from bot.web.links import chart_url_for

    plan = res.plan
    url = await chart_url_for(
        ctx,
        res.symbol,
        STYLE_INTERVALS[res.style],
        plan.plan_id if plan is not None else None,
        plan.version if plan is not None else None,
    )
    if url is None:
        return reply
    return reply.model_copy(
        update={
            "data": res.model_copy(update={"chart_url": url}),
            "actions": [*reply.actions, Action(label="Open chart", url=url)],
        }
    )


def _price(v: object) -> object:
    """A price as typed: 190, "190.5", "$1,190.50"; anything else says what is accepted."""
    if isinstance(v, str):
        text = v.strip().replace(",", "").lstrip("$")
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"{text[:20]!r} is not a price; give a number like 190.50") from None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and not v > 0:
        raise ValueError(f"{v:g} is not a price; prices are positive")
    return v


#: A positive price; accepts "190.5" and "$1,190.50".
PriceText = Annotated[float, BeforeValidator(_price)]


class PlanValidateArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. AAPL")
    entry: PriceText = Field(description="your entry price")
    stop: PriceText = Field(description="your stop (below the entry for a long, above it for a short)")
    targets: Annotated[list[PriceText], Field(min_length=1, max_length=5)] = Field(
        description="your targets, 1 to 5 prices (T1 first or in any order)"
    )
    style: StyleArg = Field("intraday", description="trading style: scalp, intraday, swing or leaps")


@command(
    "plan validate",
    "Check your own plan against the levels: R:R per target, stop in ATR, levels in the way, reach, odds of T1 first.",
    PlanValidateArgs,
    examples=("/plan validate AAPL 190 187 195 200", "/plan validate TSLA 250 256 240 232 swing"),
    result="analytics.plan_check:PlanCheck",
    tool_hint="Returns {direction, entry, stop, risk, atr, stop_atr, targets [{price, rr, band, in_the_way, beyond_reach}], "
    "near_stop, reach, reach_basis, probability (T1 before the stop; the no-edge prior 1/(1+R), not a forecast), "
    "probability_basis, warnings, summary}.",
)
async def plan_validate(ctx: Ctx, a: PlanValidateArgs) -> Reply:
    from analytics.sessions import session_info
    from bot.plan_validation import check_reply, validate_plan

    check = await validate_plan(ctx, a.symbol, a.entry, a.stop, a.targets, a.style)
    return check_reply(check, session_info(ctx.now()).to_dict())


class ScanArgs(ArgsModel):
    universe: list[str] = Field(
        default_factory=list,
        max_length=500,
        description=f"tickers, or a list: {', '.join(NAMED_LISTS)}, watchlist (default: your watchlist)",
    )
    style: StyleArg = Field("intraday", description="trading style: scalp, intraday, swing or leaps")
    limit: int = Field(10, ge=1, le=MAX_LIMIT, description=f"how many ranked setups to show (1-{MAX_LIMIT})")


@command(
    "scan",
    "Run every strategy over a universe and rank the setups by quality and R:R, each with its odds of T1 before the stop.",
    ScanArgs,
    result="analytics.scanner:ScanResult",
    examples=("/scan", "/scan leaders swing", "/scan AAPL MSFT NVDA scalp", "/scan watchlist --limit 5"),
    tool_hint="Returns {style, universe, as_of, session, sources, scanned, found, candidates: [{rank, symbol, strategy, "
    "direction, entry, stop, targets, rr, probability (odds of T1 before the stop), probability_n, quality (a grade, "
    "not odds), score, plan_id}], skipped, reason}.",
    heavy=True,
)
async def scan_cmd(ctx: Ctx, a: ScanArgs) -> Reply:
    from bot.planning import run_scan, scan_reply

    return scan_reply(await run_scan(ctx, a.universe, a.style, limit=a.limit, progress=ctx.progress))
