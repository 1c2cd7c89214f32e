"""Executors on this machine: worker processes (the default of `coach serve`), or this process itself.

`LocalPoolExecutor` runs each job in one of N worker processes (one per core by default), so the
front's event loop only admits, acknowledges and hands over: the Discord heartbeat, Slack's
acknowledgements and the alert runtime never wait behind a plan. Each worker builds its own
services once (database, market, charts drawn in-process) and answers its jobs itself. Heavy jobs
(a wide scan, a backtest) may hold all but one worker, so quick commands always have one. A
worker that dies mid-job is replaced and the job runs again (its answer still goes out once); a
job stuck past its time limit ends its worker. Either way the person hears what happened (`fallback`).

`InlineExecutor` runs jobs as tasks of this process: for tests and `COACH_WORKERS=0`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

from bot.config import Settings
from bot.execution.fairness import InFlight
from bot.execution.jobs import Job
from bot.execution.processes import WorkerLost, WorkerPool
from bot.execution.runner import Budget, Deliver, run_job
from bot.request import Identity
from bot.services import Services

log = structlog.get_logger("coach.executor")

#: Tells the person why their job ended without its answer (it was stuck, or its worker kept dying).
Fallback = Callable[[Job, str], Awaitable[None]]


class Executor(Protocol):
    """Where admitted requests run: `submit` returns once the job is accepted; its worker answers it."""

    async def busy(self, ident: Identity) -> str | None:
        """Why this caller must wait before another request (their own or their workspace's are running), or None."""
        ...

    async def start(self) -> None:
        """Get ready before the first request (start workers, create streams)."""
        ...

    async def submit(self, job: Job) -> None: ...

    async def depth(self) -> dict[str, int]:
        """Jobs waiting for a worker, by lane (empty when jobs never wait here)."""
        ...

    async def aclose(self) -> None: ...


class InlineExecutor:
    """Runs jobs as tasks of this process (no CPU budget: the handler shares this process with its caller)."""

    def __init__(self, services: Services, deliver: Deliver, inflight: InFlight) -> None:
        self.services = services
        self.deliver = deliver
        self.inflight = inflight
        self._tasks: set[asyncio.Task[None]] = set()
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    async def busy(self, ident: Identity) -> str | None:
        return self.inflight.refusal(ident)

    async def start(self) -> None:
        return None

    async def depth(self) -> dict[str, int]:
        return {}

    async def submit(self, job: Job) -> None:
        ident = job.identity.identity()
        self.inflight.start(ident)
        log.info("job_submitted", request_id=job.request_id, lane=job.lane, executor="inline")

        async def go() -> None:
            try:
                await run_job(self.services, job, self.deliver, worker=self.worker)
            except Exception:  # the job's answer could not go out; the log has why (nothing can be retried here)
                log.exception("job_failed", request_id=job.request_id)
            finally:
                self.inflight.finish(ident)

        task = asyncio.create_task(go(), name=f"job-{job.request_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every submitted job is done (tests, and a clean stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()


class LocalPoolExecutor:
    """Runs jobs in `workers` processes of this machine, each with its own services."""

    def __init__(
        self,
        settings: Settings,
        workers: int,
        inflight: InFlight,
        *,
        start: Callable[[Settings], None],
        run: Callable[[str, float, bool], bool],
        preload: Sequence[str] = (),
        budget: Budget | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        """`start(settings)` prepares a worker process; `run(job_json, cpu_budget, retry)` runs one job in it.

        Both must be module-level functions (they travel to the workers by name); `preload` names the
        modules the fork server imports once, so every worker starts warm.
        """
        self.inflight = inflight
        self.budget = budget or Budget()
        self._run_job = run
        self.fallback = fallback
        self.pool = WorkerPool(
            workers, method=settings.coach_chart_start, preload=preload, initializer=start, initargs=(settings,)
        )
        # quick commands always keep one worker of their own
        self.heavy = asyncio.Semaphore(max(1, workers - 1))
        # a job enters the pool only when a worker is free, so its time limit counts its run, not its wait
        self.slots = asyncio.Semaphore(workers)
        self._tasks: set[asyncio.Task[None]] = set()
        #: Jobs accepted but not yet in a worker, by lane.
        self.waiting: dict[str, int] = {"light": 0, "heavy": 0}

    async def busy(self, ident: Identity) -> str | None:
        return self.inflight.refusal(ident)

    async def start(self) -> None:
        await asyncio.to_thread(self.pool.start)

    async def depth(self) -> dict[str, int]:
        return dict(self.waiting)

    async def submit(self, job: Job) -> None:
        ident = job.identity.identity()
        self.inflight.start(ident)
        log.info("job_submitted", request_id=job.request_id, lane=job.lane, executor="pool")
        task = asyncio.create_task(self._run(job), name=f"job-{job.request_id}")
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self.inflight.finish(ident)

        task.add_done_callback(done)

    async def _run(self, job: Job) -> None:
        budget, limit = self.budget.of(job), self.budget.wall(job)
        payload = job.model_dump_json()
        what = f"/{job.command}" if job.command else "Your request"
        for attempt in (1, 2):
            retry = attempt > 1
            try:
                async with contextlib.AsyncExitStack() as held:
                    self.waiting[job.lane] += 1
                    try:
                        if job.lane == "heavy":
                            await held.enter_async_context(self.heavy)
                        await held.enter_async_context(self.slots)
                    finally:
                        self.waiting[job.lane] -= 1
                    await self.pool.run(self._run_job, payload, budget, retry, timeout=limit)
                return
            except WorkerLost:
                # the worker died holding the job's claim: the second run takes the claim over (unless it was answered)
                log.warning("job_worker_lost", request_id=job.request_id, attempt=attempt)
            except TimeoutError:
                log.error("job_stuck", request_id=job.request_id, limit_s=limit)
                await self._tell(
                    job, f"{what} ran past its {limit:.0f} s limit and was stopped; ask for less or try again later."
                )
                return
            except Exception:
                log.exception("job_failed", request_id=job.request_id)
                return
        await self._tell(job, f"{what} could not finish: the process running it stopped twice. Try again in a moment.")

    async def _tell(self, job: Job, message: str) -> None:
        if self.fallback is None:
            return
        try:
            await self.fallback(job, message)
        except Exception:  # the platform refused even this; the log keeps the trace
            log.exception("job_fallback_failed", request_id=job.request_id)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self.pool.close()
