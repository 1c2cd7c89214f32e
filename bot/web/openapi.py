"""The OpenAPI 3.1 document of the HTTP API, generated from the command registry.

Every command is one operation, `POST /api/v1/<name with / for spaces>`, whose operationId is the
command's tool name (`alert_add`), whose request body is the command's argument model (as chat
surfaces see it: CLI-only fields left out) and whose 200 answer carries the command's declared
result model (`Command.result`), or a JSON value described by its tool hint. Errors are RFC 9457
problems. The document is usable as-is as a GPT's Actions schema: absolute server URL, bearer
security, a description per operation.

The result models live with the analytics; they are imported here only, so building the document
loads the numeric stack. A light front (one that hands every request to workers) builds it in a
child process instead (`bot.web.openapi_dump`).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from bot.registry import SURFACE_MARKERS, Command, Registry

API_PREFIX = "/api/v1"
#: The longest operation description a GPT's Actions editor accepts.
MAX_DESCRIPTION = 300
#: Error statuses every operation may answer, with what they mean here.
ERRORS = {
    "400": "The body is not a JSON object of the command's arguments (the detail says what was wrong and what is accepted).",
    "401": "No API key, or a wrong or revoked one.",
    "403": "The key may not run this (it changes something and the key has the read scope, or it is admin-only).",
    "404": "No such command.",
    "413": "The body is larger than the service accepts.",
    "422": "The command refused the request (unknown symbol, nothing to change, an id that is not yours...).",
    "429": "Too many requests from this person or workspace; wait Retry-After seconds.",
    "500": "A bug; the detail carries only the request id to quote.",
    "502": "A data provider failed.",
    "503": "The service is misconfigured or busy.",
    "504": "The command did not finish in its time limit.",
}


def command_path(cmd: Command) -> str:
    """`/api/v1/alert/add` for the command "alert add"."""
    return f"{API_PREFIX}/{'/'.join(cmd.path)}"


def resolve_result(ref: str) -> type[BaseModel]:
    """The model a "module:Name" reference names."""
    module, _, name = ref.partition(":")
    model = getattr(importlib.import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{ref} is not a pydantic model")
    return model


def api_fields(cmd: Command) -> list[str]:
    """The argument names the HTTP API accepts for `cmd`: every field but the CLI-only (`hidden`) ones."""
    return [s.name for s in cmd.arg_specs()]


def build_document(registry: Registry, *, server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every command of `registry`, served from `server_url`."""
    commands = registry.all()
    results = {c.name: resolve_result(c.result) for c in commands if c.result}
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(c.args, "validation") for c in commands]
    wanted += [(m, "serialization") for m in dict.fromkeys(results.values())]
    refs, defs = models_json_schema(wanted, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = _strip_markers(defs.get("$defs", {}), names=True)
    for cmd in commands:
        _drop_hidden(cmd, schemas, refs[(cmd.args, "validation")])
    schemas["Problem"] = PROBLEM_SCHEMA
    paths: dict[str, Any] = {}
    for cmd in commands:
        result = refs[(results[cmd.name], "serialization")] if cmd.name in results else None
        paths[command_path(cmd)] = {"post": _operation(cmd, refs[(cmd.args, "validation")], result)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trading-coach API",
            "version": _version(),
            "description": (
                "The trading coach's commands over HTTP: plans, scans, option contracts, volatility, alerts, journal, "
                "orders. Each answer is the command's structured result. Authenticate with an API key "
                "(`Authorization: Bearer coach_...`); commands that change something need a key with the act scope."
            ),
        },
        "servers": [{"url": server_url.rstrip("/") or "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from `coach apikey create` (coach_<prefix>_<secret>).",
                }
            },
            "responses": {
                code: {"description": text, "content": {"application/problem+json": {"schema": _ref("Problem")}}}
                for code, text in ERRORS.items()
            },
        },
    }


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem: what went wrong, in one line.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "a URI reference naming the kind of problem"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what was wrong and what is accepted"},
        "request_id": {"type": "string", "description": "the reference to quote to the operator"},
        "retry_after": {"type": "integer", "description": "seconds to wait (429)"},
    },
}


#: Every operation takes it: the chart images a reply carries (a plan's, a chart's, a backtest's) come back as base64 PNG.
IMAGES_PARAMETER: dict[str, Any] = {
    "name": "images",
    "in": "query",
    "required": False,
    "description": "true: add the reply's chart images (PNG, base64) as `images`",
    "schema": {"type": "boolean", "default": False},
}


def _operation(cmd: Command, args_ref: dict[str, Any], result_ref: dict[str, Any] | None) -> dict[str, Any]:
    scope = "act" if cmd.acts is True else "read" if cmd.acts is False else "act when it sets something"
    notes = [cmd.summary]
    if cmd.tool_hint and result_ref is None:
        notes.append(cmd.tool_hint)
    if cmd.acts:
        notes.append("Needs a key with the act scope" + ("." if cmd.acts is True else " when it sets something."))
    if cmd.admin:
        notes.append("Admin keys only.")
    description = " ".join(notes)
    if len(description) > MAX_DESCRIPTION:
        description = description[: MAX_DESCRIPTION - 1].rstrip() + "…"
    result = result_ref if result_ref is not None else {"description": cmd.tool_hint or "the command's structured result"}
    required = any(cmd.args.model_fields[n].is_required() for n in api_fields(cmd))
    answer = {
        "type": "object",
        "required": ["ok", "command", "request_id", "result"],
        "properties": {
            "ok": {"type": "boolean", "const": True},
            "command": {"type": "string", "const": cmd.name},
            "request_id": {"type": "string"},
            "result": result,
            "as_of": {"type": "string", "format": "date-time"},
            "sources": {"type": "array", "items": {"type": "string"}},
            "images": {
                "type": "array",
                "description": "the reply's chart images, with ?images=true",
                "items": {
                    "type": "object",
                    "required": ["filename", "mime", "base64"],
                    "properties": {
                        "filename": {"type": "string"},
                        "mime": {"type": "string"},
                        "description": {"type": "string"},
                        "base64": {"type": "string", "contentEncoding": "base64"},
                    },
                },
            },
        },
    }
    return {
        "operationId": cmd.tool_name,
        "summary": cmd.summary if len(cmd.summary) <= 120 else cmd.summary[:119].rstrip() + "…",
        "description": description,
        "x-coach-scope": scope,
        "parameters": [IMAGES_PARAMETER],
        "requestBody": {"required": required, "content": {"application/json": {"schema": args_ref}}},
        "responses": {
            "200": {"description": "the command's structured result", "content": {"application/json": {"schema": answer}}},
            **{code: {"$ref": f"#/components/responses/{code}"} for code in ERRORS},
        },
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _drop_hidden(cmd: Command, schemas: dict[str, Any], ref: dict[str, Any]) -> None:
    """Leave the CLI-only fields out of the argument model's schema (the API refuses them as unknown)."""
    name = str(ref["$ref"]).rsplit("/", 1)[-1]
    schema = schemas[name]
    keep = set(api_fields(cmd))
    props = schema.get("properties", {})
    for field in [f for f in props if f not in keep]:
        props.pop(field)
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r in keep]
        if not schema["required"]:
            schema.pop("required")
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    schema["additionalProperties"] = False


def _strip_markers(node: Any, *, names: bool = False) -> Any:
    """Drop the registry's surface markers (greedy, hidden, rare...): they are not JSON Schema keywords.

    `names`: `node` maps names to schemas (`properties`, `$defs`), whose keys are field or model names, kept as they are.
    """
    if isinstance(node, dict):
        return {
            k: _strip_markers(v, names=not names and k in ("properties", "$defs", "patternProperties"))
            for k, v in node.items()
            if names or k not in SURFACE_MARKERS
        }
    if isinstance(node, list):
        return [_strip_markers(v) for v in node]
    return node


def _version() -> str:
    try:
        return version("trading-coach")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "0.0.0"
