"""Trade plans: from bars to the best setup's entry, stop, targets, invalidation, odds and quality.

`evaluate(panels, style)` runs every strategy serving the style over every row of the panels at
once (one row per symbol) and keeps, per symbol, the best setup that survives the rules below.
`plan_symbol` is the one-symbol entry point; the scanner calls `evaluate` on many symbols.

The rules, for direction d (+1 long, -1 short) and ATR = ATR(14) of the execution interval:

- Stop: beyond the detector's structural basis plus BUFFER_ATR x ATR, and at least MIN_RISK_ATR x ATR
  from the entry; a setup whose stop would sit more than MAX_RISK_ATR[style] x ATR away is rejected.
- Targets come only from levels (no fixed multiples). Every non-HTF level within SNAP_ATR x ATR of a
  higher-timeframe level is snapped onto it. Levels in the trade's direction are sorted by distance
  and merged into clusters closer than max(0.5 ATR, 0.5 R); a cluster's target is its nearest member
  (price reaches it first). Clusters below the strategy's minimum R:R are dropped, as are ones beyond
  MAX_RR; the first MAX_TARGETS that remain are the targets. No such cluster: no plan.
- Among the setups that remain, the one with the highest rank score (see analytics.quality) wins.

Everything is a pure function of the bars, the style and `as_of`: the same input gives the same plan,
and the plan id is a hash of what defines it.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd

from analytics import calibration
from analytics import quality as cf
from analytics.intervals import STYLE_INTERVALS, interval_minutes
from analytics.levels import LevelBook, build_levels, build_levels_for_rows, htf_intervals
from analytics.models import Direction, Level, Plan, PlanResult, Style, Target
from analytics.panel import Panel
from analytics.reach import HORIZON_WORDS, reach_from_atr
from analytics.strategies import Strategy, for_style
from analytics.strategies.base import Signal, px
from analytics.strategies.features import Features, compute_features, trend
from core.errors import UserError

BUFFER_ATR = 0.25
MIN_RISK_ATR = 0.5
MAX_RISK_ATR: dict[str, float] = {"scalp": 3.0, "intraday": 3.0, "swing": 4.0, "leaps": 5.0}
SNAP_ATR = 0.3
MAX_TARGETS = 3
MAX_RR = 10.0
#: R:R bands used in summaries: (upper bound, word).
RR_BANDS: tuple[tuple[float, str], ...] = ((1.5, "poor"), (2.0, "fair"), (3.0, "good"), (float("inf"), "excellent"))

# why a strategy gave no plan for a row
OK, ABSENT, TOO_WIDE, NO_TARGET, NO_DATA = 0, 1, 2, 3, 4


def validate_style(style: str) -> Style:
    """The style, lower-cased, or UserError listing the styles."""
    s = (style or "").strip().lower() if isinstance(style, str) else ""
    if s not in STYLE_INTERVALS:
        shown = str(style)[:20]
        raise UserError(f"unknown style {shown!r}; accepted: {', '.join(STYLE_INTERVALS)}")
    return cast(Style, s)  # STYLE_INTERVALS has a key per Style


def plain_session(session: Mapping[str, object]) -> dict[str, Any]:
    """The session dict with NumPy scalars made plain Python values, so results serialise to JSON."""
    return {str(k): (v.item() if hasattr(v, "item") and callable(v.item) else v) for k, v in session.items()}


def rr_band(rr: float) -> str:
    """The word for a reward:risk: poor < 1.5 <= fair < 2 <= good < 3 <= excellent."""
    for bound, word in RR_BANDS:
        if rr < bound:
            return word
    return RR_BANDS[-1][1]


def make_plan_id(symbol: str, style: str, strategy: str, as_of: datetime, entry: float, direction: str) -> str:
    """A short, typable id that is the same for the same plan: "P-" + 6 Crockford base-32 characters."""
    key = f"{symbol}|{style}|{strategy}|{direction}|{pd.Timestamp(as_of).tz_convert('UTC').isoformat()}|{entry:.4f}"
    n = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    chars = []
    for _ in range(6):
        n, r = divmod(n, 32)
        chars.append(alphabet[r])
    return "P-" + "".join(chars)


# ---------------------------------------------------------------------------- panels per style


def style_panels(panels: Mapping[str, Panel], style: str) -> dict[str, Panel]:
    """The style's intervals plus the HTF-level intervals, deriving missing ones by resampling a lower one.

    Derived intervals that only feed the trend factor are resampled closes-only; ones that feed
    levels get open/high/low/close (no volume, which levels never read), going through 30m buckets
    (which split every session evenly) when the source is finer, because wide row-wise reductions
    over short irregular buckets are slow.
    """
    style = validate_style(style)
    wanted = list(STYLE_INTERVALS[style])
    exec_iv = wanted[0]
    if exec_iv not in panels:
        raise ValueError(f"no {exec_iv} panel for style {style}")
    htf_ivs = htf_intervals(exec_iv, list(panels))
    full = {k: v for k, v in panels.items() if not v.closes_only}
    out = dict(panels)
    mins = interval_minutes
    for iv in sorted(set(wanted[1:] + htf_ivs), key=mins):
        if iv in out:
            continue
        lower = [k for k in full if mins(k) < mins(iv)]
        if not lower:
            continue
        src = max(lower, key=mins)
        if iv not in htf_ivs:
            out[iv] = full[src].resample(iv, closes_only=True)
            continue
        if mins(src) < 30 and mins(iv) >= 60:
            if "30m" not in full:
                full["30m"] = full[src].resample("30m", volume=False)
            src = "30m"
        # higher-timeframe levels read highs, lows and closes only
        full[iv] = out[iv] = full[src].resample(iv, volume=False)
    return out


# ---------------------------------------------------------------------------- targets


@dataclass
class Candidates:
    """Target candidates for one direction, (S, M): price after snapping (NaN where not a target),
    snapped-to column, and the columns sorted in the direction of travel (nearest first, NaN last)."""

    price: np.ndarray
    snapped_to: np.ndarray  # int, -1 where not snapped
    order: np.ndarray  # (S, M) columns sorted ascending (long) or descending (short) by price
    sorted: np.ndarray  # (S, M) prices in that order


_COL_BITS = 7


def row_argsort(values: np.ndarray) -> np.ndarray:
    """Per row, the columns of `values` in ascending order, NaN last, ties by column: like
    np.argsort(values, axis=1, kind="stable") for positive prices, but through np.sort.

    np.argsort on short rows is ten times slower than np.sort, so for positive finite values the
    column index is packed into the lowest bits of the value's IEEE bits (which order positive
    floats like the floats themselves) and the packed integers are sorted. Those bits change a
    price by under 1e-13 of itself, so only prices closer than that can swap, and then by column.
    """
    s, m = values.shape
    finite = np.isfinite(values)
    if m >= (1 << _COL_BITS) or (finite & (values <= 0)).any():
        return np.argsort(values, axis=1, kind="stable")
    bits = np.where(finite, values, np.inf).view(np.int64)  # +inf sorts after every positive price
    mask = np.int64(-(1 << _COL_BITS))
    keys = (bits & mask) | np.arange(m, dtype=np.int64)[None, :]
    return np.sort(keys, axis=1) & np.int64((1 << _COL_BITS) - 1)


def _descending(order: np.ndarray, n_finite: np.ndarray) -> np.ndarray:
    """Ascending orders (NaN last) turned descending with NaN still last."""
    s, m = order.shape
    j = np.arange(m)[None, :]
    k = n_finite[:, None]
    src = np.where(j < k, k - 1 - j, j)
    return np.take_along_axis(order, src, axis=1)


def nearest_in_rows(values: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each values[s, i], the column of the nearest finite refs[s, :] and the distance (inf if none).

    One global searchsorted: every row's sorted refs are shifted into their own disjoint band, so
    the cost is a sort of (S, H) and a binary search per value, not an (S, M, H) distance cube.
    """
    s, h = refs.shape
    if h == 0 or values.size == 0:
        return np.zeros(values.shape, np.int64), np.full(values.shape, np.inf)
    order = row_argsort(refs)  # NaN last
    srt = np.take_along_axis(refs, order, axis=1)
    finite = np.isfinite(srt)
    span = max(
        float(np.nanmax(np.abs(srt))) if finite.any() else 1.0,
        float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0,
    )
    band = 4.0 * span + 1.0
    offs = (np.arange(s, dtype=np.float64) * band)[:, None]
    flat = np.where(finite, srt, 2.0 * span) + offs  # missing refs sit above every real price of the row
    q = np.where(np.isfinite(values), values, 3.0 * span) + offs
    pos = np.searchsorted(flat.ravel(), q.ravel()).reshape(values.shape) - np.arange(s)[:, None] * h
    lo = np.clip(pos - 1, 0, h - 1)
    hi = np.clip(pos, 0, h - 1)
    rows = np.arange(s)[:, None]
    d_lo = np.where(finite[rows, lo], np.abs(values - srt[rows, lo]), np.inf)
    d_hi = np.where(finite[rows, hi], np.abs(values - srt[rows, hi]), np.inf)
    take_hi = d_hi < d_lo
    col = np.where(take_hi, order[rows, hi], order[rows, lo])
    dist = np.where(np.isfinite(values), np.minimum(d_lo, d_hi), np.inf)
    return col, dist


def candidates(book: LevelBook, atr: np.ndarray) -> dict[int, Candidates]:
    """Level prices as met from either side (+1: from below, -1: from above), non-HTF levels snapped
    onto the nearest HTF level within SNAP_ATR x ATR, sorted in each direction of travel."""
    htf = book.htf
    hcols, lcols = np.flatnonzero(htf), np.flatnonzero(~htf)
    prices = {d: np.where(book.usable, book.edge(np.full(book.n, d)), np.nan) for d in (1, -1)}
    snapped = {d: np.full(book.price.shape, -1, dtype=np.int64) for d in (1, -1)}
    if len(hcols) and len(lcols) and book.n:
        # bands (zones, FVGs) are met at a different edge from each side; other levels are the same
        band = (np.isfinite(book.low) & np.isfinite(book.high)).any(axis=0)[lcols]
        same, diff = lcols[~band], lcols[band]
        hp = prices[1][:, hcols]  # HTF levels have no bands: the same from both sides
        vals = np.concatenate((prices[1][:, same], prices[1][:, diff], prices[-1][:, diff]), axis=1)
        j, dist = nearest_in_rows(vals, hp)
        snap = dist <= SNAP_ATR * atr[:, None]
        new_price = np.where(snap, np.take_along_axis(hp, j, axis=1), vals)
        new_col = np.where(snap, hcols[j], -1)
        k1, k2 = len(same), len(same) + len(diff)
        for d, part in ((1, slice(k1, k2)), (-1, slice(k2, None))):
            prices[d][:, same], snapped[d][:, same] = new_price[:, :k1], new_col[:, :k1]
            prices[d][:, diff], snapped[d][:, diff] = new_price[:, part], new_col[:, part]
    out: dict[int, Candidates] = {}
    for d in (1, -1):
        order = row_argsort(prices[d])
        if d < 0:
            order = _descending(order, np.isfinite(prices[d]).sum(axis=1))
        out[d] = Candidates(prices[d], snapped[d], order, np.take_along_axis(prices[d], order, axis=1))
    return out


@dataclass
class Targets:
    """Chosen targets, (S, T), and how they were chosen (for reasons)."""

    price: np.ndarray
    rr: np.ndarray
    room: np.ndarray  # distance to the first level in the trade's way (inf if none)
    first_rr: np.ndarray  # R:R of the first level in the way
    order: np.ndarray  # (S, M) candidate columns, nearest first
    ok: np.ndarray  # (S, M) sorted position is a level beyond the entry
    cluster: np.ndarray  # (S, M) cluster id of each sorted position
    chosen: np.ndarray  # (S, T) cluster id of each target (-1 none)
    #: Distance to the nearest level that would have been a target but lies beyond the reach (NaN: none).
    beyond: np.ndarray | None = None


def pick_targets(
    cands: dict[int, Candidates],
    direction: np.ndarray,
    entry: np.ndarray,
    risk: np.ndarray,
    atr: np.ndarray,
    min_rr: float | np.ndarray,
    rows: np.ndarray | None = None,
    reach: np.ndarray | None = None,
) -> Targets:
    """The first MAX_TARGETS level clusters beyond the entry whose R:R is within [min_rr, MAX_RR] and
    whose distance is within `reach` (what the style's horizon can travel, analytics.reach; default: no limit).

    Each argument is per row (R,); `rows` maps those rows onto the candidates' rows (default: the same).
    """
    up = (direction > 0)[:, None]
    up_sorted, dn_sorted = cands[1].sorted, cands[-1].sorted
    up_order, dn_order = cands[1].order, cands[-1].order
    if rows is not None:
        up_sorted, dn_sorted, up_order, dn_order = up_sorted[rows], dn_sorted[rows], up_order[rows], dn_order[rows]
    sp = np.where(up, up_sorted, dn_sorted)
    order = np.where(up, up_order, dn_order)
    min_rr = np.broadcast_to(np.asarray(min_rr, dtype=np.float64), direction.shape)[:, None]
    s, m = sp.shape
    d = direction.astype(np.float64)[:, None]
    with np.errstate(invalid="ignore"):
        dist = d * (sp - entry[:, None])  # ascending along the row in either direction
        ok = (dist > 0.1 * atr[:, None]) & (d != 0)
    # sorted rows read: [levels behind the entry][levels ahead][missing]; mark them -inf / value / inf
    key = np.where(ok, dist, np.where(np.isnan(dist), np.inf, -np.inf))
    merge = np.maximum(0.5 * atr, 0.5 * risk)[:, None]
    new = np.ones((s, m), dtype=bool)
    if m > 1:
        with np.errstate(invalid="ignore"):
            new[:, 1:] = (key[:, 1:] - key[:, :-1]) > merge
    cluster = np.cumsum(new, axis=1) - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        rr = key / risk[:, None]
        passes = new & ok & (rr >= min_rr - 1e-9) & (rr <= MAX_RR)
    beyond = np.full(s, np.nan)
    if reach is not None:
        with np.errstate(invalid="ignore"):
            far = passes & (key > reach[:, None])
        passes = passes & ~far
        has_far = far.any(axis=1)
        beyond[has_far] = key[has_far, np.argmax(far[has_far], axis=1)]
    rank = np.cumsum(passes, axis=1)
    chosen_mask = passes & (rank <= MAX_TARGETS)
    r, c = np.nonzero(chosen_mask)
    slot = rank[r, c] - 1
    tdist = np.full((s, MAX_TARGETS), np.nan)
    tdist[r, slot] = key[r, c]
    chosen = np.full((s, MAX_TARGETS), -1, dtype=np.int64)
    chosen[r, slot] = cluster[r, c]
    with np.errstate(invalid="ignore", divide="ignore"):
        price = entry[:, None] + d * tdist
        trr = tdist / risk[:, None]
        room = np.where(ok, key, np.inf).min(axis=1) if m else np.full(s, np.inf)
        first_rr = room / risk
    return Targets(price, trr, room, first_rr, order, ok, cluster, chosen, beyond)


# ---------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """Every strategy's outcome for every symbol, and the best per symbol."""

    style: Style
    interval: str
    panels: dict[str, Panel]
    features: Features
    book: LevelBook
    strategies: tuple[Strategy, ...]
    signals: list[Signal]
    cands: dict[int, Candidates]
    code: np.ndarray  # (S, J) OK / ABSENT / TOO_WIDE / NO_TARGET / NO_DATA
    direction: np.ndarray  # (S, J)
    entry: np.ndarray
    stop: np.ndarray
    risk: np.ndarray
    tp: np.ndarray  # (S, J, T)
    rr: np.ndarray  # (S, J, T)
    first_rr: np.ndarray  # (S, J)
    factors: np.ndarray  # (S, J, F)
    conf: np.ndarray  # (S, J)
    score: np.ndarray  # (S, J), -inf where not OK
    best: np.ndarray  # (S,) strategy index or -1
    live: np.ndarray | None = None  # flat (symbol * J + strategy) indices that got targets, ascending
    targets: Targets | None = None  # how those targets were chosen (for reasons)
    reach: np.ndarray | None = None  # (S,) how far price can travel within the style's horizon
    beyond: np.ndarray | None = None  # (S, J) distance of the nearest level left out for being beyond reach

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.features.panel.symbols


def evaluate(panels: Mapping[str, Panel], style: str, *, all_levels: bool = True) -> Evaluation:
    """Run the style's strategies over every row and pick each symbol's best plan-able setup.

    With `all_levels=False` (the scanner) levels are built only for rows with a live setup:
    elsewhere they could only become targets of setups that do not exist.
    """
    checked = validate_style(style)
    allp = style_panels(panels, checked)
    ivs = STYLE_INTERVALS[checked]
    exec_iv = ivs[0]
    p = allp[exec_iv]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        f = compute_features(p)
        signals = [strat.detector(f) for strat in for_style(checked)]
        trends = [trend(allp[iv]) for iv in ivs[1:] if iv in allp]
        htf = {iv: allp[iv] for iv in htf_intervals(exec_iv, list(allp)) if iv in allp}
        live = np.zeros(p.n_symbols, dtype=bool)
        for sig in signals:
            live |= sig.active
        # a subset only pays while it is small: copying most rows costs more than it saves
        if all_levels or live.mean() > 0.5:
            book = build_levels(p, f.atr, f.atr_now, f.sess, f.vwap, htf, pv=f.pv, window=f.window)
        else:
            book = build_levels_for_rows(p, f.atr, f.atr_now, f.sess, f.vwap, htf, f.pv, np.flatnonzero(live & f.enough))
        return _evaluate(checked, exec_iv, allp, f, trends, book, signals)


def _evaluate(
    style: Style,
    exec_iv: str,
    allp: dict[str, Panel],
    f: Features,
    trends: list[np.ndarray],
    book: LevelBook,
    signals: list[Signal],
) -> Evaluation:
    """Stops, targets and quality for all (symbol, strategy) pairs of the detectors' signals at once."""
    strategies = for_style(style)
    s, j_n = f.panel.n_symbols, len(strategies)
    a = f.atr_now
    cands = candidates(book, a)
    if not j_n:
        z = np.zeros((s, 0))
        return Evaluation(
            style,
            exec_iv,
            allp,
            f,
            book,
            strategies,
            signals,
            cands,
            z.astype(np.int8),
            z.astype(np.int8),
            z,
            z,
            z,
            np.zeros((s, 0, MAX_TARGETS)),
            np.zeros((s, 0, MAX_TARGETS)),
            z,
            np.zeros((s, 0, len(cf.FACTORS))),
            z,
            z,
            np.full(s, -1),
        )
    direction = np.stack([g.direction for g in signals], axis=1)
    entry = np.stack([g.entry for g in signals], axis=1)
    basis = np.stack([g.stop_basis for g in signals], axis=1)
    active = np.stack([g.active for g in signals], axis=1)
    d = direction.astype(np.float64)
    a2 = a[:, None]
    with np.errstate(invalid="ignore"):
        stop = basis - d * BUFFER_ATR * a2
        stop = np.where(d > 0, np.fmin(stop, entry - MIN_RISK_ATR * a2), np.fmax(stop, entry + MIN_RISK_ATR * a2))
        risk = np.abs(entry - stop)
        wide = risk > MAX_RISK_ATR[style] * a2
    min_rr = np.array([st.min_rr for st in strategies])
    # targets within what the style's horizon can travel (analytics.reach)
    reach_px = reach_from_atr(a, style, exec_iv)
    # targets only for live setups (most pairs are not), in one pass over those (symbol, strategy) pairs
    live = np.flatnonzero((active & ~wide & f.enough[:, None]).ravel())
    t = pick_targets(
        cands,
        direction.ravel()[live],
        entry.ravel()[live],
        risk.ravel()[live],
        np.repeat(a, j_n)[live],
        np.tile(min_rr, s)[live],
        rows=live // j_n,
        reach=np.repeat(reach_px, j_n)[live],
    )
    tp: np.ndarray = np.full((s * j_n, MAX_TARGETS), np.nan)
    rr: np.ndarray = np.full((s * j_n, MAX_TARGETS), np.nan)
    first_rr: np.ndarray = np.full(s * j_n, np.nan)
    room: np.ndarray = np.full(s * j_n, np.inf)
    beyond: np.ndarray = np.full(s * j_n, np.nan)
    tp[live], rr[live], first_rr[live], room[live] = t.price, t.rr, t.first_rr, t.room
    if t.beyond is not None:
        beyond[live] = t.beyond
    tp, rr = tp.reshape(s, j_n, MAX_TARGETS), rr.reshape(s, j_n, MAX_TARGETS)
    first_rr, room, beyond = first_rr.reshape(s, j_n), room.reshape(s, j_n), beyond.reshape(s, j_n)
    has_target = np.isfinite(tp[:, :, 0])
    enough = f.enough[:, None]
    code = np.where(
        ~enough, NO_DATA, np.where(~active, ABSENT, np.where(wide, TOO_WIDE, np.where(has_target, OK, NO_TARGET)))
    ).astype(np.int8)

    def col(x: np.ndarray) -> np.ndarray:
        column: np.ndarray = x[:, None]
        return column

    e9, e21, e50, e200, hist = (col(f.now(k)) for k in ("ema9", "ema21", "ema50", "ema200", "macd_hist"))
    shape = (s, j_n)
    factors = cf.factor_matrix(
        {
            "mtf": cf.mtf_score(d, trends),
            "ema_stack": cf.ema_stack_score(d, col(f.close), e9, e21, e50, e200, hist),
            "vwap": cf.vwap_score(d, col(f.close), col(f.vwap), a2),
            "volume": np.broadcast_to(col(cf.volume_score(f.vol_ratio)), shape),
            "room": cf.room_score(room, risk),
            "atr_regime": np.broadcast_to(col(cf.atr_regime_score(f.atr_ratio)), shape),
            "liquidity": np.broadcast_to(col(cf.liquidity_score(f.dollar_volume)), shape),
        }
    )
    conf = cf.quality(factors)
    score = np.where(code == OK, cf.rank_score(conf, rr[:, :, 0]), -np.inf)
    best = np.where(np.isfinite(score).any(axis=1), np.argmax(score, axis=1), -1)
    return Evaluation(
        style,
        exec_iv,
        allp,
        f,
        book,
        strategies,
        signals,
        cands,
        code,
        direction,
        entry,
        stop,
        risk,
        tp,
        rr,
        first_rr,
        factors,
        conf,
        score,
        best,
        live,
        t,
        reach_px,
        beyond,
    )


# ---------------------------------------------------------------------------- one plan, in words


def _r4(x: float) -> float:
    return float(round(float(x), 4))


def _target_reasons(ev: Evaluation, row: int, j: int) -> list[str]:
    """Why each target is where it is: the levels of its cluster, nearest first, then strongest."""
    t = ev.targets
    flat = row * len(ev.strategies) + j
    k = int(np.searchsorted(ev.live, flat)) if ev.live is not None else -1
    if t is None or ev.live is None or k >= len(ev.live) or ev.live[k] != flat:
        raise ValueError("no targets were chosen for this setup")
    book = ev.book
    strength = book.strength[row]
    out = []
    for cid in t.chosen[k]:
        if cid < 0:
            continue
        sel = (t.cluster[k] == cid) & t.ok[k]
        members = [int(c) for c in t.order[k][sel]]
        # the nearest member sets the price; the rest add their weight, strongest first
        members = members[:1] + sorted(members[1:], key=lambda col: -strength[col])
        labels: list[str] = []
        for col in members:
            if book.labels[col] not in labels:
                labels.append(book.labels[col])
        out.append(" + ".join(labels[:3]) or "level")
    return out


def _confluence(ev: Evaluation, row: int, j: int, targets: list[Target]) -> list[str]:
    f = ev.features
    d = int(ev.direction[row, j])
    fac = dict(zip(cf.FACTORS, ev.factors[row, j]))
    tags: list[str] = []
    if fac["mtf"] >= 0.75:
        tags.append("higher timeframes agree")
    if fac["ema_stack"] >= 0.8:
        tags.append(f"EMA stack {'up' if d > 0 else 'down'}")
    if np.isfinite(f.vwap[row]) and fac["vwap"] >= 0.6:
        tags.append(f"{'above' if d > 0 else 'below'} VWAP")
    if f.vol_ratio[row] >= 1.3:
        tags.append("volume expansion")
    if fac["atr_regime"] >= 0.7:
        tags.append("normal volatility")
    entry, a = ev.entry[row, j], f.atr_now[row]
    book = ev.book
    p, lo, hi = book.price[row], book.low[row], book.high[row]
    with np.errstate(invalid="ignore"):
        at_level = np.abs(p - entry) <= 0.3 * a
        inside = (lo - 0.1 * a <= entry) & (entry <= hi + 0.1 * a)
        filled_gap = book.filled[row] > 0
    near = np.flatnonzero((at_level | inside) & ~filled_gap)
    for col in sorted(near, key=lambda c: -book.strength[row, c]):
        tag = f"entry at {book.labels[col]}"
        if tag not in tags:
            tags.append(tag)
        if sum(t.startswith("entry at") for t in tags) >= 2:
            break
    for tgt in targets:
        if any(k in tgt.reason for k in ("1h ", "4h ", "1D ", "1W ", "prior-day")):
            tags.append("targets at higher-timeframe levels")
            break
    return tags


def _summary(ev: Evaluation, row: int, j: int, plan: Plan, trigger: str) -> str:
    strat = ev.strategies[j]
    a = ev.features.atr_now[row]
    risk = plan.risk_per_share
    lines = [
        calibration.odds_line(plan.probability, plan.probability_basis),
        f"{plan.direction.capitalize()} {plan.symbol} ({plan.style}, {plan.interval} bars): {strat.name} — {trigger}.",
        f"Stop {px(plan.stop)} risks {px(risk)} a share ({risk / a:.1f} ATR).",
    ]
    tparts = [f"{px(t.price)} ({t.rr:.1f}R, {rr_band(t.rr)}: {t.reason})" for t in plan.targets]
    lines.append("Targets: " + "; ".join(tparts) + ".")
    lines.append(
        f"R:R bands: under 1.5R poor, 1.5-2R fair, 2-3R good, 3R+ excellent; this setup needs at least {strat.min_rr:g}R."
    )
    if plan.reach is not None:
        lines.append(reach_line(plan))
    ranked = sorted(plan.quality_factors.items(), key=lambda kv: -kv[1])
    (best, hi), (worst, lo) = ranked[0], ranked[-1]
    # a weighted grade of the setup, second to the odds: saying so keeps a trader from reading it as a win rate
    lines.append(
        f"Quality {plan.quality:.0%} (a grade of the setup from 7 factors, not odds): "
        f"strongest {cf.LABELS.get(best, best)} ({hi:.2f}), weakest {cf.LABELS.get(worst, worst)} ({lo:.2f})."
    )
    lines.append(f"Invalidation: {plan.invalidation}.")
    return "\n".join(lines)


def reach_line(plan: Plan) -> str:
    """The sentence on how far the style's horizon reaches, and the level left out beyond it."""
    assert plan.reach is not None
    pct = plan.reach / plan.entry * 100 if plan.entry else 0.0
    words = HORIZON_WORDS.get(plan.style, "the plan's horizon")
    line = f"Reach: {words} can move price about {px(plan.reach)} ({pct:.1f}%); targets stay within it"
    if plan.beyond_reach is not None:
        r = abs(plan.beyond_reach - plan.entry) / plan.risk_per_share if plan.risk_per_share else 0.0
        line += f"; the level at {px(plan.beyond_reach)} ({r:.1f}R) is beyond reach, left out"
    return line + "."


def build_plan(
    ev: Evaluation,
    row: int,
    *,
    as_of: datetime,
    session_status: str,
    sources: list[str],
    version: int = 1,
    j: int | None = None,
    fit: calibration.OddsFit | None = None,
) -> Plan:
    """The plan of symbol `row` for strategy `j` (default: its best), with its odds from `fit` (None: the no-edge prior)."""
    j = int(ev.best[row]) if j is None else j
    if j < 0 or ev.code[row, j] != OK:
        raise ValueError("no plan-able setup for this row")
    strat = ev.strategies[j]
    f = ev.features
    d = int(ev.direction[row, j])
    entry, stop = _r4(ev.entry[row, j]), _r4(ev.stop[row, j])
    risk = abs(entry - stop)
    reasons = _target_reasons(ev, row, j)
    targets = []
    for k, reason in enumerate(reasons):
        price = _r4(ev.tp[row, j, k])
        targets.append(Target(price=price, rr=float(round(abs(price - entry) / risk, 2)), reason=reason))
    symbol = ev.symbols[row]
    direction: Direction = "long" if d > 0 else "short"
    sig = ev.signals[j]
    zone = None
    if (
        sig.zone_low is not None
        and sig.zone_high is not None
        and np.isfinite(sig.zone_low[row])
        and np.isfinite(sig.zone_high[row])
    ):
        zone = (_r4(min(sig.zone_low[row], sig.zone_high[row])), _r4(max(sig.zone_low[row], sig.zone_high[row])))
    trigger = strat.trigger(f, row, d, entry)
    plan = Plan(
        plan_id=make_plan_id(symbol, ev.style, strat.id, as_of, entry, direction),
        version=version,
        symbol=symbol,
        style=ev.style,
        strategy=strat.id,
        direction=direction,
        interval=ev.interval,
        entry=entry,
        stop=stop,
        targets=targets,
        quality=float(round(float(ev.conf[row, j]), 3)),
        quality_factors={k: float(round(float(v), 3)) for k, v in zip(cf.FACTORS, ev.factors[row, j])},
        confluence=_confluence(ev, row, j, targets),
        invalidation=strat.invalidation(f, row, d, entry, stop),
        as_of=as_of,
        session=session_status,
        sources=list(sources),
        entry_zone=zone,
        reach=_r4(ev.reach[row]) if ev.reach is not None and np.isfinite(ev.reach[row]) else None,
        beyond_reach=_beyond_price(ev, row, j),
    )
    o = calibration.plan_odds(fit, plan)
    plan = plan.model_copy(update={"probability": o.probability, "probability_n": o.n, "probability_basis": o.basis})
    return plan.model_copy(update={"summary": _summary(ev, row, j, plan, trigger)})


def _beyond_price(ev: Evaluation, row: int, j: int) -> float | None:
    """The price of the nearest level left out for being beyond reach, nearer than the last target or not."""
    if ev.beyond is None or not np.isfinite(ev.beyond[row, j]):
        return None
    return _r4(ev.entry[row, j] + ev.direction[row, j] * ev.beyond[row, j])


def no_plan_reason(ev: Evaluation, row: int) -> str:
    """Why symbol `row` has no plan, in one paragraph naming each strategy's blocker."""
    sym = ev.symbols[row]
    if not ev.strategies:
        return f"no strategy serves the {ev.style} style"
    if not ev.features.enough[row]:
        return f"not enough {ev.interval} bars for {sym} to plan on"
    parts = []
    near_miss = []
    a = ev.features.atr_now[row]
    for j, strat in enumerate(ev.strategies):
        code = ev.code[row, j]
        if code == ABSENT:
            why = str(ev.signals[j].reason[row])
        elif code == TOO_WIDE:
            why = f"stop would be {ev.risk[row, j] / a:.1f} ATR away (max {MAX_RISK_ATR[ev.style]:g})"
            near_miss.append(strat.name)
        elif code == NO_TARGET:
            frr = ev.first_rr[row, j]
            why = (
                f"no level at {strat.min_rr:g}R or more before the first obstacle"
                if np.isfinite(frr)
                else "no level beyond the entry to target"
            )
            if np.isfinite(frr):
                why = f"first level in the way is at {frr:.1f}R; no target keeps {strat.min_rr:g}R"
            if ev.beyond is not None and np.isfinite(ev.beyond[row, j]):
                far = ev.entry[row, j] + ev.direction[row, j] * ev.beyond[row, j]
                why += (
                    f" within reach (the level at {px(far)} is beyond the reach of {HORIZON_WORDS.get(ev.style, 'the horizon')})"
                )
            near_miss.append(strat.name)
        else:
            why = "not enough bars"
        parts.append(f"{strat.name}: {why}")
    head = f"No setup qualifies for {sym} ({ev.style}, {ev.interval} bars)"
    if near_miss:
        head += f"; {', '.join(near_miss)} showed up but failed the risk or R:R rules"
    return head + ". " + "; ".join(parts) + "."


# ---------------------------------------------------------------------------- one symbol


@dataclass
class PlanAnswer:
    """A plan result and the levels it was built from (for charts)."""

    result: PlanResult
    levels: list[Level]
    evaluation: Evaluation | None


def plan_symbol(
    symbol: str,
    style: str,
    bars: Mapping[str, pd.DataFrame],
    *,
    as_of: datetime,
    session: Mapping[str, object],
    sources: list[str],
    version: int = 1,
    fit: calibration.OddsFit | None = None,
) -> PlanAnswer:
    """Plan one symbol from its bars per interval (at least the style's execution interval); odds from `fit`."""
    checked = validate_style(style)
    exec_iv = STYLE_INTERVALS[checked][0]
    plain = plain_session(session)
    status = str(plain.get("status", "open"))
    df = bars.get(exec_iv)
    if df is None or df.empty:
        reason = f"no {exec_iv} bars for {symbol} up to {pd.Timestamp(as_of).tz_convert('UTC').isoformat()}"
        return PlanAnswer(
            PlanResult(symbol=symbol, style=checked, as_of=as_of, session=plain, sources=sources, plan=None, reason=reason),
            [],
            None,
        )
    panels = {iv: Panel.from_frame(symbol, b, iv) for iv, b in bars.items() if b is not None and not b.empty}
    ev = evaluate(panels, checked)
    levels = ev.book.levels(0)
    if ev.best[0] < 0:
        result = PlanResult(
            symbol=symbol, style=checked, as_of=as_of, session=plain, sources=sources, plan=None, reason=no_plan_reason(ev, 0)
        )
    else:
        plan = build_plan(ev, 0, as_of=as_of, session_status=status, sources=sources, version=version, fit=fit)
        result = PlanResult(symbol=symbol, style=checked, as_of=as_of, session=plain, sources=sources, plan=plan, reason=None)
    return PlanAnswer(result, levels, ev)
