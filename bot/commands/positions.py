"""/positions and /portfolio: what you hold at the broker, what it is worth, and what it risks.

Both are read-only (LLM tools too): they never send an order. A position's Close button runs
`/order preview`, so closing is previewed and placed by a click like any other order.
"""

from __future__ import annotations

from pydantic import Field

from bot.args import ArgsModel
from bot.registry import command
from bot.reply import Action, Reply, ReplyField
from bot.request import Ctx

#: Positions that get buttons (3 each): Discord and Slack take at most 25 buttons in one message.
MAX_BUTTONED = 8


class PositionsArgs(ArgsModel):
    symbol: str | None = Field(None, max_length=32, description="only positions in this symbol (or its options)")


def _money(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "—"
    return f"{'+' if signed and x > 0 else '-' if x < 0 else ''}${abs(x):,.2f}"


@command(
    "positions",
    "Your open positions: quantity, average cost, last price, unrealised and today's P&L, the plan's stop and the risk to it.",
    PositionsArgs,
    result="bot.holdings:PositionsResult",
    examples=("/positions", "/positions TSLA"),
    tool_hint="Read-only. positions[]: symbol, quantity (negative = short), avg_cost, last, unrealized_pnl, today_pnl, "
    "plan_id, plan_stop, plan_targets, risk_to_stop ($), r_at_risk, option greeks and dte.",
)
async def positions_cmd(ctx: Ctx, a: PositionsArgs) -> Reply:
    from bot.holdings import close_command, load_positions
    from renderers.text import fmt_price

    async with ctx.tx() as s:
        owner = await ctx.owner(s)
    res = await load_positions(ctx, owner)
    if a.symbol:
        want = a.symbol.strip().upper().lstrip("$")
        res = res.model_copy(update={"positions": [p for p in res.positions if want in (p.symbol, p.underlying)]})
    if not res.positions:
        body = f"No open positions at {res.broker}" + (f" in {a.symbol.upper()}" if a.symbol else "") + "."
        return Reply(title="Positions", body=body, data=res, sources=res.sources, as_of=res.as_of)
    lines = []
    for p in res.positions:
        pnl = _money(p.unrealized_pnl, signed=True)
        pct = f" ({p.unrealized_pct:+.1f}%)" if p.unrealized_pct is not None else ""
        last = fmt_price(p.last) if p.last is not None else "unpriced"
        lines.append(f"{p.symbol:<20} {p.quantity:>+8g} @ {fmt_price(p.avg_cost):>9}  last {last:>9}  {pnl}{pct}")
        extra = []
        if p.today_pnl is not None:
            extra.append(f"today {_money(p.today_pnl, signed=True)}")
        if p.plan_id:
            stop = f" stop {fmt_price(p.plan_stop)}" if p.plan_stop is not None else ""
            tgts = " → ".join(fmt_price(t) for t in p.plan_targets[:3])
            extra.append(f"plan {p.plan_id}{stop}" + (f" targets {tgts}" if tgts else ""))
        if p.risk_to_stop is not None:
            extra.append(f"at risk {_money(p.risk_to_stop)}" + (f" ({p.r_at_risk:.2f}R)" if p.r_at_risk is not None else ""))
        if p.asset_class == "option" and p.delta is not None:
            extra.append(
                f"{p.dte:g}d Δ{p.delta:+.2f} Γ{p.gamma or 0:.3f} Θ{p.theta or 0:+.2f} V{p.vega or 0:.2f} IV {100 * (p.iv or 0):.0f}%"
            )
        if extra:
            lines.append("    " + " · ".join(extra))
    body = "```\n" + "\n".join(lines) + "\n```"
    body += "\n" + "\n".join(f"• {n}" for n in res.notes) if res.notes else ""
    fields = [
        ReplyField(name="Market value", value=_money(res.market_value)),
        ReplyField(name="Unrealised", value=_money(res.unrealized_pnl, signed=True)),
        ReplyField(name="Today", value=_money(res.today_pnl, signed=True)),
        ReplyField(name="Risk to stops", value=_money(res.risk_to_stops)),
    ]
    actions: list[Action] = []
    for p in res.positions[:MAX_BUTTONED]:
        # a position from a plan follows that plan live; one without gets the coach's plan for it now
        plan_action = (
            Action(label=f"Track {p.plan_id}", command=f"/track {p.plan_id}", style="primary")
            if p.plan_id
            else Action(label=f"Plan {p.underlying}", command=f"/plan {p.underlying}", style="primary")
        )
        actions += [
            plan_action,
            Action(label=f"Chart {p.underlying}", command=f"/chart {p.underlying}"),
            Action(label=f"Close {p.symbol}", command=close_command(p), style="danger"),
        ]
    n = len(res.positions)
    return Reply(
        title=f"Positions — {n} open at {res.broker}",
        body=body,
        fields=fields,
        severity="warning" if res.unpriced else "info",
        actions=actions,
        sources=res.sources,
        as_of=res.as_of,
        data=res,
    )


class PortfolioArgs(ArgsModel):
    chart: bool = Field(True, description="attach the exposure and correlation picture (--no-chart for text only)")


@command(
    "portfolio",
    "Your portfolio: exposure (gross, net, per symbol and sector as % of the account), beta to SPY, correlation, "
    "greeks, open risk to all stops, and the risk rules it breaks.",
    PortfolioArgs,
    examples=("/portfolio", "/portfolio --no-chart"),
    result="bot.portfolio:PortfolioResult",
    tool_hint="Read-only. gross/net/long/short (+_pct), symbols[] {symbol, sector, pct, beta}, sectors {name: pct}, "
    "sector_source (polygon SIC or the shipped mapping), beta, correlated {group: pct}, correlation_symbols + correlation matrix, delta_dollars, gamma_dollars, vega, theta, open_risk(_pct), breaches[], warnings[].",
)
async def portfolio_cmd(ctx: Ctx, a: PortfolioArgs) -> Reply:
    import asyncio

    from bot.portfolio import field_pairs, load_portfolio
    from bot.reply import Attachment
    from renderers.portfolio_plot import render_portfolio

    async with ctx.tx() as s:
        owner = await ctx.owner(s)
    res = await load_portfolio(ctx, owner)
    data = res.model_copy(update={"positions": res.positions.model_copy(update={"positions": []})})
    if not res.symbols:
        return Reply(
            title="Portfolio", body=f"No open positions at {res.broker}.", data=data, sources=res.sources, as_of=res.as_of
        )
    lines = [
        "Exposure: " + ", ".join(f"{s.symbol} {s.pct:+.1f}%" for s in res.symbols[:10]),
        "Sectors: " + ", ".join(f"{k} {v:.1f}%" for k, v in res.sectors.items()) + f" (from {res.sector_source})",
    ]
    if any(p.asset_class == "option" for p in res.positions.positions):
        lines.append(
            f"Greeks: delta {_money(res.delta_dollars)} · gamma {_money(res.gamma_dollars)} per 1% · "
            f"vega {_money(res.vega)} per vol pt · theta {_money(res.theta)}/day"
        )
    lines += [f"⛔ {b.describe()}" for b in res.breaches]
    lines += [f"⚠ {w}" for w in res.warnings]
    attachments = []
    if a.chart:
        acct = f"account ${res.account_size:,.0f} ({res.account_source})"
        png = await asyncio.to_thread(
            render_portfolio,
            [s.symbol for s in res.symbols],
            [s.pct for s in res.symbols],
            res.correlation_symbols,
            res.correlation,
            title=f"Portfolio · {res.broker}",
            subtitle=f"{acct} · gross {res.gross_pct:.0f}% · net {res.net_pct:+.0f}% · {res.sessions} sessions of returns",
            limit_pct=res.rules.max_position_pct,
        )
        attachments.append(Attachment(filename="portfolio.png", data=png, description="exposure and correlation"))
    return Reply(
        title=f"Portfolio — {len(res.symbols)} symbols at {res.broker}",
        body="\n".join(lines),
        fields=[ReplyField(name=k, value=v) for k, v in field_pairs(res)],
        severity="error" if res.breaches else "warning" if res.warnings else "info",
        attachments=attachments,
        actions=[Action(label="Positions", command="/positions"), Action(label="Risk rules", command="/risk")],
        sources=res.sources,
        as_of=res.as_of,
        data=data,
    )
