"""Run one job where it landed and deliver its answer once.

    expired?  -> dropped with a log line (the platform would refuse the answer; retrying cannot help)
    claimed?  -> skipped (another delivery of the same job answered it, or is answering it)
    execute   -> the pipeline's back half (handler, error mapping), within the lane's CPU budget
    still mine? -> skipped when another worker took the claim over meanwhile (this one was taken for dead)
    deliver   -> over the platform's REST API, then the claim is marked done

A worker that dies between claiming and answering leaves a claim without an answer; after
`CLAIM_STALE` seconds the job's next delivery takes it over, so the person still gets their
answer. A job whose delivery fails releases its claim and raises, so the queue delivers it again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from bot import metrics
from bot.execution.jobs import Job, Route
from bot.reply import Reply
from bot.request import Ctx
from bot.services import Services
from core.clock import utc_now
from core.errors import UserError
from storage import answers

log = structlog.get_logger("coach.jobs")

#: Seconds after which an unanswered claim is taken to belong to a dead worker.
CLAIM_STALE = 120.0
#: Wall-clock seconds a job may take beyond its CPU budget (waiting on providers, the database, the LLM).
WALL_MARGIN = 60.0

#: Delivers a reply along a route, once per key (see `bot.surfaces.replies`).
Deliver = Callable[[Route, Reply, str], Awaitable[None]]


class BudgetExceeded(UserError):
    """The request used more computing than its lane allows."""


@dataclass(frozen=True)
class Budget:
    """CPU seconds a job may use in its worker process, by lane."""

    light: float = 20.0
    heavy: float = 120.0
    #: Wall-clock seconds beyond the CPU budget (waiting on providers, the database, the LLM).
    margin: float = WALL_MARGIN

    def of(self, job: Job) -> float:
        return self.heavy if job.lane == "heavy" else self.light

    def wall(self, job: Job) -> float:
        """Wall-clock seconds after which a job is taken to be stuck."""
        return self.of(job) + self.margin


def watch_budget(ctx: Ctx, seconds: float, what: str) -> None:
    """Make the handler's progress reports end the request once it has used `seconds` of CPU in this process.

    Long work reports progress (`ctx.progress`) as it goes; the check rides on that, so a request
    stops at a clean point rather than wherever a signal would land.
    """
    start = time.process_time()
    shown = ctx.progress

    def progress(done: int, total: int, label: str = "") -> None:
        if time.process_time() - start > seconds:
            raise BudgetExceeded(
                f"/{what} needed more than its {seconds:.0f} s of computing here; ask for less (fewer symbols, a shorter span)"
            )
        if shown is not None:
            shown(done, total, label)

    ctx.progress = progress


async def run_job(
    services: Services, job: Job, deliver: Deliver, *, worker: str, budget: float | None = None, stale: float = CLAIM_STALE
) -> bool:
    """Run `job` and deliver its answer unless it expired or was answered already; True when this call answered it.

    `stale`: how old an unanswered claim must be to be taken over (0 when the caller knows its holder died).
    """
    ident = job.identity
    # the request id the front gave the job: this worker's lines for it (delivery too) carry the same ref
    with structlog.contextvars.bound_contextvars(
        request_id=job.request_id,
        command=job.command or "free_text",
        surface=ident.platform,
        tenant=ident.tenant,
        user=ident.user,
    ):
        return await _run_job(services, job, deliver, worker=worker, budget=budget, stale=stale)


async def _run_job(services: Services, job: Job, deliver: Deliver, *, worker: str, budget: float | None, stale: float) -> bool:
    now = utc_now()  # the platform's deadline runs on the wall clock, whatever market time the services keep
    if job.expired(now):
        log.warning(
            "job_expired",
            request_id=job.request_id,
            waited_s=round((now - job.submitted_at).total_seconds(), 1),
            route=job.route.kind,
        )
        return False
    async with services.db() as s, s.begin():
        mine = await answers.claim(s, job.key, worker, now, stale=stale)
    if not mine:
        log.info("job_already_answered", request_id=job.request_id)
        return False
    started = time.perf_counter()
    try:
        admitted = job.admitted(services)
    except UserError as exc:  # a command this worker does not know: say so rather than stay silent
        reply = Reply.error(exc.message)
    else:
        if budget is not None:
            watch_budget(admitted.ctx, budget, job.command or "ask")
        reply = await services.pipeline.execute(admitted)
    async with services.db() as s, s.begin():
        still_mine = await answers.keep(s, job.key, worker, utc_now())
    if not still_mine:
        # this worker was slow enough to be taken for dead and another one answers: one answer only
        log.warning("job_taken_over", request_id=job.request_id, seconds=round(time.perf_counter() - started, 3))
        return False
    await _deliver_once(services, job, reply, deliver, worker)
    log.info(
        "job_answered",
        request_id=job.request_id,
        duration=round(time.perf_counter() - started, 3),
        lane=job.lane,
        error=reply.error_kind,
    )
    return True


async def answer_instead(services: Services, job: Job, reply: Reply, deliver: Deliver, *, worker: str) -> bool:
    """Answer `job` with `reply` (why it could not be run) unless it was answered already; True when this call did.

    For a job whose worker was ended or died twice: whoever held its claim is gone, so the claim is taken over at once.
    """
    if job.expired(utc_now()):
        return False
    async with services.db() as s, s.begin():
        mine = await answers.claim(s, job.key, worker, utc_now(), stale=0.0)
    if not mine:
        return False
    await _deliver_once(services, job, reply, deliver, worker)
    return True


async def _deliver_once(services: Services, job: Job, reply: Reply, deliver: Deliver, worker: str) -> None:
    """Deliver and record the answer; a failed delivery gives the claim back so the job can be tried again."""
    try:
        await deliver(job.route, reply, job.key)
    except BaseException:
        metrics.DELIVERIES.labels(kind=job.route.kind, result="failed").inc()
        async with services.db() as s, s.begin():
            await answers.release(s, job.key, worker)
        raise
    metrics.DELIVERIES.labels(kind=job.route.kind, result="ok").inc()
    async with services.db() as s, s.begin():
        await answers.done(s, job.key)
