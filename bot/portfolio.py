"""The portfolio view: exposure, sectors, beta and correlation, greeks, open risk and the rules it breaks.

Built on `bot.holdings` (what is held, priced): options count at their delta dollars, so a
call is exposure to its underlying. Beta and correlation use the underlyings' daily closes
over the last `LOOKBACK` sessions, with SPY as the benchmark.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from analytics.portfolio import LOOKBACK, beta, correlation_matrix, daily_returns, exposure, portfolio_beta, weights_by
from analytics.risk_rules import (
    CORRELATED_ABOVE,
    DEFAULT_POSITION_PCT,
    DEFAULT_SECTOR_PCT,
    Breach,
    RiskRules,
    check_rules,
    correlated_groups,
)
from analytics.sectors import sector_of
from bot.holdings import PositionsResult, PositionView
from bot.request import Ctx
from core.errors import NotFoundError, ProviderError
from storage.identity import Owner, get_user

if TYPE_CHECKING:
    from bot.sector_source import SectorLookup

BENCHMARK = "SPY"
#: Correlation above which two holdings on the same side count as one bet.
HIGH_CORRELATION = 0.8


class SymbolExposure(BaseModel):
    symbol: str
    sector: str
    value: float  # signed delta dollars
    pct: float  # signed, of the account
    beta: float | None = None


class PortfolioResult(BaseModel):
    """The answer to /portfolio."""

    broker: str
    account_size: float
    account_source: str  # "risk profile" or "gross exposure" (no /risk set)
    gross: float
    net: float
    long: float
    short: float
    gross_pct: float
    net_pct: float
    long_pct: float
    short_pct: float
    symbols: list[SymbolExposure]
    sectors: dict[str, float]  # % of the account, absolute
    sector_source: str  # "polygon SIC", "shipped mapping", or polygon with the symbols it had no code for
    beta: float | None  # of the book to SPY, in account terms
    beta_dollars: float | None  # SPY-equivalent dollars
    correlation_symbols: list[str]
    correlation: list[list[float]]
    sessions: int
    correlated: dict[str, float]  # "A+B" -> combined % of the account of holdings correlated above CORRELATED_ABOVE
    delta_dollars: float
    gamma_dollars: float  # change of delta dollars for a 1% move of every underlying
    vega: float  # dollars per vol point
    theta: float  # dollars per calendar day
    open_risk: float
    open_risk_pct: float
    no_stop: list[str]  # positions whose loss to a stop is unknown
    rules: RiskRules
    breaches: list[Breach]
    warnings: list[str]
    positions: PositionsResult
    as_of: datetime
    sources: list[str]


async def load_rules(ctx: Ctx, owner: Owner) -> tuple[RiskRules, float | None]:
    """The caller's risk rules and account size."""
    async with ctx.tx() as s:
        user = await get_user(s, owner)
        return RiskRules.model_validate((user.settings or {}).get("risk_rules") or {}), user.account_size


async def _closes(ctx: Ctx, symbols: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Daily closes of `symbols`, one column each, on the sessions they share (the last LOOKBACK + 1)."""
    end = ctx.now()
    start = end - timedelta(days=int(LOOKBACK * 1.6) + 10)

    async def one(sym: str) -> pd.Series | None:
        try:
            bars = await ctx.services.market.bars(sym, "1D", start, end)
        except (NotFoundError, ProviderError):
            return None
        if bars.empty:
            return None
        s = bars.df["close"].copy()
        s.index = s.index.normalize()
        return s[~s.index.duplicated(keep="last")].rename(sym)

    symbols = list(dict.fromkeys(symbols))  # a held SPY is also the benchmark: one column
    got = await asyncio.gather(*(one(s) for s in symbols))
    series = [s for s in got if s is not None]
    if not series:
        return pd.DataFrame(), []
    frame = pd.concat(series, axis=1, join="inner").tail(LOOKBACK + 1)
    return frame, sorted({str(s) for s in symbols} - set(frame.columns))


def _correlation(closes: pd.DataFrame, names: list[str]) -> tuple[list[str], np.ndarray]:
    """The holdings of `names` that have closes, and the correlation matrix of their daily returns."""
    if closes.empty or len(closes) < 3:
        return [], np.zeros((0, 0))
    cols = list(closes.columns)
    syms = [k for k in names if k in cols]
    if not syms:
        return [], np.zeros((0, 0))
    rets = daily_returns(closes[syms].to_numpy(dtype=float).T)
    return syms, correlation_matrix(rets)


def _greeks(views: list[PositionView]) -> tuple[float, float, float]:
    gamma = vega = theta = 0.0
    for p in views:
        if p.asset_class != "option":
            continue
        units = p.quantity * p.multiplier
        spot = p.underlying_price or 0.0
        gamma += (p.gamma or 0.0) * units * spot * spot * 0.01
        vega += (p.vega or 0.0) * units
        theta += (p.theta or 0.0) * units
    return gamma, vega, theta


def build_portfolio(
    held: PositionsResult,
    closes: pd.DataFrame,
    rules: RiskRules,
    account_size: float | None,
    sector_lookup: SectorLookup | None = None,
) -> PortfolioResult:
    """The portfolio of `held` (priced positions), with `closes` (daily, by underlying and SPY) for beta and correlation.

    `sector_lookup` says each underlying's sector (`bot.sector_source`); without it the shipped mapping is used.
    """
    by_symbol: dict[str, float] = {}
    for p in held.positions:
        by_symbol[p.underlying] = by_symbol.get(p.underlying, 0.0) + (p.delta_dollars or 0.0)
    names = sorted(by_symbol, key=lambda k: -abs(by_symbol[k]))
    values = np.array([by_symbol[k] for k in names], dtype=float)
    ex = exposure(values)
    account = account_size if account_size else ex.gross
    source = "risk profile" if account_size else "gross exposure"
    pct = (lambda x: 100.0 * x / account) if account > 0 else (lambda x: 0.0)

    betas: dict[str, float | None] = {}
    corr_syms: list[str] = []
    corr = np.zeros((0, 0))
    sessions = 0
    if not closes.empty and len(closes) >= 3:
        rets = daily_returns(closes.to_numpy(dtype=float).T)
        sessions = rets.shape[1]
        cols = list(closes.columns)
        bench = rets[cols.index(BENCHMARK)] if BENCHMARK in cols else None
        for k in names:
            if k in cols and bench is not None:
                betas[k] = beta(rets[cols.index(k)], bench)
        corr_syms, corr = _correlation(closes, names)

    weights = values / account if account > 0 else np.zeros_like(values)
    book_beta = portfolio_beta(weights, [betas.get(k) for k in names]) if names else None
    symbols = [
        SymbolExposure(symbol=k, sector=_sector(sector_lookup, k), value=by_symbol[k], pct=pct(by_symbol[k]), beta=betas.get(k))
        for k in names
    ]
    sector_source = sector_lookup.source if sector_lookup is not None and sector_lookup.origin else "shipped mapping"
    sectors = weights_by([s.sector for s in symbols], values, account) if account > 0 else {}
    gamma, vega, theta = _greeks(held.positions)
    no_stop = [p.symbol for p in held.positions if p.risk_to_stop is None]
    open_risk = held.risk_to_stops
    open_risk_pct = pct(open_risk)
    correlated = correlated_groups(corr_syms, [pct(by_symbol[k]) for k in corr_syms], corr.tolist())
    breaches = check_rules(
        rules,
        open_risk_pct=open_risk_pct if account_size else None,
        symbol_pct={s.symbol: s.pct for s in symbols} if account_size else {},
        sector_pct=sectors if account_size else {},
        correlated_pct=correlated if account_size else {},
    )
    warnings: list[str] = []
    if not account_size and names:
        warnings.append("no account size: percents are of gross exposure; set it with /risk ACCOUNT_SIZE RISK_PCT")
    breached = {(b.rule, b.subject) for b in breaches}
    if account_size:
        for s in symbols:
            if rules.max_position_pct is None and abs(s.pct) > DEFAULT_POSITION_PCT:
                warnings.append(f"{s.symbol} is {abs(s.pct):.0f}% of the account (over {DEFAULT_POSITION_PCT:g}%)")
        for sector, w in sectors.items():
            if rules.max_sector_pct is None and w > DEFAULT_SECTOR_PCT and ("max_sector_pct", sector) not in breached:
                warnings.append(f"{sector} is {w:.0f}% of the account (over {DEFAULT_SECTOR_PCT:g}%)")
        if ex.gross > account * 1.0001:
            warnings.append(f"gross exposure {pct(ex.gross):.0f}% of the account: leveraged")
    side = {k: np.sign(by_symbol[k]) for k in names}
    for i, a in enumerate(corr_syms):
        for j in range(i + 1, len(corr_syms)):
            b = corr_syms[j]
            c = float(corr[i, j])
            if BENCHMARK not in (a, b) and c > HIGH_CORRELATION and side[a] == side[b]:
                warnings.append(f"{a} and {b} move together (correlation {c:.2f}): one bet, twice")
    if no_stop:
        warnings.append(f"no stop known for {', '.join(no_stop)}: its risk is not in the open risk")
    return PortfolioResult(
        broker=held.broker,
        account_size=account,
        account_source=source,
        gross=ex.gross,
        net=ex.net,
        long=ex.long,
        short=ex.short,
        gross_pct=pct(ex.gross),
        net_pct=pct(ex.net),
        long_pct=pct(ex.long),
        short_pct=pct(ex.short),
        symbols=symbols,
        sectors=sectors,
        sector_source=sector_source,
        beta=book_beta,
        beta_dollars=None if book_beta is None else book_beta * account,
        correlation_symbols=corr_syms,
        correlation=[[round(float(x), 4) for x in row] for row in corr],
        sessions=sessions,
        correlated=correlated,
        delta_dollars=float(values.sum()),
        gamma_dollars=gamma,
        vega=vega,
        theta=theta,
        open_risk=open_risk,
        open_risk_pct=open_risk_pct,
        no_stop=no_stop,
        rules=rules,
        breaches=breaches,
        warnings=warnings,
        positions=held,
        as_of=held.as_of,
        sources=[*held.sources, f"sectors: {sector_source}"] if names else held.sources,
    )


def _sector(lookup: SectorLookup | None, symbol: str) -> str:
    return lookup.sectors.get(symbol, sector_of(symbol)) if lookup is not None else sector_of(symbol)


async def lookup_sectors(ctx: Ctx, symbols: list[str]) -> SectorLookup:
    """The sectors of `symbols` from the configured market (Polygon's SIC codes) or the shipped mapping."""
    from bot.sector_source import resolve_sectors

    return await resolve_sectors(ctx.services.market, symbols)


async def load_portfolio(ctx: Ctx, owner: Owner, held: PositionsResult | None = None) -> PortfolioResult:
    """The caller's portfolio now."""
    from bot.holdings import load_positions

    held = held or await load_positions(ctx, owner)
    rules, account = await load_rules(ctx, owner)
    underlyings = sorted({p.underlying for p in held.positions})
    closes, _missing = await _closes(ctx, [*underlyings, BENCHMARK]) if underlyings else (pd.DataFrame(), [])
    sectors = await lookup_sectors(ctx, underlyings) if underlyings else None
    return build_portfolio(held, closes, rules, account, sectors)


def field_pairs(res: PortfolioResult) -> list[tuple[str, Any]]:
    """Label, value pairs of the headline numbers (for replies)."""
    return [
        ("Gross", f"${res.gross:,.0f} ({res.gross_pct:.0f}%)"),
        ("Net", f"{'-' if res.net < 0 else ''}${abs(res.net):,.0f} ({res.net_pct:+.0f}%)"),
        ("Long / short", f"{res.long_pct:.0f}% / {res.short_pct:.0f}%"),
        ("Beta to SPY", "—" if res.beta is None else f"{res.beta:+.2f}"),
        ("Open risk", f"${res.open_risk:,.0f} ({res.open_risk_pct:.2f}%)"),
    ]


def _by_symbol(held: PositionsResult) -> dict[str, float]:
    """Underlying -> signed delta dollars."""
    out: dict[str, float] = {}
    for p in held.positions:
        out[p.underlying] = out.get(p.underlying, 0.0) + (p.delta_dollars or 0.0)
    return out


def _check(
    rules: RiskRules,
    by_symbol: dict[str, float],
    risk: float,
    account: float,
    closes: pd.DataFrame,
    sectors: Mapping[str, str],
) -> dict[tuple[str, str], Breach]:
    symbol_pct = {k: 100.0 * v / account for k, v in by_symbol.items()}
    sector_pct = weights_by([sectors.get(k) or sector_of(k) for k in by_symbol], list(by_symbol.values()), account)
    syms, corr = _correlation(closes, [k for k in by_symbol if abs(by_symbol[k]) > 0])
    correlated = correlated_groups(syms, [symbol_pct[k] for k in syms], corr.tolist(), CORRELATED_ABOVE)
    found = check_rules(
        rules,
        open_risk_pct=100.0 * risk / account,
        symbol_pct=symbol_pct,
        sector_pct=sector_pct,
        correlated_pct=correlated,
    )
    return {(b.rule, b.subject): b for b in found}


async def rule_closes(ctx: Ctx, rules: RiskRules, symbols: list[str]) -> pd.DataFrame:
    """Daily closes for the correlated-exposure rule (none fetched when that rule is not set)."""
    if rules.max_correlated_pct is None or len(symbols) < 2:
        return pd.DataFrame()
    closes, _missing = await _closes(ctx, sorted(set(symbols)))
    return closes


async def order_rule_warnings(
    ctx: Ctx, owner: Owner, *, instrument: str, underlying: str, signed_units: float, price: float, plan_stop: float | None
) -> list[str]:
    """What the caller's risk rules say of an order: each rule it would break or push further past (empty when none).

    `signed_units` is shares or contracts x 100, positive for a buy. An option order counts at its premium
    (no delta is known before it is held); the risk it adds is the distance to the plan's stop (equity)
    or the premium (a long option), and a closing order takes away its share of the position's risk.
    """
    from bot.holdings import load_positions

    rules, account = await load_rules(ctx, owner)
    if rules.empty or not account:
        return []
    held = await load_positions(ctx, owner)
    by_symbol, risk = _by_symbol(held), held.risk_to_stops
    closes = await rule_closes(ctx, rules, [*by_symbol, underlying])
    # only the sector rule needs sectors: no lookups for an order otherwise
    sectors = (await lookup_sectors(ctx, sorted({*by_symbol, underlying}))).sectors if rules.max_sector_pct is not None else {}
    before = _check(rules, by_symbol, risk, account, closes, sectors)
    current = next((p for p in held.positions if p.symbol == instrument), None)
    units_held = current.quantity * current.multiplier if current is not None else 0.0
    after_symbol = dict(by_symbol)
    after_symbol[underlying] = after_symbol.get(underlying, 0.0) + signed_units * price
    added = 0.0
    if units_held and units_held * signed_units < 0:  # reduces what is held
        closed = min(abs(signed_units), abs(units_held)) / abs(units_held)
        added -= (current.risk_to_stop or 0.0) * closed if current is not None else 0.0
        opened = max(0.0, abs(signed_units) - abs(units_held))
    else:
        opened = abs(signed_units)
    if opened:
        if is_option(instrument):
            added += opened * price if signed_units > 0 else 0.0
        elif plan_stop is not None:
            added += opened * max(0.0, (price - plan_stop) if signed_units > 0 else (plan_stop - price))
    after = _check(rules, after_symbol, max(0.0, risk + added), account, closes, sectors)
    out = []
    for key, b in after.items():
        was = before.get(key)
        if was is None or b.value_pct > was.value_pct + 1e-9:
            out.append(f"breaks your rule: {b.describe()} after this order")
    return out


def is_option(instrument: str) -> bool:
    from providers.broker.base import is_occ

    return is_occ(instrument)
