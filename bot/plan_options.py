"""The option line of a plan: the contract ranking's top contract for the plan, sized to the caller's risk budget.

/plan asks for it after planning. It reuses `OptionsService.rank_for_plan` (the same ranking as
/contracts) with a time limit, so a slow chain never holds up the plan: past the limit the plan
answers with the reason instead.
"""

from __future__ import annotations

import asyncio

import structlog

from analytics.models import PlanOption, PlanResult
from analytics.options import top_pick
from bot.request import Ctx
from core.errors import CoachError
from storage.identity import get_user

log = structlog.get_logger("coach.plan_options")

#: Seconds the option lookup may add to /plan before the plan answers without it.
OPTIONS_TIMEOUT = 3.0


async def risk_budget(ctx: Ctx) -> float | None:
    """Dollars the caller risks per trade by their risk profile (account x risk %), or None when not set."""
    async with ctx.tx() as s:
        user = await get_user(s, await ctx.owner(s))
    if user.account_size is None or user.risk_pct is None:
        return None
    return float(user.account_size) * float(user.risk_pct) / 100.0


async def plan_option(ctx: Ctx, result: PlanResult, *, timeout: float = OPTIONS_TIMEOUT) -> PlanOption:
    """The top contract for `result`'s plan, or a PlanOption carrying only the reason there is none."""
    if result.plan is None:
        return PlanOption(reason="no plan, so no contract")
    try:
        budget = await risk_budget(ctx)
        ranking = await asyncio.wait_for(
            ctx.services.options.rank_for_plan(result.plan, result.symbol, result.style, ctx.now(), risk_amount=budget, top=1),
            timeout,
        )
    except TimeoutError:
        return PlanOption(reason=f"the option chains took longer than {timeout:g} s; /contracts {result.symbol} looks again")
    except CoachError as exc:  # no listed options, a provider refusing chains: the plan stands without them
        return PlanOption(reason=exc.message)
    return top_pick(ranking)


def option_line(o: PlanOption) -> str:
    """The option pick in one line: contract, delta, mid, spread, R:R at T1 and the count for the risk budget."""
    if o.contract is None:
        return f"none: {o.reason or 'no contract qualifies'}"
    parts = [o.contract]
    if o.delta is not None:
        parts.append(f"Δ {o.delta:+.2f}")
    if o.mid is not None:
        parts.append(f"mid {o.mid:.2f}")
    if o.spread_pct is not None:
        parts.append(f"spread {o.spread_pct * 100:.1f}%")
    if o.rr_t1 is not None:
        parts.append(f"{o.rr_t1:.1f}R at T1")
    if o.contracts is not None and o.risk_amount is not None:
        parts.append(f"{o.contracts} for ${o.risk_amount:,.0f} risk")
    else:
        parts.append("set /risk for a count")
    return " · ".join(parts)
