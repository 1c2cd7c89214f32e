"""`coach apikey create|list|revoke`: the HTTP API's keys, managed by the operator on the server.

`create` prints the key once; only its SHA-256 is stored, so a lost key is revoked and made anew.
A key acts for one tenant and user (default: this console's operator, so the API sees what `coach
chat` sees); `--tenant discord:GUILD --user MEMBER` binds it to a person of a chat workspace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

#: Platforms a key's tenant may belong to (a key for "api" people has no chat workspace).
PLATFORMS = ("console", "discord", "slack", "api")


def register(group: click.Group) -> None:
    """Add the `apikey` group."""
    group.add_command(apikey)


@click.group("apikey")
def apikey() -> None:
    """HTTP API keys: create (printed once), list, revoke."""


@apikey.command("create")
@click.option("--name", required=True, help="a name to tell the key by (letters, digits, _ . -), e.g. gpt-action")
@click.option("--tenant", default=None, help="PLATFORM:ID the key acts in, e.g. discord:123456789 (default: console:local)")
@click.option("--user", default=None, help="the person's id on that platform (default: this login, for the console)")
@click.option("--scope", type=click.Choice(["read", "act"]), default="read", show_default=True, help="act: may change things")
@click.option("--admin", is_flag=True, help="may run admin-only commands (channel alert settings, /diag) in its tenant")
def create(name: str, tenant: str | None, user: str | None, scope: str, admin: bool) -> None:
    """Make a key and print it once (only its hash is stored)."""
    from bot.cli.common import run
    from bot.surfaces.console import console_identity
    from core.clock import utc_now
    from storage import api_keys

    platform, tenant_id = _tenant(tenant)
    if user is None:
        if platform != "console":
            raise click.UsageError("--user is required with --tenant (the person's id on that platform)")
        user = console_identity().user
    user = user.strip()
    if not user or len(user) > 64:
        raise click.UsageError("--user must be 1-64 characters")
    created: api_keys.Scope = "read" if scope == "read" else "act"

    async def go(s: AsyncSession) -> tuple[str, api_keys.KeyInfo]:
        return await api_keys.create_key(
            s, name=name, platform=platform, tenant=tenant_id, user=user, scope=created, admin=admin, now=utc_now()
        )

    key, info = run(lambda: _with_db(go))
    click.echo(key)
    click.echo(
        f"key #{info.id} {info.name!r} ({info.scope}{', admin' if info.admin else ''}) acts for "
        f"{info.platform}:{info.tenant} user {info.user}. It is shown only now: store it as a secret.",
        err=True,
    )


@apikey.command("list")
def list_cmd() -> None:
    """The keys: id, name, prefix, scope, whom they act for, created, last used, revoked (never the key)."""
    from bot.cli.common import run
    from storage import api_keys

    keys = run(lambda: _with_db(api_keys.list_keys))
    if not keys:
        click.echo("no API keys; make one with `coach apikey create --name NAME`")
        return
    click.echo(f"{'ID':>4}  {'NAME':<20} {'PREFIX':<8}  {'SCOPE':<9} {'ACTS FOR':<28} {'CREATED':<16}  {'LAST USED':<16}  STATUS")
    for k in keys:
        scope = k.scope + ("+admin" if k.admin else "")
        who = f"{k.platform}:{k.tenant}/{k.user}"
        status = f"revoked {_when(k.revoked_at)}" if k.revoked_at else "active"
        click.echo(
            f"{k.id:>4}  {k.name:<20} {k.prefix:<8}  {scope:<9} {who[:28]:<28} {_when(k.created_at):<16}  "
            f"{_when(k.last_used_at):<16}  {status}"
        )


@apikey.command("revoke")
@click.argument("key")
def revoke(key: str) -> None:
    """Revoke a key by NAME or ID: it stops working at once."""
    from bot.cli.common import run
    from core.clock import utc_now
    from storage import api_keys

    async def go(s: AsyncSession) -> api_keys.KeyInfo:
        return await api_keys.revoke_key(s, key, utc_now())

    info = run(lambda: _with_db(go))
    click.echo(f"revoked key #{info.id} {info.name!r} (prefix {info.prefix})")


def _tenant(value: str | None) -> tuple[str, str]:
    """(platform, id) of --tenant, or the console's."""
    if value is None:
        return "console", "local"
    platform, sep, ident = value.strip().partition(":")
    platform = platform.lower()
    if not sep or platform not in PLATFORMS or not ident.strip() or len(ident) > 64:
        raise click.UsageError(
            f"--tenant must be PLATFORM:ID with PLATFORM one of {', '.join(PLATFORMS)}, e.g. discord:123456789"
        )
    return platform, ident.strip()


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t is not None else "never"


async def _with_db(fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `fn` in one transaction on the configured database (upgraded first, as the service does)."""
    from bot.config import get_settings
    from storage.db import make_engine, make_sessionmaker, upgrade

    engine = make_engine(get_settings().database_url)
    try:
        await upgrade(engine)
        async with make_sessionmaker(engine)() as s, s.begin():
            return await fn(s)
    finally:
        await engine.dispose()
