"""The daily IV recorder: once per closed session, for watched symbols, never while open."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.iv_recorder import record_pass
from bot.request import Ctx, Identity
from storage import iv_history
from tests.conftest import run_text

AFTER_CLOSE = datetime(2024, 3, 13, 21, 30, tzinfo=UTC)  # 17:30 ET


async def test_records_each_closed_session_once(services):
    await run_text(Ctx(services=services, identity=Identity("discord", "G1", "U1")), "/watch add TSLA")
    done: set = set()
    services.clock = lambda: datetime(2024, 3, 13, 15, 0, tzinfo=UTC)  # market open: nothing yet
    assert await record_pass(services, done) == []
    services.clock = lambda: AFTER_CLOSE
    first = await record_pass(services, done)
    assert [(r.symbol, r.status) for r in first] == [("TSLA", "recorded")]
    assert str(first[0].date) == "2024-03-13"
    assert await record_pass(services, done) == []  # same session: not again
    async with services.db() as s:
        assert [d for d, _iv in await iv_history.history(s, "TSLA", date(2024, 1, 1), date(2024, 12, 31))] == [date(2024, 3, 13)]
