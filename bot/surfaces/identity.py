"""Who is asking, from a chat platform's own ids: tenant = platform + guild/workspace, user = platform user id.

Rows are created in storage on first sight by `Ctx.owner()`; nothing here touches the database.
A Discord DM has no guild, so each DM user gets a private tenant (`dm-<user id>`) in which
they are the admin; a Slack DM stays inside its workspace.
"""

from __future__ import annotations

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.request import Identity
from core.cache import TTLCache

log = structlog.get_logger("coach.identity")


def discord_identity(
    *,
    guild_id: int | str | None,
    user_id: int | str,
    channel_id: int | str | None,
    display_name: str | None,
    manage_guild: bool,
) -> Identity:
    """A Discord caller: admin when they hold Manage Server (or Administrator) in the guild."""
    if guild_id is None:
        return Identity(
            platform="discord",
            tenant=f"dm-{user_id}",
            user=str(user_id),
            channel=str(channel_id) if channel_id is not None else None,
            display_name=display_name,
            is_admin=True,
            dm=True,
        )
    return Identity(
        platform="discord",
        tenant=str(guild_id),
        user=str(user_id),
        channel=str(channel_id) if channel_id is not None else None,
        display_name=display_name,
        is_admin=manage_guild,
        dm=False,
    )


def slack_identity(
    *,
    team_id: str,
    user_id: str,
    channel_id: str | None,
    display_name: str | None,
    is_admin: bool,
    channel_type: str | None = None,
) -> Identity:
    """A Slack caller inside workspace `team_id`; DMs are channels of type `im` (ids starting with D)."""
    dm = channel_type == "im" or (channel_id or "").startswith("D")
    return Identity(
        platform="slack",
        tenant=team_id,
        user=user_id,
        channel=channel_id,
        display_name=display_name,
        is_admin=is_admin,
        dm=dm,
    )


class SlackAdmins:
    """Workspace-admin flags from `users.info` (admin, owner or primary owner), cached for `ttl` seconds."""

    def __init__(self, ttl: float = 300.0, max_entries: int = 20_000) -> None:
        self.cache = TTLCache(ttl, maxsize=max_entries)

    async def is_admin(self, client: AsyncWebClient, team_id: str, user_id: str) -> bool:
        """True when Slack says the user administers the workspace; False when unknown (never raises)."""

        async def lookup() -> bool:
            resp = await client.users_info(user=user_id)
            user = resp.get("user") or {}
            return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))

        try:
            return await self.cache.get_or_load((team_id, user_id), lookup)
        except Exception as exc:  # a failed lookup must not block the command; it only withholds admin rights
            log.warning("slack_users_info_failed", error=exc.__class__.__name__, user=user_id)
            return False
