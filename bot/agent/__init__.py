"""The LLM coach: registry commands as tools, a bounded loop, grounded replies and per-user memory.

Importing this package registers a service hook that sets `services.extras["free_text"]`:
the LLM agent when OPENAI_API_KEY or OPENAI_BASE_URL is set, else the rule-based intent
parser (`bot.intents`). The openai SDK is imported only when an LLM is configured.
"""

from __future__ import annotations

from typing import Any

from bot.app import SERVICE_HOOKS
from bot.services import Services


def free_text_handler(services: Services) -> Any:
    """The handler for text that is not a /command: the Agent, or the IntentParser without an LLM."""
    if services.settings.llm_enabled:
        from bot.agent.loop import Agent

        return Agent.from_settings(services.settings)
    from bot.intents import IntentParser

    return IntentParser()


async def install_free_text(services: Services) -> None:
    """Service hook: attach the free-text handler unless one is already set."""
    services.extras.setdefault("free_text", free_text_handler(services))


if install_free_text not in SERVICE_HOOKS:
    SERVICE_HOOKS.append(install_free_text)
