"""What a handler gets for one request: the services, who is asking, the pinned time and the request id."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import Services
from storage.identity import Owner, ensure_owner

if TYPE_CHECKING:
    from providers.base import MarketData


@dataclass(frozen=True)
class Identity:
    """Who is asking, from the platform's own ids. Never chosen by user input or the LLM."""

    platform: str  # console, discord, slack
    tenant: str  # guild / workspace id ("local" for the console)
    user: str  # platform user id
    channel: str | None = None
    display_name: str | None = None
    is_admin: bool = False
    dm: bool = False
    #: Asks the platform whether the caller is an admin, for platforms where that costs a call (Slack's
    #: users.info): the pipeline awaits it only for admin-only commands, so other requests are not held up.
    admin_lookup: Callable[[], Awaitable[bool]] | None = field(default=None, compare=False, repr=False)


@dataclass
class ModelTurn:
    """Marks a request as a tool call of one coach turn (the model asked, not the person) and what the turn removed.

    The coach's tool calls share one of these per turn; a request the person typed has none.
    """

    #: Items removed directly by this turn's tool calls (see `bot.removals`).
    removed: int = 0


def event_ref(key: str) -> str:
    """The request id of an event the service raised itself (an alert, a plan update), from its idempotency key.

    The same key gives the same ref where the event is queued and where it is delivered, so one
    ref finds both ends in the log.
    """
    return hashlib.sha256(key.encode()).hexdigest()[:8].upper()


def current_request_id() -> str:
    """The id of the request this code runs for (bound to the log context where it entered), else a new one."""
    bound = structlog.contextvars.get_contextvars().get("request_id")
    return bound if isinstance(bound, str) and bound else new_request_id()


def new_request_id() -> str:
    """A short id users can quote when something goes wrong."""
    return secrets.token_hex(4).upper()


@dataclass
class Ctx:
    """Per-request context handed to every handler."""

    services: Services
    identity: Identity
    as_of: datetime | None = None
    request_id: str = field(default_factory=new_request_id)
    #: When the request arrived (perf_counter), for the time to acknowledge it.
    born: float = field(default_factory=time.perf_counter)
    #: Told `(done, total, label)` by long work (scans, backtests) when someone is watching (the CLI's progress bar).
    progress: Callable[[int, int, str], None] | None = None
    #: Set when the coach's model made this request as a tool call; None when the person typed it or clicked a button.
    model_turn: ModelTurn | None = None
    _owner: Owner | None = None

    def now(self) -> datetime:
        """The pinned time (`--as-of`) or the service clock."""
        return self.as_of or self.services.clock()

    @property
    def market(self) -> MarketData:
        return self.services.market

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on any error."""
        async with self.services.db() as session, session.begin():
            yield session

    async def owner(self, session: AsyncSession | None = None) -> Owner:
        """The caller's (tenant, user) ids, creating them on first sight."""
        if self._owner is None:
            ident = self.identity
            if session is not None:
                self._owner = await ensure_owner(session, ident.platform, ident.tenant, ident.user, ident.display_name)
            else:
                async with self.tx() as s:
                    self._owner = await ensure_owner(s, ident.platform, ident.tenant, ident.user, ident.display_name)
        return self._owner
