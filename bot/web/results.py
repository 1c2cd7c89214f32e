"""What an HTTP API request answers: the command's structured result, or an RFC 9457 problem.

Built where the request ran (the worker) from its `Reply`, so only JSON travels back to the front:
never the rendered text, never the chart's bytes. The success body carries the same structured
result the coach's tools read (`Reply.data_json()`), whole rather than trimmed for a prompt.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.reply import ErrorKind, Reply
from core.clock import utc_now
from storage import api_answers

PROBLEM_JSON = "application/problem+json"

#: Who must act on an error reply, as an HTTP status: the caller's request (422), the data provider (502),
#: the operator (503), a bug (500).
STATUS_OF: dict[ErrorKind, int] = {"user": 422, "provider": 502, "config": 503, "bug": 500}
#: Problem types by status: (type slug, title).
PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request body"),
    401: ("unauthorized", "Missing or wrong API key"),
    403: ("forbidden", "Not allowed for this key"),
    404: ("unknown-command", "No such command"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("body-too-large", "Request body too large"),
    422: ("refused", "The command refused the request"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal", "Something went wrong"),
    502: ("provider", "Data provider failed"),
    503: ("unavailable", "Service problem"),
    504: ("timeout", "The command took too long"),
}

#: Stores one answer for the front: (job key, HTTP status, JSON body).
AnswerSink = Callable[[str, int, dict[str, Any]], Awaitable[None]]


def problem(status: int, detail: str, *, request_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem document; `detail` is one line for people, never a traceback or a secret."""
    slug, title = PROBLEMS.get(status, ("error", "Error"))
    body: dict[str, Any] = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail[:500]}
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return body


def http_answer(reply: Reply, command: str, request_id: str, *, images: bool = False) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body of a command's reply; `images` adds its chart images (PNG, base64)."""
    if reply.severity == "error":
        status = STATUS_OF.get(reply.error_kind or "user", 500)
        if status == 500:  # the log has the traceback under this ref; the caller gets the ref only
            return status, problem(status, f"something went wrong (ref {request_id})", request_id=request_id)
        raw = reply.data_json()
        message = raw.get("error") if isinstance(raw, dict) and raw.get("error") else reply.body or reply.title
        return status, problem(status, " ".join(str(message).split()), request_id=request_id)
    body: dict[str, Any] = {"ok": True, "command": command, "request_id": request_id, "result": reply.data_json()}
    if reply.as_of is not None:
        body["as_of"] = reply.as_of.isoformat()
    if reply.sources:
        body["sources"] = list(reply.sources)
    if images:
        body["images"] = [
            {"filename": a.filename, "mime": a.mime, "description": a.description, "base64": base64.b64encode(a.data).decode()}
            for a in reply.attachments
        ]
    return 200, body


def answer_sink(db: async_sessionmaker[AsyncSession]) -> AnswerSink:
    """Hands answers to the front through the database every process of the service shares."""

    async def put(key: str, status: int, body: dict[str, Any]) -> None:
        async with db() as s, s.begin():
            await api_answers.put(s, key, status, body, utc_now())

    return put
