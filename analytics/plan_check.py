"""A trader's own plan checked against the market's levels: R:R per target, the stop in ATR, the
levels in the way, the reach of the style's horizon and the chance of T1 before the stop.

`check_plan` takes the trader's numbers, the levels the planner built for the symbol (analytics.levels
through analytics.planner), the execution interval's ATR and the reach (analytics.reach), and returns a
`PlanCheck` whose `summary` says it in words. Wrong input (a stop on the wrong side, targets behind the
entry) is a UserError with one clear line.

The probability of T1 before the stop starts from the no-edge prior: with no edge (a driftless walk),
price reaches +R x risk before -1 x risk with probability 1 / (1 + R). With a stored odds fit it is
calibrated at the style's level (analytics.calibration): a trader's own plan has no strategy of the
coach's, so the fit's strategy nodes do not apply, but how the style's plans resolved does.

Pure: numbers and levels in, a model out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from analytics.calibration import METHOD_VERSION, OddsFit
from analytics.models import Direction, Level, Model, Style
from analytics.planner import MAX_RISK_ATR, MIN_RISK_ATR, rr_band
from analytics.reach import HORIZON_WORDS
from analytics.strategies.base import px
from core.errors import UserError

#: Most targets a check takes.
MAX_CHECK_TARGETS = 5
#: A level this close to the stop (in ATR) can get it run.
NEAR_STOP_ATR = 0.5
#: A level within this distance of a target (in ATR) is the target's own level, not one in the way.
SAME_LEVEL_ATR = 0.1
#: Levels listed per target.
MAX_IN_THE_WAY = 3
#: An entry further than this fraction from the last price is flagged as far from the market.
FAR_FROM_MARKET = 0.2
#: An entry further than this multiple of the last price (either way) is a typo, not a plan.
ABSURD_RATIO = 3.0
PRIOR_LABEL = "no-edge prior 1/(1+R)"
RR_BANDS_TEXT = "R:R bands: under 1.5R poor, 1.5-2R fair, 2-3R good, 3R+ excellent."


class CheckedTarget(Model):
    """One target of a checked plan."""

    price: float
    rr: float
    band: str
    #: Levels between the entry and this target ("ORH 192.50"), nearest first.
    in_the_way: list[str]
    beyond_reach: bool


class PlanCheck(Model):
    """The verdict on a trader's plan."""

    symbol: str
    style: Style
    direction: Direction
    entry: float
    stop: float
    risk: float
    atr: float
    stop_atr: float
    last: float
    targets: list[CheckedTarget]
    near_stop: list[str]
    reach: float
    reach_basis: str
    #: Chance that T1 comes before the stop, and what the number is.
    probability: float
    probability_basis: str
    warnings: list[str]
    summary: str
    as_of: datetime
    sources: list[str]


def t1_probability(rr: float, style: Style | None = None, fit: OddsFit | None = None) -> tuple[float, str]:
    """(probability that T1 at `rr` multiples of the risk comes before the stop, what it is based on).

    With a fit that has resolved plans of `style`, the prior moves by that style's offset; otherwise
    the no-edge prior, labelled as one.
    """
    if fit is None or style is None or fit.version != METHOD_VERSION:
        return 1.0 / (1.0 + max(rr, 0.0)), PRIOR_LABEL
    node = fit.nodes.get(style)
    if node is None or node.n == 0:
        return 1.0 / (1.0 + max(rr, 0.0)), PRIOR_LABEL
    # a trader's plan has no strategy node: the style's offset moves the prior's log-odds
    base = 1.0 / (1.0 + max(rr, 0.0))
    logit = math.log(base / (1.0 - base)) if 0.0 < base < 1.0 else 0.0
    p = 1.0 / (1.0 + math.exp(-(logit + node.offset))) if 0.0 < base < 1.0 else base
    return round(p, 4), f"calibrated on {node.n:,} past {style} plans of the coach's strategies"


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UserError(f"{name} must be a positive price, got {value!r}")
    return float(value)


def _grouped(levels: Sequence[Level]) -> list[tuple[float, str]]:
    """Levels at the same price (to the cent) as one: (price, "label + label"), in the order given."""
    out: dict[float, list[str]] = {}
    for lv in levels:
        labels = out.setdefault(round(lv.price, 2), [])
        if lv.label not in labels:
            labels.append(lv.label)
    return [(p, " + ".join(labels[:3])) for p, labels in out.items()]


def _names(levels: Sequence[Level]) -> list[str]:
    return [f"{label} {px(p)}" for p, label in _grouped(levels)]


def check_plan(
    *,
    symbol: str,
    style: Style,
    entry: float,
    stop: float,
    targets: Sequence[float],
    levels: Sequence[Level],
    atr: float,
    last: float,
    reach: float,
    reach_basis: str,
    as_of: datetime,
    sources: Sequence[str] = (),
    fit: OddsFit | None = None,
) -> PlanCheck:
    """Check the trader's entry, stop and targets against `levels`; UserError for a plan that cannot be one."""
    entry, stop = _positive("the entry", entry), _positive("the stop", stop)
    if not targets:
        raise UserError("give at least one target after the stop, e.g. /plan validate AAPL 190 187 195 200")
    if len(targets) > MAX_CHECK_TARGETS:
        raise UserError(f"at most {MAX_CHECK_TARGETS} targets, got {len(targets)}")
    tps = [_positive(f"target {i + 1}", t) for i, t in enumerate(targets)]
    if stop == entry:
        raise UserError("the stop equals the entry: put it below the entry for a long, above it for a short")
    if last > 0 and not (1 / ABSURD_RATIO <= entry / last <= ABSURD_RATIO):
        raise UserError(f"entry {px(entry)} is far from {symbol}'s last price {px(last)}; check the number")
    d = 1.0 if stop < entry else -1.0
    direction: Direction = "long" if d > 0 else "short"
    wrong = [t for t in tps if d * (t - entry) <= 0]
    if wrong:
        side, other = ("above", "below") if d > 0 else ("below", "above")
        raise UserError(
            f"target {px(wrong[0])} is {other} the entry {px(entry)}: with the stop {px(stop)} {other} the entry "
            f"this is a {direction}, so targets go {side} it"
        )
    tps = sorted(dict.fromkeys(tps), key=lambda t: d * t)  # in the order price meets them
    risk = abs(entry - stop)
    atr = float(atr) if math.isfinite(atr) and atr > 0 else float("nan")
    stop_atr = risk / atr if math.isfinite(atr) else float("nan")
    tol = SAME_LEVEL_ATR * atr if math.isfinite(atr) else 0.0
    ahead = sorted((lv for lv in levels if d * (lv.price - entry) > tol), key=lambda lv: d * (lv.price - entry))

    checked: list[CheckedTarget] = []
    prev = 0.0  # each target lists what lies between it and the one before (T1: the entry)
    for t in tps:
        dist = d * (t - entry)
        way = [lv for lv in ahead if prev + tol < d * (lv.price - entry) < dist - tol]
        rr = round(dist / risk, 2)
        checked.append(
            CheckedTarget(
                price=t, rr=rr, band=rr_band(rr), in_the_way=_names(way)[:MAX_IN_THE_WAY], beyond_reach=bool(dist > reach > 0)
            )
        )
        prev = dist
    near_lim = NEAR_STOP_ATR * atr if math.isfinite(atr) else 0.0
    near = sorted((lv for lv in levels if abs(lv.price - stop) <= near_lim), key=lambda lv: abs(lv.price - stop))
    near_stop = []
    for price, label in _grouped(near)[:MAX_IN_THE_WAY]:
        gap = abs(price - stop) / atr
        # a level between the entry and the stop must break before the stop is hit: it shelters the stop;
        # one just beyond the stop draws price to it, and a test of it tags the stop on the way
        if d * (price - stop) >= 0:
            where = f"{gap:.1f} ATR {'above' if d > 0 else 'below'} the stop: it must break before the stop is hit"
        else:
            where = f"{gap:.1f} ATR beyond the stop: a test of it tags the stop; consider the stop beyond it"
        near_stop.append(f"{label} {px(price)} ({where})")

    p, basis = t1_probability(checked[0].rr, style, fit)
    warnings: list[str] = []
    if math.isfinite(stop_atr):
        if stop_atr < MIN_RISK_ATR:
            warnings.append(f"the stop is {stop_atr:.1f} ATR away, inside ordinary noise (under {MIN_RISK_ATR:g} ATR)")
        elif stop_atr > MAX_RISK_ATR[style]:
            warnings.append(f"the stop is {stop_atr:.1f} ATR away, wider than {MAX_RISK_ATR[style]:g} ATR for {style}")
    if last > 0 and abs(entry / last - 1) > FAR_FROM_MARKET:
        warnings.append(f"the entry is {abs(entry / last - 1):.0%} from the last price {px(last)}")
    if d * (last - stop) <= 0 and last > 0:
        warnings.append(f"the last price {px(last)} is already past the stop")
    far = [c for c in checked if c.beyond_reach]
    if far:
        warnings.append(
            f"{', '.join(px(c.price) for c in far)} {'lies' if len(far) == 1 else 'lie'} beyond the reach of "
            f"{HORIZON_WORDS.get(style, 'the horizon')} (about {px(reach)}, from {reach_basis})"
        )
    summary = _summary(symbol, style, direction, entry, stop, risk, stop_atr, checked, near_stop, p, basis, warnings)
    return PlanCheck(
        symbol=symbol,
        style=style,
        direction=direction,
        entry=entry,
        stop=stop,
        risk=round(risk, 4),
        atr=round(atr, 4) if math.isfinite(atr) else 0.0,
        stop_atr=round(stop_atr, 2) if math.isfinite(stop_atr) else 0.0,
        last=last,
        targets=checked,
        near_stop=near_stop,
        reach=round(reach, 4),
        reach_basis=reach_basis,
        probability=round(p, 3),
        probability_basis=basis,
        warnings=warnings,
        summary=summary,
        as_of=as_of,
        sources=list(sources),
    )


def _summary(
    symbol: str,
    style: str,
    direction: str,
    entry: float,
    stop: float,
    risk: float,
    stop_atr: float,
    targets: list[CheckedTarget],
    near_stop: list[str],
    p: float,
    basis: str,
    warnings: list[str],
) -> str:
    t1 = targets[0]
    atr_text = f", {stop_atr:.1f} ATR" if math.isfinite(stop_atr) else ""
    clean = not warnings and not t1.in_the_way and t1.rr >= 1.5
    verdict = "holds up" if clean else "needs a look" if t1.rr >= 1.5 else "pays too little for its risk"
    lines = [
        f"Your {style} {direction} on {symbol} {verdict}: entry {px(entry)}, stop {px(stop)} "
        f"(risk {px(risk)} a share{atr_text}), T1 {px(t1.price)} at {t1.rr:.1f}R ({t1.band}).",
        f"T1 before the stop: {p:.0%} ({basis}: a baseline with no edge, not a forecast).",
    ]
    if near_stop:
        lines.append(f"Near the stop: {'; '.join(near_stop)}.")
    for w in warnings:
        lines.append(w[0].upper() + w[1:] + ".")
    lines.append(RR_BANDS_TEXT)
    return "\n".join(lines)


__all__ = ["MAX_CHECK_TARGETS", "PRIOR_LABEL", "CheckedTarget", "PlanCheck", "check_plan", "t1_probability"]
