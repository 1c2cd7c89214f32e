"""Who is asking, from a chat platform's own ids: tenant = platform + guild/workspace, user = platform user id.

Rows are created in storage on first sight by `Ctx.owner()`; nothing here touches the database.
A Discord DM has no guild, so each DM user gets a private tenant (`dm-<user id>`) in which
they are the admin; a Slack DM stays inside its workspace.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import structlog

from bot.request import Identity

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
            platform="discord", tenant=f"dm-{user_id}", user=str(user_id),
            channel=str(channel_id) if channel_id is not None else None,
            display_name=display_name, is_admin=True, dm=True,
        )
    return Identity(
        platform="discord", tenant=str(guild_id), user=str(user_id),
        channel=str(channel_id) if channel_id is not None else None,
        display_name=display_name, is_admin=manage_guild, dm=False,
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
        platform="slack", tenant=team_id, user=user_id, channel=channel_id,
        display_name=display_name, is_admin=is_admin, dm=dm,
    )


class SlackAdmins:
    """Workspace-admin flags from `users.info` (admin, owner or primary owner), cached for `ttl` seconds."""

    def __init__(self, ttl: float = 300.0, max_entries: int = 20_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, str], tuple[float, bool]] = OrderedDict()

    async def is_admin(self, client, team_id: str, user_id: str) -> bool:  # noqa: ANN001 - AsyncWebClient
        """True when Slack says the user administers the workspace; False when unknown (never raises)."""
        key = (team_id, user_id)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            resp = await client.users_info(user=user_id)
            user = resp.get("user") or {}
            flag = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        except Exception as exc:  # a failed lookup must not block the command; it only withholds admin rights
            log.warning("slack_users_info_failed", error=exc.__class__.__name__, user=user_id)
            return hit[1] if hit is not None else False
        self._cache[key] = (now, flag)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return flag
