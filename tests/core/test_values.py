"""Value helpers: epoch nanoseconds and datetimes as aware UTC, loose values as finite floats."""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.values import as_utc, to_float, utc_from_ns

NY = ZoneInfo("America/New_York")


# -- utc_from_ns


def test_utc_from_ns_of_a_bar_stamp():
    ns = 1710338400 * 10**9  # 2024-03-13 14:00 UTC
    dt = utc_from_ns(ns)
    assert dt == datetime(2024, 3, 13, 14, 0, tzinfo=UTC)
    assert dt.tzinfo is UTC


def test_utc_from_ns_drops_sub_microseconds_toward_the_past():
    assert utc_from_ns(1_999).microsecond == 1
    assert utc_from_ns(-1_500) == datetime(1969, 12, 31, 23, 59, 59, 999_998, tzinfo=UTC)


def test_utc_from_ns_takes_numpy_integers():
    stamps = np.array([0, 1710338400 * 10**9], dtype=np.int64)
    assert utc_from_ns(stamps[1]) == datetime(2024, 3, 13, 14, 0, tzinfo=UTC)
    assert utc_from_ns(stamps[0]) == datetime(1970, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=pd.Timestamp.min.value, max_value=pd.Timestamp.max.value))
def test_utc_from_ns_agrees_with_pandas(ns: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas warns when it drops nanoseconds
        expected = pd.Timestamp(ns, tz="UTC").to_pydatetime()
    got = utc_from_ns(ns)
    assert got == expected and got.tzinfo == expected.tzinfo


# -- as_utc


def test_as_utc_takes_a_naive_datetime_to_be_utc():
    naive = datetime(2024, 3, 13, 15, 0, 30, 250)
    assert as_utc(naive) == datetime(2024, 3, 13, 15, 0, 30, 250, tzinfo=UTC)
    assert as_utc(naive).tzinfo is UTC


def test_as_utc_converts_an_aware_datetime_keeping_the_instant():
    ny = datetime(2024, 3, 13, 11, 0, tzinfo=NY)  # EDT, UTC-4
    out = as_utc(ny)
    assert out == ny and out.tzinfo is UTC and out.hour == 15
    plus = datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert as_utc(plus) == datetime(2023, 12, 31, 23, 0, tzinfo=UTC)


def test_as_utc_leaves_utc_and_none_alone():
    utc = datetime(2024, 3, 13, 15, 0, tzinfo=UTC)
    assert as_utc(utc) == utc and as_utc(utc).tzinfo is UTC
    assert as_utc(None) is None


# -- to_float


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, 1.0),
        (-2.5, -2.5),
        ("120.47", 120.47),
        (" 3 ", 3.0),
        ("1e3", 1000.0),
        (np.float32(0.5), 0.5),
        (np.int64(7), 7.0),
        (Decimal("1.25"), 1.25),
        (0, 0.0),
    ],
)
def test_to_float_reads_numbers_and_numeric_text(raw: object, expected: float):
    got = to_float(raw)
    assert got == expected and type(got) is float


@pytest.mark.parametrize(
    "raw",
    [None, True, False, "", "n/a", "NaN", "inf", "-Infinity", math.nan, math.inf, -math.inf, np.nan, [], {}, object(), b"\xff"],
)
def test_to_float_gives_none_for_anything_that_is_not_a_finite_number(raw: object):
    assert to_float(raw) is None


@pytest.mark.parametrize(
    "x,text",
    [
        (208.44, "208.44"),
        (208.4, "208.40"),
        (208, "208.00"),
        (208.4425, "208.4425"),
        (208.44250001, "208.4425"),
        (0.0042, "0.0042"),
        (0.05, "0.05"),
        (1234.5, "1,234.50"),
        (-1.5, "-1.50"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_price_text_keeps_cents_and_meaningful_sub_penny_digits(x, text):
    from core.values import price_text

    assert price_text(x) == text
