"""Backoff: the exponential ceiling, its cap, the jitter bounds, Retry-After, repeatable randomness."""

from __future__ import annotations

import random

import pytest

from core.retry import FULL_JITTER, NO_JITTER, Backoff


def test_ceiling_doubles_from_base_until_the_cap():
    b = Backoff(base=0.5, cap=8.0, jitter=NO_JITTER)
    assert [b.ceiling(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert [b.delay(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_factor_other_than_two():
    b = Backoff(base=1.0, cap=100.0, factor=3.0, jitter=NO_JITTER)
    assert [b.delay(n) for n in range(5)] == [1.0, 3.0, 9.0, 27.0, 81.0]


def test_a_count_that_never_resets_gets_the_cap_not_an_overflow():
    b = Backoff(base=1.0, cap=30.0, jitter=NO_JITTER)
    assert b.delay(5000) == 30.0
    assert Backoff(base=1.0, cap=30.0, factor=2, jitter=NO_JITTER).delay(5000) == 30.0  # int factor: int power


def test_jitter_scales_the_capped_ceiling_between_its_bounds():
    low = Backoff(base=1.0, cap=300.0, jitter=(0.8, 1.2), rng=lambda: 0.0)
    high = Backoff(base=1.0, cap=300.0, jitter=(0.8, 1.2), rng=lambda: 1.0)
    assert low.delay(3) == pytest.approx(6.4) and high.delay(3) == pytest.approx(9.6)
    # the cap applies before the jitter: a capped delay may still spread above it
    assert high.delay(20) == pytest.approx(360.0) and low.delay(20) == pytest.approx(240.0)


def test_full_jitter_is_uniform_below_the_ceiling():
    b = Backoff(base=0.25, cap=4.0, jitter=FULL_JITTER, rng=random.Random(1).random)
    delays = [b.delay(2) for _ in range(2000)]
    assert all(0.0 <= d < 1.0 for d in delays)
    assert 0.45 < sum(delays) / len(delays) < 0.55  # mean of U[0, 1)
    assert min(delays) < 0.05 and max(delays) > 0.95


def test_a_seeded_source_repeats_its_delays():
    one = Backoff(base=1.0, cap=60.0, rng=random.Random(42).random)
    two = Backoff(base=1.0, cap=60.0, rng=random.Random(42).random)
    assert [one.delay(n) for n in range(8)] == [two.delay(n) for n in range(8)]
    assert len({one.delay(3) for _ in range(5)}) == 5  # and does vary from call to call


def test_retry_after_wins_over_the_schedule_and_is_never_negative():
    b = Backoff(base=1.0, cap=2.0, jitter=NO_JITTER)
    assert b.delay(0, retry_after=45.0) == 45.0  # the server's word, even above the cap
    assert b.delay(3, retry_after=0.0) == 0.0
    assert b.delay(0, retry_after=-3.0) == 0.0
    assert b.delay(0, retry_after=None) == 1.0


def test_rng_is_not_part_of_equality():
    assert Backoff(1.0, 2.0, rng=lambda: 0.3) == Backoff(1.0, 2.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(base=-1.0, cap=1.0),
        dict(base=1.0, cap=-1.0),
        dict(base=1.0, cap=1.0, factor=0.5),
        dict(base=1.0, cap=1.0, jitter=(1.2, 0.8)),
        dict(base=1.0, cap=1.0, jitter=(-0.1, 1.0)),
    ],
)
def test_nonsense_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_negative_attempt_is_refused():
    with pytest.raises(ValueError):
        Backoff(1.0, 2.0).delay(-1)
