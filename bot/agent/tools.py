"""Registry commands as LLM tools: schemas from the argument models, execution through dispatch.

A tool is a command declared with `tool=True`; its JSON schema is `Command.tool_schema()`,
so no schema is written twice. A tool call goes through the request pipeline like any other
request (admin check, validation with the command's own model, handler, error mapping) as part
of the caller's request: the same identity and request id (the identity comes from the
platform, never from the arguments), without taking another rate-limit token. The model gets
the structured result (`Reply.data_json()`) as compact JSON, never the rendered text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from bot.agent.schemas import MORE_KEY, MORE_TOOLS, MORE_TOOLS_SCHEMA, full_schema, lean_schema
from bot.pipeline import Admitted, Invocation
from bot.registry import Command
from bot.reply import Attachment, Reply
from bot.request import Ctx, ModelTurn
from core.errors import UserError

#: Items a list keeps in a tool result (time series keep the most recent ones).
MAX_ITEMS = 20
#: Characters of one tool result sent back to the model (a plan is about 2,000); less when the window is small.
MAX_RESULT_CHARS = 3_000
#: Argument names that would name someone else; tools act only for the caller.
IDENTITY_KEYS = frozenset(
    {
        "user",
        "user_id",
        "userid",
        "owner",
        "owner_id",
        "tenant",
        "tenant_id",
        "guild",
        "guild_id",
        "workspace",
        "workspace_id",
        "team_id",
        "member",
        "member_id",
        "account",
        "account_id",
        "as_user",
    }
)
#: Keys whose numbers are prices: rounded to the instrument's tick.
PRICE_KEYS = frozenset(
    {
        "price",
        "last",
        "bid",
        "ask",
        "mid",
        "open",
        "high",
        "low",
        "close",
        "o",
        "h",
        "l",
        "c",
        "prev_close",
        "entry",
        "stop",
        "target",
        "strike",
        "underlying_price",
        "vwap",
        "level",
        "threshold",
        "trigger",
        "entry_low",
        "entry_high",
        "exit",
        "fill",
        "spot",
        "pivot",
        "support",
        "resistance",
        "avg_price",
    }
)
#: Keys of the stamp of an item in a time series.
TIME_KEYS = ("t", "time", "ts", "timestamp", "date")


def tool_commands(ctx: Ctx) -> list[Command]:
    """Commands the coach may call for this caller: `tool=True`, and admin-only ones only for admins."""
    admin = ctx.identity.is_admin
    return [c for c in ctx.services.registry.all() if c.tool and (admin or not c.admin)]


@dataclass
class ToolResult:
    """One executed tool call: what the model receives, and what the server keeps for grounding."""

    call_id: str
    name: str
    ok: bool
    #: The JSON text sent back as the `role: tool` message.
    content: str
    reply: Reply | None = None
    #: Every number in the result (raw and as sent), for price verification.
    numbers: list[float] = field(default_factory=list)
    invocation: str = ""
    #: The agent's own bookkeeping (`more_tools`), not a lookup: no data, nothing to cite.
    internal: bool = False

    def message(self) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": self.call_id, "content": self.content}

    @property
    def images(self) -> list[Attachment]:
        return [a for a in (self.reply.attachments if self.reply else []) if a.mime.startswith("image/")]


class ToolBox:
    """The tools of one caller's turn: which are offered to the model, and running calls in parallel through dispatch.

    Every tool the caller may run (`tool_commands`) can run, offered or not: a model that names a
    tool it was not shown gets it under the same checks, never a crash and never more than the
    caller may do. What is offered only decides which schemas a call carries.
    """

    def __init__(self, ctx: Ctx, offered: list[str] | None = None, *, lean: bool = True) -> None:
        """`offered`: tool names, most needed first (None: every tool). `lean=False` sends the full schemas."""
        # the calls run as the caller, marked as the model's: removals they ask for are held to `bot.removals`' rules
        self.ctx = dataclasses.replace(ctx, model_turn=ModelTurn())
        self.commands = {c.tool_name: c for c in tool_commands(ctx)}
        self.lean = lean
        names = list(self.commands) if offered is None else [n for n in dict.fromkeys(offered) if n in self.commands]
        #: Offered names, most needed first (what the window drops last).
        self.ranked: list[str] = names
        #: Names this turn used or asked for: never dropped to fit the window.
        self.pinned: set[str] = set()
        #: Names shown with every option (asked for through `more_tools`).
        self.full: set[str] = set()
        #: Characters a result may take (the window lowers it for small contexts).
        self.result_chars = MAX_RESULT_CHARS

    @property
    def offered(self) -> list[str]:
        return sorted(self.ranked)

    def offer(self, names: list[str], *, full: bool = False, pin: bool = True) -> list[str]:
        """Add tools to the next calls; returns the names that exist for this caller.

        Pinned tools (used or asked for by name) rank first and are never dropped to fit the window;
        the others rank last, the first to go.
        """
        known = [n for n in dict.fromkeys(names) if n in self.commands]
        if pin:
            self.ranked = known + [n for n in self.ranked if n not in known]
            self.pinned.update(known)
        else:
            self.ranked += [n for n in known if n not in self.ranked]
        if full:
            self.full.update(known)
        return known

    def specs(self) -> list[dict[str, Any]]:
        """The schemas of the offered tools, sorted by name (a stable prefix for servers that cache it)."""
        out = [self._schema(n) for n in self.offered]
        if self.lean and len(self.ranked) < len(self.commands):
            out.append(MORE_TOOLS_SCHEMA)
            out.sort(key=lambda t: str(t["function"]["name"]))
        return out

    def _schema(self, name: str) -> dict[str, Any]:
        cmd = self.commands[name]
        return lean_schema(cmd) if self.lean and name not in self.full else full_schema(cmd)

    def drop_least(self) -> bool:
        """Stop offering the lowest-ranked tool that is not pinned; False when none is left to drop."""
        for name in reversed(self.ranked):
            if name not in self.pinned:
                self.ranked.remove(name)
                return True
        return False

    async def run_all(self, calls: list[Any]) -> list[ToolResult]:
        """Run the calls concurrently; results come back in the calls' order, one per call."""
        return list(await asyncio.gather(*(self.run(c.id, c.name, c.arguments) for c in calls)))

    async def run(self, call_id: str, name: str, arguments: str | dict[str, Any] | None) -> ToolResult:
        """Run one call. Never raises: bad names, bad JSON and failures become error results for the model."""
        if name == MORE_TOOLS:
            return self._more_tools(call_id, arguments)
        cmd = self.commands.get(name)
        if cmd is None:
            known = ", ".join(sorted(self.commands)) or "none"
            shown = (name or "")[:40]
            return error_result(call_id, name, f"unknown tool {shown!r}; available tools: {known}")
        self.offer([name])  # named by the model: it stays on offer for the rest of the turn
        try:
            args = _ungroup(parse_arguments(arguments), cmd)
        except UserError as exc:
            return error_result(call_id, name, exc.message)
        # a command may own a field such as `account` (account size); only foreign identity keys go
        ignored = sorted(k for k in args if k.lower() in IDENTITY_KEYS and k not in cmd.args.model_fields)
        for k in ignored:
            args.pop(k)
        pipeline = self.ctx.services.pipeline
        admitted = await pipeline.admit(self.ctx, Invocation.call(cmd.name, args), limit=False)
        if not isinstance(admitted, Admitted):
            message = admitted.data.get("error") if isinstance(admitted.data, dict) else admitted.body
            return error_result(call_id, name, str(message or admitted.body), ignored)
        reply = await pipeline.execute(admitted)
        return result_from_reply(
            call_id, cmd, reply, ignored=ignored, invocation=_invocation(cmd, admitted.args), max_chars=self.result_chars
        )

    def _more_tools(self, call_id: str, arguments: str | dict[str, Any] | None) -> ToolResult:
        """The escape: the other tools' names and summaries (all offered next), or the named ones with all options."""
        try:
            args = parse_arguments(arguments)
        except UserError as exc:
            return error_result(call_id, MORE_TOOLS, exc.message)
        raw = args.get("names") or []
        wanted = [str(n).strip() for n in (raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else [])]
        wanted = [n.replace(" ", "_").lstrip("/") for n in wanted if n][:40]
        payload: dict[str, Any]
        if wanted:
            loaded = self.offer(wanted, full=True)
            payload = {"loaded": loaded, "note": "offered with all their options on your next call"}
            unknown = [n[:40] for n in wanted if n not in loaded]
            if unknown:
                payload["unknown"] = unknown
                payload["available"] = sorted(self.commands)
        else:
            others = {n: self.commands[n].summary for n in sorted(self.commands) if n not in self.ranked}
            self.offer(list(others), pin=False)  # a small window may drop some again; naming one pins it
            payload = {"tools": others, "note": "offered on your next call; any of them may also be called by name"}
        content = json.dumps({"ok": True, "result": payload}, separators=(",", ":"))
        return ToolResult(call_id, MORE_TOOLS, True, content, internal=True)


def _ungroup(args: dict[str, Any], cmd: Command) -> dict[str, Any]:
    """Lift the options a lean schema grouped under `more` to the top level (top-level values win)."""
    if MORE_KEY in cmd.args.model_fields or MORE_KEY not in args:
        return args
    grouped = args.pop(MORE_KEY)
    if isinstance(grouped, str):
        grouped = parse_arguments(grouped)
    if not isinstance(grouped, dict):
        raise UserError(f"`{MORE_KEY}` must be an object of option names and values")
    return {**grouped, **args}


def parse_arguments(arguments: str | dict[str, Any] | None) -> dict[str, Any]:
    """The model's argument string as a dict, or UserError saying what was wrong."""
    if isinstance(arguments, dict):
        return dict(arguments)
    text = (arguments or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise UserError("the arguments were not valid JSON; send one JSON object matching the tool's parameters") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError("the arguments must be a JSON object matching the tool's parameters")
    return value


def result_from_reply(
    call_id: str,
    cmd: Command,
    reply: Reply,
    *,
    ignored: list[str] | tuple[str, ...] = (),
    invocation: str = "",
    max_chars: int = MAX_RESULT_CHARS,
) -> ToolResult:
    """Turn a command's Reply into the compact JSON the model reads, keeping the Reply for the server."""
    raw = reply.data_json()
    if reply.severity == "error":
        message = raw.get("error") if isinstance(raw, dict) and raw.get("error") else reply.body or reply.title
        res = error_result(call_id, cmd.tool_name, str(message), ignored)
        res.reply, res.invocation = reply, invocation
        return res
    tick = _find_tick(raw)
    payload: dict[str, Any] = {"ok": True, "result": compact(raw, tick)}
    if reply.as_of is not None:
        payload["as_of"] = reply.as_of.isoformat()
    if reply.sources:
        payload["sources"] = reply.sources
    images = [a.filename for a in reply.attachments if a.mime.startswith("image/")]
    if images:
        payload["images"] = {"files": images, "note": "attached to your final reply by the server"}
    if ignored:
        payload["ignored_arguments"] = _ignored_note(ignored)
    content = fit_result(payload, max_chars)
    numbers = list(_numbers(raw)) + list(_numbers(payload["result"]))
    return ToolResult(call_id, cmd.tool_name, True, content, reply=reply, numbers=numbers, invocation=invocation)


def compact(value: Any, tick: float = 0.01, *, max_items: int = MAX_ITEMS, key: str | None = None) -> Any:
    """JSON trimmed for a prompt: prices rounded to the tick, other numbers to cents or 4 significant digits, long lists cut."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        given = value.get("tick")
        local_tick = given if isinstance(given, (int, float)) and given > 0 else tick
        for k, v in value.items():
            if isinstance(v, list) and len(v) > max_items:
                out[k] = [compact(x, local_tick, max_items=max_items) for x in _trim_list(v, max_items)]
                out[f"{k}_omitted"] = len(v) - max_items
            else:
                out[k] = compact(v, local_tick, max_items=max_items, key=k)
        return out
    if isinstance(value, list):
        items = _trim_list(value, max_items) if len(value) > max_items else value
        return [compact(x, tick, max_items=max_items, key=key) for x in items]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if key is not None and key.lower() in PRICE_KEYS:
            return _round_tick(value, tick)
        if value.is_integer() and abs(value) < 1e15:
            return int(value)
        # cents for anything priced like a level or a ratio; four significant digits for small quantities (IV, greeks)
        return round(value, 2) if abs(value) >= 1 else float(f"{value:.4g}")
    return value


def _trim_list(items: list[Any], n: int) -> list[Any]:
    """The last n items of a time series (the most recent), else the first n (ranked lists lead with the best)."""
    first = items[0] if items else None
    if isinstance(first, dict) and any(k in first for k in TIME_KEYS):
        return items[-n:]
    return items[:n]


def _round_tick(value: float, tick: float) -> float:
    decimals = max(0, -int(math.floor(math.log10(tick)))) if 0 < tick < 1 else 0
    return round(round(value / tick) * tick, decimals)


def _find_tick(raw: Any) -> float:
    if isinstance(raw, dict):
        t = raw.get("tick")
        if isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0:
            return float(t)
    return 0.01


def fit_result(payload: dict[str, Any], max_chars: int = MAX_RESULT_CHARS) -> str:
    """Serialise compactly within `max_chars`: shorter lists first, then the largest parts go, and a marker says so.

    The marker (`truncated`) names what was cut, so the model says the answer is partial or asks
    for something narrower instead of reading a cut list as the whole.
    """
    text = json.dumps(payload, separators=(",", ":"), default=str)
    if len(text) <= max_chars:
        return text
    full = len(text)
    items = MAX_ITEMS
    while len(text) > max_chars and items > 1:
        items //= 2
        payload = {**payload, "result": compact(payload["result"], max_items=items)}
        text = _with_marker(payload, full, max_chars, [])
    dropped: list[str] = []
    result = payload["result"]
    while len(text) > max_chars and isinstance(result, dict) and result:
        # the largest part goes first: one big series costs more than many small facts
        key = max(result, key=lambda k: len(json.dumps(result[k], default=str)))
        result = {k: v for k, v in result.items() if k != key}
        dropped.append(key)
        payload = {**payload, "result": result}
        text = _with_marker(payload, full, max_chars, dropped)
    if len(text) > max_chars:
        slim = {k: v for k, v in payload.items() if k != "result"}
        slim["truncated"] = {"note": f"the result ({full:,} characters) was too large to show; ask for something narrower"}
        text = json.dumps(slim, separators=(",", ":"), default=str)
    return text


def _with_marker(payload: dict[str, Any], full: int, limit: int, dropped: list[str]) -> str:
    marker: dict[str, Any] = {"note": f"cut from {full:,} to about {limit:,} characters; lists keep their first or latest items"}
    if dropped:
        marker["dropped"] = list(dropped)
    return json.dumps({**payload, "truncated": marker}, separators=(",", ":"), default=str)


def _numbers(value: Any) -> list[float]:
    out: list[float] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out


def error_result(call_id: str, name: str, message: str, ignored: list[str] | tuple[str, ...] = ()) -> ToolResult:
    """A failed call as the model reads it: `{"ok": false, "error": ...}`."""
    payload: dict[str, Any] = {"ok": False, "error": message[:500]}
    if ignored:
        payload["ignored_arguments"] = _ignored_note(ignored)
    return ToolResult(call_id, name, False, json.dumps(payload, separators=(",", ":")))


def _ignored_note(names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    return {"names": list(names), "why": "tools always act for the person asking; another user's data cannot be read or changed"}


def _invocation(cmd: Command, parsed: Any) -> str:
    """A readable `/name key=value` line for logs and the reply's data (what actually ran)."""
    parts = [f"/{cmd.name}"]
    for k, v in parsed.model_dump(mode="json", exclude_defaults=True).items():
        if v in (None, [], ""):
            continue
        if isinstance(v, list):
            v = ",".join(str(x) for x in v)
        parts.append(f"{k}={v}")
    return " ".join(parts)
