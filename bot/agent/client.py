"""The model client: `AsyncOpenAI` from OPENAI_API_KEY / OPENAI_BASE_URL / OPENAI_MODEL, Chat Completions with tools.

Chat Completions is the API OpenAI, Ollama, vLLM and llama.cpp all serve, so it is the
only one used. The SDK's own retries are off (`max_retries=0`): the agent loop retries
with its own budget and backoff, so a turn's worst-case time is known.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.config import Settings
from core.errors import ConfigError

#: Sent when only OPENAI_BASE_URL is set: the SDK requires a key, local servers ignore it.
PLACEHOLDER_KEY = "sk-local-no-key"


@dataclass
class ToolCall:
    """One function call the model asked for; `arguments` is the raw JSON string it sent."""

    id: str
    name: str
    arguments: str


@dataclass
class Completion:
    """What one model call answered: text and/or tool calls, and the tokens it cost."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: False when the server sent no usage and the counts are estimates.
    usage_reported: bool = True

    def assistant_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation before the tool results."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in self.tool_calls
            ]
        return msg


def endpoint_label(settings: Settings) -> str:
    """Where the model runs, for messages: the base URL's host (never credentials or paths)."""
    if not settings.openai_base_url:
        return "api.openai.com"
    parts = urlsplit(settings.openai_base_url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "the configured server"


def make_client(settings: Settings) -> Any:
    """An `AsyncOpenAI` for the configured server; raises ConfigError when no LLM is configured."""
    if not settings.llm_enabled:
        raise ConfigError("no LLM configured; set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (Ollama, vLLM, llama.cpp)")
    import openai

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else PLACEHOLDER_KEY
    base_url = settings.openai_base_url.strip() if settings.openai_base_url else None
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigError("OPENAI_BASE_URL must start with http:// or https://, e.g. http://localhost:11434/v1")
    return openai.AsyncOpenAI(
        api_key=key or PLACEHOLDER_KEY, base_url=base_url, max_retries=0, timeout=settings.coach_llm_timeout
    )


class ChatModel:
    """One configured model: `complete(messages, tools)` -> Completion, plain or streamed."""

    def __init__(self, client: Any, model: str, *, stream: bool = False, timeout: float = 30.0) -> None:
        self.client = client
        self.model = model
        self.stream = stream
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatModel:
        return cls(
            make_client(settings), settings.openai_model, stream=settings.coach_llm_stream, timeout=settings.coach_llm_timeout
        )

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, tool_choice: str = "auto"
    ) -> Completion:
        """One Chat Completions call, bounded by the timeout (raises TimeoutError or the SDK's errors)."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
            kwargs["tool_choice"] = tool_choice
        async with asyncio.timeout(self.timeout):
            if not self.stream:
                resp = await self.client.chat.completions.create(**kwargs)
                return _from_response(resp, messages)
            stream = await self.client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
            return await _from_stream(stream, messages)

    async def aclose(self) -> None:
        await self.client.close()


def _from_response(resp: Any, messages: list[dict[str, Any]]) -> Completion:
    if not resp.choices:
        return Completion(content=None, finish_reason="empty")
    choice = resp.choices[0]
    msg = choice.message
    calls = [
        ToolCall(id=c.id or f"call_{i}", name=c.function.name or "", arguments=c.function.arguments or "")
        for i, c in enumerate(msg.tool_calls or [])
        if getattr(c, "function", None) is not None
    ]
    out = Completion(content=msg.content, tool_calls=calls, finish_reason=choice.finish_reason)
    _usage(out, resp.usage, messages)
    return out


async def _from_stream(stream: Any, messages: list[dict[str, Any]]) -> Completion:
    """Join streamed deltas: text pieces in order, tool-call fragments by their index."""
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    finish: str | None = None
    usage = None
    async for chunk in stream:
        if getattr(chunk, "usage", None):
            usage = chunk.usage
        for choice in chunk.choices or []:
            delta = choice.delta
            if delta is not None and delta.content:
                text.append(delta.content)
            for tc in (delta.tool_calls if delta is not None else None) or []:
                slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function is not None:
                    slot["name"] += tc.function.name or ""
                    slot["arguments"] += tc.function.arguments or ""
            if choice.finish_reason:
                finish = choice.finish_reason
    out = Completion(
        content="".join(text) or None,
        tool_calls=[
            ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"]) for i, c in sorted(calls.items())
        ],
        finish_reason=finish,
    )
    _usage(out, usage, messages)
    return out


def _usage(out: Completion, usage: Any, messages: list[dict[str, Any]]) -> None:
    """Fill token counts from the server's usage, or estimate them (some local servers send none)."""
    if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
        out.prompt_tokens = int(usage.prompt_tokens or 0)
        out.completion_tokens = int(usage.completion_tokens or 0)
        return
    out.usage_reported = False
    out.prompt_tokens = (len(json.dumps(messages, default=str)) + 3) // 4
    out.completion_tokens = (len(out.content or "") + sum(len(c.arguments) + len(c.name) for c in out.tool_calls) + 3) // 4
