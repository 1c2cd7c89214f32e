"""What fits the model's context window (`COACH_LLM_CONTEXT`): estimates, and trimming memory, results and tools.

A local server (Ollama, vLLM, llama.cpp) gives a 7B model a few thousand tokens unless told
otherwise, and a call over it fails or, worse, is cut silently from the front (the system prompt
first). Before every call the agent makes the request fit, giving up in this order what costs
least to lose:

1. older conversation memory (oldest first; the current question is never cut);
2. results of earlier steps of this turn (oldest first, each replaced by a short marker);
3. offered tools the selection ranked lowest (never the ones this turn used or asked for);
4. at last, the latest results themselves.

Tokens are estimated at four characters each over the JSON the server receives, the same estimate
the client uses when a server reports no usage; `answer_reserve` keeps room for the answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

CHARS_PER_TOKEN = 4
#: The smallest share of a tool result worth sending (an error or a short answer fits).
MIN_RESULT_CHARS = 400
#: What a tool result trimmed away to fit the window reads as.
DROPPED_RESULT = (
    '{"ok":true,"truncated":"this earlier result was dropped to fit the context window; call the tool again if needed"}'
)


class Offer(Protocol):
    """The tools of a turn as the window sees them (`ToolBox`)."""

    def specs(self) -> list[dict[str, Any]]: ...

    def drop_least(self) -> bool: ...


def estimate_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """Input tokens of a call, estimated from the JSON of its messages and tools."""
    chars = len(json.dumps(messages, default=str)) + (len(json.dumps(tools)) if tools else 0)
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


@dataclass(frozen=True)
class Window:
    """The context window of the configured model, in tokens."""

    context: int

    @property
    def answer_reserve(self) -> int:
        """Tokens kept free for the model's answer (tool calls or text)."""
        return max(256, min(1024, self.context // 8))

    @property
    def input_limit(self) -> int:
        """Tokens one call's input may use."""
        return self.context - self.answer_reserve

    def fits(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> bool:
        return estimate_tokens(messages, tools) <= self.input_limit

    def result_chars(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], calls: int, cap: int) -> int:
        """Characters each of `calls` new tool results may take so the next call still fits (at most `cap`)."""
        room = (self.input_limit - estimate_tokens(messages, tools)) * CHARS_PER_TOKEN
        per_call = room // max(1, calls) - 120  # the tool message's own JSON around the content
        return max(MIN_RESULT_CHARS, min(cap, per_call))

    def fit(self, messages: list[dict[str, Any]], turn_start: int, offer: Offer) -> int:
        """Trim `messages` (in place) and the offered tools until the call fits; returns the new `turn_start`.

        `messages[0]` is the system prompt, `messages[1:turn_start]` the stored conversation and
        `messages[turn_start]` the current question, followed by this turn's calls and results.
        """
        while not self.fits(messages, offer.specs()):
            if turn_start > 1:
                # drop the oldest exchange; what is left still starts with a question
                del messages[1]
                turn_start -= 1
                while turn_start > 1 and messages[1].get("role") != "user":
                    del messages[1]
                    turn_start -= 1
                continue
            last_step = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
            if _drop_oldest_result(messages, turn_start, last_step) or offer.drop_least():
                continue
            if not _drop_oldest_result(messages, turn_start, len(messages)):
                break  # the prompt and the question alone are over the window: the server will say so
        return turn_start


def _drop_oldest_result(messages: list[dict[str, Any]], start: int, end: int) -> bool:
    """Replace the oldest tool result in `messages[start:end]` by a marker; False when there is none left."""
    for m in messages[start:end]:
        if m.get("role") == "tool" and m.get("content") != DROPPED_RESULT:
            m["content"] = DROPPED_RESULT
            return True
    return False
