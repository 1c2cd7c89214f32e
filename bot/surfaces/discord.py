"""The Discord surface: every registry command as a slash command, replies as embeds + chart + buttons.

- Slash commands and their options come from `Command.arg_specs()`: types, descriptions,
  ranges, choices; symbol options autocomplete from the caller's watchlist and recent
  symbols; multi-word commands become groups (`/watch add`).
- A command validates its arguments (errors answered privately at once), defers, runs
  through `bot.dispatch` (errors become short replies, bugs a reference id) and sends the
  reply as follow-ups: embeds, the chart shown in the embed, and buttons.
- Buttons are `DynamicItem`s whose custom id carries the invocation (`coach:/track P-1`),
  so they keep working after a restart.
- DMs and messages that mention the bot go through the pipeline as a line of text (a /command
  or free text for the coach).
- `DISCORD_API_BASE` / `DISCORD_GATEWAY_URL` point the library at another server (tests use
  a loopback fake).
"""

from __future__ import annotations

import inspect
import io
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Optional

import discord
import structlog
import yarl
from annotated_types import Ge, Gt, Le, Lt
from discord import app_commands
from pydantic import SecretStr

from analytics.intervals import INTERVALS
from bot import metrics
from bot.execution.jobs import DiscordInteractionRoute, DiscordMessageRoute, Job
from bot.pipeline import Admitted, Invocation
from bot.readiness import Check
from bot.registry import ArgSpec, Command, Registry
from bot.reply import Action, Reply
from bot.request import Identity, current_request_id
from bot.services import Services
from bot.surfaces.identity import discord_identity
from bot.surfaces.render_discord import CUSTOM_ID_PREFIX, DiscordMessage, render
from bot.surfaces.symbols import SYMBOL_FIELDS, RecentSymbols, suggestions, symbols_in
from core.clock import utc_now
from core.errors import ConfigError

log = structlog.get_logger("coach.discord")

#: An option's autocomplete: (interaction, what is typed so far) -> up to 25 choices.
Autocomplete = Callable[[discord.Interaction, str], Awaitable[list[app_commands.Choice[str]]]]

DEFAULT_API_BASE = "https://discord.com/api/v10"
DEFAULT_GATEWAY = "wss://gateway.discord.gg/"

BUTTON_STYLES = {
    "primary": discord.ButtonStyle.primary,
    "secondary": discord.ButtonStyle.secondary,
    "success": discord.ButtonStyle.success,
    "danger": discord.ButtonStyle.danger,
}


def configure_endpoints(api_base: str | None, gateway_url: str | None) -> None:
    """Point discord.py's REST routes and gateway at the given URLs (the real Discord when unset)."""
    discord.http.Route.BASE = (api_base or DEFAULT_API_BASE).rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url or DEFAULT_GATEWAY)


# --- buttons ------------------------------------------------------------------------------


class RunButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=re.escape(CUSTOM_ID_PREFIX) + r"(?P<invocation>/.+)"
):
    """A button that runs the command invocation stored in its custom id, for whoever clicks it."""

    def __init__(self, invocation: str, label: str = "Run", style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> None:
        super().__init__(discord.ui.Button(label=label[:80], style=style, custom_id=CUSTOM_ID_PREFIX + invocation))
        self.invocation = invocation

    # discord.py hands over the Button this item wraps (its documented pattern); the base declares any Item
    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: discord.Interaction, item: discord.ui.Button[discord.ui.View], match: re.Match[str], /
    ) -> RunButton:
        return cls(match["invocation"], label=item.label or "Run", style=item.style)

    async def callback(self, interaction: discord.Interaction) -> None:
        surface = getattr(interaction.client, "coach_surface", None)
        if surface is None:  # a client without the surface (should not happen): say so instead of failing silently
            await interaction.response.send_message("This button is not available right now.", ephemeral=True)
            return
        await surface.on_button(interaction, self.invocation)


def make_view(actions: list[Action]) -> discord.ui.View | None:
    """A persistent view with one RunButton per action, or None when there are no actions."""
    if not actions:
        return None
    view = discord.ui.View(timeout=None)
    for a in actions:
        if a.url:  # opens the page in the browser: nothing comes back to the bot
            view.add_item(discord.ui.Button(label=a.label[:80], url=a.url, style=discord.ButtonStyle.link))
            continue
        view.add_item(RunButton(a.command, label=a.label, style=BUTTON_STYLES.get(a.style, discord.ButtonStyle.secondary)))
    return view


def message_kwargs(m: DiscordMessage) -> dict[str, Any]:
    """Keyword arguments for discord.py's send methods (`Messageable.send`, `Webhook.send`)."""
    kw: dict[str, Any] = {"allowed_mentions": discord.AllowedMentions.none()}
    if m.content:
        kw["content"] = m.content
    if m.embeds:
        kw["embeds"] = [discord.Embed.from_dict(e) for e in m.embeds]
    if m.files:
        kw["files"] = [discord.File(io.BytesIO(a.data), filename=a.filename, description=a.description or None) for a in m.files]
    view = make_view(m.actions)
    if view is not None:
        kw["view"] = view
    return kw


# --- the client ----------------------------------------------------------------------------


class CoachClient(discord.Client):
    """discord.Client with the command tree, persistent buttons and the coach on DMs/mentions."""

    tree: app_commands.CommandTree[Any]

    def __init__(self, surface: DiscordSurface, **options: Any) -> None:
        intents = options.pop("intents", None) or discord.Intents.default()
        # DMs and mentions carry their content without the privileged message_content intent
        intents.message_content = False
        intents.members = False
        intents.presences = False
        options.setdefault("chunk_guilds_at_startup", False)
        # the coach never joins voice; warnings about missing voice libraries are noise in the operator's log
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(intents=intents, **options)
        self.coach_surface = surface
        self.tree = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(RunButton)
        await self.coach_surface.sync_commands()

    async def on_message(self, message: discord.Message) -> None:
        await self.coach_surface.on_message(message)


class ShardedCoachClient(CoachClient, discord.AutoShardedClient):
    """The same client over several gateway shards (`COACH_DISCORD_SHARD_COUNT`, `COACH_DISCORD_SHARD_IDS`).

    Each front runs the shards it is given; Discord sends every guild's events to one shard only, so
    several fronts split the servers between them.
    """


def shard_options(count: int | None, ids: str | None) -> dict[str, Any]:
    """discord.py's sharding options from the settings; {} without sharding. A bad list is a ConfigError."""
    if count is None:
        if ids:
            raise ConfigError("COACH_DISCORD_SHARD_IDS needs COACH_DISCORD_SHARD_COUNT (the shards in all)")
        return {}
    opts: dict[str, Any] = {"shard_count": count}
    if ids:
        try:
            chosen = sorted({int(p) for p in ids.replace(" ", "").split(",") if p})
        except ValueError:
            raise ConfigError(f"COACH_DISCORD_SHARD_IDS must be shard numbers like 0,1, not {ids[:40]!r}") from None
        if not chosen or chosen[0] < 0 or chosen[-1] >= count:
            raise ConfigError(f"COACH_DISCORD_SHARD_IDS must be between 0 and {count - 1}")
        opts["shard_ids"] = chosen
    return opts


class DiscordSurface:
    """Serves the services' commands on Discord; `run()` (or `start(token)`) serves until `close()`."""

    name = "discord"

    def __init__(
        self,
        services: Services,
        *,
        guild_id: int | None = None,
        sync: bool = True,
        **client_options: Any,
    ) -> None:
        settings = services.settings
        configure_endpoints(settings.discord_api_base, settings.discord_gateway_url)
        self.services = services
        self.registry: Registry = services.registry
        self.pipeline = services.pipeline
        if services.executor is None:
            raise ConfigError("the Discord surface needs an executor for its requests")
        self.executor = services.executor
        self.guild_id = guild_id if guild_id is not None else settings.discord_guild_id
        self.recent = RecentSymbols()
        sharding = shard_options(settings.coach_discord_shard_count, settings.coach_discord_shard_ids)
        # one front publishes the slash commands: the one running shard 0 (or the only one)
        self.sync = sync and 0 in sharding.get("shard_ids", [0])
        self.client = ShardedCoachClient(self, **sharding, **client_options) if sharding else CoachClient(self, **client_options)
        self.tree = self.client.tree
        self.tree.error(self._on_tree_error)
        build_tree(self.tree, self.registry, self)

    # lifecycle

    async def run(self) -> None:
        """Serve with DISCORD_TOKEN until closed."""
        await self.start()

    async def start(self, token: str | None = None) -> None:
        """Log in, connect and serve until closed."""
        tok = token or (self.services.settings.discord_token.get_secret_value() if self.services.settings.discord_token else None)
        if not tok:
            raise ConfigError("DISCORD_TOKEN is not set")
        await self.client.start(tok)

    def readiness(self) -> dict[str, Check]:
        """The gateway connection is up (logged in, not closed, not reconnecting)."""

        async def check() -> str | None:
            if self.client.is_closed():
                return "Discord connection closed"
            if not self.client.is_ready():
                return "Discord gateway not connected"
            shards = getattr(self.client, "shards", None)  # a sharded client: every shard this front runs
            if isinstance(shards, dict):
                down = sorted(i for i, info in shards.items() if info.is_closed())
                return f"Discord shards {down} not connected" if down else None
            return None if self.client.ws is not None else "Discord gateway not connected"

        return {"discord": check}

    async def close(self) -> None:
        if not self.client.is_closed():
            await self.client.close()

    async def sync_commands(self) -> None:
        """Publish the slash commands: to DISCORD_GUILD_ID (instant, for development) or globally."""
        if not self.sync:
            return
        try:
            if self.guild_id:
                guild = discord.Object(id=self.guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
            else:
                synced = await self.tree.sync()
            log.info("discord_commands_synced", count=len(synced), guild=self.guild_id)
        except discord.HTTPException as exc:
            # stale commands still work; the operator sees why the update failed
            log.error("discord_command_sync_failed", status=exc.status, error=str(exc.text)[:200], guild=self.guild_id)

    # requests

    async def on_slash(self, interaction: discord.Interaction, cmd: Command, options: dict[str, Any]) -> None:
        """A slash command: admit (or answer privately at once), defer, run, follow up."""
        await self._serve(interaction, Invocation.call(cmd.name, option_values(cmd, options)))

    async def on_button(self, interaction: discord.Interaction, invocation: str) -> None:
        """A button click: run its invocation for the person who clicked."""
        await self._serve(interaction, Invocation.line(invocation))

    async def _serve(self, interaction: discord.Interaction, invocation: Invocation) -> None:
        ctx = self.pipeline.request(self.services, interaction_identity(interaction))
        admitted = await self.pipeline.admit(ctx, invocation)
        if isinstance(admitted, Admitted):
            busy = await self.executor.busy(ctx.identity)
            if busy is not None:
                admitted = Reply.error(busy, title="One moment")
        if not isinstance(admitted, Admitted):
            await self._answer_now(interaction, admitted)
            return
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:  # the interaction expired or was answered elsewhere; nothing to reply to
            log.warning("discord_defer_failed", status=exc.status, request_id=ctx.request_id, command=invocation.label())
            return
        metrics.ACK_SECONDS.labels(surface="discord").observe(time.perf_counter() - ctx.born)
        # the answer edits the deferred response through the interaction's webhook, from whichever worker runs it
        route = DiscordInteractionRoute(application_id=str(interaction.application_id), token=SecretStr(interaction.token))
        await self._submit(admitted, route, key=f"discord:{interaction.id}")

    async def _submit(self, admitted: Admitted, route: DiscordInteractionRoute | DiscordMessageRoute, *, key: str) -> None:
        job = Job.of(admitted, route, key=key, now=utc_now())
        if admitted.args is not None:
            self.recent.add(admitted.ctx.identity, symbols_in(admitted.args))
        await self.executor.submit(job)

    async def _answer_now(self, interaction: discord.Interaction, reply: Reply) -> None:
        """An immediate (ephemeral when possible) response, before any deferral."""
        messages = render(reply, buttons=False)
        kw = message_kwargs(messages[0])
        try:
            await interaction.response.send_message(ephemeral=True, **kw)
        except discord.HTTPException as exc:
            log.warning("discord_answer_failed", status=exc.status)

    async def on_message(self, message: discord.Message) -> None:
        """DMs and mentions: the text goes to the coach (a /command or free text)."""
        me = self.client.user
        if message.author.bot or message.webhook_id is not None or me is None or message.author.id == me.id:
            return
        dm = message.guild is None
        mentioned = any(u.id == me.id for u in message.mentions)
        if not (dm or mentioned):
            return
        text = re.sub(rf"<@!?{me.id}>", " ", message.content or "").strip()
        ctx = self.pipeline.request(self.services, message_identity(message))
        admitted = await self.pipeline.admit(ctx, Invocation.line(text or "/help"))
        if isinstance(admitted, Admitted):
            busy = await self.executor.busy(ctx.identity)
            if busy is not None:
                admitted = Reply.error(busy, title="One moment")
        try:
            if not isinstance(admitted, Admitted):
                for m in render(admitted):
                    await message.channel.send(**message_kwargs(m))
                return
            await message.channel.typing()  # "coach is typing…" until the answer arrives (Discord shows it for 10 s)
        except discord.HTTPException as exc:
            log.error("discord_send_failed", status=exc.status, error=str(exc.text)[:300], request_id=ctx.request_id)
            return
        route = DiscordMessageRoute(channel_id=str(message.channel.id), reply_to=None if dm else str(message.id))
        await self._submit(admitted, route, key=f"discord:message:{message.id}")

    async def autocomplete_symbols(
        self, interaction: discord.Interaction, current: str, *, many: bool
    ) -> list[app_commands.Choice[str]]:
        """Up to 25 symbol choices; for a list option the last word is completed."""
        ident = interaction_identity(interaction)
        head, last = "", current
        if many:
            parts = re.split(r"([,\s]+)", current)
            head, last = "".join(parts[:-1]), parts[-1]
        try:
            found = await suggestions(self.pipeline.request(self.services, ident), self.recent, last)
        except Exception:  # autocomplete is a convenience: never let it break typing
            log.exception("discord_autocomplete_failed")
            return []
        return [app_commands.Choice(name=(head + s)[:100], value=(head + s)[:100]) for s in found]

    async def _on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        ref = current_request_id()  # the request's own ref when it got that far, so its earlier lines match
        log.error("discord_command_error", request_id=ref, error=repr(error), exc_info=error)
        msg = f"something went wrong (ref {ref})"
        try:
            if interaction.response.is_done():
                await interaction.followup.send(msg, ephemeral=True)
            else:
                await interaction.response.send_message(msg, ephemeral=True)
        except discord.HTTPException:
            pass


# --- identity -------------------------------------------------------------------------------


def interaction_identity(interaction: discord.Interaction) -> Identity:
    """Identity of the person behind an interaction (slash command, button, autocomplete)."""
    perms = interaction.permissions
    return discord_identity(
        guild_id=interaction.guild_id,
        user_id=interaction.user.id,
        channel_id=interaction.channel_id,
        display_name=interaction.user.display_name,
        manage_guild=bool(perms.manage_guild or perms.administrator),
    )


def message_identity(message: discord.Message) -> Identity:
    """Identity of a message's author."""
    author = message.author
    perms = getattr(author, "guild_permissions", None)
    return discord_identity(
        guild_id=message.guild.id if message.guild else None,
        user_id=author.id,
        channel_id=message.channel.id,
        display_name=author.display_name,
        manage_guild=bool(perms and (perms.manage_guild or perms.administrator)),
    )


# --- slash commands from the registry ----------------------------------------------------------


def option_values(cmd: Command, options: dict[str, Any]) -> dict[str, Any]:
    """Discord option values as the argument model expects them (lists split, unset options left to defaults)."""
    specs = {s.name: s for s in cmd.arg_specs()}
    values: dict[str, Any] = {}
    for name, v in options.items():
        if v is None:
            continue
        spec = specs.get(name)
        if spec is not None and spec.kind == "list" and isinstance(v, str):
            v = [p for p in re.split(r"[,\s]+", v) if p]
        values[name] = v
    return values


def _bounds(cmd: Command, name: str) -> tuple[float | None, float | None]:
    lo: float | None = None
    hi: float | None = None
    for m in cmd.args.model_fields[name].metadata:
        if isinstance(m, Ge):
            lo = _number(m.ge)
        elif isinstance(m, Gt):
            lo = _number(m.gt)
        elif isinstance(m, Le):
            hi = _number(m.le)
        elif isinstance(m, Lt):
            hi = _number(m.lt)
    return lo, hi


def _number(bound: object) -> float | None:
    """A bound as a number: an option range on a number field takes nothing else."""
    return bound if isinstance(bound, (int, float)) else None


def _annotation(cmd: Command, spec: ArgSpec) -> Any:
    if spec.kind == "boolean":
        return bool
    if spec.kind in ("integer", "number"):
        base: type[int] | type[float] = int if spec.kind == "integer" else float
        lo, hi = _bounds(cmd, spec.name)
        if lo is None and hi is None:
            return base

        def cast(x: float | None) -> float | None:
            return None if x is None else base(x)

        return app_commands.Range[base, cast(lo), cast(hi)]
    if spec.choices and len(spec.choices) <= 25:
        return Literal.__getitem__(tuple(spec.choices))
    return str


def _description(spec: ArgSpec) -> str:
    d = spec.description or spec.name
    if spec.kind == "list":
        d += " (space or comma separated)"
    return d[:100]


def make_command(cmd: Command, surface: DiscordSurface, name: str | None = None) -> app_commands.Command[Any, ..., None]:
    """One app command whose options mirror the argument model (named `name`, default the command's last word)."""

    async def callback(interaction: discord.Interaction, **options: Any) -> None:
        await surface.on_slash(interaction, cmd, options)

    params = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction)]
    descriptions: dict[str, str] = {}
    autocomplete: dict[str, Any] = {}
    for spec in cmd.arg_specs()[:25]:
        ann = _annotation(cmd, spec)
        default = inspect.Parameter.empty if spec.required else None
        if not spec.required:
            # built at run time from a value discord.py inspects: the typing form is the one it documents
            ann = Optional[ann]  # noqa: UP045
        params.append(inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=default))
        descriptions[spec.name] = _description(spec)
        if spec.name in SYMBOL_FIELDS and spec.kind in ("string", "list") and not spec.choices:
            autocomplete[spec.name] = _symbol_autocomplete(surface, many=spec.kind == "list")
        elif spec.choices and len(spec.choices) > 25:
            autocomplete[spec.name] = _choice_autocomplete(spec.choices)
        elif spec.name == "interval" and spec.kind == "string":
            # free text (any common spelling is accepted), with the canonical tokens suggested
            autocomplete[spec.name] = _choice_autocomplete(INTERVALS)
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_description__ = descriptions  # type: ignore[attr-defined]
    if autocomplete:
        callback.__discord_app_commands_param_autocomplete__ = autocomplete  # type: ignore[attr-defined]
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=name or cmd.path[-1], description=(cmd.summary or cmd.name)[:100], callback=callback
    )
    if cmd.admin and not cmd.group:
        # hidden from members without Manage Server by default (server admins can change it); still checked on use
        command.default_permissions = discord.Permissions(manage_guild=True)
    return command


def _symbol_autocomplete(surface: DiscordSurface, *, many: bool) -> Autocomplete:
    async def ac(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await surface.autocomplete_symbols(interaction, current, many=many)

    return ac


def _choice_autocomplete(choices: tuple[str, ...]) -> Autocomplete:
    async def ac(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        cur = current.lower()
        return [app_commands.Choice(name=c, value=c) for c in choices if cur in c.lower()][:25]

    return ac


def build_tree(tree: app_commands.CommandTree, registry: Registry, surface: DiscordSurface) -> None:
    """Add every registry command to `tree`: single words at the top, `group sub` under a group."""
    groups = registry.groups()
    for name, subs in list(groups.items()):
        if name in registry.commands:
            # a Discord command with sub-commands cannot be run itself: /plan stays, /plan validate is /plan-validate
            for c in subs:
                tree.add_command(make_command(c, surface, name="-".join(c.path)))
            del groups[name]
            continue
        group = app_commands.Group(name=name, description=f"/{name}: " + ", ".join(c.path[1] for c in subs)[:90])
        if all(c.admin for c in subs):
            group.default_permissions = discord.Permissions(manage_guild=True)
        for c in subs[:25]:
            group.add_command(make_command(c, surface))
        if len(subs) > 25:
            log.warning("discord_group_too_large", group=name, dropped=[c.name for c in subs[25:]])
        tree.add_command(group)
    for c in registry.all():
        if c.group:
            continue
        if c.name in groups:
            log.warning("discord_command_shadowed_by_group", command=c.name)
            continue
        tree.add_command(make_command(c, surface))
