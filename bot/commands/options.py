"""/vol, /contracts, /size and /risk: the volatility regime, option contracts for a plan, position sizing."""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING, Annotated, SupportsFloat, SupportsIndex

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


def _pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x * 100:.{digits}f}%"


def _money_s(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else (f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}")


# ---------------------------------------------------------------------------- /vol


class VolArgs(ArgsModel):
    symbol: SymbolArg = Field(description="ticker, e.g. TSLA")


def vol_reply(v: VolRegime) -> Reply:
    """The regime as a reply (also used by /context)."""
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


@command(
    "vol",
    "Volatility regime: ATM IV (30-day), HV20/60/120, IV/HV, 25-delta skew, term slope, IV rank.",
    VolArgs,
    examples=("/vol TSLA",),
    tool_hint="Result: atm_iv_30d, hv20/60/120, iv_hv_ratio, skew_25d, term_slope, iv_rank/iv_percentile (or an HV proxy when rank_basis is hv_proxy), regime.",
)
async def vol(ctx: Ctx, a: VolArgs) -> Reply:
    v = await ctx.services.options.vol_regime(a.symbol, ctx.now(), pinned=ctx.as_of is not None)
    return vol_reply(v)


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
        f"targets {', '.join(fmt_price(t) for t in p.targets) or '—'}. Scenarios priced {_horizon(r.horizon_days)} out, IV held."
    )
    if not r.candidates:
        return Reply(
            title=f"{r.symbol} {r.style}: no {r.right}s pass the gates",
            body=f"{head}\n{r.reason}",
            severity="warning",
            sources=r.sources,
            as_of=r.as_of,
            data=r,
        )
    lines = [
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
        lines.append(row)
    lines.append("```")
    best = r.candidates[0]
    if r.risk_amount is not None:
        if best.contracts:
            lines.append(
                f"Risking {_money_s(r.risk_amount)}: {best.contracts} × {best.symbol} loses about {_money_s(best.max_loss)} at the stop; premium outlay {_money_s(best.cost)}."
            )
        else:
            lines.append(
                f"Risking {_money_s(r.risk_amount)} buys no {best.symbol}: one contract loses about {_money_s(best.loss_at_stop)} at the stop."
            )
    return Reply(
        title=f"{r.symbol} {r.style}: top {len(r.candidates)} {r.right}s",
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
        direction=p.direction,
        sources=r.sources,
        as_of=r.as_of,
        data=r,
    )


def _horizon(days: float) -> str:
    if days < 1:
        return f"{days * 24:.1f} h".replace(".0 h", " h")
    return f"{days:g} days"


@command(
    "contracts",
    "Option contracts for the current plan: liquidity-gated, scenario P/L at entry/stop/targets, tradeability score.",
    ContractsArgs,
    examples=("/contracts TSLA", "/contracts NVDA swing 500", "/contracts SPY intraday risk_amount=300", "/contracts P-1A2B3C"),
    tool_hint="Needs a plan; when none qualifies, plan is null and reason says why. risk_amount only sets the projected count, "
    "it never filters. A plan id as symbol ranks for that stored plan; without a style, the style of the caller's latest "
    "plan for the symbol is used.",
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


@command(
    "size",
    "Position size from a risk amount and the stop distance: shares (or contracts of an option), with the max loss.",
    SizeArgs,
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
    from analytics.blackscholes import bs_price
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
    half = 0.5 * float(row["spread"])
    call = right == "call"
    premium = float(bs_price(a.entry, row["strike"], view.T, view.rate, view.div_yield, row["iv"], call)) + half
    at_stop = max(float(bs_price(a.stop, row["strike"], view.T, view.rate, view.div_yield, row["iv"], call)) - half, 0.0)
    loss = (premium - at_stop) * float(row["multiplier"])
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
    return res, [f"chain: {view.source} as of {view.as_of.isoformat()}"]


def size_reply(r: SizeResult) -> Reply:
    from renderers.text import fmt_price

    unit = "shares" if r.instrument == "shares" else "contracts"
    if r.instrument == "shares":
        what = f"{r.quantity:,} {unit} of {r.symbol}"
        per = f"{fmt_price(r.risk_per_unit)} per share"
    else:
        what = f"{r.quantity:,} × {r.contract}"
        per = f"{_money_s(r.risk_per_unit)} per contract (modelled at the stop, spread included)"
    src = "your risk profile" if r.risk_source == "profile" else "the amount given"
    body = f"{r.direction.title()} {what}: a stop-out loses about {_money_s(r.max_loss)} ({per}); risk {_money_s(r.risk_amount)} from {src}."
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
