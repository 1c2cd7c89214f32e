"""/vol, /contracts, /size and /risk: the volatility regime, option contracts for a plan, position sizing."""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING, Annotated, Literal, SupportsFloat, SupportsIndex

from pydantic import BeforeValidator, Field, field_validator

from analytics.money import check_money, check_prices
from bot.args import ArgsModel, StyleArg, SymbolArg
from bot.registry import command
from bot.reply import Reply, ReplyField
from bot.request import Ctx
from core.errors import NotFoundError, UserError
from storage.identity import get_user

# The option and sizing analytics, the planner and the renderers (numpy, scipy, pandas) are imported
# where they compute: declaring the commands, as a chat front does to validate arguments, loads none
# of them.
if TYPE_CHECKING:
    from analytics.options import ContractRanking
    from analytics.sizing import SizeResult
    from analytics.volatility import VolRegime


def _number(v: object) -> object:
    """Accept 500, "500", "$1,500", "1.5k"."""
    if isinstance(v, str):
        text = v.strip().replace(",", "").replace("_", "").lstrip("$").strip()
        mult = 1.0
        if text[-1:].lower() == "k":
            text, mult = text[:-1], 1e3
        elif text[-1:].lower() == "m":
            text, mult = text[:-1], 1e6
        try:
            return float(text) * mult
        except ValueError:
            raise ValueError(f"{v[:20]!r} is not a number; e.g. 500 or $1,500") from None
    return v


def _money(v: object) -> object:
    if v is None:
        return v
    try:
        if not isinstance(v, (str, SupportsFloat, SupportsIndex)):
            raise TypeError(type(v).__name__)  # what float() refuses, refused the same way
        return check_money(float(v), "risk amount")
    except UserError as exc:
        raise ValueError(exc.message) from None
    except (TypeError, ValueError):
        raise ValueError("risk amount must be a number, e.g. 500") from None


def _price(v: object) -> object:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"price must be a positive number (got {v})")
        if v > 1e7:
            raise ValueError(f"price {v:,.2f} is not plausible")
    return v


#: A dollar amount to risk: positive, finite, at most 1e9; accepts "$1,500" and "1.5k".
MoneyArg = Annotated[float, BeforeValidator(_money), BeforeValidator(_number)]
#: A price: positive and plausible; accepts "$250.5".
PriceArg = Annotated[float, BeforeValidator(_price), BeforeValidator(_number)]

_SIDES = {"call": "calls", "calls": "calls", "c": "calls", "put": "puts", "puts": "puts", "p": "puts"}


def _side(v: object) -> object:
    return _SIDES.get(v.strip().lower(), v) if isinstance(v, str) else v


#: Which options a person wants: calls or puts (accepts call/put/c/p too).
SideArg = Annotated[Literal["calls", "puts"], BeforeValidator(_side)]


def _pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x * 100:.{digits}f}%"


def _money_s(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else (f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}")


# ---------------------------------------------------------------------------- /vol


class VolArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. TSLA")
    view: Annotated[Literal["regime", "surface"], BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v)] = (
        Field("regime", description="regime (default), or surface: IV by strike and delta x expiry, with a heatmap")
    )


def vol_reply(v: VolRegime) -> Reply:
    """The regime as a reply (also used by /context); its JSON leaves the surface out."""
    if v.rank_basis == "iv_history":
        rank = f"IV rank {v.iv_rank:.0f} · IV percentile {v.iv_percentile:.0f} ({v.history_days} days stored)"
    elif v.rank_basis == "hv_proxy":
        rank = f"HV20 rank {v.hv_rank_proxy:.0f} · percentile {v.hv_percentile_proxy:.0f} (proxy: IV history too short)"
    else:
        rank = "no rank: too little history"
    lines = [f"Regime: **{v.regime}** — {rank}."]
    if v.note:
        lines.append(f"_{v.note}._")
    term = [p for p in v.term if p.atm_iv is not None]
    if term:
        lines.append("```\nexpiry       dte   ATM IV   25d skew")
        for p in term:
            lines.append(
                f"{p.expiration.isoformat()}  {p.dte:5.0f}   {_pct(p.atm_iv):>6}   {_pct(p.skew_25d) if p.skew_25d is not None else '—':>7}"
            )
        lines.append("```")
    slope = "—" if v.term_slope is None else f"{v.term_slope * 100:+.1f} pts ({v.term_structure})"
    skew = "—" if v.skew_25d is None else f"{v.skew_25d * 100:+.1f} pts"
    return Reply(
        title=f"{v.symbol} volatility — {v.regime}",
        body="\n".join(lines),
        fields=[
            ReplyField(name="ATM IV 30d", value=_pct(v.atm_iv_30d)),
            ReplyField(name="HV 20/60/120", value=" / ".join(_pct(x) for x in (v.hv20, v.hv60, v.hv120))),
            ReplyField(name="IV/HV20", value="—" if v.iv_hv_ratio is None else f"{v.iv_hv_ratio:.2f}"),
            ReplyField(name="25Δ skew (put−call)", value=skew),
            ReplyField(name="Term slope 90d−30d", value=slope),
        ],
        severity="warning" if v.regime in ("elevated", "high") else "info",
        sources=v.sources,
        as_of=v.as_of,
        data=v,
    )


def _iv(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}"


def surface_reply(v: VolRegime, image: bytes | None) -> Reply:
    """The surface as a reply: IV by delta x expiry as a table, the heatmap and smiles as an image, the grid in `data`."""
    from analytics.volatility import VolSurfaceAnswer
    from bot.reply import Attachment

    base = vol_reply(v)
    s = v.surface
    answer = VolSurfaceAnswer(symbol=v.symbol, as_of=v.as_of, sources=v.sources, regime=v, surface=s)
    if s is None or not s.slices:
        return base.model_copy(
            update={"title": f"{v.symbol} volatility surface: no usable quotes", "severity": "warning", "data": answer}
        )
    head = "expiry        dte  " + "  ".join(f"{label:>8}" for label in s.delta_labels) + "   skew"
    lines = [f"IV % by delta and expiry, from the chains' own quotes (spot {s.spot:,.2f}).", "```", head]
    for sl in s.slices:
        cells = "  ".join(f"{_iv(x):>8}" for x in sl.delta_iv)
        skew = "—" if sl.skew_25d is None else f"{sl.skew_25d * 100:+.1f}"
        lines.append(f"{sl.expiration.isoformat()}  {sl.dte:4.0f}  {cells}  {skew:>5}")
    lines.append("```")
    lines.append("25Δ skew and the term slope below are read from this surface.")
    attachments = []
    if image is not None:
        attachments.append(
            Attachment(filename=f"{v.symbol}-vol-surface.png", data=image, description="IV heatmap and smiles", key="surface")
        )
    return base.model_copy(
        update={
            "title": f"{v.symbol} volatility surface — {v.regime}",
            "body": "\n".join(lines),
            "attachments": attachments,
            "data": answer,
        }
    )


@command(
    "vol",
    "Volatility regime: ATM IV (30-day), HV20/60/120, IV/HV, 25-delta skew, term slope, IV rank; `surface` for IV by "
    "strike and delta x expiry with a heatmap.",
    VolArgs,
    result="analytics.volatility:VolRegime",
    examples=("/vol TSLA", "/vol SPY surface"),
    tool_hint="Result: atm_iv_30d, hv20/60/120, iv_hv_ratio, skew_25d, term_slope, iv_rank/iv_percentile (or an HV proxy when rank_basis is hv_proxy), regime; "
    "with view=surface: {regime, surface {grid_strikes, grid_iv (rows = slices), slices [{expiration, dte, atm_iv, skew_25d, delta_iv}], delta_labels}.",
)
async def vol(ctx: Ctx, a: VolArgs) -> Reply:
    v = await ctx.services.options.vol_regime(a.symbol, ctx.now(), pinned=ctx.as_of is not None)
    if a.view == "regime":
        return vol_reply(v)
    import asyncio

    from renderers.vol_surface_plot import render_surface

    image: bytes | None = None
    if v.surface is not None and v.surface.slices:
        s = v.surface
        subtitle = f"spot {s.spot:,.2f} · {len(s.slices)} expiries · {', '.join(s.sources)}"
        image = await asyncio.to_thread(render_surface, s, title=f"{v.symbol} implied volatility surface", subtitle=subtitle)
    return surface_reply(v, image)


# ---------------------------------------------------------------------------- /contracts


#: /contracts' style when neither a plan id nor an earlier plan of the symbol gives one.
CONTRACTS_STYLE = "swing"


class ContractsArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. TSLA; or a plan id (P-1A2B3C) for that stored plan's contracts")
    style: StyleArg | None = Field(
        None,
        description="trading style: scalp intraday swing leaps (default: that of your latest plan for the symbol, else swing)",
    )
    risk_amount: MoneyArg | None = Field(
        None, description="dollars you accept to lose at the stop; sets the projected contract count"
    )
    expiration: date | None = Field(None, description="only this expiration, YYYY-MM-DD")
    top: int = Field(5, ge=1, le=20, description="how many contracts to show (1-20)")
    side: SideArg | None = Field(
        None,
        description="calls or puts; default the plan's side (calls for a long plan, puts for a short one). "
        "Asked against the plan, the answer says why it shows the plan's side",
        json_schema_extra={"brief": "calls or puts (default: the plan's side)"},
    )

    @field_validator("expiration", mode="before")
    @classmethod
    def _date(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                return date.fromisoformat(v.strip())
            except ValueError:
                raise ValueError(f"{v[:20]!r} is not a date like 2024-04-19") from None
        return v


def contracts_reply(r: ContractRanking) -> Reply:
    """The ranking as a reply."""
    from analytics.options import model_words
    from renderers.text import fmt_price

    if r.plan is None:
        return Reply(
            title=f"{r.symbol} {r.style}: no plan, so no contracts",
            body=r.reason or f"No {r.style} plan qualifies for {r.symbol} right now.",
            sources=r.sources,
            as_of=r.as_of,
            data=r,
        )
    p = r.plan
    head = (
        f"Plan {p.plan_id} v{p.version} ({p.strategy}): {p.direction} at {fmt_price(p.entry)}, stop {fmt_price(p.stop)}, "
        f"targets {', '.join(fmt_price(t) for t in p.targets) or '—'}. Option P/L {model_words(r.horizon_days)}."
    )
    # the side asked for and not shown is said first, in one line, never silently swapped
    lead = [f"**{r.side_note}**"] if r.side_note else []
    not_asked = f" (not {r.asked}s: the plan is {p.direction})" if r.side_note else ""
    if not r.candidates:
        return Reply(
            title=f"{r.symbol} {r.style}: no {r.right}s pass the gates{not_asked}",
            body="\n".join([*lead, head, r.reason or ""]).strip(),
            severity="warning",
            sources=r.sources,
            as_of=r.as_of,
            data=r,
        )
    floor = f"{p.min_rr:g}R" if p.min_rr is not None else None
    lines = [
        *lead,
        head,
        "```",
        "contract               dte  delta  spread  premium  stop P/L   T1 P/L  R:R1  score" + ("  qty" if r.risk_amount else ""),
    ]
    for c in r.candidates:
        t1 = next((s for s in c.scenarios if s.anchor == "T1"), None)
        rr1 = c.rr[0] if c.rr else None
        row = (
            f"{c.symbol:<21} {c.dte:4.0f}  {c.delta:+.2f}  {c.spread_pct * 100:5.1f}%  {c.premium:7.2f}  "
            f"{_money_s(-c.loss_at_stop):>8}  {_money_s(t1.pnl if t1 else None):>7}  {'—' if rr1 is None else f'{rr1:.1f}':>4}  {c.score:.2f}"
        )
        if r.risk_amount:
            row += f"  {c.contracts if c.contracts is not None else '—':>3}"
        if c.below_min_rr:
            row += f"  ⚠ under {floor}"  # last on the row: a wide glyph cannot shift the columns
        lines.append(row)
    lines.append("```")
    flagged = [c for c in r.candidates if c.below_min_rr]
    if flagged:
        n, m = len(flagged), len(r.candidates)
        why = (
            "the spread and theta are paid whatever the move, so a short stop-to-target run leaves the option less than the stock"
        )
        if n == m:
            lines.append(f"⚠ None of these reach the plan's {floor} minimum at T1: {why}.")
        else:
            lines.append(f"⚠ {n} of {m} fall under the plan's {floor} minimum at T1 and rank below those that keep it: {why}.")
    best = r.candidates[0]
    if r.risk_amount is not None:
        if best.contracts:
            lines.append(
                f"Risking {_money_s(r.risk_amount)}: {best.contracts} × {best.symbol} loses about {_money_s(best.max_loss)} at the stop"
                + (f" ({_money_s(best.loss_at_stop)} a contract)" if best.contracts > 1 else "")
                + f"; premium outlay {_money_s(best.cost)}."
            )
        else:
            lines.append(
                f"Risking {_money_s(r.risk_amount)} buys no {best.symbol}: one contract loses about {_money_s(best.loss_at_stop)} at the stop."
            )
    title = f"{r.symbol} {r.style}: top {len(r.candidates)} {r.right}s{not_asked}"
    if flagged and len(flagged) == len(r.candidates):
        title = f"{r.symbol} {r.style}: {len(r.candidates)} {r.right}s, none reach {floor} at T1{not_asked}"
    return Reply(
        title=title,
        body="\n".join(lines),
        fields=[
            ReplyField(
                name="Gates",
                value=f"spread ≤ {r.gates.max_spread_pct:.0%}, |Δ| {r.gates.delta_min:.2f}-{r.gates.delta_max:.2f}, OI ≥ {r.gates.min_open_interest}, vol ≥ {r.gates.min_volume}",
            ),
            ReplyField(
                name="Considered",
                value=f"{r.considered} {r.right}s over {len(r.expirations)} expiration{'' if len(r.expirations) == 1 else 's'}",
            ),
        ],
        severity="warning" if (r.side_note or best.below_min_rr) else "info",
        direction=p.direction,
        sources=r.sources,
        as_of=r.as_of,
        data=r,
    )


@command(
    "contracts",
    "Option contracts for the current plan: liquidity-gated, scenario P/L at entry/stop/targets, tradeability score.",
    ContractsArgs,
    result="analytics.options:ContractRanking",
    examples=(
        "/contracts TSLA",
        "/contracts NVDA swing 500",
        "/contracts SPY intraday risk_amount=300",
        "/contracts QQQ side=calls",
        "/contracts P-1A2B3C",
    ),
    tool_hint="Needs a plan; when none qualifies, plan is null and reason says why. risk_amount only sets the projected count, it never filters. "
    "Pass side when the person names calls or puts; when it is against the plan, side_note says why the plan's side is shown: tell them. "
    "below_min_rr marks contracts whose T1 R:R is under plan.min_rr: say so when recommending. "
    "A plan id as symbol ranks for that stored plan; without a style, the style of the caller's latest plan for the symbol is used.",
)
async def contracts(ctx: Ctx, a: ContractsArgs) -> Reply:
    from analytics.models import PlanResult
    from bot.planning import latest_style, make_plan, stored_plan
    from storage.plans import looks_like_plan_id

    at = ctx.now()
    svc = ctx.services.options
    stored: PlanResult | None = None
    symbol = a.symbol
    if looks_like_plan_id(a.symbol):
        plan = await stored_plan(ctx, a.symbol)
        symbol = plan.symbol
        stored = PlanResult(
            symbol=symbol, style=plan.style, as_of=plan.as_of, session={}, sources=plan.sources, plan=plan, reason=None
        )
    style = stored.style if stored is not None else a.style or await latest_style(ctx, symbol) or CONTRACTS_STYLE
    # Fail fast on a symbol without options or a missing expiration, before planning.
    exps = await svc.expirations(symbol, at)
    if a.expiration is not None and a.expiration not in exps:
        wanted = a.expiration
        near = sorted(sorted(exps, key=lambda d: abs((d - wanted).days))[:4])
        shown = ", ".join(d.isoformat() for d in near)
        raise NotFoundError(f"no {symbol} options expire on {a.expiration.isoformat()}; nearest listed: {shown}")
    result = stored if stored is not None else (await make_plan(ctx, symbol, style)).result
    ranking = await svc.rank_for_plan(
        result.plan,
        symbol,
        result.style,
        at,
        risk_amount=a.risk_amount,
        expiration=a.expiration,
        no_plan_reason=result.reason,
        extra_sources=[f"plan: {s}" for s in result.sources],
        top=a.top,
        asked=None if a.side is None else ("call" if a.side == "calls" else "put"),
    )
    return contracts_reply(ranking)


# ---------------------------------------------------------------------------- /size


class SizeArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. TSLA")
    entry: PriceArg = Field(description="entry price")
    stop: PriceArg = Field(description="stop price (below entry for a long, above for a short)")
    risk: MoneyArg | None = Field(None, description="dollars to risk; defaults to your risk profile (/risk)")
    contract: str | None = Field(
        None,
        description="size in option contracts of this OCC symbol, e.g. TSLA240419C00250000",
        json_schema_extra={"brief": "OCC option symbol, to size in contracts"},
    )
    style: StyleArg = Field(
        "swing",
        description="with contract: the holding style whose horizon prices the stop, as /contracts does (scalp 1 h, intraday 6.5 h, swing 7 days, leaps 90 days)",
        json_schema_extra={"rare": True},
    )


@command(
    "size",
    "Position size from a risk amount and the stop distance: shares (or contracts of an option), with the max loss.",
    SizeArgs,
    result="analytics.sizing:SizeResult",
    examples=("/size TSLA 250 245 500", "/size AAPL 190 187.5", "/size TSLA 250 245 500 contract=TSLA240419C00250000"),
    tool_hint="Without risk it uses the caller's stored risk profile (account size x risk %).",
)
async def size(ctx: Ctx, a: SizeArgs) -> Reply:
    from analytics.sizing import size_shares

    check_prices(a.entry, a.stop)
    # The profile is read even with an explicit risk: it caps the risk and gives the % of account.
    async with ctx.tx() as s:
        user = await get_user(s, await ctx.owner(s))
        account, pct = user.account_size, user.risk_pct
    if a.contract:
        res, sources = await _size_contracts(ctx, a, account, pct)
    else:
        res = size_shares(a.symbol, a.entry, a.stop, risk_amount=a.risk, account_size=account, risk_pct=pct)
        sources = []
    sources = ["entry, stop: given", "risk: " + ("given" if res.risk_source == "given" else "risk profile"), *sources]
    return size_reply(res.model_copy(update={"as_of": ctx.now(), "sources": sources}))


async def _size_contracts(ctx: Ctx, a: SizeArgs, account: float | None, pct: float | None) -> tuple[SizeResult, list[str]]:
    from analytics.options import HORIZON_DAYS, contract_loss_at_stop, model_words
    from analytics.sizing import size_contracts
    from bot.options_service import parse_occ

    underlying, _, right, _ = parse_occ(a.contract or "")
    if underlying != a.symbol.replace(".", "").replace("-", "")[:6]:
        raise UserError(f"{a.contract} is an option on {underlying}, not {a.symbol}")
    if (right == "call") != (a.stop < a.entry):
        side = "long (stop below entry)" if right == "call" else "short (stop above entry)"
        raise UserError(f"a {right} fits a {side} trade; check the contract or the stop")
    svc = ctx.services.options
    view, row = await svc.find_contract(a.contract or "", ctx.now())
    if not math.isfinite(row["iv"]):
        raise UserError(f"{a.contract} has no usable quote to model it from")
    horizon = HORIZON_DAYS[a.style]
    # the same model and horizon as /contracts, so both quote the same loss at the stop
    premium, loss = contract_loss_at_stop(
        a.entry,
        a.stop,
        strike=float(row["strike"]),
        T_now=view.T,
        horizon_days=horizon,
        rate=view.rate,
        div_yield=view.div_yield,
        iv=float(row["iv"]),
        call=right == "call",
        spread=float(row["spread"]),
        multiplier=float(row["multiplier"]),
    )
    res = size_contracts(
        a.symbol,
        a.entry,
        a.stop,
        contract=str(row["symbol"]),
        premium=premium,
        loss_per_contract=loss,
        multiplier=int(row["multiplier"]),
        risk_amount=a.risk,
        account_size=account,
        risk_pct=pct,
    )
    res = res.model_copy(update={"right": right, "model": f"{a.style} hold: {model_words(horizon)}"})
    return res, [f"chain: {view.source} as of {view.as_of.isoformat()}"]


def size_reply(r: SizeResult) -> Reply:
    from renderers.text import fmt_price

    unit = "shares" if r.instrument == "shares" else "contracts"
    if r.instrument == "shares":
        what = f"{r.direction.title()} {r.quantity:,} {unit} of {r.symbol}"
        per = f"{fmt_price(r.risk_per_unit)} per share"
    else:
        # buying an option is a long position whatever the view: a bought put is long puts, bearish
        view = "bearish" if r.direction == "short" else "bullish"
        what = f"Buy {r.quantity:,} × {r.contract} (long {r.right or 'option'}s, {view})"
        per = f"{_money_s(r.risk_per_unit)} per contract at the stop, {r.model or 'modelled'}"
    src = "your risk profile" if r.risk_source == "profile" else "the amount given"
    body = f"{what}: a stop-out loses about {_money_s(r.max_loss)} ({per}); risk {_money_s(r.risk_amount)} from {src}."
    if r.note:
        body += f"\n_{r.note}._"
    fields = [
        ReplyField(name="Quantity", value=f"{r.quantity:,}"),
        ReplyField(name="Max loss", value=_money_s(r.max_loss)),
        ReplyField(name="Notional" if r.instrument == "shares" else "Premium outlay", value=_money_s(r.notional)),
    ]
    if r.risk_pct_of_account is not None:
        fields.append(ReplyField(name="Of account", value=f"{r.risk_pct_of_account:.2f}%"))
    return Reply(
        as_of=r.as_of,
        title=f"Size {r.symbol}: {r.quantity:,} {unit}",
        body=body,
        fields=fields,
        severity="warning" if r.quantity == 0 else "success",
        direction=r.direction,
        data=r,
    )


# ---------------------------------------------------------------------------- /risk


def _rule_pct(v: object) -> object:
    if isinstance(v, str):
        text = v.strip().rstrip("%").lower()
        return 0 if text in ("off", "none", "no") else text
    return v


PctArg = Annotated[float, BeforeValidator(_rule_pct)]


class RiskArgs(ArgsModel):
    account_size: MoneyArg | None = Field(None, description="account size in dollars")
    risk_pct: Annotated[float, BeforeValidator(lambda v: v.strip().rstrip("%") if isinstance(v, str) else v)] | None = Field(
        None, gt=0, le=100, allow_inf_nan=False, description="percent of the account to risk per trade, e.g. 1"
    )
    max_open_risk: PctArg | None = Field(
        None, ge=0, le=100, description="rule: most % of the account at risk to all stops at once (0 or off clears it)"
    )
    max_position: PctArg | None = Field(
        None, ge=0, le=1000, description="rule: most % of the account in one symbol (0 or off clears it)"
    )
    max_sector: PctArg | None = Field(
        None, ge=0, le=1000, description="rule: most % of the account in one sector (0 or off clears it)"
    )
    max_correlated: PctArg | None = Field(
        None,
        ge=0,
        le=1000,
        description="rule: most % of the account in holdings whose daily returns correlate above 0.7 (0 or off clears it)",
    )


#: The rule each /risk option sets.
RULE_OPTIONS = {
    "max_open_risk": "max_open_risk_pct",
    "max_position": "max_position_pct",
    "max_sector": "max_sector_pct",
    "max_correlated": "max_correlated_pct",
}


def _rules_line(rules: dict[str, float | None]) -> str:
    parts = [
        f"open risk ≤ {rules['max_open_risk_pct']:g}%" if rules.get("max_open_risk_pct") else None,
        f"one symbol ≤ {rules['max_position_pct']:g}%" if rules.get("max_position_pct") else None,
        f"one sector ≤ {rules['max_sector_pct']:g}%" if rules.get("max_sector_pct") else None,
        f"correlated holdings ≤ {rules['max_correlated_pct']:g}%" if rules.get("max_correlated_pct") else None,
    ]
    shown = [p for p in parts if p]
    return "Rules: " + (", ".join(shown) if shown else "none (set e.g. `/risk max_open_risk=6 max_position=20 max_sector=40`)")


@command(
    "risk",
    "Show or set your risk profile (account size and % risked per trade, used by /size) and your portfolio risk rules "
    "(max open risk %, per-position %, per-sector %, correlated holdings %; /portfolio and /order preview check them).",
    RiskArgs,
    acts=lambda a: bool(a.model_fields_set),
    examples=(
        "/risk",
        "/risk 25000 1",
        "/risk max_open_risk=6 max_position=20 max_sector=40",
        "/risk max_correlated=35",
        "/risk max_sector=off",
    ),
)
async def risk(ctx: Ctx, a: RiskArgs) -> Reply:
    from analytics.risk_rules import RiskRules

    if (a.account_size is None) != (a.risk_pct is None):
        raise UserError("give both the account size and the risk %, e.g. /risk 25000 1")
    changes = {RULE_OPTIONS[k]: getattr(a, k) for k in RULE_OPTIONS if getattr(a, k) is not None}
    async with ctx.tx() as s:
        user = await get_user(s, await ctx.owner(s))
        if a.account_size is not None and a.risk_pct is not None:  # both or neither, checked above
            user.account_size, user.risk_pct = float(a.account_size), float(a.risk_pct)
        stored = dict((user.settings or {}).get("risk_rules") or {})
        if changes:
            for k, v in changes.items():
                stored[k] = float(v) if v else None  # 0 clears the rule
            # a new dict: the JSON column notices a replaced value, not an edited one
            user.settings = {**(user.settings or {}), "risk_rules": RiskRules.model_validate(stored).model_dump()}
        account, pct = user.account_size, user.risk_pct
    rules = RiskRules.model_validate(stored).model_dump()
    saved = a.account_size is not None or bool(changes)
    per_trade = None if account is None or pct is None else round(account * pct / 100.0, 2)
    data = {
        "account_size": account,
        "risk_pct": pct,
        "risk_per_trade": per_trade,
        "rules": rules,
        "as_of": ctx.now().isoformat(),
        "sources": ["risk profile"],
    }
    if account is None:
        body = "Not set. Set it with `/risk ACCOUNT_SIZE RISK_PCT`, e.g. `/risk 25000 1`.\n" + _rules_line(rules)
        return Reply(
            title="Risk profile" + (" saved" if saved else ""), body=body, data=data, severity="success" if saved else "info"
        )
    return Reply(
        title="Risk profile" + (" saved" if saved else ""),
        body=f"Account {_money_s(account)}, risking {pct:g}% = {_money_s(per_trade)} per trade.\n" + _rules_line(rules),
        severity="success" if saved else "info",
        data=data,
    )
