"""Plan odds: the no-edge prior, shrinkage towards it, the walk-forward that never sees the future, and scoring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics import calibration as cal
from analytics.models import Plan, Target
from analytics.outcomes import OutcomeEvent, TradeOutcome

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
DAY = cal.DAY_NS


def rows(n: int, *, hit_rate: float, rr: float = 2.0, strategy="orb", style="intraday", quality=0.55, start_day=0, seed=1):
    """n resolved plans, one a day from `start_day`, each resolved two hours after it was made."""
    rng = np.random.default_rng(seed)
    out = []
    base = cal.ns_of(T0)
    for i in range(n):
        planned = base + (start_day + i) * DAY
        out.append((strategy, style, quality, rr, int(rng.random() < hit_rate), planned, planned + 2 * 3600 * 10**9))
    return out


# ---------------------------------------------------------------------------- prior


def test_the_no_edge_prior_is_one_over_one_plus_r():
    assert cal.prior(np.array([0.0, 1.0, 2.0, 3.0])).tolist() == pytest.approx([1.0, 0.5, 1 / 3, 0.25])
    assert float(cal.prior(-1.0)) == 1.0  # a target on the wrong side counts as R = 0


def test_without_a_fit_a_plan_gets_the_prior_and_says_so():
    o = cal.odds(None, "orb", "intraday", 0.7, 2.0)
    assert o.probability == pytest.approx(1 / 3, abs=1e-4) and o.n == 0
    assert o.basis == "no past outcomes yet: no-edge prior"
    empty = cal.fit(cal.samples_of([]), fitted_at=T0)
    assert empty.n == 0 and empty.nodes == {}
    assert cal.odds(empty, "orb", "intraday", 0.7, 2.0).basis == cal.NO_FIT_BASIS


def test_every_plan_carries_odds_even_when_built_without_them():
    p = Plan(
        plan_id="P-ABC123",
        symbol="TSLA",
        style="intraday",
        strategy="orb",
        direction="short",
        interval="5m",
        entry=100.0,
        stop=101.0,
        targets=[Target(price=97.0, rr=3.0, reason="x")],
        quality=0.7,
        quality_factors={},
        confluence=[],
        invalidation="x",
        as_of=T0,
        session="open",
        sources=[],
    )
    assert p.probability == pytest.approx(0.25) and p.probability_n == 0 and "no-edge prior" in p.probability_basis
    # a plan stored before the rename reads its grade as quality
    old = p.model_dump(mode="json")
    old["confidence"], old["confidence_factors"] = old.pop("quality"), old.pop("quality_factors")
    del old["probability"]
    again = Plan.model_validate(old)
    assert again.quality == 0.7 and again.probability == pytest.approx(0.25)


# ---------------------------------------------------------------------------- shrinkage


def test_a_few_outcomes_barely_move_the_prior_and_many_move_it_to_what_happened():
    # the prior says 33% at 2R; what happens is 10%
    few = cal.fit(cal.samples_of(rows(5, hit_rate=0.0)), fitted_at=T0)
    many = cal.fit(cal.samples_of(rows(3000, hit_rate=0.10)), fitted_at=T0)
    p_few = cal.odds(few, "orb", "intraday", 0.55, 2.0).probability
    p_many = cal.odds(many, "orb", "intraday", 0.55, 2.0).probability
    assert 0.25 < p_few < 1 / 3  # five stop-outs are not a reason to say 0%
    assert p_many == pytest.approx(0.10, abs=0.015)


def test_shrinkage_golden_one_path_closed_form():
    """One path, every plan at the same R: the four effects are equal and hits - n p = K w delta, checked by hand."""
    s = cal.samples_of(rows(40, hit_rate=0.0, rr=1.0))  # prior 50%, 40 stop-outs
    f = cal.fit(s, fitted_at=T0, strength=20.0)
    d = f.nodes["orb|intraday|q1"].offset
    p = 1 / (1 + np.exp(-d))
    assert 0 - 40 * p == pytest.approx(20.0 * 0.25 * d, abs=1e-4)  # K pseudo-plans x p(1-p) at the prior's 50%
    assert f.nodes["*"].offset == pytest.approx(d / 4, abs=1e-5) and f.nodes["orb|intraday"].offset == pytest.approx(
        d * 3 / 4, abs=1e-5
    )
    assert f.nodes["*"].n == 40 and f.nodes["*"].expected == pytest.approx(20.0)
    assert cal.odds(f, "orb", "intraday", 0.55, 1.0).probability == pytest.approx(p, abs=1e-4)


def test_a_thin_strategy_leans_on_its_style_and_an_unseen_one_is_its_style():
    data = rows(2000, hit_rate=0.12, strategy="vwap_reclaim") + rows(4, hit_rate=1.0, strategy="orb", seed=3)
    f = cal.fit(cal.samples_of(data), fitted_at=T0)
    vwap = cal.odds(f, "vwap_reclaim", "intraday", 0.55, 2.0)
    orb = cal.odds(f, "orb", "intraday", 0.55, 2.0)
    unseen = cal.odds(f, "gap_go", "intraday", 0.55, 2.0)
    style_only = cal.odds(f, "gap_go", "intraday", 0.55, 2.0).probability
    assert vwap.probability == pytest.approx(0.12, abs=0.02) and vwap.n == 2000
    assert "from 2,000 past VWAP reclaim/reject intraday plans" == vwap.basis
    # four T1 hits pull ORB up, but nowhere near 100%: its style's 12% still carries most of the weight
    assert vwap.probability < orb.probability < 0.4
    assert unseen.probability == style_only and unseen.n == 2004 and "no past gap-and-go intraday plan yet" in unseen.basis
    other_style = cal.odds(f, "orb", "swing", 0.55, 2.0)
    assert other_style.basis.startswith("no past swing plan yet") and other_style.n == 2004


def test_the_quality_bucket_refines_the_odds_where_data_allows():
    lo = rows(1500, hit_rate=0.10, quality=0.40, seed=5)
    hi = rows(1500, hit_rate=0.30, quality=0.70, seed=6)
    f = cal.fit(cal.samples_of(lo + hi), fitted_at=T0)
    p_lo = cal.odds(f, "orb", "intraday", 0.40, 2.0).probability
    p_hi = cal.odds(f, "orb", "intraday", 0.70, 2.0).probability
    # most of the way from the pair's 20% to each bucket's own rate, a little held back by the shrinkage
    assert 0.09 < p_lo < 0.13 and 0.26 < p_hi < 0.31
    assert set(f.nodes) == {"*", "intraday", "orb|intraday", "orb|intraday|q0", "orb|intraday|q2"}


def test_different_targets_share_a_node_on_the_log_odds_scale():
    """Plans at 1R and 3R in one node: the fitted offset is applied to each plan's own prior."""
    f = cal.fit(cal.samples_of(rows(3000, hit_rate=0.2, rr=1.0) + rows(3000, hit_rate=0.2 / 3, rr=3.0, seed=4)), fitted_at=T0)
    p1 = cal.odds(f, "orb", "intraday", 0.55, 1.0).probability
    p3 = cal.odds(f, "orb", "intraday", 0.55, 3.0).probability
    assert p1 > 2 * p3  # a farther target stays less likely


# ---------------------------------------------------------------------------- walk-forward


def test_walk_forward_never_uses_an_outcome_resolved_after_the_plan():
    """Rewrite every outcome resolved after day 60: no probability of a plan made by then may move."""
    data = rows(120, hit_rate=0.2, seed=11)
    s = cal.samples_of(data)
    before = cal.walk_forward(s).probability
    flipped = [
        (a, b, c, d, 1 - y, pl, rs) if pl >= cal.ns_of(T0) + 60 * DAY else (a, b, c, d, y, pl, rs)
        for a, b, c, d, y, pl, rs in data
    ]
    after = cal.walk_forward(cal.samples_of(flipped)).probability
    made_by_60 = s.planned_ns < cal.ns_of(T0) + 60 * DAY
    assert np.array_equal(before[made_by_60], after[made_by_60])
    assert not np.allclose(before[~made_by_60], after[~made_by_60])  # the later ones did learn from the change


def test_walk_forward_waits_for_the_resolution_not_the_plan():
    """A plan made yesterday but resolved tomorrow must not teach today's fit."""
    base = cal.ns_of(T0)
    slow = ("orb", "intraday", 0.55, 2.0, 0, base, base + 3 * DAY)  # resolves on day 3
    later = ("orb", "intraday", 0.55, 2.0, 0, base + DAY + 3600 * 10**9, base + DAY + 7200 * 10**9)  # made on day 1
    wf = cal.walk_forward(cal.samples_of([slow, later]))
    assert wf.probability.tolist() == pytest.approx([1 / 3, 1 / 3], abs=1e-6) and wf.n.tolist() == [0, 0]


def test_walk_forward_equals_the_stored_fit_of_the_same_morning():
    data = rows(50, hit_rate=0.15, seed=2)
    s = cal.samples_of(data)
    wf = cal.walk_forward(s)
    k = 40
    morning = (int(s.planned_ns[k]) // DAY) * DAY
    f = cal.fit(s.take(s.resolved_ns <= morning), fitted_at=T0)
    assert wf.probability[k] == pytest.approx(cal.odds(f, "orb", "intraday", 0.55, 2.0).probability, abs=1e-4)
    assert wf.n[k] == f.nodes["orb|intraday"].n == 40


def _outcome(k: int, first: str | None, status: str = "closed") -> TradeOutcome:
    at = T0 + timedelta(days=k)
    events = [OutcomeEvent(kind="entry", at=at, price=100.0)]
    if first == "t1":
        events.append(OutcomeEvent(kind="target", at=at + timedelta(hours=1), price=102.0, target=1, size=1.0))
    elif first == "stop":
        events.append(OutcomeEvent(kind="stop", at=at + timedelta(hours=1), price=99.0, size=1.0))
    return TradeOutcome(
        plan_id=f"P-{k}",
        symbol="SPY",
        strategy="orb",
        style="intraday",
        direction="long",
        quality=0.6,
        entry=100.0,
        stop=99.0,
        targets=[102.0],
        planned_at=at,
        status=status,  # type: ignore[arg-type]
        first=first,  # type: ignore[arg-type]
        exited_at=at + timedelta(hours=1) if status == "closed" else None,
        events=events,
    )


def test_outcomes_get_walk_forward_odds_and_unresolved_ones_still_get_a_probability():
    outs = [_outcome(k, "stop") for k in range(30)] + [_outcome(30, None, status="no_entry")]
    scored = cal.with_walk_forward(outs)
    assert scored[0].probability == pytest.approx(1 / 3, abs=1e-4)  # nothing resolved before the first
    assert scored[29].probability < scored[1].probability < 1 / 3  # every stop-out lowers the next day's odds
    assert scored[30].probability is not None and scored[30].probability < scored[1].probability
    s, index = cal.samples_from(outs)
    assert len(index) == 31 and int((s.resolved_ns < cal.NEVER).sum()) == 30


# ---------------------------------------------------------------------------- scoring


def test_brier_and_skill_golden():
    p = np.array([0.2, 0.2, 0.6, 0.6])
    y = np.array([0, 0, 1, 0])
    sc = cal.score(p, y, resamples=0)
    assert sc.brier == pytest.approx((0.04 + 0.04 + 0.16 + 0.36) / 4)
    assert sc.base_rate == 0.25 and sc.brier_reference == pytest.approx(0.1875)
    assert sc.skill == pytest.approx(1 - 0.15 / 0.1875) and sc.skill_se is None


def test_the_skill_band_is_resampled_by_day():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(float)
    p = np.clip(0.3 + 0.2 * (y - 0.3) + rng.normal(0, 0.05, 2000), 0.01, 0.99)
    by_plan = cal.score(p, y)
    by_day = cal.score(p, y, np.repeat(np.arange(100), 20))
    assert by_plan.skill is not None and by_plan.skill > 0 and by_plan.skill_se is not None and by_plan.skill_se > 0
    assert by_day.skill == by_plan.skill and by_day.skill_se is not None and by_day.skill_se > 0
