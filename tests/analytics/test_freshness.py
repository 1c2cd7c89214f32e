"""The freshness badge: one decision from (data time, now, calendar, provider), one text for every surface."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.freshness import freshness
from renderers.freshness import age_text, badge_text

OPEN = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)  # Wednesday 11:00 ET
FRIDAY_CLOSE = datetime(2024, 3, 15, 20, 0, tzinfo=UTC)  # 16:00 ET
SATURDAY = datetime(2024, 3, 16, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age", "kind"),
    [
        (timedelta(0), "live"),
        (timedelta(seconds=119), "live"),
        (timedelta(minutes=16), "delayed"),
        (timedelta(minutes=21), "stale"),
    ],
)
def test_in_session_the_age_decides(age, kind):
    f = freshness(OPEN - age, OPEN, "polygon")
    assert f.kind == kind and f.age_seconds == pytest.approx(age.total_seconds())


def test_thresholds_are_the_callers():
    f = freshness(OPEN - timedelta(minutes=3), OPEN, "sim", live_within=timedelta(minutes=5))
    assert f.kind == "live"
    assert freshness(OPEN - timedelta(minutes=3), OPEN, "sim", stale_after=timedelta(minutes=2)).kind == "stale"


def test_a_provider_that_labelled_its_answer_stale_is_stale_whatever_the_age():
    assert freshness(OPEN, OPEN, "yahoo (stale: polygon: rate limited)").kind == "stale"


def test_a_closed_market_shows_the_last_close_and_old_data_is_stale():
    f = freshness(FRIDAY_CLOSE - timedelta(minutes=1), SATURDAY, "sim")
    assert f.kind == "closed" and f.last_close == FRIDAY_CLOSE
    assert badge_text(f) == "⚪ closed · as of Fri Mar 15 close"
    old = freshness(FRIDAY_CLOSE - timedelta(days=1), SATURDAY, "polygon delayed")
    assert old.kind == "stale" and badge_text(old) == "🔴 stale 1 d · polygon delayed"


def test_pre_market_is_as_of_the_last_close():
    pre = datetime(2024, 3, 13, 12, 0, tzinfo=UTC)  # 08:00 ET
    assert freshness(datetime(2024, 3, 12, 20, 0, tzinfo=UTC), pre, "sim").kind == "closed"


def test_a_provider_clock_ahead_of_ours_is_age_zero():
    assert freshness(OPEN + timedelta(seconds=5), OPEN, "tradier").age_seconds == 0.0


def test_badge_texts():
    assert badge_text(freshness(OPEN, OPEN, "sim")) == "🟢 live"
    assert badge_text(freshness(OPEN - timedelta(minutes=16), OPEN, "polygon delayed")) == "🟡 delayed 16 min"
    assert badge_text(freshness(OPEN - timedelta(hours=3, minutes=5), OPEN, "yahoo")) == "🔴 stale 3 h 05 min · yahoo"
    assert [age_text(s) for s in (40, 960, 7200, 200000)] == ["40 s", "16 min", "2 h", "2 d"]
