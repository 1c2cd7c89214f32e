"""Option contracts for a plan: liquidity gates by style, scenario P/L at the plan's anchors, a tradeability score.

The public entry point is `rank_contracts(plan, views, ...)`. For a long plan it looks at
calls, for a short plan at puts, and for each contract:

1. **Gates** (`GATES[style]`): bid/ask spread at most `max_spread_pct` of the mid, |delta|
   inside the style's window, days to expiry inside its window, open interest and today's
   volume at least their minimums. A contract failing any gate is left out and counted
   under that gate's name, so an empty answer can say why.
2. **Scenarios** at the plan's anchors. The premium paid is the model value with the
   underlying at the plan's entry now, plus half the quoted spread (buying at the offer).
   Each anchor (entry, stop, every target) is then repriced `HORIZON_DAYS[style]` calendar
   days later (capped at expiry) with Black-Scholes at the contract's own IV held constant,
   so theta is included; the exit gives up half the spread again (selling at the bid).
   P/L is per contract, in dollars (`multiplier` shares).
3. **Projected count**: `risk_amount // loss at stop` when a risk amount is given. It never
   filters: a contract too expensive for the risk amount is kept, with a count of 0.
4. **Tradeability score** in [0, 1], a weighted sum of four factors each in [0, 1]:

       score = 0.25 spread + 0.20 liquidity + 0.20 delta_fit + 0.35 payoff

   - spread    = 1 - spread_pct / max_spread_pct
   - liquidity = mean of min(1, log10(1+OI) / log10(1+10 min_OI)) and the same for volume
   - delta_fit = 1 - |abs(delta) - target_delta| / half the delta window
   - payoff    = min(1, option R:R at the first target / (1.5 x the plan's R:R there)),
     where option R:R = P/L at the target / loss at the stop (theta and spreads included)

5. **Minimum R:R**: a contract whose option R:R at T1 is under the plan's minimum (its
   strategy's `min_rr`, the same floor the plan's targets keep) is flagged `below_min_rr`:
   a tight stop or a long hold can leave the option paying 0.4R where the stock pays 2R,
   because the spread and theta are paid either way.

Contracts that keep the minimum come first, then those flagged; within each, by score, ties
by tighter spread. The contracts are the plan's side (calls for a long plan, puts for a
short one); asked for the other side, the ranking says in `side_note` why it stays with the
plan's. Everything here is pure: the chains, the plan and the moment come in as arguments.

`price_scenarios` is the one option model: the sizing of a single contract
(`contract_loss_at_stop`) prices the stop with it too, so both answers agree to the cent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Literal

import numpy as np
import pandas as pd

from analytics.blackscholes import bs_price
from analytics.chains import ChainView
from analytics.iv import implied_vol, iv_bounds, no_solution_reason, solve_iv  # noqa: F401 - re-exported
from analytics.models import Model, Plan, PlanOption, Right, Style

SCORE_WEIGHTS = {"spread": 0.25, "liquidity": 0.20, "delta_fit": 0.20, "payoff": 0.35}


class LiquidityGates(Model):
    """What a contract must satisfy to be considered for a style."""

    max_spread_pct: float  # (ask - bid) / mid
    delta_min: float  # on |delta|
    delta_max: float
    target_delta: float
    dte_min: float  # calendar days
    dte_max: float
    min_open_interest: int
    min_volume: int


GATES: dict[str, LiquidityGates] = {
    "scalp": LiquidityGates(
        max_spread_pct=0.05,
        delta_min=0.40,
        delta_max=0.70,
        target_delta=0.55,
        dte_min=0,
        dte_max=7,
        min_open_interest=500,
        min_volume=200,
    ),
    "intraday": LiquidityGates(
        max_spread_pct=0.07,
        delta_min=0.35,
        delta_max=0.70,
        target_delta=0.50,
        dte_min=0,
        dte_max=14,
        min_open_interest=300,
        min_volume=100,
    ),
    "swing": LiquidityGates(
        max_spread_pct=0.10,
        delta_min=0.30,
        delta_max=0.70,
        target_delta=0.50,
        dte_min=14,
        dte_max=75,
        min_open_interest=100,
        min_volume=20,
    ),
    "leaps": LiquidityGates(
        max_spread_pct=0.12,
        delta_min=0.55,
        delta_max=0.90,
        target_delta=0.75,
        dte_min=180,
        dte_max=1000,
        min_open_interest=50,
        min_volume=0,
    ),
}

#: How long each style expects to hold, in calendar days: where the scenarios are priced.
HORIZON_DAYS: dict[str, float] = {"scalp": 1.0 / 24.0, "intraday": 6.5 / 24.0, "swing": 7.0, "leaps": 90.0}


class Scenario(Model):
    """The contract's value and P/L with the underlying at one of the plan's anchors, at the horizon."""

    anchor: str  # entry, stop, T1, T2, ...
    underlying: float
    value: float  # per share, after giving up half the spread
    pnl: float  # per contract, dollars
    pnl_pct: float  # of the premium paid


class RankedContract(Model):
    """A contract that passed the gates, with its scenarios, count and score."""

    symbol: str
    expiration: date
    dte: float
    strike: float
    right: Right
    bid: float
    ask: float
    mid: float
    spread_pct: float
    iv: float
    iv_source: str
    delta: float
    theta: float  # per share per calendar day
    open_interest: int
    volume: int
    premium: float  # per share, paid at the plan's entry (model + half spread)
    loss_at_stop: float  # per contract, dollars (positive = a loss)
    scenarios: list[Scenario]
    rr: list[float | None]  # option R:R per target
    #: The option R:R at T1 is under the plan's minimum R:R (ranked after those that keep it).
    below_min_rr: bool = False
    contracts: int | None = None  # projected count from risk_amount
    max_loss: float | None = None  # contracts x loss_at_stop
    cost: float | None = None  # contracts x premium x multiplier (lost entirely at worst)
    score: float
    score_factors: dict[str, float]


class PlanRef(Model):
    """The parts of the plan the ranking used."""

    plan_id: str
    version: int
    strategy: str
    direction: Literal["long", "short"]
    entry: float
    stop: float
    targets: list[float]
    #: The least R:R the plan's strategy accepts for a target (None: unknown strategy).
    min_rr: float | None = None


class ContractRanking(Model):
    """Ranked contracts for a plan, or none and why."""

    symbol: str
    style: Style
    as_of: datetime
    sources: list[str]
    plan: PlanRef | None
    right: Right | None
    horizon_days: float
    gates: LiquidityGates
    risk_amount: float | None
    candidates: list[RankedContract]
    considered: int
    rejected: dict[str, int]
    expirations: list[date]
    reason: str | None = None
    #: The side asked for (None: the plan's), and one line on why the plan's side is shown instead.
    asked: Right | None = None
    side_note: str | None = None


def strategy_min_rr(strategy_id: str) -> float | None:
    """The minimum R:R of a strategy's targets, or None for an id the library does not know."""
    from analytics.strategies import STRATEGIES

    return next((s.min_rr for s in STRATEGIES if s.id == strategy_id), None)


def model_words(horizon_days: float) -> str:
    """How an option is priced at the plan's anchors, in the words every reply uses."""
    return f"priced {horizon_text(horizon_days)} out, IV held, half the spread paid on the way in and out"


def horizon_text(days: float) -> str:
    """A holding horizon as people say it: 1 h, 6.5 h, 7 days."""
    if days < 1:
        return f"{days * 24:.1f} h".replace(".0 h", " h")
    return f"{days:g} days"


def price_scenarios(
    entry: float,
    anchors: np.ndarray,
    strike: np.ndarray,
    T_now: float,
    horizon_days: float,
    rate: float,
    div_yield: float,
    iv: np.ndarray,
    call: bool,
    spread: np.ndarray,
    multiplier: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(premium per share, value per share, P/L per contract) of contracts at each anchor price.

    The premium is Black-Scholes with the underlying at `entry` now plus half the spread; each
    anchor (A,) is repriced `horizon_days` later (capped at expiry) at the same IV, less half the
    spread. `strike`, `iv`, `spread` and `multiplier` are (N,); values and P/L are (A, N).
    """
    K = np.asarray(strike, float)
    sig = np.asarray(iv, float)
    half = 0.5 * np.asarray(spread, float)
    mult = np.asarray(multiplier, float)
    T_h = max(0.0, T_now - horizon_days / 365.0)
    premium = np.asarray(bs_price(entry, K, T_now, rate, div_yield, sig, call), float) + half
    S = np.asarray(anchors, float)[:, None]
    value = np.asarray(bs_price(S, K[None, :], T_h, rate, div_yield, sig[None, :], call), float)
    value = np.maximum(value - half[None, :], 0.0)
    pnl = (value - premium[None, :]) * mult[None, :]
    return premium, value, pnl


def contract_loss_at_stop(
    entry: float,
    stop: float,
    *,
    strike: float,
    T_now: float,
    horizon_days: float,
    rate: float,
    div_yield: float,
    iv: float,
    call: bool,
    spread: float,
    multiplier: float,
) -> tuple[float, float]:
    """(premium per share, loss per contract in dollars, rounded to cents) of one contract if the stop is hit: the ranking's model."""
    premium, _, pnl = price_scenarios(
        entry,
        np.array([stop]),
        np.array([strike]),
        T_now,
        horizon_days,
        rate,
        div_yield,
        np.array([iv]),
        call,
        np.array([spread]),
        np.array([multiplier]),
    )
    return float(premium[0]), round(float(-pnl[0, 0]), 2)


def side_note(asked: Right, plan: Plan) -> str:
    """One line on why `asked` contracts are not ranked for `plan` (whose side is the other one)."""
    mood = "bearish" if plan.direction == "short" else "bullish"
    shown = "put" if plan.direction == "short" else "call"
    other = "long" if plan.direction == "short" else "short"
    return (
        f"You asked for {asked}s, but the {plan.symbol} {plan.style} plan is {plan.direction} ({mood}): "
        f"{asked}s lose as price moves to its targets, so these are {shown}s for that plan; "
        f"{asked}s fit a {other} plan, and the planner's pick now is this {plan.direction} one."
    )


def plan_ref(plan: Plan, min_rr: float | None = None) -> PlanRef:
    return PlanRef(
        plan_id=plan.plan_id,
        version=plan.version,
        strategy=plan.strategy,
        direction=plan.direction,
        entry=plan.entry,
        stop=plan.stop,
        targets=[t.price for t in plan.targets],
        min_rr=min_rr,
    )


def expirations_for_style(expirations: Sequence[date], today: date, style: str, *, max_count: int = 6) -> list[date]:
    """Listed expirations inside the style's DTE window, at most `max_count`, spread across the window."""
    g = GATES[style]
    inside = sorted(e for e in expirations if g.dte_min <= (e - today).days <= g.dte_max)
    if len(inside) <= max_count:
        return inside
    pos = np.unique(np.round(np.linspace(0, len(inside) - 1, max_count)).astype(int))
    return [inside[i] for i in pos]


def _gate_mask(f: pd.DataFrame, g: LiquidityGates, dte: float) -> dict[str, np.ndarray]:
    """Per-gate failure masks (True = fails) in the order they are reported."""
    absd = np.abs(f["delta"].to_numpy(float))
    spread_pct = f["spread_pct"].to_numpy(float)
    return {
        "no_quote": ~np.isfinite(f["mid"].to_numpy(float)),
        "no_iv": ~np.isfinite(f["iv"].to_numpy(float)),
        "dte": np.full(len(f), not (g.dte_min <= dte <= g.dte_max)),
        "spread": ~(spread_pct <= g.max_spread_pct),
        "delta": ~((absd >= g.delta_min) & (absd <= g.delta_max)),
        "open_interest": f["open_interest"].to_numpy(float) < g.min_open_interest,
        "volume": f["volume"].to_numpy(float) < g.min_volume,
    }


def _liquidity(n: np.ndarray, minimum: int) -> np.ndarray:
    if minimum <= 0:
        return np.clip(np.log10(1.0 + n) / math.log10(1.0 + 100.0), 0.0, 1.0)
    return np.clip(np.log10(1.0 + n) / math.log10(1.0 + 10.0 * minimum), 0.0, 1.0)


def rank_contracts(
    plan: Plan | None,
    views: Sequence[ChainView],
    *,
    at: datetime,
    style: Style | None = None,
    risk_amount: float | None = None,
    sources: Sequence[str] = (),
    top: int = 5,
    no_plan_reason: str | None = None,
    check_dte: bool = True,
    symbol: str | None = None,
    asked: Right | None = None,
    min_rr: float | None = None,
) -> ContractRanking:
    """Rank the contracts of `views` for `plan` (see the module docstring); a plan of None gives an empty ranking with the reason.

    `asked` is the side the person asked for; `min_rr` the plan's minimum R:R (default: its strategy's).
    """
    style = style or (plan.style if plan else "swing")
    g = GATES[style]
    horizon = HORIZON_DAYS[style]
    underlying = plan.symbol if plan else (symbol or (views[0].underlying if views else ""))
    exps = [v.expiration for v in views]

    def ranking(
        ref: PlanRef | None,
        right: Right | None,
        reason: str | None,
        candidates: list[RankedContract] | None = None,
        considered: int = 0,
        rejected: dict[str, int] | None = None,
    ) -> ContractRanking:
        note = side_note(asked, plan) if (asked and plan is not None and right is not None and asked != right) else None
        return ContractRanking(
            symbol=underlying,
            style=style,
            as_of=at,
            sources=list(sources),
            horizon_days=horizon,
            gates=g,
            risk_amount=risk_amount,
            expirations=exps,
            plan=ref,
            right=right,
            candidates=candidates or [],
            considered=considered,
            rejected=rejected or {},
            reason=reason,
            asked=asked,
            side_note=note,
        )

    if plan is None:
        return ranking(None, None, no_plan_reason or "no plan qualifies")
    right: Right = "call" if plan.direction == "long" else "put"
    floor = min_rr if min_rr is not None else strategy_min_rr(plan.strategy)
    ref = plan_ref(plan, floor)
    if not views:
        return ranking(ref, right, f"no {underlying} expirations between {g.dte_min:g} and {g.dte_max:g} days for {style}")
    if plan.entry == plan.stop:
        return ranking(ref, right, "the plan's entry equals its stop")

    anchors = [("entry", plan.entry), ("stop", plan.stop)] + [(f"T{i + 1}", t.price) for i, t in enumerate(plan.targets)]
    plan_rr1 = plan.targets[0].rr if plan.targets else None
    rejected: dict[str, int] = {}
    considered = 0
    found: list[RankedContract] = []
    for view in views:
        f = view.frame
        f = f[f["right"] == right].reset_index(drop=True)
        if f.empty:
            continue
        considered += len(f)
        fails = _gate_mask(f, g, view.dte)
        if not check_dte:  # an expiration the user chose explicitly
            fails.pop("dte")
        keep = np.ones(len(f), bool)
        for name, m in fails.items():
            # count each contract under the first gate it fails, so the counts add up
            first = keep & m
            if first.any():
                rejected[name] = rejected.get(name, 0) + int(first.sum())
            keep &= ~m
        f = f[keep].reset_index(drop=True)
        if f.empty:
            continue
        K = f["strike"].to_numpy(float)
        iv = f["iv"].to_numpy(float)
        mult = f["multiplier"].to_numpy(float)
        call = right == "call"
        S_anchor = np.array([a[1] for a in anchors], float)
        premium, value, pnl = price_scenarios(
            plan.entry, S_anchor, K, view.T, horizon, view.rate, view.div_yield, iv, call, f["spread"].to_numpy(float), mult
        )
        loss_stop = np.round(-pnl[1], 2)  # in cents, so count x loss is exactly the reported max loss
        gains = pnl[2:]
        with np.errstate(divide="ignore", invalid="ignore"):
            rr = np.where(loss_stop[None, :] > 0, gains / loss_stop[None, :], np.nan)

        spread_f = np.clip(1.0 - f["spread_pct"].to_numpy(float) / g.max_spread_pct, 0.0, 1.0)
        liq_f = 0.5 * _liquidity(f["open_interest"].to_numpy(float), g.min_open_interest) + 0.5 * _liquidity(
            f["volume"].to_numpy(float), g.min_volume
        )
        half_win = max(1e-9, 0.5 * (g.delta_max - g.delta_min))
        delta_f = np.clip(1.0 - np.abs(np.abs(f["delta"].to_numpy(float)) - g.target_delta) / half_win, 0.0, 1.0)
        if len(gains) and plan_rr1 and plan_rr1 > 0:
            payoff_f = np.clip(np.nan_to_num(rr[0], nan=0.0) / (1.5 * plan_rr1), 0.0, 1.0)
        else:
            payoff_f = np.zeros(len(f))
        score = (
            SCORE_WEIGHTS["spread"] * spread_f
            + SCORE_WEIGHTS["liquidity"] * liq_f
            + SCORE_WEIGHTS["delta_fit"] * delta_f
            + SCORE_WEIGHTS["payoff"] * payoff_f
        )
        for i in range(len(f)):
            count = max_loss = cost = None
            if risk_amount is not None and loss_stop[i] > 0:
                count = int(math.floor(risk_amount / loss_stop[i] + 1e-9))
                max_loss = round(count * float(loss_stop[i]), 2)
                cost = round(count * float(premium[i]) * float(mult[i]), 2)
            found.append(
                RankedContract(
                    symbol=str(f.at[i, "symbol"]),
                    expiration=view.expiration,
                    dte=round(view.dte, 2),
                    strike=float(K[i]),
                    right=right,
                    bid=float(f.at[i, "bid"]),
                    ask=float(f.at[i, "ask"]),
                    mid=float(f.at[i, "mid"]),
                    spread_pct=round(float(f.at[i, "spread_pct"]), 4),
                    iv=round(float(iv[i]), 6),
                    iv_source=str(f.at[i, "iv_source"]),
                    delta=round(float(f.at[i, "delta"]), 4),
                    theta=round(float(f.at[i, "theta"]), 4),
                    open_interest=int(f.at[i, "open_interest"]),
                    volume=int(f.at[i, "volume"]),
                    premium=round(float(premium[i]), 4),
                    loss_at_stop=round(float(loss_stop[i]), 2),
                    scenarios=[
                        Scenario(
                            anchor=name,
                            underlying=px,
                            value=round(float(value[j, i]), 4),
                            pnl=round(float(pnl[j, i]), 2),
                            pnl_pct=round(float(pnl[j, i] / (premium[i] * mult[i])) * 100.0, 2) if premium[i] > 0 else 0.0,
                        )
                        for j, (name, px) in enumerate(anchors)
                    ],
                    rr=[None if not np.isfinite(v) else round(float(v), 3) for v in rr[:, i]],
                    below_min_rr=bool(floor is not None and len(gains) and np.isfinite(rr[0, i]) and rr[0, i] < floor - 1e-9),
                    contracts=count,
                    max_loss=max_loss,
                    cost=cost,
                    score=round(float(score[i]), 4),
                    score_factors={
                        "spread": round(float(spread_f[i]), 4),
                        "liquidity": round(float(liq_f[i]), 4),
                        "delta_fit": round(float(delta_f[i]), 4),
                        "payoff": round(float(payoff_f[i]), 4),
                    },
                )
            )
    # a contract that keeps the plan's minimum R:R outranks any that does not, whatever the scores
    found.sort(key=lambda c: (c.below_min_rr, -c.score, c.spread_pct, c.symbol))
    reason = None
    if not found:
        reason = _why_none(right, style, g, considered, rejected)
    return ranking(ref, right, reason, found[:top], considered, rejected)


_GATE_WORDS = {
    "no_quote": "had no two-sided quote",
    "no_iv": "had no implied volatility",
    "dte": "were outside the {dte_min:g}-{dte_max:g} day window",
    "spread": "had a spread wider than {max_spread_pct:.0%} of mid",
    "delta": "had |delta| outside {delta_min:.2f}-{delta_max:.2f}",
    "open_interest": "had open interest under {min_open_interest}",
    "volume": "had volume under {min_volume} today",
}


def _why_none(right: str, style: str, g: LiquidityGates, considered: int, rejected: dict[str, int]) -> str:
    if considered == 0:
        return f"no {right}s listed in the {style} window ({g.dte_min:g}-{g.dte_max:g} days)"
    parts = [f"{n} {_GATE_WORDS[k].format(**g.model_dump())}" for k, n in sorted(rejected.items(), key=lambda kv: -kv[1])]
    return f"none of {considered} {right}s passed the {style} gates: " + "; ".join(parts)


def top_pick(r: ContractRanking) -> PlanOption:
    """The ranking's best contract in a plan's terms (strike, expiry, delta, mid, spread, R:R at T1, count), or why none."""
    if not r.candidates:
        return PlanOption(reason=r.reason or f"no {r.right or 'option'}s pass the liquidity gates", sources=r.sources)
    c = r.candidates[0]
    return PlanOption(
        contract=c.symbol,
        right=c.right,
        strike=c.strike,
        expiration=c.expiration,
        dte=c.dte,
        delta=c.delta,
        mid=c.mid,
        spread_pct=c.spread_pct,
        rr_t1=c.rr[0] if c.rr else None,
        contracts=c.contracts,
        risk_amount=r.risk_amount,
        sources=r.sources,
    )
