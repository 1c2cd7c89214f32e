"""The scanner: every strategy over a universe of symbols at once, ranked by quality and R:R.

The universe is stacked into panels (one row per symbol) and evaluated in one pass by
analytics.planner.evaluate, so the cost is whole-array NumPy work plus one TA-Lib call per
indicator and row; nothing loops over bars in Python. Candidates are ranked by
analytics.quality.rank_score (quality first, the first target's R:R second) and only
the top `limit` are turned into full plans.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.calibration import OddsFit
from analytics.intervals import STYLE_INTERVALS
from analytics.models import Model, Plan, Target
from analytics.panel import Panel
from analytics.planner import build_plan, evaluate, plain_session, validate_style
from analytics.quality import rank_score
from analytics.scan_scope import MAX_LIMIT


class ScanCandidate(Model):
    """One ranked setup."""

    rank: int
    symbol: str
    strategy: str
    direction: str
    entry: float
    stop: float
    targets: list[Target]
    rr: float  # first target's R:R
    #: Chance of T1 before the stop (calibrated; see Plan.probability) and the resolved plans it rests on.
    probability: float
    probability_n: int = 0
    #: The seven-factor grade of the setup (not odds).
    quality: float
    score: float
    plan_id: str


class Skipped(Model):
    """A symbol the scan could not evaluate, and why."""

    symbol: str
    reason: str


class ScanResult(Model):
    """The answer to "scan": ranked candidates with their data's as_of and sources."""

    style: str
    universe: str
    as_of: datetime
    session: dict[str, Any]
    sources: list[str]
    scanned: int
    found: int
    candidates: list[ScanCandidate]
    skipped: list[Skipped] = []
    reason: str | None = None
    #: What the universe was made of, in words (the leaders: ranked by dollar volume, or the fixed list and why).
    universe_basis: str | None = None


def scan_panels(
    panels: Mapping[str, Panel],
    style: str,
    *,
    as_of: datetime,
    session: Mapping[str, object],
    sources: list[str],
    universe: str = "custom",
    limit: int = 10,
    skipped: list[Skipped] | None = None,
    fit: OddsFit | None = None,
) -> tuple[ScanResult, list[Plan]]:
    """Evaluate every row of `panels` and return the ranked result plus the top plans (odds from `fit`)."""
    style = validate_style(style)
    plain = plain_session(session)
    limit = max(1, min(int(limit), MAX_LIMIT))
    exec_panel = panels.get(STYLE_INTERVALS[style][0])
    skipped = list(skipped or [])
    if exec_panel is None or exec_panel.n_symbols == 0 or exec_panel.n_bars == 0:
        empty = "no symbol had bars to scan" if not skipped else f"no symbol had bars to scan ({len(skipped)} skipped)"
        return ScanResult(
            style=style,
            universe=universe,
            as_of=as_of,
            session=plain,
            sources=sources,
            scanned=0,
            found=0,
            candidates=[],
            skipped=skipped,
            reason=empty,
        ), []
    ev = evaluate(panels, style, all_levels=False)
    rows = np.flatnonzero(ev.best >= 0)
    best = ev.best[rows]
    conf = ev.conf[rows, best]
    rr1 = ev.rr[rows, best, 0]
    score = rank_score(conf, rr1)
    # stable order: score desc, then symbol for ties so the ranking never depends on input order
    syms = np.array(ev.symbols, dtype=object)[rows]
    order = np.lexsort((syms, -np.round(score, 9)))
    status = str(plain.get("status", "open"))
    plans: list[Plan] = []
    cands: list[ScanCandidate] = []
    for rank, k in enumerate(order[:limit], start=1):
        row = int(rows[k])
        plan = build_plan(ev, row, as_of=as_of, session_status=status, sources=sources, fit=fit)
        plans.append(plan)
        cands.append(
            ScanCandidate(
                rank=rank,
                symbol=plan.symbol,
                strategy=plan.strategy,
                direction=plan.direction,
                entry=plan.entry,
                stop=plan.stop,
                targets=plan.targets,
                rr=plan.targets[0].rr,
                probability=plan.probability,
                probability_n=plan.probability_n,
                quality=plan.quality,
                score=float(round(float(score[k]), 4)),
                plan_id=plan.plan_id,
            )
        )
    reason = None
    if not cands:
        reason = f"no setup qualifies in {exec_panel.n_symbols} symbols ({style}); try another style or later in the session"
    return ScanResult(
        style=style,
        universe=universe,
        as_of=as_of,
        session=plain,
        sources=sources,
        scanned=exec_panel.n_symbols,
        found=int(len(rows)),
        candidates=cands,
        skipped=skipped,
        reason=reason,
    ), plans


def scan_frames(
    frames: Mapping[str, Mapping[str, pd.DataFrame]],
    style: str,
    *,
    as_of: datetime,
    session: Mapping[str, object],
    sources: list[str],
    universe: str = "custom",
    limit: int = 10,
    fit: OddsFit | None = None,
) -> tuple[ScanResult, list[Plan]]:
    """Scan from bars per symbol per interval; symbols without execution-interval bars are skipped; odds from `fit`."""
    style = validate_style(style)
    exec_iv = STYLE_INTERVALS[style][0]
    skipped = [
        Skipped(symbol=s, reason=f"no {exec_iv} bars") for s, fr in frames.items() if fr.get(exec_iv) is None or fr[exec_iv].empty
    ]
    ok = [s for s in frames if s not in {k.symbol for k in skipped}]
    panels: dict[str, Panel] = {}
    for iv in STYLE_INTERVALS[style]:
        per = {s: frames[s][iv] for s in ok if iv in frames[s] and frames[s][iv] is not None and not frames[s][iv].empty}
        if len(per) == len(ok) and per:
            panels[iv] = Panel.from_frames(per, iv)
    if exec_iv not in panels:
        panels[exec_iv] = Panel.from_frames({s: frames[s][exec_iv] for s in ok}, exec_iv) if ok else Panel.empty(exec_iv)
    return scan_panels(
        panels, style, as_of=as_of, session=session, sources=sources, universe=universe, limit=limit, skipped=skipped, fit=fit
    )
