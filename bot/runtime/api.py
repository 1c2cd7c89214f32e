"""The runtime's public face: what commands may use of the alert and live-plan runtime.

Commands word and route alerts the way the runtime will deliver them, show whether a runtime
is running and how its feed is, and push a test message through the real delivery path. They
never reach into the worker, the dispatcher or the tracker themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.runtime.destinations import WEBHOOK_KINDS, describe_target
from bot.runtime.messages import describe_condition, reply_to_payload, test_reply
from bot.runtime.routing import Origin, sinks_for
from bot.runtime.tracker import state_from_json, state_to_json
from bot.runtime.worker import FEED_KEY, runtime_alive
from storage.runtime_state import get_state

if TYPE_CHECKING:
    from bot.services import Services

__all__ = [
    "WEBHOOK_KINDS",
    "Origin",
    "deliver_now",
    "describe_condition",
    "describe_target",
    "feed_state",
    "reply_to_payload",
    "runtime_alive",
    "sinks_for",
    "state_from_json",
    "state_to_json",
    "test_reply",
]


async def feed_state(services: Services) -> dict[str, Any] | None:
    """The price feed's last reported state (live, stale, closed, down...), or None when no runtime reported one."""
    async with services.db() as s:
        return await get_state(s, FEED_KEY)


async def deliver_now(services: Services, channels: set[str], timeout: float = 20.0) -> None:
    """Deliver what is due in `channels` from this process, for when no runtime is running to do it."""
    from bot.runtime.dispatcher import Dispatcher

    dispatcher = Dispatcher(services)
    try:
        await dispatcher.deliver_all(only=channels, timeout=timeout)
    finally:
        await dispatcher.aclose()
