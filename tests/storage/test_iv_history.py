"""Daily ATM IV history: one row per (symbol, day), replaced by a later recording, shared by every tenant."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from storage import iv_history

AT = datetime(2024, 3, 13, 21, 0, tzinfo=UTC)


async def test_record_replaces_the_day_and_history_reads_a_range(sessionmaker):
    async with sessionmaker() as s, s.begin():
        await iv_history.record(s, "TSLA", date(2024, 3, 12), 0.51, "sim", AT)
        await iv_history.record(s, "TSLA", date(2024, 3, 13), 0.50, "sim", AT)
        await iv_history.record(s, "NVDA", date(2024, 3, 13), 0.45, "sim", AT)
    async with sessionmaker() as s, s.begin():
        await iv_history.record(s, "TSLA", date(2024, 3, 13), 0.55, "polygon", AT)  # the after-close value wins
    async with sessionmaker() as s:
        assert await iv_history.history(s, "TSLA", date(2024, 3, 1), date(2024, 3, 31)) == [
            (date(2024, 3, 12), 0.51),
            (date(2024, 3, 13), 0.55),
        ]
        assert await iv_history.history(s, "TSLA", date(2024, 3, 13), date(2024, 3, 13)) == [(date(2024, 3, 13), 0.55)]
        assert await iv_history.recorded_symbols(s) == ["NVDA", "TSLA"]


@pytest.mark.parametrize("bad", [0.0, -0.2, float("nan")])
async def test_record_refuses_a_value_that_is_not_a_positive_number(sessionmaker, bad):
    async with sessionmaker() as s, s.begin():
        with pytest.raises(ValueError, match="positive"):
            await iv_history.record(s, "TSLA", date(2024, 3, 13), bad, "sim", AT)
    async with sessionmaker() as s:
        assert await iv_history.recorded_symbols(s) == []
