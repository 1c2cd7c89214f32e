"""The first tables: tenants, users, watchlists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utc_now
from storage.base import Base, Owned


class Tenant(Base):
    """A workspace: (platform, external id). Console users live in tenant ("console", "local")."""

    __tablename__ = "tenants"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_tenants_platform_external"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class User(Base):
    """A person inside a tenant, with their time zone and risk profile."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id", name="uq_users_tenant_external"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer, ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    tz: Mapped[str] = mapped_column(String(64), default="America/New_York")
    account_size: Mapped[float | None] = mapped_column(Float, default=None)
    risk_pct: Mapped[float | None] = mapped_column(Float, default=None)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class WatchlistItem(Owned, Base):
    """One symbol on a user's watchlist."""

    __tablename__ = "watchlist_items"
    __table_args__ = (UniqueConstraint("owner_id", "name", "symbol", name="uq_watchlist_owner_name_symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), default="default")
    symbol: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(default=utc_now)
