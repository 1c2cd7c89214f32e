"""The long-lived things a running service holds. `bot.app` (the composition root) builds them; nothing else does.

Every field is typed and set explicitly by the root, so a reader (or mypy) can follow any
`services.x` to the one place it is made. The parts' types are imported for annotations only:
this module sits below all of them.

The parts only the handlers use (market data, charts, options, the coach, the price stream) are
built on first use (`Later`): a chat front that hands every request to workers never builds
them, and never imports the numeric stack they stand on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from core.cache import TTLCache
from core.clock import Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.chart_service import ChartService
    from bot.execution.local import Executor
    from bot.options_service import OptionsService
    from bot.pipeline import FreeTextHandler, Pipeline
    from bot.registry import Registry
    from bot.runtime.destinations import DestinationKinds
    from bot.runtime.feed import StreamBuilder
    from bot.runtime.worker import RuntimeStats
    from bot.surfaces.replies import ReplySender
    from providers.base import MarketData
    from providers.broker.base import Broker


T = TypeVar("T")


class Later(Generic[T]):
    """A part built the first time it is asked for (or given at once with `Later.of`)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make: Callable[[], T] | None = make
        self._value: T | None = None
        self._built = False

    @classmethod
    def of(cls, value: T) -> Later[T]:
        later: Later[T] = cls(lambda: value)
        later.get()
        return later

    def get(self) -> T:
        if not self._built:
            assert self._make is not None
            self._value, self._built, self._make = self._make(), True, None
        return self._value  # type: ignore[return-value]  # built above: a T (which may itself be None)

    def built(self) -> T | None:
        """The part when it has been built, else None (nothing is built by asking)."""
        return self._value if self._built else None


@dataclass
class Services:
    """Settings, market data, database and clock, and the parts built on them."""

    settings: Settings
    engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    clock: Clock
    #: The commands this service serves, and the one pipeline every request passes through.
    registry: Registry
    pipeline: Pipeline
    #: Market data (the offline market, or a router over the providers).
    market_part: Later[MarketData]
    #: Text that is not a /command: the LLM coach, or the rule-based intent parser.
    free_text_part: Later[FreeTextHandler]
    #: Chart rendering (a process pool, or a thread for one-shot commands).
    charts_part: Later[ChartService]
    #: Option chains, IV and the volatility regime, cached.
    options_part: Later[OptionsService]
    #: Makes the runtime's price stream when the provider has one (None: the runtime polls quotes).
    stream_part: Later[StreamBuilder | None]
    #: Where the runtime can deliver (console, webhooks, and Discord/Slack when their bots run).
    destinations: DestinationKinds
    #: Delivers answers along job routes (Discord interaction webhooks, channels, Slack), from any process.
    replies: ReplySender
    #: Makes the broker on first use (a Tradier broker needs its token only when orders are used).
    broker_factory: Callable[[], Broker]
    #: Where admitted chat requests run: worker processes, a queue, or this process (set by the root right after
    #: the services exist, since running jobs in this process needs them).
    executor: Executor | None = None
    #: COACH_QUEUE_URL's Redis when it is set: what several fronts share (rate limits, in-flight counts, the
    #: Slack requests already seen). None: one process, which keeps those in memory.
    redis: Redis | None = None
    #: The alert runtime's counters while it runs in this process.
    runtime_stats: RuntimeStats | None = None
    #: The newest stored calibration of plan odds, kept a minute (bot.odds.current_fit).
    odds_fits: TTLCache = field(default_factory=lambda: TTLCache(60.0, maxsize=1))
    #: Closed with the services (HTTP clients, pools), in reverse order of registration.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _broker: Broker | None = field(default=None, repr=False)

    @property
    def market(self) -> MarketData:
        return self.market_part.get()

    @property
    def free_text(self) -> FreeTextHandler:
        return self.free_text_part.get()

    @free_text.setter
    def free_text(self, handler: FreeTextHandler) -> None:
        self.free_text_part = Later.of(handler)

    @property
    def charts(self) -> ChartService:
        return self.charts_part.get()

    @property
    def options(self) -> OptionsService:
        return self.options_part.get()

    @property
    def stream_builder(self) -> StreamBuilder | None:
        return self.stream_part.get()

    def broker(self) -> Broker:
        """The broker, built on first use."""
        if self._broker is None:
            self._broker = self.broker_factory()
            closer = getattr(self._broker, "aclose", None)
            if closer is not None:
                self.closers.append(closer)
        return self._broker

    async def close(self) -> None:
        """Close every part that holds a connection or a pool (of those built), then the database."""
        for part in (self.market_part, self.free_text_part, self.charts_part):
            closer = getattr(part.built(), "aclose", None)
            if closer is not None:
                self.closers.insert(0, closer)  # closed after the executor and the others, as they may use them
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:  # closing goes on: one stuck client must not keep the database open
                pass
        self.closers.clear()
        await self.engine.dispose()
