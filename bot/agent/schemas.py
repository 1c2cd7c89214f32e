"""Tool schemas for the model: lean ones per turn, the full ones on request, and the `more_tools` escape.

Every schema costs input tokens on every model call, so the coach sends a lean form derived from the
same pydantic argument model as the full one (`Command.tool_schema`):

- the description is the command's one-line summary (the result explains itself as JSON);
- a field says what it is in a few words: its own `brief` when the model declares one
  (`json_schema_extra={"brief": ...}`), else its description cut before defaults, alternatives
  and examples; an enumeration replaces prose that lists the same choices;
- defaults, titles, length and range limits are left out (the command's own validation still
  holds them and answers with one clear line when a value is off);
- fields marked `rare` are grouped under one `more` object that names them; a call may pass them
  there or at the top level, and `more_tools` with the tool's name offers its full schema.

The output is deterministic (same model, same JSON), so servers that cache prompt prefixes reuse it.
"""

from __future__ import annotations

import re
from typing import Any

from bot.registry import Command

#: The escape tool's name; it is never a command name (commands are one or two plain words).
MORE_TOOLS = "more_tools"
#: The argument a lean schema groups rarely used options under.
MORE_KEY = "more"
#: Longest field description a lean schema keeps.
MAX_FIELD_WORDS = 60
#: JSON-schema keys a lean property keeps (everything else is validation the command does itself).
_KEEP = ("type", "enum", "items", "properties", "required")

MORE_TOOLS_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": MORE_TOOLS,
        "description": "When no offered tool fits: lists the other tools, or loads the named ones with all options.",
        "parameters": {
            "type": "object",
            "properties": {"names": {"type": "array", "items": {"type": "string"}, "description": "tools to load"}},
        },
    },
}


def full_schema(cmd: Command) -> dict[str, Any]:
    """The complete schema: every option with its whole description and default."""
    return cmd.tool_schema()


def lean_schema(cmd: Command) -> dict[str, Any]:
    """The short schema of a command: brief fields, enumerations, rare options grouped under `more`."""
    params = cmd.tool_schema()["function"]["parameters"]
    props: dict[str, Any] = params.get("properties", {})
    required = [n for n in params.get("required", []) if n in props]
    out: dict[str, Any] = {}
    rare: list[str] = []
    for name, field in cmd.args.model_fields.items():
        if name not in props:
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("rare") and name not in required:
            rare.append(name)
            continue
        brief = extra.get("brief")
        out[name] = lean_property(props[name], brief if isinstance(brief, str) else None)
    if rare and MORE_KEY not in props:
        out[MORE_KEY] = {"type": "object", "description": "rarely needed: " + ", ".join(rare)}
    lean: dict[str, Any] = {"type": "object", "properties": out}
    if required:
        lean["required"] = required
    return {"type": "function", "function": {"name": cmd.tool_name, "description": cmd.summary, "parameters": lean}}


def lean_property(prop: dict[str, Any], brief: str | None = None) -> dict[str, Any]:
    """One property without nullability, defaults and limits, with a short description."""
    node = _non_null(prop)
    out: dict[str, Any] = {}
    for key in _KEEP:
        if key not in node:
            continue
        value = node[key]
        if key == "items" and isinstance(value, dict):
            value = lean_property(value)
        elif key == "properties" and isinstance(value, dict):
            value = {k: lean_property(v) for k, v in value.items() if isinstance(v, dict)}
        out[key] = value
    text = brief if brief is not None else short_description(str(prop.get("description", "")), out.get("enum"))
    if text and " " in text:  # one word ("ticker", "tags") says no more than the field's name
        out = {"description": text, **out}
    return out


def short_description(text: str, enum: list[Any] | None = None) -> str:
    """A field's description in a few words: no defaults, no examples, no prose repeating the choices."""
    text = text.strip()
    if enum:
        listed = sum(1 for v in enum if re.search(rf"\b{re.escape(str(v))}\b", text))
        if listed >= min(2, len(enum)):
            # "trading style: scalp (1m/5m), intraday ..." -> "trading style"; a bare list of the choices -> nothing
            head = text.split(":", 1)[0] if ":" in text else ""
            return head.strip() if head and len(head) <= 30 and not any(str(v) in head for v in enum) else ""
    text = re.sub(r"\s*\((?:default|defaults)\b[^)]*\)", "", text)
    text = re.split(r";|, e\.g\.|\be\.g\.|; default| default[: ]", text, maxsplit=1)[0].strip(" ,")
    if len(text) > MAX_FIELD_WORDS:
        text = text[:MAX_FIELD_WORDS].rsplit(" ", 1)[0].rstrip(" ,(")
    return text


def _non_null(prop: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, null]` (an optional field) as X: every omitted argument is None anyway."""
    branches = prop.get("anyOf")
    if isinstance(branches, list):
        real = [b for b in branches if isinstance(b, dict) and b.get("type") != "null"]
        if len(real) == 1:
            return real[0]
    return prop
