"""The long-lived things a running service holds, built by the composition root (`bot.app`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from core.clock import utc_now
from providers.base import MarketData


@dataclass
class Services:
    """Long-lived things a running service holds: settings, market data, database, clock."""

    settings: Settings
    market: MarketData
    engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime] = utc_now
    #: Feature hooks later layers attach (chart pool, agent, runtime); keyed by feature name.
    extras: dict[str, Any] = field(default_factory=dict)

    async def close(self) -> None:
        for extra in self.extras.values():
            closer = getattr(extra, "aclose", None)
            if closer is not None:
                await closer()
        await self.engine.dispose()
