"""A job is an admitted request that another process can run: it must come back exactly as it left."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr

from bot.execution.jobs import DiscordInteractionRoute, Job, JobIdentity, SlackRoute
from bot.pipeline import Admitted, Invocation
from bot.request import Identity
from core.clock import utc_now

ME = Identity(platform="discord", tenant="G1", user="U1", channel="C1", display_name="ann", is_admin=True)


async def test_every_example_invocation_survives_the_trip_to_a_worker(services) -> None:
    route = DiscordInteractionRoute(application_id="42", token=SecretStr("tok-secret"))
    checked = 0
    for cmd in services.registry.all():
        for example in cmd.examples:
            ctx = services.pipeline.request(services, ME)
            admitted = await services.pipeline.admit(ctx, Invocation.line(example), limit=False)
            assert isinstance(admitted, Admitted), (example, admitted)
            job = Job.of(admitted, route, key=f"k:{example}", now=utc_now())
            again = Job.model_validate_json(job.model_dump_json()).admitted(services)
            assert again.command is cmd and again.args == admitted.args, example
            assert again.ctx.identity == ctx.identity and again.ctx.request_id == ctx.request_id
            assert job.lane == ("heavy" if cmd.heavy else "light")
            checked += 1
    assert checked > 40  # the registry's examples: every command, most of their options


def test_credentials_travel_in_the_job_but_never_show() -> None:
    job = Job(
        key="k",
        request_id="R",
        identity=JobIdentity.of(ME),
        route=SlackRoute(user="U1", response_url=SecretStr("https://hooks.slack.com/commands/T/1/secret")),
        submitted_at=utc_now(),
    )
    assert "secret" in job.model_dump_json()  # the worker needs it to answer
    assert "secret" not in repr(job) and "secret" not in str(job.model_dump())  # logs and reprs show it masked
    back = Job.model_validate_json(job.model_dump_json())
    assert back.route.response_url is not None
    assert back.route.response_url.get_secret_value().endswith("/secret")


def test_an_answer_past_the_platforms_window_is_expired() -> None:

    now = utc_now()
    job = Job(
        key="k",
        request_id="R",
        identity=JobIdentity.of(ME),
        submitted_at=now - timedelta(minutes=16),
        route=DiscordInteractionRoute(application_id="1", token=SecretStr("t")),
    )
    assert job.expired(now)  # Discord's interaction token lasts 15 minutes
    assert not job.model_copy(update={"route": SlackRoute(user="U1")}).expired(now)  # Slack's response URL: 30
