"""Channel alert settings, admins only: /settings show|alerts|types|route|webhook|summary.

Per channel, or for the whole workspace (a channel's unset values inherit the workspace's):
whether alerts are on, which families (price, indicator, plan, risk) are allowed, where they are
delivered (the channel, a thread per symbol, the owner's DM), extra webhook sinks, and whether
the portfolio risk summary goes out after each close (off by default).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from bot.args import ArgsModel
from bot.registry import command
from bot.reply import Reply
from bot.request import Ctx
from core.errors import UserError
from storage import alerts as store
from storage.alerts import FAMILIES, ROUTES
from storage.identity import Owner

# The runtime's face (and through it numpy and pandas) is imported where a reply shows webhooks:
# declaring the commands, as a chat front does to validate arguments, loads none of it.

#: Webhook sinks one channel (or the workspace) may have.
MAX_WEBHOOKS = 5


class SettingsView(BaseModel):
    scope: str
    channel: str | None
    alerts_enabled: bool
    allowed_kinds: list[str]
    route: str
    webhooks: list[dict[str, Any]]
    daily_summary: bool
    origin: dict[str, str]


def _scope(ctx: Ctx, workspace: bool) -> tuple[str, str]:
    if workspace or not ctx.identity.channel:
        return "workspace", ""
    return "channel", ctx.identity.channel


async def _settings_reply(ctx: Ctx, owner: Owner, s: Any, workspace: bool, title: str) -> Reply:
    # a webhook's URL is its password and these settings are shown to everyone in the channel
    from core.urls import mask_url

    scope, channel = _scope(ctx, workspace)
    eff = await store.effective_settings(s, owner.tenant_id, channel or None)
    hooks = [{"kind": h.get("kind"), "url": mask_url(str(h.get("url")))} for h in eff.webhooks]
    v = SettingsView(
        scope=scope,
        channel=channel or None,
        alerts_enabled=eff.alerts_enabled,
        allowed_kinds=list(eff.allowed_kinds),
        route=eff.route,
        webhooks=hooks,
        daily_summary=eff.daily_summary,
        origin=eff.origin,
    )
    where = f"channel {channel}" if scope == "channel" else "the whole workspace"
    lines = [
        f"Alerts: {'on' if v.alerts_enabled else 'off'} ({v.origin['alerts_enabled']})",
        f"Allowed: {', '.join(v.allowed_kinds) or 'none'} ({v.origin['allowed_kinds']})",
        f"Delivered to: {v.route} ({v.origin['route']})",
        "Webhooks: "
        + (", ".join(f"{i + 1}. {h['kind']} {h['url']}" for i, h in enumerate(hooks)) or "none")
        + f" ({v.origin['webhooks']})",
        f"Daily risk summary after the close: {'on' if v.daily_summary else 'off'} ({v.origin['daily_summary']})",
    ]
    return Reply(
        title=f"{title} — {where}", body="\n".join(lines), data=v, severity="success" if title.endswith("updated") else "info"
    )


class SettingsShowArgs(ArgsModel):
    workspace: bool = Field(False, description="the workspace defaults instead of this channel")


@command(
    "settings show",
    "This channel's alert settings (or the workspace's).",
    SettingsShowArgs,
    result="bot.commands.settings:SettingsView",
    examples=("/settings show", "/settings show --workspace"),
    tool=False,
)
async def settings_show(ctx: Ctx, a: SettingsShowArgs) -> Reply:
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        return await _settings_reply(ctx, owner, s, a.workspace, "Alert settings")


async def _change(ctx: Ctx, workspace: bool, **changes: Any) -> Reply:
    scope, channel = _scope(ctx, workspace)
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        await store.update_settings(s, owner.tenant_id, scope, channel, owner.user_id, **changes)
        return await _settings_reply(ctx, owner, s, workspace, "Alert settings updated")


OnOff = Annotated[
    Literal["on", "off"],
    BeforeValidator(lambda v: ("on" if v else "off") if isinstance(v, bool) else v.strip().lower() if isinstance(v, str) else v),
]


class SettingsAlertsArgs(ArgsModel):
    enabled: OnOff = Field(description="on or off")
    workspace: bool = Field(False, description="for the whole workspace instead of this channel")


@command(
    "settings alerts",
    "Turn alerts on or off in this channel (or the workspace). Admins only.",
    SettingsAlertsArgs,
    acts=True,
    result="bot.commands.settings:SettingsView",
    admin=True,
    tool=False,
    examples=("/settings alerts off", "/settings alerts on --workspace"),
)
async def settings_alerts(ctx: Ctx, a: SettingsAlertsArgs) -> Reply:
    return await _change(ctx, a.workspace, alerts_enabled=a.enabled == "on")


class SettingsSummaryArgs(ArgsModel):
    enabled: OnOff = Field(description="on or off")
    workspace: bool = Field(False, description="for the whole workspace instead of this channel")


@command(
    "settings summary",
    "Send the portfolio risk summary (exposure, open risk, broken rules) of this channel's traders after each close. "
    "Off by default. Admins only.",
    SettingsSummaryArgs,
    acts=True,
    admin=True,
    tool=False,
    examples=("/settings summary on", "/settings summary off --workspace"),
)
async def settings_summary(ctx: Ctx, a: SettingsSummaryArgs) -> Reply:
    return await _change(ctx, a.workspace, daily_summary=a.enabled == "on")


def _families(v: object) -> object:
    # chat hands over a list of words ("all" arrives as ["all"]), a tool call or the CLI may send one string
    words = [v] if isinstance(v, str) else v if isinstance(v, list) else None
    if words is None:
        return v
    parts = [p.strip().lower() for w in words for p in re.split(r"[,\s]+", str(w)) if p.strip()]
    if parts == ["all"]:
        return list(FAMILIES)
    if parts == ["none"]:
        return []
    return parts


class SettingsTypesArgs(ArgsModel):
    types: Annotated[list[Literal["price", "indicator", "plan", "risk"]], BeforeValidator(_families)] = Field(
        description="alert families allowed: price, indicator, plan, risk (comma list), all or none"
    )
    workspace: bool = Field(False, description="for the whole workspace instead of this channel")


@command(
    "settings types",
    "Which alert families this channel takes: price, indicator, plan, risk. Admins only.",
    SettingsTypesArgs,
    acts=True,
    result="bot.commands.settings:SettingsView",
    admin=True,
    tool=False,
    examples=("/settings types price,plan", "/settings types all"),
)
async def settings_types(ctx: Ctx, a: SettingsTypesArgs) -> Reply:
    return await _change(ctx, a.workspace, allowed_kinds=list(dict.fromkeys(a.types)))


class SettingsRouteArgs(ArgsModel):
    route: Literal[ROUTES] = Field(description="channel (here), thread (one per symbol) or dm (the alert's owner)")  # type: ignore[valid-type]
    workspace: bool = Field(False, description="for the whole workspace instead of this channel")


@command(
    "settings route",
    "Where alerts from this channel go: the channel, a thread per symbol, or the owner's DM. Admins only.",
    SettingsRouteArgs,
    acts=True,
    result="bot.commands.settings:SettingsView",
    admin=True,
    tool=False,
    examples=("/settings route thread", "/settings route dm --workspace"),
)
async def settings_route(ctx: Ctx, a: SettingsRouteArgs) -> Reply:
    return await _change(ctx, a.workspace, route=a.route)


class SettingsWebhookArgs(ArgsModel):
    action: Literal["add", "remove", "list"] = Field(description="add URL, remove URL|N|#tag, or list")
    url: str | None = Field(
        None,
        max_length=500,
        description="add: the webhook URL (public https://); remove: its URL, its number in the list, or its #tag",
    )
    kind: Literal["auto", "discord_webhook", "slack_webhook", "webhook"] = Field(
        "auto", description="auto (from the URL), discord_webhook, slack_webhook or webhook (generic JSON)"
    )
    workspace: bool = Field(False, description="for the whole workspace instead of this channel")


async def check_webhook_url(ctx: Ctx, url: str, kind: str) -> str:
    """The URL when a `kind` sink may post to it (`bot.webhook_targets`); UserError saying what is accepted otherwise."""
    from bot.webhook_targets import WebhookPolicy, vet_webhook_url

    policy = WebhookPolicy(allow_private=ctx.services.settings.coach_webhook_allow_private)
    return await vet_webhook_url(url, kind, policy)


@command(
    "settings webhook",
    "Extra sinks for this channel's alerts: a Discord webhook, Slack incoming webhook or JSON URL. Admins only.",
    SettingsWebhookArgs,
    acts=True,
    admin=True,
    tool=False,
    examples=(
        "/settings webhook add https://hooks.slack.com/services/T0/B0/XXX",
        "/settings webhook remove 1",
        "/settings webhook remove https://hooks.slack.com/services/T0/B0/XXX",
        "/settings webhook list",
    ),
)
async def settings_webhook(ctx: Ctx, a: SettingsWebhookArgs) -> Reply:
    from bot.webhook_targets import webhook_kind

    scope, channel = _scope(ctx, a.workspace)
    kind, url = "", ""
    if a.action == "add":
        if not a.url:
            raise UserError("give the webhook URL: /settings webhook add https://...")
        kind = webhook_kind(a.url) if a.kind == "auto" else a.kind
        url = await check_webhook_url(ctx, a.url, kind)  # resolves the name: before the transaction, not inside it
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        row = await store.settings_row(s, owner.tenant_id, scope, channel)
        hooks = list((row.webhooks if row is not None else None) or [])
        if a.action == "list":
            return await _settings_reply(ctx, owner, s, a.workspace, "Alert settings")
        if a.action == "add":
            if any(h.get("url") == url for h in hooks):
                raise UserError("that webhook is already set here")
            if len(hooks) >= MAX_WEBHOOKS:
                raise UserError(f"at most {MAX_WEBHOOKS} webhooks per channel; remove one first")
            hooks.append({"kind": kind, "url": url})
        else:
            if not (a.url or "").strip():
                raise UserError("say which webhook: /settings webhook remove URL, its number from the list, or its #tag")
            i = pick_webhook(hooks, a.url or "")
            if i is None:
                inherited = []
                if scope == "channel" and not hooks:
                    ws = await store.settings_row(s, owner.tenant_id, "workspace", "")
                    inherited = list((ws.webhooks if ws is not None else None) or [])
                raise UserError(_no_such_webhook(a.url or "", hooks, scope, inherited))
            hooks.pop(i)
        await store.update_settings(s, owner.tenant_id, scope, channel, owner.user_id, webhooks=hooks)
        return await _settings_reply(ctx, owner, s, a.workspace, "Alert settings updated")


def pick_webhook(hooks: list[dict[str, Any]], given: str) -> int | None:
    """The index of the webhook `given` names: its URL, its number in the list (1-based), its #tag or its masked form."""
    from core.urls import mask_url, url_fingerprint

    text = given.strip()
    key = text.lstrip("#").strip().lower()
    if key.isdigit() and len(key) <= 2:
        n = int(key)
        return n - 1 if 1 <= n <= len(hooks) else None
    for i, h in enumerate(hooks):
        url = str(h.get("url") or "")
        if text == url.strip() or key == url_fingerprint(url) or text == mask_url(url):
            return i
    return None


def _no_such_webhook(given: str, hooks: list[dict[str, Any]], scope: str, inherited: list[dict[str, Any]]) -> str:
    """One line: which webhook was not found (masked) and the ones that exist, masked, to remove instead."""
    from core.urls import mask_url

    text = given.strip()
    shown = mask_url(text) if "://" in text else repr(text[:20])
    where = "this channel" if scope == "channel" else "the workspace"
    if hooks:
        listed = "; ".join(f"{n}. {h.get('kind')} {mask_url(str(h.get('url')))}" for n, h in enumerate(hooks, 1))
        return f"no webhook {shown} in {where}; it has {listed} (remove by URL, number or #tag)"
    if inherited:
        return (
            f"no webhook {shown} in {where}: it has none of its own; the {len(inherited)} listed come from the workspace, "
            "remove them with --workspace, e.g. /settings webhook remove 1 --workspace"
        )
    return f"no webhook {shown} in {where}: none are set"
