"""Running one job where it landed: answered once, dropped when too late, stopped at its CPU budget, never answered twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from structlog.testing import capture_logs

from bot.args import ArgsModel
from bot.execution.runner import Budget, answer_instead, run_job
from bot.registry import Registry
from bot.reply import Reply
from core.clock import utc_now
from storage import answers
from tests.conftest import with_commands

from .conftest import job_for, token_of


async def test_a_job_delivered_twice_is_answered_once(services, discord, sender) -> None:
    job = await job_for(services, "/plan TSLA", discord.app_id)
    assert await run_job(services, job, sender.deliver, worker="w1") is True
    assert await run_job(services, job, sender.deliver, worker="w2") is False  # the redelivery finds the answer
    [answer] = discord.answers(token_of(job))
    assert answer.method == "PATCH" and "TSLA" in answer.embeds[0]["title"]


async def test_a_job_past_the_platforms_window_is_dropped_with_a_log_line(services, discord, sender) -> None:
    job = await job_for(services, "/plan TSLA", discord.app_id)
    late = job.model_copy(update={"submitted_at": utc_now() - timedelta(minutes=16)})  # Discord's token lasts 15
    with capture_logs() as logs:
        assert await run_job(services, late, sender.deliver, worker="w1") is False
    assert not discord.requests  # nothing sent: Discord would refuse it, and retrying cannot help
    [line] = [e for e in logs if e["event"] == "job_expired"]
    assert line["request_id"] == job.request_id and line["waited_s"] >= 960
    async with services.db() as s:  # not claimed either: the job is simply done with
        assert await answers.claim(s, job.key, "w2", utc_now(), stale=1e9)


async def test_a_scan_past_its_cpu_budget_ends_with_a_clear_answer(services, discord, sender) -> None:
    symbols = " ".join(f"ZQ{i:03d}" for i in range(40))
    job = await job_for(services, f"/scan {symbols}", discord.app_id)
    assert job.lane == "heavy"
    assert await run_job(services, job, sender.deliver, worker="w1", budget=0.05) is True
    [answer] = discord.answers(token_of(job))
    text = str(answer.json)
    assert "more than its 0 s of computing" in text and "fewer symbols" in text
    roomy = await job_for(services, f"/scan {symbols}", discord.app_id)
    assert await run_job(services, roomy, sender.deliver, worker="w1", budget=Budget().heavy) is True
    [full] = discord.answers(token_of(roomy))
    assert "computing" not in str(full.json)  # the same scan within the lane's budget is answered in full


async def test_a_backtest_past_its_cpu_budget_ends_with_a_clear_answer(services, discord, sender) -> None:
    job = await job_for(services, "/backtest TSLA intraday orb days=20", discord.app_id)
    assert await run_job(services, job, sender.deliver, worker="w1", budget=0.05) is True
    [answer] = discord.answers(token_of(job))
    assert "/backtest needed more than its" in str(answer.json)


class NoArgs(ArgsModel):
    pass


async def test_a_worker_taken_for_dead_stays_silent_when_it_finishes(services, discord) -> None:
    """Worker A is slow; B takes the job over and answers; A finishing later must not answer again."""
    reg = Registry()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(ctx, a):
        started.set()
        await release.wait()
        return Reply(title="late")

    reg.command("slow", "Takes its time.", NoArgs)(slow)
    svc = with_commands(services, reg)
    svc.replies.settings = svc.settings.model_copy(update={"discord_api_base": discord.api_base})
    svc.replies.api = discord.api_base
    job = await job_for(svc, "/slow", discord.app_id)
    a = asyncio.create_task(run_job(svc, job, svc.replies.deliver, worker="A"))
    await started.wait()
    with capture_logs() as logs:
        assert await run_job(svc, job, svc.replies.deliver, worker="B") is False  # A's claim is fresh
        assert await answer_instead(svc, job, Reply.error("A stopped"), svc.replies.deliver, worker="B") is True
        release.set()
        assert await a is False
    [only] = discord.answers(token_of(job))
    assert "A stopped" in str(only.json)
    assert any(e["event"] == "job_taken_over" for e in logs)


async def test_telling_why_a_job_failed_happens_once(services, discord, sender) -> None:
    job = await job_for(services, "/plan TSLA", discord.app_id)
    assert await run_job(services, job, sender.deliver, worker="w1") is True
    # a fallback after the answer went out (a worker lost after answering) says nothing more
    assert await answer_instead(services, job, Reply.error("stopped"), sender.deliver, worker="front") is False
    assert len(discord.answers(token_of(job))) == 1
