"""HTTP API keys: created by the operator, bound to one tenant and user, stored only as a hash.

A key reads `coach_<prefix>_<secret>`: the prefix (8 hex digits) finds the row, the whole key's
SHA-256 is compared in constant time with the stored one. The secret has 256 bits of entropy, so
a plain SHA-256 is enough (no stretching needed: nobody guesses such a key), and a database dump
gives no usable key. A revoked key stays in the table (its name, prefix and dates) and never
authenticates again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Boolean, Index, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.errors import UserError
from storage.base import Base, Owned, UTCDateTime
from storage.identity import ensure_owner
from storage.models import Tenant, User

Scope = Literal["read", "act"]
SCOPES: tuple[Scope, ...] = ("read", "act")

#: What every key starts with: tells a coach key apart in a config file or a secret scanner.
KEY_PREFIX = "coach_"
_KEY = re.compile(r"^coach_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
#: How stale `last_used_at` may get before a request writes it again (one write a minute per key, not per request).
TOUCH_EVERY = timedelta(seconds=60)


class ApiKey(Owned, Base):
    """One API key: its name, lookup prefix, hash, scope, and whom it acts for."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_prefix", "prefix", unique=True), Index("ix_api_keys_name", "name", unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(8))
    #: SHA-256 of the whole key, hex.
    key_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(8))
    #: Runs admin-only commands (channel alert settings, /diag) in its tenant.
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed and as a request sees it: never the key itself."""

    id: int
    name: str
    prefix: str
    scope: Scope
    admin: bool
    platform: str
    tenant: str
    user: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def can_act(self) -> bool:
        return self.scope == "act"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh key and its lookup prefix."""
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise UserError(f"bad key name {name[:40]!r}; use a letter then letters, digits, _ . or - (at most 64), e.g. gpt-action")
    return name


async def create_key(
    session: AsyncSession,
    *,
    name: str,
    platform: str,
    tenant: str,
    user: str,
    scope: Scope,
    admin: bool,
    now: datetime,
) -> tuple[str, KeyInfo]:
    """Store a new key for (platform, tenant, user); returns the key (shown once, never stored) and its listing."""
    name = check_name(name)
    if scope not in SCOPES:
        raise UserError(f"unknown scope {scope!r}; accepted: {', '.join(SCOPES)}")
    taken = (await session.execute(select(ApiKey.id).where(ApiKey.name == name))).scalar_one_or_none()
    if taken is not None:
        raise UserError(f"a key named {name!r} exists already (#{taken}); choose another name")
    owner = await ensure_owner(session, platform, tenant, user)
    key, prefix = new_key()
    row = ApiKey(
        tenant_id=owner.tenant_id,
        owner_id=owner.user_id,
        name=name,
        prefix=prefix,
        key_hash=hash_key(key),
        scope=scope,
        admin=admin,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return key, _info(row, platform, tenant, user)


async def list_keys(session: AsyncSession) -> list[KeyInfo]:
    """Every key, oldest first, revoked ones too."""
    rows = await session.execute(
        select(ApiKey, Tenant.platform, Tenant.external_id, User.external_id)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .join(User, User.id == ApiKey.owner_id)
        .order_by(ApiKey.id)
    )
    return [_info(k, platform, tenant, user) for k, platform, tenant, user in rows.all()]


async def revoke_key(session: AsyncSession, name_or_id: str, now: datetime) -> KeyInfo:
    """Revoke the key with this name (or `#id` / id); UserError when there is none or it was revoked already."""
    wanted = name_or_id.strip().lstrip("#")
    where = ApiKey.id == int(wanted) if wanted.isdigit() else ApiKey.name == wanted
    row = (await session.execute(select(ApiKey).where(where))).scalar_one_or_none()
    if row is None:
        raise UserError(f"no API key {name_or_id.strip()[:64]!r}; `coach apikey list` shows names and ids")
    if row.revoked_at is not None:
        raise UserError(f"key {row.name!r} was revoked already")
    row.revoked_at = now
    await session.flush()
    return next(k for k in await list_keys(session) if k.id == row.id)


async def authenticate(session: AsyncSession, presented: str, now: datetime) -> KeyInfo | None:
    """The live key `presented` is, or None (malformed, unknown, wrong secret or revoked: the caller cannot tell which)."""
    m = _KEY.match(presented.strip())
    if m is None:
        return None
    found = (
        await session.execute(
            select(ApiKey, Tenant.platform, Tenant.external_id, User.external_id)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .join(User, User.id == ApiKey.owner_id)
            .where(ApiKey.prefix == m.group(1))
        )
    ).one_or_none()
    # the hash is compared even when no row matched, so timing does not tell a known prefix from an unknown one
    stored = found[0].key_hash if found is not None else "0" * 64
    if not hmac.compare_digest(hash_key(presented.strip()), stored) or found is None:
        return None
    row, platform, tenant, user = found
    if row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now  # written with the caller's transaction
    return _info(row, platform, tenant, user)


def _info(row: ApiKey, platform: str, tenant: str, user: str) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scope="act" if row.scope == "act" else "read",
        admin=bool(row.admin),
        platform=platform,
        tenant=tenant,
        user=user,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
