"""A job: one admitted request, serialised so that another process can run it and answer it.

It carries who asked (the identity the front established), what to run (the command and its
validated arguments, or free text for the coach), the pinned time, the request id the person
sees on errors, and where the answer goes (`route`): a Discord interaction (its followup
webhook, valid 15 minutes), a Discord channel (DMs and mentions, with the bot token) or Slack
(a channel or thread, and the command's response URL). `key` is the job's idempotency key: one
per interaction, so a job delivered twice is answered once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer, SecretStr

from bot.pipeline import Admitted
from bot.request import Ctx, Identity
from bot.services import Services
from core.errors import UserError

Lane = Literal["light", "heavy"]

#: A credential the job needs where it runs (an interaction token, a response URL): shown masked in reprs and
#: logs, written in clear only into the job's own JSON, which travels to the worker that answers.
Credential = Annotated[SecretStr, PlainSerializer(lambda v: v.get_secret_value(), return_type=str, when_used="json")]

#: How long a platform accepts an answer after the request (Discord's interaction token: 15 minutes; Slack's
#: response URL: 30 minutes; a channel message has no limit, but an answer an hour late helps nobody).
ANSWER_WINDOW = {
    "discord_interaction": timedelta(minutes=15),
    "discord_message": timedelta(hours=1),
    "slack": timedelta(minutes=30),
    # the HTTP client waits at most the lane's time limit; an answer after that has nobody to read it
    "api": timedelta(minutes=5),
}


class DiscordInteractionRoute(BaseModel):
    """Answer a slash command or button click through its interaction webhook (no bot login needed)."""

    kind: Literal["discord_interaction"] = "discord_interaction"
    application_id: str
    #: The interaction token: a credential for this one interaction, never logged.
    token: Credential


class DiscordMessageRoute(BaseModel):
    """Answer a DM or a mention in its channel, as a reply to the message (with the bot token)."""

    kind: Literal["discord_message"] = "discord_message"
    channel_id: str
    reply_to: str | None = None


class SlackRoute(BaseModel):
    """Answer in a Slack channel or thread; `response_url` reaches conversations the app has not joined."""

    kind: Literal["slack"] = "slack"
    channel: str | None = None
    thread_ts: str | None = None
    response_url: Credential | None = None
    user: str
    #: What the person ran, as they typed it, for the "who asked" line under the reply (`<@U1>: /plan TSLA`);
    #: plain text, escaped when shown. Empty: no such line (a DM or a mention answers in place).
    asked: str = ""
    #: The label of the button, when the request came from a click (`<@U1> clicked Watch: /watch add TSLA`).
    clicked: str = ""
    #: Errors are shown to everyone in a DM or thread (they cannot be private to one message there).
    public_errors: bool = False


class ApiRoute(BaseModel):
    """Answer an HTTP API request: the structured result is handed back to the front holding the connection."""

    kind: Literal["api"] = "api"
    #: The command's name and the request id, for the answer's body (the worker builds it).
    command: str
    request_id: str
    #: The caller asked for the reply's chart images too (`?images=true`).
    images: bool = False


Route = Annotated[DiscordInteractionRoute | DiscordMessageRoute | SlackRoute | ApiRoute, Field(discriminator="kind")]


class JobIdentity(BaseModel):
    """The caller, as the front established it (admin rights already looked up)."""

    platform: str
    tenant: str
    user: str
    channel: str | None = None
    display_name: str | None = None
    is_admin: bool = False
    dm: bool = False

    @classmethod
    def of(cls, ident: Identity) -> JobIdentity:
        return cls(
            platform=ident.platform,
            tenant=ident.tenant,
            user=ident.user,
            channel=ident.channel,
            display_name=ident.display_name,
            is_admin=ident.is_admin,
            dm=ident.dm,
        )

    def identity(self) -> Identity:
        return Identity(
            platform=self.platform,
            tenant=self.tenant,
            user=self.user,
            channel=self.channel,
            display_name=self.display_name,
            is_admin=self.is_admin,
            dm=self.dm,
        )


class Job(BaseModel):
    """One admitted request on its way to a worker."""

    key: str
    request_id: str
    identity: JobIdentity
    #: The command to run, or None for free text for the coach.
    command: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    text: str = ""
    as_of: datetime | None = None
    route: Route
    lane: Lane = "light"
    submitted_at: datetime

    @classmethod
    def of(
        cls,
        admitted: Admitted,
        route: DiscordInteractionRoute | DiscordMessageRoute | SlackRoute | ApiRoute,
        *,
        key: str,
        now: datetime,
    ) -> Job:
        """The job of an admitted request (its arguments as JSON, validated again where it runs)."""
        ctx, cmd = admitted.ctx, admitted.command
        return cls(
            key=key,
            request_id=ctx.request_id,
            identity=JobIdentity.of(ctx.identity),
            command=cmd.name if cmd is not None else None,
            args=admitted.args.model_dump(mode="json", exclude_unset=True) if admitted.args is not None else {},
            text=admitted.text,
            as_of=ctx.as_of,
            route=route,
            lane="heavy" if cmd is not None and cmd.heavy else "light",
            submitted_at=now,
        )

    def admitted(self, services: Services) -> Admitted:
        """The request again, in this process: same identity, time and request id; arguments validated by the command."""
        ctx = Ctx(services=services, identity=self.identity.identity(), as_of=self.as_of, request_id=self.request_id)
        if self.command is None:
            return Admitted(ctx, None, text=self.text)
        cmd = services.registry.commands.get(self.command)
        if cmd is None:  # a worker older than the front that queued it
            raise UserError(f"/{self.command} is not available on this worker")
        return Admitted(ctx, cmd, cmd.validate(self.args))

    def expired(self, now: datetime) -> bool:
        """True when the platform would no longer accept the answer."""
        return now - self.submitted_at > ANSWER_WINDOW[self.route.kind]
