"""The chart service: process pool off the event loop, cache, shared renders, recovery, the plan-chart contract."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import os
import signal
import time

import numpy as np
import pytest
from PIL import Image

from bot.chart_service import ChartError, ChartService, chart_filename
from bot.reply import Attachment
from renderers import jobs
from renderers.plan_chart import build_spec
from tests.renderers.conftest import AS_OF, make_plan, sim_bars

#: One worker process pool serves the whole module: under xdist these tests run in one process.
pytestmark = pytest.mark.xdist_group("chart-pool")


@pytest.fixture(scope="module")
def pool_service():
    """One process pool for the whole module: starting workers is the slow part."""
    service = ChartService(workers=1, inline_first=False)
    yield service
    service.close()


@pytest.fixture(scope="module")
def bars():
    return sim_bars()


def spec_of(bars, **kw):
    base = dict(symbol="TSLA", interval="5m", bars=bars, as_of=AS_OF, session_status="open", source="sim")
    base.update(kw)
    return build_spec(**base)


def size_of(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


async def test_renders_in_a_worker_and_caches_by_key(pool_service, bars) -> None:
    spec = spec_of(bars)
    before = pool_service.stats.renders, pool_service.stats.hits
    (a,) = await pool_service.render([spec], key=("TSLA", "5m", "cache-test"))
    (b,) = await pool_service.render([spec], key=("TSLA", "5m", "cache-test"))
    assert a == b and size_of(a) == (1200, 700)
    assert (pool_service.stats.renders, pool_service.stats.hits) == (before[0] + 1, before[1] + 1)
    # a different theme is a different chart
    (c,) = await pool_service.render([spec_of(bars, theme="light")], key=("TSLA", "5m", "cache-test", "light"))
    assert c != a


async def test_concurrent_requests_for_one_chart_share_a_render(pool_service, bars) -> None:
    spec = spec_of(bars, levels_mode="more")
    renders, shared = pool_service.stats.renders, pool_service.stats.shared
    results = await asyncio.gather(*(pool_service.render([spec], key=("shared-test",)) for _ in range(3)))
    assert all(r == results[0] for r in results)
    assert pool_service.stats.renders == renders + 1
    assert pool_service.stats.shared == shared + 2


async def test_the_event_loop_keeps_ticking_while_charts_render(pool_service, bars) -> None:
    """A heartbeat coroutine keeps its rhythm while the reference path (the slow one) renders three charts."""
    specs = [spec_of(bars, plan=make_plan(bars)), spec_of(bars, theme="light"), spec_of(bars, levels_mode="more")]
    await pool_service.warm()
    gaps: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    start = time.perf_counter()
    for spec in specs:
        await pool_service.render([spec], renderer="mplfinance")
    elapsed = time.perf_counter() - start
    done.set()
    await beat
    assert elapsed > 0.3  # real work happened...
    assert len(gaps) > 10
    assert max(gaps) < elapsed / 3  # ...and never blocked the loop for long (inline it would block for all of it)


async def test_plan_chart_contract(pool_service, bars) -> None:
    plan = make_plan(bars)
    att = await pool_service.plan_chart(
        symbol="TSLA",
        interval="5m",
        bars=bars,
        plan=plan,
        levels=[],
        as_of=AS_OF,
        session_status="open",
        source="sim",
        style="intraday",
        theme="dark",
    )
    assert isinstance(att, Attachment)
    assert att.filename == "TSLA-5m-P-1A2B3C.png"
    assert att.mime == "image/png" and att.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert size_of(att.data) == (1200, 700)
    assert "long plan" in att.description and f"{plan.entry:.2f}" in att.description
    again = await pool_service.plan_chart(
        symbol="TSLA",
        interval="5m",
        bars=bars,
        plan=plan,
        levels=[],
        as_of=AS_OF,
        session_status="open",
        source="sim",
        style="intraday",
        theme="dark",
    )
    assert again.data == att.data
    newer = plan.model_copy(update={"version": 2})
    v2 = await pool_service.plan_chart(
        symbol="TSLA",
        interval="5m",
        bars=bars,
        plan=newer,
        levels=[],
        as_of=AS_OF,
        session_status="open",
        source="sim",
        style="intraday",
        theme="dark",
    )
    assert v2.data != att.data  # the footer names the version: a new version is a new image


async def test_a_dead_worker_is_replaced(pool_service, bars) -> None:
    await pool_service.warm()
    pool = pool_service._executor
    for pid in list(pool._processes):  # simulate a crash (OOM kill) of every worker
        os.kill(pid, signal.SIGKILL)
    # no pause: whether the pool has noticed the crash yet (submit refuses) or not (the job fails
    # once it does), the render must end on fresh workers
    (png,) = await pool_service.render([spec_of(bars, theme="light", levels_mode="more")])
    assert size_of(png) == (1200, 700)
    assert pool_service._executor is not pool


async def test_grid_and_in_process_mode() -> None:
    service = ChartService(workers=0)
    try:
        specs = [jobs.sample_spec(), jobs.sample_spec(theme="light"), jobs.sample_spec()]
        (grid,) = await service.render(specs, grid=True)
        assert size_of(grid) == (1200, 3 * 700 + 2 * jobs.GRID_GAP)
        singles = await service.render(specs)
        assert [size_of(p) for p in singles] == [(1200, 700)] * 3
    finally:
        await service.aclose()
    with pytest.raises(ChartError):
        await service.render(specs)


async def test_a_render_that_takes_too_long_fails_with_one_line() -> None:
    service = ChartService(workers=0, timeout=0.001)
    try:
        with pytest.raises(ChartError, match="longer than"):
            await service.render([jobs.sample_spec()], renderer="mplfinance")
    finally:
        await service.aclose()


async def test_the_first_chart_does_not_wait_for_workers(bars) -> None:
    service = ChartService(workers=1)
    try:
        (first,) = await service.render([spec_of(bars)])
        assert service._executor is None  # drawn here: a one-shot command never starts a pool
        (second,) = await service.render([spec_of(bars, theme="light")])
        assert isinstance(service._executor, concurrent.futures.ProcessPoolExecutor)
        assert size_of(first) == size_of(second) == (1200, 700)
    finally:
        await service.aclose()
    assert service._executor is None and service._thread is None


def test_filenames() -> None:
    bars = sim_bars(days=3)
    assert chart_filename("TSLA", ["5m"], make_plan(bars), AS_OF) == "TSLA-5m-P-1A2B3C.png"
    assert chart_filename("SPY", ["5m", "1h"], None, AS_OF) == "SPY-5m+1h-20240313-1100.png"


async def test_services_get_a_chart_service_and_close_it(tmp_path) -> None:
    from bot.app import build_services
    from bot.config import Settings

    services = await build_services(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db", coach_provider="sim"))
    service = services.charts
    assert isinstance(service, ChartService)
    assert service._executor is None  # no workers until the first chart
    await services.close()
    with pytest.raises(ChartError):
        await service.render([jobs.sample_spec()])


def test_bad_renderer_name_is_a_user_error() -> None:
    from core.errors import UserError

    with pytest.raises(UserError, match="accepted: fast, mplfinance"):
        ChartService(workers=0, renderer="svg")
    with pytest.raises(UserError):
        jobs.RenderJob(specs=(jobs.sample_spec(),), renderer="svg")
    assert np.isfinite(jobs.sample_spec().candles.close).all()


async def test_a_stuck_worker_is_killed_on_timeout(bars) -> None:
    service = ChartService(workers=1, timeout=60, inline_first=False)
    try:
        await service.warm()
        pool = service._executor
        pids = list(pool._processes)
        service.timeout = 0.05  # the reference path takes far longer than this
        with pytest.raises(ChartError, match="longer than"):
            await service.render([spec_of(bars)], renderer="mplfinance")

        def alive(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            return True

        for _ in range(100):  # terminated and reaped, within a few seconds even on a busy machine
            if not any(alive(pid) for pid in pids):
                break
            await asyncio.sleep(0.05)
        assert not any(alive(pid) for pid in pids)
        service.timeout = 60
        (png,) = await service.render([jobs.sample_spec()])  # a fresh pool takes over
        assert size_of(png) == (1200, 700)
    finally:
        await service.aclose()
