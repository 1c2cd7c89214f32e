"""/backtest and /scorecard: do the coach's plans, and their odds, hold up?

`/backtest` replays the planner over recent sessions (bounded for chat; `coach backtest` runs
long ones) and answers with the figures and the equity/calibration picture. `/scorecard`
shows the same figures for the caller's own tracked plans, from their recorded outcomes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from analytics.strategy_ids import STRATEGY_IDS
from bot.args import ArgsModel, StyleArg, SymbolsArg
from bot.registry import command
from bot.reply import Attachment, Reply, ReplyField
from bot.request import Ctx
from core.errors import UserError
from storage import journal

# The backtest engine, its statistics, the session calendar and the renderers (numpy, pandas,
# matplotlib) are imported where they run: declaring the commands, as a chat front does to validate
# arguments, loads none of them.
if TYPE_CHECKING:
    from analytics.backtest_engine import BacktestSpec
    from analytics.backtest_stats import Calibration, GroupStats, Report
    from analytics.outcomes import TradeOutcome

#: Chat runs are bounded so a reply comes within seconds; `coach backtest` has no such limit.
CHAT_MAX_SYMBOLS = 10
CHAT_MAX_DECISIONS = 600


STRATEGY_CHOICES = ("all", "best", *STRATEGY_IDS)
StrategyChoice = Literal[STRATEGY_CHOICES]  # type: ignore[valid-type]
STYLES = ("scalp", "intraday", "swing", "leaps")


class BacktestArgs(ArgsModel):
    symbols: SymbolsArg = Field(min_length=1, description="tickers to replay, e.g. SPY,QQQ,TSLA")
    style: StyleArg = Field("intraday", description="trading style: scalp intraday swing leaps")
    # `rare`: grouped under `more` in the coach's lean tool schema (bot.agent.schemas)
    strategy: StrategyChoice = Field(
        "all",
        description="all (each strategy on its own), best (the coach's pick) or a strategy id",
        json_schema_extra={"rare": True},
    )
    days: int = Field(10, ge=1, le=500, description="sessions to replay, ending at the last close (or --as-of)")
    every: int | None = Field(
        None,
        ge=1,
        le=100,
        description="ask the planner every N execution bars (default: 15 min intraday)",
        json_schema_extra={"rare": True},
    )

    @model_validator(mode="before")
    @classmethod
    def _strategy_in_style_place(cls, values: Any) -> Any:
        # "/backtest SPY orb" puts the strategy where the style goes: move it
        if isinstance(values, dict):
            style, strat = str(values.get("style", "")).strip().lower(), values.get("strategy")
            if style and style not in STYLES and style in STRATEGY_CHOICES:
                values = {**values, "strategy": style}
                if strat is not None and str(strat).strip().lower() in STYLES:
                    values["style"] = str(strat).strip().lower()
                else:
                    values.pop("style")
        return values


class ScorecardArgs(ArgsModel):
    strategy: str | None = Field(None, max_length=32, description="only this strategy id (default: all)")
    days: int | None = Field(None, ge=1, le=3650, description="only plans made in the last N days")


# ---------------------------------------------------------------------------- words and tables


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def _r(x: float | None) -> str:
    return "—" if x is None else f"{x:+.2f}"


def _pf(g: GroupStats) -> str:
    if g.profit_factor is not None:
        return f"{g.profit_factor:.2f}"
    return "∞" if g.trades and g.gross_win_r > 0 else "—"


def stats_table(groups: list[GroupStats], head: str) -> str:
    """A fixed-width table of group figures (for a code block)."""
    w = max([len(head), *(len(g.key) for g in groups)]) + 1
    lines = [f"{head:<{w}} plans trades  hit%   T1%  exp R    PF  maxDD  MAE  MFE"]
    for g in groups:
        lines.append(
            f"{g.key:<{w}} {g.plans:>5} {g.trades:>6} {_pct(g.hit_rate):>5} {_pct(g.t1_rate):>5} {_r(g.expectancy_r):>6} "
            f"{_pf(g):>5} {g.max_drawdown_r:>5.1f}R {(g.avg_mae_r or 0):>4.2f} {(g.avg_mfe_r or 0):>4.2f}"
        )
    return "\n".join(lines)


def _skill(cal: Calibration) -> str:
    if cal.skill is None:
        return "—"
    return f"{cal.skill:+.2f}" + (f" ± {cal.skill_se:.2f}" if cal.skill_se is not None else "")


def calibration_words(cal: Calibration, quality: Calibration | None = None) -> str:
    """Whether the odds held up (Brier against the base rate), and the quality grade beside them as the anchor."""
    if cal.n == 0 or cal.brier is None:
        return "Odds: no entered plan has resolved yet, so the odds cannot be checked."
    base = cal.base_rate or 0.0
    said = cal.mean_forecast or 0.0
    head = (
        f"Odds of T1 before the stop over {cal.n} entered plans: said {said:.0%} on average, {base:.0%} happened. "
        f"Brier {cal.brier:.3f} against {cal.brier_reference:.3f} for always saying the base rate: skill {_skill(cal)}"
    )
    if cal.skill is None:
        verdict = "."
    elif cal.skill_se is not None and cal.skill < -2 * cal.skill_se:
        verdict = ": worse than the base rate here."
    elif cal.skill_se is not None and cal.skill > 2 * cal.skill_se:
        verdict = ": better than the base rate here."
    else:
        verdict = ": as good as the base rate, within noise."
    text = head + verdict
    if quality is not None and quality.n and quality.skill is not None:
        text += (
            f" The quality grade read as odds would score skill {_skill(quality)} (average {quality.mean_forecast or 0:.0%}):"
            " it grades setups, it is not odds."
        )
    return text


def calibration_table(cal: Calibration, head: str) -> str:
    """Per forecast bucket: plans, what was said on average, how often T1 came before the stop."""
    lines = [f"{head:<12} plans  said  happened"]
    for b in cal.buckets:
        if b.n and b.mean_forecast is not None and b.observed is not None:
            lines.append(f"{b.low:.1f}-{b.high:.1f}{'':<5} {b.n:>5} {b.mean_forecast:>5.0%} {b.observed:>9.0%}")
    return "\n".join(lines)


def summary_body(rep: Report, intro: str) -> str:
    """The chat body: intro, the odds in words, per-strategy figures, the odds' and the quality grade's calibration."""
    parts = [
        intro,
        calibration_words(rep.calibration, rep.quality_calibration),
        "```",
        stats_table([*rep.by_strategy, rep.overall], "strategy"),
        "",
        calibration_table(rep.calibration, "T1 odds"),
    ]
    if rep.quality_calibration is not None:
        parts += ["", calibration_table(rep.quality_calibration, "quality"), "", stats_table(rep.by_quality, "quality")]
    parts.append("```")
    return "\n".join(parts)


def picture(rep: Report, outcomes: list[TradeOutcome], title: str, subtitle: str) -> bytes:
    """The equity and calibration PNG, with a curve per strategy."""
    from analytics.backtest_stats import equity_curve
    from renderers.backtest_plot import render_backtest

    by: dict[str, list[TradeOutcome]] = {}
    for o in outcomes:
        by.setdefault(o.strategy, []).append(o)
    return render_backtest(
        rep.equity,
        rep.calibration,
        rep.overall,
        quality=rep.quality_calibration,
        title=title,
        subtitle=subtitle,
        by_strategy={k: equity_curve(v) for k, v in by.items()} if len(by) > 1 else None,
    )


def _fields(rep: Report) -> list[ReplyField]:
    g = rep.overall
    return [
        ReplyField(name="Trades", value=f"{g.trades} of {g.plans} plans"),
        ReplyField(name="Hit rate", value=_pct(g.hit_rate)),
        ReplyField(name="Expectancy", value=f"{_r(g.expectancy_r)}R"),
        ReplyField(name="Profit factor", value=_pf(g)),
        ReplyField(name="Max drawdown", value=f"{g.max_drawdown_r:.1f}R"),
        ReplyField(name="Odds skill", value=_skill(rep.calibration)),
        ReplyField(name="Brier", value="—" if rep.calibration.brier is None else f"{rep.calibration.brier:.3f}"),
    ]


# ---------------------------------------------------------------------------- commands


@command(
    "backtest",
    "Replay the coach's planner over recent sessions: hit rate, expectancy, drawdown and how well its odds held up.",
    BacktestArgs,
    examples=("/backtest SPY,QQQ", "/backtest TSLA intraday orb days=20", "/backtest AAPL swing days=120"),
    tool_hint="Returns per-strategy figures, the Brier score and skill of the plans' probability (odds of T1 before the stop, "
    "walk-forward) against the base rate, and the quality grade's calibration beside it (a grade, never odds).",
    heavy=True,
    result="bot.commands.backtest_summary:BacktestSummary",
)
async def backtest_cmd(ctx: Ctx, a: BacktestArgs) -> Reply:
    from analytics.backtest_engine import BacktestSpec, check_spec
    from analytics.sessions import last_sessions, market_time
    from bot.backtest_runner import backtest
    from bot.commands.backtest_summary import BacktestSummary
    from renderers.text import fmt_time

    if len(a.symbols) > CHAT_MAX_SYMBOLS:
        raise UserError(f"at most {CHAT_MAX_SYMBOLS} symbols per /backtest in chat; `coach backtest` takes up to 50")
    end = market_time(ctx.now())
    sessions = last_sessions(end, a.days)
    start = datetime.fromtimestamp(int(sessions.opens[0]) / 1e9, tz=UTC)
    spec = check_spec(
        BacktestSpec(tuple(a.symbols), a.style, start, end + timedelta(seconds=1), strategy=a.strategy, every=a.every)
    )
    per_session = _decisions_per_session(spec)
    if per_session * a.days > CHAT_MAX_DECISIONS:
        raise UserError(
            f"that is about {per_session * a.days:,} planner calls; chat runs at most {CHAT_MAX_DECISIONS}. Use fewer days, "
            f"a larger every= (now {spec.cadence}), or `coach backtest` for long runs"
        )
    shown = ctx.progress

    def progress(done: int, total: int) -> None:
        # progress reports also carry a worker's CPU budget check (`bot.execution.runner.watch_budget`)
        if shown is not None:
            shown(done, total, "")

    res = await backtest(ctx.market, spec, now=ctx.now(), workers=1, progress=progress)
    rep = res.summary()
    names = ", ".join(a.symbols)
    span = f"{fmt_time(start, with_date=True)[:10]} → {fmt_time(end)[:10]}"
    intro = (
        f"{names} · {spec.style} · strategy {spec.strategy} · {a.days} sessions ({span}) · planner asked every "
        f"{spec.cadence} {spec.exec_interval} bar{'s' if spec.cadence > 1 else ''}: {res.decisions} decisions, {res.plans} plans."
    )
    if res.empty_reason:
        intro += f"\nNo plan: {res.empty_reason}."
    title = f"Backtest · {spec.style} · {names if len(names) <= 40 else names[:39] + '…'}"
    png = await asyncio.to_thread(picture, rep, res.outcomes, title, f"{span} · {', '.join(res.sources)}")
    data = BacktestSummary.of(spec, res, rep, symbols=list(a.symbols), start=start, end=end)
    return Reply(
        title=title,
        body=summary_body(rep, intro),
        fields=_fields(rep),
        severity="success" if (rep.overall.expectancy_r or 0) > 0 else "warning",
        attachments=[Attachment(filename="backtest.png", data=png, description="equity curve in R and calibration of the odds")],
        sources=res.sources,
        as_of=end,
        data=data,
    )


def _decisions_per_session(spec: BacktestSpec) -> int:
    from analytics.intervals import interval_minutes, is_intraday

    iv = spec.exec_interval
    if not is_intraday(iv):
        return 1
    return max(1, 390 // (interval_minutes(iv) * spec.cadence))


@command(
    "scorecard",
    "How your tracked plans turned out: hit rate, expectancy in R, drawdown and how well their odds held up.",
    ScorecardArgs,
    examples=("/scorecard", "/scorecard orb", "/scorecard days=30"),
    result="bot.commands.backtest_summary:Scorecard",
)
async def scorecard(ctx: Ctx, a: ScorecardArgs) -> Reply:
    from analytics.backtest_stats import report
    from bot.commands.backtest_summary import Scorecard
    from bot.scorecard import sync_tracked_outcomes

    since = ctx.now() - timedelta(days=a.days) if a.days else None
    strategy = a.strategy.strip().lower() if a.strategy else None
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
    # plans the runtime finished following since the last pass are scored first
    await sync_tracked_outcomes(ctx.services, owner, limit=50)
    async with ctx.tx() as s:
        outcomes = await journal.list_outcomes(s, owner, strategy=strategy, since=since)
        known = await journal.outcome_strategies(s, owner) if not outcomes and strategy else []
    if not outcomes:
        if strategy and known:
            body = f"No tracked {strategy} plan has an outcome yet; you have outcomes for: {', '.join(known)}."
        else:
            body = (
                "No tracked plan has finished yet. Track a plan (the Track button under /plan, or `/track PLAN_ID`); "
                "each one that ends is scored here and written to your journal."
            )
        empty = report([])
        return Reply(
            title="Scorecard",
            body=body,
            data=Scorecard(
                strategy=strategy,
                since=since,
                overall=empty.overall,
                by_strategy=[],
                by_quality=[],
                calibration=empty.calibration,
                quality_calibration=empty.quality_calibration,
            ),
        )
    rep = report(outcomes)
    what = f"{strategy} plans" if strategy else "plans"
    intro = f"Your tracked {what}{f' of the last {a.days} days' if a.days else ''}: {len(outcomes)} with an outcome."
    png = None
    if rep.overall.trades:
        png = await asyncio.to_thread(picture, rep, outcomes, "Scorecard · your tracked plans", intro.split(":")[0])
    data = Scorecard(
        strategy=strategy,
        since=since,
        overall=rep.overall,
        by_strategy=rep.by_strategy,
        by_quality=rep.by_quality,
        calibration=rep.calibration,
        quality_calibration=rep.quality_calibration,
    )
    return Reply(
        title="Scorecard",
        body=summary_body(rep, intro),
        fields=_fields(rep),
        attachments=[Attachment(filename="scorecard.png", data=png, description="your equity curve in R and calibration")]
        if png
        else [],
        data=data,
    )
