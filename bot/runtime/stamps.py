"""What every message the runtime pushes carries besides its content: a chart link for its owner, and how fresh
the price that caused it was.

One `Stamps` serves the alert evaluator and the plan tracker; the runtime names its clock and price stream once
the stream is open (`Runtime.start`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.freshness import decide_push
from bot.web.links import event_link, link_signer
from core.clock import Clock

if TYPE_CHECKING:
    from analytics.freshness import Freshness
    from bot.web.links import LinkSigner


@dataclass
class Stamps:
    #: Signs the "Open chart" links (None: links are not configured).
    signer: LinkSigner | None
    stale_minutes: float
    #: The runtime's clock and its price stream's name: the badge measures a price's age against them.
    now: Clock
    source: str

    @classmethod
    def of(cls, services: Any) -> Stamps:
        return cls(link_signer(services.settings), services.settings.coach_stale_minutes, services.clock, services.market.name)

    def link(
        self,
        tenant_id: int,
        user_id: int,
        symbol: str,
        intervals: tuple[str, ...],
        at: datetime,
        plan: tuple[str, int] | None = None,
    ) -> str | None:
        """The owner's "Open chart" link for a message made at `at` (see bot.web.links.event_link)."""
        return event_link(self.signer, tenant_id, user_id, symbol, intervals, at, plan)

    def badge(self, price_at: datetime) -> Freshness | None:
        """The freshness badge of a message caused by a price stamped `price_at`."""
        return decide_push(price_at, self.now(), self.source, self.stale_minutes)
