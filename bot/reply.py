"""The platform-neutral reply every command returns; each surface renders it its own way."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

Severity = Literal["info", "success", "warning", "error"]
ErrorKind = Literal["user", "provider", "config", "bug"]


class ReplyField(BaseModel):
    """A labelled value shown side by side with others (embed field, Block Kit section field)."""

    name: str
    value: str
    inline: bool = True


class Action(BaseModel):
    """A button that runs a command invocation when clicked, e.g. `/track P-1A2B`; or, with `url`, a link button."""

    label: str
    command: str = ""
    style: Literal["primary", "secondary", "success", "danger"] = "secondary"
    #: Opens this address instead of running a command (the "Open chart" link); `command` is then empty.
    url: str | None = None

    @model_serializer(mode="wrap")
    def _drop_no_url(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a command button serialises as it always has (stored outbox rows, webhook bodies): no "url": null
        out: dict[str, Any] = handler(self)
        if out.get("url") is None:
            out.pop("url", None)
        return out

    @property
    def shown(self) -> str:
        """What a text listing shows for the button: its command, or its address."""
        return self.url or self.command


class Attachment(BaseModel):
    """A file sent with the reply, usually a PNG chart."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    filename: str
    data: bytes = Field(repr=False)
    mime: str = "image/png"
    description: str = ""
    #: A short name that tells it apart from the reply's other files (a chart's interval); names files on disk.
    key: str = ""


class Reply(BaseModel):
    """What a command answers: text for people, `data` for machines (LLM tools, --json)."""

    title: str
    body: str = ""
    fields: list[ReplyField] = Field(default_factory=list)
    severity: Severity = "info"
    direction: Literal["long", "short"] | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    as_of: datetime | None = None
    #: The coach's answers: how far the answer rests on checked tool data (shown as "grounding", never "confidence").
    grounding: float | None = None
    #: The structured result (a pydantic model or JSON-able value). Never rendered text.
    data: Any = None
    #: Show only to the caller where the platform allows it (errors, private lists).
    ephemeral: bool = False
    #: For error replies: who must act (the CLI's exit code: 2 for the user's input, 1 otherwise).
    error_kind: ErrorKind | None = None
    #: How fresh the market data behind the reply is (an `analytics.freshness.Freshness`); shown first in the footer.
    freshness: Any = None

    @classmethod
    def error(cls, message: str, *, title: str = "Can't do that", kind: ErrorKind = "user") -> Reply:
        """A short error reply; `kind` says who must act (the person, a provider, the operator, or a bug)."""
        return cls(title=title, body=message, severity="error", ephemeral=True, data={"error": message}, error_kind=kind)

    def footer(self, tz: str = "America/New_York") -> str:
        """One line citing sources, as-of time (exchange time zone) and, for the coach's answers, grounding."""
        from zoneinfo import ZoneInfo

        parts: list[str] = []
        if self.freshness is not None:
            from renderers.freshness import badge_text

            parts.append(badge_text(self.freshness, tz))
        if self.sources:
            parts.append("data: " + ", ".join(self.sources))
        if self.as_of is not None:
            parts.append("as of " + self.as_of.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z"))
        if self.grounding is not None:
            parts.append(f"grounding {self.grounding:.0%} (checked against tools)")
        return " · ".join(parts)

    def data_json(self) -> Any:
        """`data` as JSON-able Python values (pydantic models dumped in JSON mode)."""
        return to_jsonable(self.data)


def to_jsonable(value: Any) -> Any:
    """Convert pydantic models, dataclasses, datetimes and numpy scalars to plain JSON values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return to_jsonable(value.to_dict())
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
