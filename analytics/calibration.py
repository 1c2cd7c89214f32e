"""The odds of a plan: the chance price reaches T1 before the stop, calibrated on resolved past plans.

The model, in three steps:

* **Prior.** With no edge, price is a driftless walk. A plan risks 1R to the stop and asks for
  R multiples of that risk at T1, so the chance T1 comes first is the gambler's-ruin answer

      prior(R) = 1 / (1 + R)              (T1 at 2R: 33%; at 1R: 50%)

* **Calibration.** Real fills, gaps and the worst-order rule of `analytics.outcomes` move the
  true rate away from that prior, and some setups may do better than others. So each plan's
  log-odds is the prior's plus an offset learned from resolved plans:

      logit p = logit prior(R) + delta[node]

  Nodes form a tree: all plans -> style -> strategy x style -> strategy x style x quality
  bucket, and a plan's delta is the sum of one effect per level along its path. The effects
  maximise, jointly, the Bernoulli log-likelihood of the plans plus a Gaussian pull of every
  effect towards 0 (the no-edge prior):

      sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)]  -  (lam / 2) sum_effects e^2
      lam = L * K * w,   w = mean_i prior_i (1 - prior_i),   L = 4 levels

  K * w is the Fisher information of K plans at the prior's odds, so the prior counts as K
  pseudo-plans (the beta-binomial pseudo-count, on the log-odds scale so plans with different
  targets can share one node); the L effects of a path share that weight, and each plan's
  outcome is counted once however deep the tree. A node with few plans stays near its parent;
  an empty one is its parent. With no resolved plan at all every plan gets the prior.
* **Walk-forward.** A fit uses only outcomes resolved by the moment it is made. Live, the
  service refits daily; a backtest scores each plan with the fit made at the start of its
  (UTC) day from that run's outcomes resolved by then, so no plan is scored with its own
  future. `tests/analytics/test_calibration.py` changes every later outcome and checks that
  no earlier probability moves.

The **Brier score** of forecasts p against outcomes y is mean (p - y)^2. The reference is the
score of always saying the observed base rate (a forecast that knows the whole sample's rate,
so beating it out of sample is a fair bar); skill = 1 - Brier / reference, with a bootstrap
band over trading days (plans of one day share the market, so days are resampled, not plans).

Pure NumPy; time is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pydantic import Field

from analytics.models import Model, Plan
from analytics.no_edge import NO_FIT_BASIS, first_rr
from analytics.outcomes import TradeOutcome

#: Bump when the model changes: a stored fit of another version is not used.
METHOD_VERSION = 1
#: How many pseudo-plans a parent node's odds are worth to its children.
PRIOR_STRENGTH = 30.0
#: Quality buckets (the seven-factor grade): below 0.5, 0.5-0.6, 0.6 and above.
QUALITY_EDGES: tuple[float, ...] = (0.0, 0.5, 0.6, 1.0)
#: Largest |delta| a fit may reach: a factor of e^3 = 20 on the odds, far beyond any real edge.
MAX_OFFSET = 3.0
DAY_NS = 86_400 * 10**9
_NEWTON_STEPS = 2
_SWEEPS = 200


def prior(rr: float | np.ndarray) -> np.ndarray:
    """The no-edge chance of T1 before the stop with T1 at `rr` multiples of the risk: 1 / (1 + R)."""
    r = np.maximum(np.asarray(rr, dtype=np.float64), 0.0)
    out: np.ndarray = 1.0 / (1.0 + r)
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    out: np.ndarray = np.log(q / (1.0 - q))
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out


def quality_bucket(quality: float | np.ndarray, edges: Sequence[float] = QUALITY_EDGES) -> np.ndarray:
    """The bucket index of each quality score (1.0 falls in the last bucket)."""
    i = np.searchsorted(np.asarray(edges), np.asarray(quality, dtype=np.float64), side="right") - 1
    out: np.ndarray = np.clip(i, 0, len(edges) - 2)
    return out


def node_keys(strategy: str, style: str, bucket: int) -> tuple[str, str, str, str]:
    """The keys of a plan's nodes, root first: all, style, strategy x style, strategy x style x quality bucket."""
    return ("*", style, f"{strategy}|{style}", f"{strategy}|{style}|q{bucket}")


# ---------------------------------------------------------------------------- samples


def no_edge(entry: float, stop: float, t1: float) -> float:
    """The no-edge prior of a plan from its prices."""
    return float(prior(first_rr(entry, stop, t1)))


def t1_label(o: TradeOutcome) -> int | None:
    """1 if T1 came before the stop, 0 if the stop came first or the trade closed without either, None if unknown."""
    if o.status == "no_entry":
        return None
    if o.first == "t1":
        return 1
    if o.first == "stop" or o.status == "closed":
        return 0
    return None


def resolved_at(o: TradeOutcome) -> datetime | None:
    """When the answer to "T1 before the stop?" became known: the T1 or stop event, else the exit."""
    for e in o.events:
        if (e.kind == "target" and e.target == 1) or e.kind in ("stop", "breakeven"):
            return e.at
    return o.exited_at


@dataclass(frozen=True)
class Samples:
    """Resolved plans as columns: what a fit learns from and a walk-forward scores."""

    strategy: np.ndarray  # object (str)
    style: np.ndarray  # object (str)
    quality: np.ndarray  # float64 in [0, 1]
    rr: np.ndarray  # float64, T1 in multiples of the risk
    hit: np.ndarray  # float64, 1 when T1 came before the stop
    planned_ns: np.ndarray  # int64, UTC ns
    resolved_ns: np.ndarray  # int64, UTC ns

    def __len__(self) -> int:
        return len(self.hit)

    def take(self, mask: np.ndarray) -> Samples:
        return Samples(*(getattr(self, f)[mask] for f in _FIELDS))


_FIELDS = ("strategy", "style", "quality", "rr", "hit", "planned_ns", "resolved_ns")


def ns_of(at: datetime) -> int:
    """UTC nanoseconds of an aware time."""
    return int(at.timestamp() * 1e6) * 1000


#: The resolved time of a plan whose answer is not known (never enters a fit).
NEVER = int(np.iinfo(np.int64).max)


def samples_from(outcomes: Sequence[TradeOutcome]) -> tuple[Samples, list[int]]:
    """Outcomes as Samples, and each sample's index in `outcomes`.

    Plans whose answer is not known yet (never entered, still open without T1 or the stop) are
    kept with `resolved_ns = NEVER`: they get a probability but never teach a fit. Plans without
    a usable T1 are left out.
    """
    rows: list[tuple[str, str, float, float, int, int, int]] = []
    index: list[int] = []
    for k, o in enumerate(outcomes):
        rr = first_rr(o.entry, o.stop, o.targets[0]) if o.targets else float("nan")
        if not np.isfinite(rr):
            continue
        y = t1_label(o)
        at = resolved_at(o) if y is not None else None
        resolved = ns_of(at) if at is not None else NEVER
        rows.append((o.strategy, o.style, float(o.quality), rr, int(y or 0), ns_of(o.planned_at), resolved))
        index.append(k)
    return samples_of(rows), index


def with_walk_forward(outcomes: Sequence[TradeOutcome], *, every_ns: int = DAY_NS) -> list[TradeOutcome]:
    """The outcomes with `probability` set to their walk-forward odds (see `walk_forward`)."""
    s, index = samples_from(outcomes)
    wf = walk_forward(s, every_ns=every_ns)
    out = list(outcomes)
    for k, p in zip(index, wf.probability.tolist()):
        out[k] = out[k].model_copy(update={"probability": round(float(p), 4)})
    return out


def samples_of(rows: Sequence[tuple[str, str, float, float, int, int, int]]) -> Samples:
    """Samples from (strategy, style, quality, rr, hit, planned_ns, resolved_ns) tuples."""
    cols = list(zip(*rows)) if rows else [()] * 7
    return Samples(
        strategy=np.array(cols[0], dtype=object),
        style=np.array(cols[1], dtype=object),
        quality=np.array(cols[2], dtype=np.float64),
        rr=np.array(cols[3], dtype=np.float64),
        hit=np.array(cols[4], dtype=np.float64),
        planned_ns=np.array(cols[5], dtype=np.int64),
        resolved_ns=np.array(cols[6], dtype=np.int64),
    )


# ---------------------------------------------------------------------------- the fit


class OddsNode(Model):
    """One node of a fit: its resolved plans, how many reached T1 first, the prior's expectation, its offset."""

    n: int
    hits: int
    expected: float  # sum of the plans' no-edge priors
    offset: float  # delta: added to the prior's log-odds


class OddsFit(Model):
    """A calibration: the offsets of every node that had resolved plans, and where they came from."""

    version: int = METHOD_VERSION
    fitted_at: datetime
    n: int
    hits: int
    strength: float = PRIOR_STRENGTH
    quality_edges: list[float] = Field(default_factory=lambda: list(QUALITY_EDGES))
    nodes: dict[str, OddsNode] = Field(default_factory=dict)
    symbols: list[str] = Field(default_factory=list)
    styles: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class _Codes:
    """Integer codes of each sample's node at every level, and the keys they stand for."""

    codes: list[np.ndarray]
    keys: list[np.ndarray]


def _codes(s: Samples, edges: Sequence[float]) -> _Codes:
    b = quality_bucket(s.quality, edges)
    n = len(s)
    style = s.style.astype(str)
    pair = np.char.add(np.char.add(s.strategy.astype(str), "|"), style)
    quad = np.char.add(np.char.add(pair, "|q"), b.astype(str))
    levels = [np.full(n, "*"), style, pair, quad]
    codes, keys = [], []
    for lv in levels:
        k, inv = np.unique(lv, return_inverse=True) if n else (np.array([], dtype=str), np.zeros(0, dtype=np.int64))
        codes.append(inv.astype(np.int64))
        keys.append(k)
    return _Codes(codes, keys)


def _fit_offsets(
    z: np.ndarray, y: np.ndarray, codes: _Codes, strength: float
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per level: (delta, n, hits, expected) of every node; delta is the sum of the effects from the root down to it.

    One joint penalised fit (see the module docstring), by block coordinate ascent: each sweep
    updates one level's effects with the others held, a few Newton steps each. The objective is
    concave, so the sweeps converge; each plan's data is used once however deep the tree.
    """
    n_rows = len(y)
    levels = len(codes.codes)
    p0 = _sigmoid(z)
    w = float(np.mean(p0 * (1 - p0))) if n_rows else 0.25
    lam = strength * levels * w  # L effects of precision K*L*w each: their sum has the precision of K plans
    sizes = [int(c.max()) + 1 if len(c) else 0 for c in codes.codes]
    effects = [np.zeros(m) for m in sizes]
    total = np.zeros(n_rows)
    for _ in range(_SWEEPS):
        moved = 0.0
        for lv, code in enumerate(codes.codes):
            m = sizes[lv]
            e = effects[lv]
            others = total - e[code]
            for _ in range(_NEWTON_STEPS):
                p = _sigmoid(z + others + e[code])
                grad = np.bincount(code, weights=y - p, minlength=m) - lam * e
                hess = np.bincount(code, weights=p * (1 - p), minlength=m) + lam
                step = grad / hess
                e = np.clip(e + step, -MAX_OFFSET, MAX_OFFSET)
                moved = max(moved, float(np.max(np.abs(step), initial=0.0)))
            effects[lv] = e
            total = others + e[code]
        if moved < 1e-9:
            break
    out = []
    cum = np.zeros(n_rows)
    for lv, code in enumerate(codes.codes):
        m = sizes[lv]
        cum = cum + effects[lv][code]
        delta = np.zeros(m)
        delta[code] = cum  # every plan of a node has the same chain of effects
        n = np.bincount(code, minlength=m).astype(np.float64)
        hits = np.bincount(code, weights=y, minlength=m)
        expected = np.bincount(code, weights=p0, minlength=m)
        out.append((np.clip(delta, -MAX_OFFSET, MAX_OFFSET), n, hits, expected))
    return out


def fit(
    samples: Samples,
    *,
    fitted_at: datetime,
    strength: float = PRIOR_STRENGTH,
    edges: Sequence[float] = QUALITY_EDGES,
    symbols: Sequence[str] = (),
    sources: Sequence[str] = (),
) -> OddsFit:
    """Fit the offsets on resolved plans (the caller passes only outcomes resolved by `fitted_at`)."""
    if not strength > 0:
        raise ValueError("the prior strength must be positive")
    samples = samples.take(samples.resolved_ns < NEVER)
    z = _logit(prior(samples.rr))
    codes = _codes(samples, edges)
    nodes: dict[str, OddsNode] = {}
    if len(samples):
        for (delta, n, hits, expected), keys in zip(_fit_offsets(z, samples.hit, codes, strength), codes.keys):
            for i, key in enumerate(keys.tolist()):
                nodes[str(key)] = OddsNode(
                    n=int(n[i]), hits=int(hits[i]), expected=float(expected[i]), offset=float(round(delta[i], 6))
                )
    planned = samples.planned_ns
    return OddsFit(
        fitted_at=fitted_at,
        n=len(samples),
        hits=int(samples.hit.sum()),
        strength=strength,
        quality_edges=list(edges),
        nodes=nodes,
        symbols=sorted(set(symbols)),
        styles=sorted({str(s) for s in samples.style.tolist()}),
        sources=list(sources),
        start=_utc(int(planned.min())) if len(planned) else None,
        end=_utc(int(samples.resolved_ns.max())) if len(planned) else None,
    )


def _utc(ns: int) -> datetime:
    from datetime import UTC

    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


# ---------------------------------------------------------------------------- odds of one plan


class Odds(Model):
    """A plan's chance of T1 before the stop, how many resolved plans it rests on, and on what."""

    probability: float = Field(ge=0.0, le=1.0)
    n: int = 0
    basis: str = NO_FIT_BASIS


def _strategy_name(strategy: str) -> str:
    from analytics.strategies import by_id

    try:
        return by_id(strategy).name
    except (KeyError, ValueError, LookupError):
        return strategy.replace("_", " ")


def odds(fit: OddsFit | None, strategy: str, style: str, quality: float, rr: float) -> Odds:
    """The calibrated chance that a plan with T1 at `rr` multiples of its risk reaches T1 before the stop."""
    base = float(prior(rr))
    if fit is None or fit.version != METHOD_VERSION or fit.n == 0:
        return Odds(probability=round(base, 4), n=0, basis=NO_FIT_BASIS)
    b = int(quality_bucket(quality, fit.quality_edges))
    delta = 0.0
    for key in node_keys(strategy, style, b):
        node = fit.nodes.get(key)
        if node is None:
            break  # an unseen node is its parent
        delta = node.offset
    p = float(_sigmoid(np.asarray(_logit(np.asarray(base)) + delta)))
    pair = fit.nodes.get(f"{strategy}|{style}")
    name = _strategy_name(strategy)
    if pair is not None:
        basis = f"from {pair.n:,} past {name} {style} plans"
        n = pair.n
    elif (st := fit.nodes.get(style)) is not None:
        basis = f"no past {name} {style} plan yet: from {st.n:,} past {style} plans"
        n = st.n
    else:
        basis = f"no past {style} plan yet: from {fit.n:,} past plans of other styles"
        n = fit.n
    return Odds(probability=round(p, 4), n=n, basis=basis)


#: How the odds sentence starts (a plan's summary leads with it).
ODDS_PREFIX = "T1 before the stop: "


def odds_line(probability: float, basis: str) -> str:
    """The sentence a reply leads with."""
    return f"{ODDS_PREFIX}{probability:.0%}, {basis}."


def plan_odds(fit: OddsFit | None, plan: Plan) -> Odds:
    """The odds of `plan` under `fit` (None: the no-edge prior)."""
    rr = first_rr(plan.entry, plan.stop, plan.targets[0].price) if plan.targets else float("nan")
    if not np.isfinite(rr):
        return Odds(probability=0.0, n=0, basis=NO_FIT_BASIS)
    return odds(fit, plan.strategy, plan.style, plan.quality, rr)


def with_odds(plan: Plan, fit: OddsFit | None) -> Plan:
    """`plan` with its odds from `fit`, its summary leading with them."""
    o = plan_odds(fit, plan)
    lines = plan.summary.split("\n") if plan.summary else []
    if lines and lines[0].startswith(ODDS_PREFIX):
        lines = lines[1:]
    summary = "\n".join([odds_line(o.probability, o.basis), *lines]) if lines else plan.summary
    return plan.model_copy(
        update={"probability": o.probability, "probability_n": o.n, "probability_basis": o.basis, "summary": summary}
    )


# ---------------------------------------------------------------------------- walk-forward


@dataclass(frozen=True)
class WalkForward:
    """Per sample: the probability it was given, and how many resolved plans of its strategy x style that rested on."""

    probability: np.ndarray
    n: np.ndarray
    fits: int


def walk_forward(
    samples: Samples, *, every_ns: int = DAY_NS, strength: float = PRIOR_STRENGTH, edges: Sequence[float] = QUALITY_EDGES
) -> WalkForward:
    """Each sample's probability from a fit made at the start of its period (`every_ns`, a UTC day by default).

    That fit sees only samples resolved by the period's start, so nothing a plan could not have known.
    """
    n = len(samples)
    prob = prior(samples.rr).copy() if n else np.zeros(0)
    rested = np.zeros(n, dtype=np.int64)
    if not n:
        return WalkForward(prob, rested, 0)
    z_all = _logit(prior(samples.rr))
    codes = _codes(samples, edges)
    epoch = (samples.planned_ns // every_ns) * every_ns
    fits = 0
    for t in np.unique(epoch):
        rows = np.flatnonzero(epoch == t)
        train = samples.resolved_ns <= t
        if not train.any():
            continue
        fits += 1
        sub = _Codes([c[train] for c in codes.codes], codes.keys)
        # compact the codes of the training rows so each level's arrays stay small
        compact = [np.unique(c, return_inverse=True) for c in sub.codes]
        levels = _fit_offsets(z_all[train], samples.hit[train], _Codes([inv for _, inv in compact], []), strength)
        delta = np.zeros(len(rows))
        known = np.ones(len(rows), dtype=bool)
        for (present, _), (d, cnt, _, _), code in zip(compact, levels, codes.codes):
            pos = np.searchsorted(present, code[rows])
            pos_c = np.minimum(pos, len(present) - 1)
            found = known & (present[pos_c] == code[rows])
            delta = np.where(found, d[pos_c], delta)
            known = found
            if code is codes.codes[2]:
                rested[rows] = np.where(found, cnt[pos_c], 0).astype(np.int64)
        prob[rows] = _sigmoid(z_all[rows] + delta)
    return WalkForward(prob, rested, fits)


# ---------------------------------------------------------------------------- scoring


class Score(Model):
    """How good a set of forecasts was against what happened."""

    n: int
    mean_forecast: float | None = None
    base_rate: float | None = None
    brier: float | None = None
    brier_reference: float | None = None
    skill: float | None = None
    #: Bootstrap standard error of the skill (days resampled).
    skill_se: float | None = None


def brier(p: np.ndarray, y: np.ndarray) -> float:
    """Mean squared gap between forecasts and 0/1 outcomes."""
    return float(np.mean((np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2))


def score(p: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, *, resamples: int = 400, seed: int = 7) -> Score:
    """Brier, the base-rate reference, skill, and a bootstrap standard error of the skill over `groups` (e.g. days)."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if not n:
        return Score(n=0)
    b = brier(p, y)
    base = float(y.mean())
    ref = brier(np.full(n, base), y)
    skill = 1.0 - b / ref if ref > 0 else None
    se = None
    if skill is not None and resamples > 0 and n > 1:
        g = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
        k = int(g.max()) + 1
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, k, size=(resamples, k))
        # per group: sums of squared errors, of y and of y^2 (= y), and counts, so a resample is a weighted sum
        sq = np.bincount(g, weights=(p - y) ** 2, minlength=k)
        sy = np.bincount(g, weights=y, minlength=k)
        cnt = np.bincount(g, minlength=k).astype(np.float64)
        w = np.stack([np.bincount(d, minlength=k) for d in draws]).astype(np.float64)
        tot = w @ cnt
        ybar = (w @ sy) / tot
        ref_b = ybar * (1 - ybar)  # the base-rate Brier of a 0/1 sample is rate x (1 - rate)
        ok = ref_b > 0
        sk = 1.0 - ((w @ sq) / tot)[ok] / ref_b[ok]
        se = float(sk.std(ddof=1)) if len(sk) > 1 else None
    return Score(n=n, mean_forecast=float(p.mean()), base_rate=base, brier=b, brier_reference=ref, skill=skill, skill_se=se)


__all__ = [
    "DAY_NS",
    "METHOD_VERSION",
    "NEVER",
    "NO_FIT_BASIS",
    "ODDS_PREFIX",
    "PRIOR_STRENGTH",
    "QUALITY_EDGES",
    "Odds",
    "OddsFit",
    "OddsNode",
    "Samples",
    "Score",
    "WalkForward",
    "brier",
    "first_rr",
    "fit",
    "no_edge",
    "node_keys",
    "ns_of",
    "odds",
    "odds_line",
    "plan_odds",
    "with_odds",
    "prior",
    "quality_bucket",
    "resolved_at",
    "samples_from",
    "samples_of",
    "score",
    "t1_label",
    "walk_forward",
    "with_walk_forward",
]
