"""Tenants and users are created on first sight from the platform's ids."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.base import Owned
from storage.models import Tenant, User

_Row = TypeVar("_Row", Tenant, User)


@dataclass(frozen=True)
class Owner:
    """Database ids of the caller: every owned query filters by both."""

    tenant_id: int
    user_id: int


async def ensure_owner(
    session: AsyncSession, platform: str, tenant_external: str, user_external: str, display_name: str | None = None
) -> Owner:
    """Return the (tenant, user) ids for these platform ids, creating the rows on first sight."""
    tenant = await _get_or_create(
        session,
        Tenant,
        (Tenant.platform == platform, Tenant.external_id == tenant_external),
        lambda: Tenant(platform=platform, external_id=tenant_external),
    )
    user = await _get_or_create(
        session,
        User,
        (User.tenant_id == tenant.id, User.external_id == user_external),
        lambda: User(tenant_id=tenant.id, external_id=user_external, display_name=display_name, settings={}),
    )
    return Owner(tenant_id=tenant.id, user_id=user.id)


async def _get_or_create(
    session: AsyncSession, model: type[_Row], where: Sequence[ColumnElement[bool]], factory: Callable[[], _Row]
) -> _Row:
    query = select(model).where(*where)
    row = (await session.execute(query)).scalar_one_or_none()
    if row is not None:
        return row
    try:
        # a savepoint, so losing a race with another request does not abort the caller's transaction
        async with session.begin_nested():
            row = factory()
            session.add(row)
        return row
    except IntegrityError:
        return (await session.execute(query)).scalar_one()


def owned_by(model: type[Owned], owner: Owner) -> ColumnElement[bool]:
    """The filter that keeps a query to rows of `owner` (their tenant and their user)."""
    return and_(model.tenant_id == owner.tenant_id, model.owner_id == owner.user_id)


async def get_user(session: AsyncSession, owner: Owner) -> User:
    """The caller's user row."""
    return (await session.execute(select(User).where(User.id == owner.user_id, User.tenant_id == owner.tenant_id))).scalar_one()


async def owner_rows(session: AsyncSession, owner: Owner) -> tuple[Tenant, User] | None:
    """The caller's tenant and user rows, or None when either is gone (or the user is not in that tenant)."""
    row = (
        await session.execute(
            select(Tenant, User)
            .join(User, User.tenant_id == Tenant.id)
            .where(Tenant.id == owner.tenant_id, User.id == owner.user_id)
        )
    ).one_or_none()
    return (row[0], row[1]) if row is not None else None
