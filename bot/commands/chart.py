"""/chart SYMBOL [interval] [plan]: a candlestick chart image with levels, EMAs and VWAP, and the plan on request."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from analytics.intervals import INTERVALS, interval_minutes
from bot.args import MAX_CHART_INTERVALS, ArgsModel, IntervalArg, StyleArg, SymbolArg
from bot.registry import command
from bot.reply import Action, Reply, ReplyField
from bot.request import Ctx

# The handler imports the chart service and the renderers (pandas, numpy) when it runs: declaring the
# command, as a chat front does to validate arguments, loads none of them.

_ON = {"plan", "on", "yes", "true", "with-plan", "withplan"}
_OFF = {"noplan", "no-plan", "off", "no", "false", "none"}
_RAW = {"raw", "unscaled"}


def _intervals(v: object) -> object:
    if isinstance(v, str):
        return [p for p in v.replace(",", " ").split() if p]
    return v


class ChartArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. TSLA; or a plan id (P-1A2B3C) to chart that stored plan")
    interval: Annotated[list[IntervalArg], BeforeValidator(_intervals), Field(max_length=MAX_CHART_INTERVALS)] = Field(
        default_factory=list,
        description="bar interval(s), e.g. 5m or 5m,1h,1D (one image each); default 5m, or the plan's interval",
    )
    plan: bool = Field(
        False,
        description="draw the current trade plan (also: the word plan after the interval)",
        json_schema_extra={"brief": "draw the trade plan"},
    )
    style: StyleArg | None = Field(None, description="plan style: scalp, intraday, swing, leaps")
    # `rare`: grouped under `more` in the coach's lean tool schema (bot.agent.schemas)
    theme: Literal["dark", "light"] = Field("dark", description="dark (default) or light", json_schema_extra={"rare": True})
    levels: Literal["priority", "more"] = Field(
        "priority", description="priority levels only, or more levels", json_schema_extra={"rare": True}
    )
    grid: bool = Field(False, description="several intervals as one grid image", json_schema_extra={"rare": True})
    # command-line only: how to draw, not what to show
    renderer: Literal["fast", "mplfinance"] | None = Field(
        None, description="render path (default: COACH_CHART_RENDERER, else fast)", json_schema_extra={"hidden": True}
    )
    scale_plan: bool = Field(
        True, description="fit the price range to the plan (off: raw history)", json_schema_extra={"hidden": True}
    )
    raw: bool = Field(
        False,
        description="raw history: the price range of the bars alone, not stretched to the plan (also: the word raw)",
        json_schema_extra={"brief": "raw history, no plan scaling"},
    )

    @model_validator(mode="before")
    @classmethod
    def _plan_word_in_intervals(cls, data: Any) -> Any:
        # "/chart TSLA plan" or "/chart TSLA 5m,1h plan swing": the word lands among the intervals
        if not isinstance(data, dict) or "interval" not in data:
            return data
        raw = _intervals(data["interval"])
        if not isinstance(raw, list):
            return data
        words = [w for w in raw if isinstance(w, str) and w.strip().lower() in _ON | _OFF]
        raws = [w for w in raw if isinstance(w, str) and w.strip().lower() in _RAW]
        rest = [w for w in raw if w not in words and w not in raws]
        data = dict(data)
        if rest:
            data["interval"] = rest
        else:
            data.pop("interval")  # only the plan word (or nothing): the default interval
        if words and "plan" not in data:
            data["plan"] = words[-1].strip().lower() in _ON
        if raws and "raw" not in data:
            data["raw"] = True
        return data


@command(
    "chart",
    "A chart image of a symbol: candles, volume, key levels, EMAs and VWAP; the trade plan with `plan`.",
    ChartArgs,
    result="bot.chart_service:ChartResult",
    examples=(
        "/chart TSLA",
        "/chart TSLA 5m plan",
        "/chart TSLA 15m plan raw",
        "/chart SPY 5m,1h,1D",
        "/chart NVDA 15m theme=light levels=more",
        "/chart P-1A2B3C",
    ),
    tool_hint="Returns the image files, the as-of time, the last price, the plan drawn (if any), the levels in view "
    "and chart_url (the live chart link, or null).",
)
async def chart(ctx: Ctx, a: ChartArgs) -> Reply:
    from bot.chart_service import make_charts
    from bot.web.links import chart_url_for
    from renderers.labels import format_price
    from renderers.text import plan_story
    from storage.plans import looks_like_plan_id

    plan_id = a.symbol if looks_like_plan_id(a.symbol) else None
    outcome = await make_charts(
        ctx,
        ctx.services.charts,
        symbol=a.symbol,
        intervals=sorted(dict.fromkeys(a.interval), key=interval_minutes),
        with_plan=a.plan,
        style=a.style,
        theme=a.theme,
        levels_mode=a.levels,
        grid=a.grid,
        renderer=a.renderer,
        scale_plan=a.scale_plan and not a.raw,
        plan_id=plan_id,
    )
    r = outcome.result
    url = await chart_url_for(ctx, r.symbol, r.intervals, *((r.plan.plan_id, r.plan.version) if r.plan else (None, None)))
    links: list[Action] = []
    if url is not None:
        r = r.model_copy(update={"chart_url": url})
        links.append(Action(label="Open chart", url=url))
    fields = [ReplyField(name="Last", value=format_price(r.last))]
    body = ""
    if r.plan is not None:
        p = r.plan
        fields += [
            ReplyField(name="T1 before the stop", value=f"{p.probability:.0%} ({p.probability_basis or 'no-edge prior'})"),
            ReplyField(name="Entry", value=format_price(p.entry)),
            ReplyField(name="Stop", value=format_price(p.stop)),
            ReplyField(name="Targets", value=", ".join(f"{format_price(t.price)} ({t.rr:.1f}R)" for t in p.targets)),
        ]
        body = (
            plan_story(p.summary)
            or f"{p.direction.upper()} {p.strategy.replace('_', ' ')} · T1 before the stop {p.probability:.0%}"
        )
        if plan_id:
            from bot.planning import recall_note

            body = f"{recall_note(p, ctx.now())}\n{body}"
    elif r.note:
        body = r.note[0].upper() + r.note[1:]
        body += "" if body.endswith((".", "!", "?")) else "."
    key = [lv for lv in r.levels][:6]
    if key:
        fields.append(
            ReplyField(
                name="Levels",
                value=", ".join(
                    f"{lv.label} {format_price(lv.low)}–{format_price(lv.high)}"
                    if lv.low is not None and lv.high is not None
                    else f"{lv.label} {format_price(lv.price)}"
                    for lv in key
                ),
                inline=False,
            )
        )
    return Reply(
        title=f"{r.symbol} {', '.join(r.intervals)} chart" + (" with plan" if r.plan is not None else ""),
        body=body,
        fields=fields,
        direction=r.plan.direction if r.plan is not None else None,
        attachments=outcome.attachments,
        actions=[*links, *neighbour_actions(a, r.intervals)],
        sources=r.sources,
        as_of=r.as_of,
        data=r,
    )


def neighbour_actions(a: ChartArgs, shown: list[str]) -> list[Action]:
    """Buttons for the intervals either side of the chart's (the smallest and largest shown), with the same options."""
    keep = [w for w in ("plan" if a.plan else "", "raw" if a.raw else "", f"style={a.style}" if a.style else "") if w]
    if a.theme != "dark":
        keep.append(f"theme={a.theme}")
    if a.levels != "priority":
        keep.append(f"levels={a.levels}")
    out: list[Action] = []
    lo, hi = INTERVALS.index(shown[0]), INTERVALS.index(shown[-1])
    for i, label in ((lo - 1, "◀ {iv}"), (hi + 1, "{iv} ▶")):
        if 0 <= i < len(INTERVALS) and INTERVALS[i] not in shown:
            iv = INTERVALS[i]
            out.append(Action(label=label.format(iv=iv), command=" ".join([f"/chart {a.symbol} {iv}", *keep])))
    return out
