"""The command registry: a command is declared once and every surface derives from it.

A declaration is a name (one word, or "group sub" such as "watch add"), a one-line
summary, a pydantic model of its arguments and an async handler returning a `Reply`.
From that:

- the request pipeline parses chat text with `Command.parse_tokens` (positional arguments in
  field order, `key=value` / `--key value` for any field, `--flag` / `--no-flag` for booleans,
  comma lists, and a greedy last field for free text);
- Discord builds slash options from `Command.arg_specs`;
- the LLM agent uses `Command.tool_schema`;
- the CLI generates `coach <name> ...` twins.

Mark a field `greedy` (json_schema_extra={"greedy": True}) to let it absorb the rest of
the words (free-text notes); mark it `hidden` to keep it off chat surfaces. For the model's
lean tool schema (`bot.agent.schemas`), `rare` groups a seldom used option under `more` and
`brief` gives the few words that say what the field is.

`@command(...)` turns a handler into a `Command` and registers nothing: the composition
root (`bot.app.command_registry`) lists the command modules and collects their commands,
so what a service serves is written in one place, not decided by who imported what.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from bot.reply import Reply
from core.errors import UserError

Handler = Callable[[Any, Any], Awaitable[Reply]]

MAX_TEXT = 4000

#: `json_schema_extra` keys that steer the surfaces: `greedy` (takes the rest of the words), `hidden` (CLI only),
#: `no_tool` (not for the model), `rare` (grouped in the model's lean schema), `brief` (the lean schema's words).
SURFACE_MARKERS = ("greedy", "hidden", "no_tool", "rare", "brief")

#: The option types a chat surface can declare for an argument.
ArgKind = Literal["string", "integer", "number", "boolean", "list"]


@dataclass(frozen=True)
class ArgSpec:
    """One argument, described for surfaces that need explicit option types (Discord)."""

    name: str
    kind: ArgKind
    required: bool
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    greedy: bool = False
    #: For "list": the element kind.
    item_kind: str = "string"


@dataclass(frozen=True)
class Command:
    """A declared command."""

    name: str
    summary: str
    args: type[BaseModel]
    handler: Handler
    #: Exposed to the LLM agent as a tool.
    tool: bool = True
    #: Only workspace/server admins may run it.
    admin: bool = False
    examples: tuple[str, ...] = ()
    #: Extra guidance for the LLM tool description (what the result holds, when to use it).
    tool_hint: str = ""
    #: Long, CPU-heavy work (a wide scan, a backtest): it runs in its own lane, with a larger CPU budget,
    #: so it cannot hold up everyone's quick commands.
    heavy: bool = False
    #: It changes something (stores, removes, sends, places, spends): over the HTTP API it needs a key with the
    #: `act` scope. A callable decides from the arguments, for commands that show unless given something to set.
    acts: bool | Callable[[Any], bool] = False
    #: The model of `Reply.data` on success, as "module:Name" (imported only when a schema is wanted, so declaring
    #: a command loads none of the analytics); None: a JSON object described by `tool_hint`.
    result: str | None = None

    def __post_init__(self) -> None:
        # a number that is not finite is refused by every command's model, whichever surface sent it
        if self.args.model_config.get("allow_inf_nan", True) is not False:
            raise TypeError(
                f"/{self.name}: its argument model {self.args.__name__} accepts NaN and infinity; derive it from bot.args.ArgsModel"
            )

    def acts_on(self, args: Any) -> bool:
        """True when running it with these arguments changes something (the HTTP API's `act` scope)."""
        return self.acts(args) if callable(self.acts) else self.acts

    async def __call__(self, ctx: Any, args: Any) -> Reply:
        """Run the handler directly (no pipeline: no rate limit, no admin check, errors raise)."""
        return await self.handler(ctx, args)

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split())

    @property
    def group(self) -> str | None:
        return self.path[0] if len(self.path) > 1 else None

    @property
    def tool_name(self) -> str:
        return "_".join(self.path)

    def arg_specs(self, *, include_hidden: bool = False) -> list[ArgSpec]:
        """The arguments in declaration order, with types simplified for chat surfaces (and, on request, the CLI-only ones)."""
        specs = []
        for name, f in self.args.model_fields.items():
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            if extra.get("hidden") and not include_hidden:
                continue
            kind, choices, item_kind = _kind(f.annotation)
            specs.append(
                ArgSpec(
                    name=name,
                    kind=kind,
                    required=f.is_required(),
                    default=None if f.is_required() else f.get_default(call_default_factory=True),
                    description=(f.description or name)[:100],
                    choices=choices,
                    greedy=bool(extra.get("greedy")),
                    item_kind=item_kind,
                )
            )
        return specs

    def usage(self) -> str:
        """`/plan SYMBOL [style]` style usage line."""
        parts = [f"/{self.name}"]
        for s in self.arg_specs():
            label = s.name.upper() if s.required else s.name
            if s.choices:
                label = "|".join(s.choices) if len(s.choices) <= 5 else label
            if s.kind == "list" or s.greedy:
                label += "..."
            if s.kind == "boolean":
                label = f"--{s.name.replace('_', '-')}"
            parts.append(label if s.required else f"[{label}]")
        return " ".join(parts)

    def parse_tokens(self, tokens: list[str]) -> BaseModel:
        """The argument model from chat words, or UserError saying what was wrong and what is accepted."""
        return self.validate(self.token_values(tokens))

    def token_values(self, tokens: list[str]) -> dict[str, Any]:
        """Map words onto fields (keywords first, then positionals in field order), not yet validated."""
        specs = {s.name: s for s in self.arg_specs()}
        values: dict[str, Any] = {}
        positional: list[str] = []
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            key, val = None, None
            if tok.startswith("--") and len(tok) > 2:
                body = tok[2:]
                if "=" in body:
                    key, val = body.split("=", 1)
                else:
                    key = body
            elif "=" in tok and not tok.startswith("=") and tok.split("=", 1)[0].replace("_", "").replace("-", "").isalpha():
                key, val = tok.split("=", 1)
            if key is None:
                positional.append(tok)
                i += 1
                continue
            name = key.replace("-", "_").lower()
            if name.startswith("no_") and name[3:] in specs and specs[name[3:]].kind == "boolean" and val is None:
                values[name[3:]] = False
                i += 1
                continue
            if name not in specs:
                raise UserError(f"unknown option --{key} for /{self.name}; usage: {self.usage()}")
            spec = specs[name]
            if val is None:
                if spec.kind == "boolean":
                    values[name] = True
                    i += 1
                    continue
                if i + 1 >= len(tokens):
                    raise UserError(f"--{key} needs a value; usage: {self.usage()}")
                val = tokens[i + 1]
                i += 1
            values[name] = _split_list(val) if spec.kind == "list" else val
            i += 1
        free = [s for s in specs.values() if s.name not in values and s.kind != "boolean"]
        for n, spec in enumerate(free):
            if not positional:
                break
            last = n == len(free) - 1
            if spec.kind == "list":
                # a list takes words until one is a choice of a later field ("AAPL MSFT swing")
                later = {c.lower() for f in free[n + 1 :] for c in f.choices}
                k = (
                    len(positional)
                    if last
                    else next((j for j, t in enumerate(positional) if t.lower() in later), len(positional))
                )
                items: list[str] = []
                for t in positional[:k]:
                    items.extend(_split_list(t))
                values[spec.name] = items
                positional = positional[k:]
            elif spec.greedy:
                values[spec.name] = " ".join(positional)
                positional = []
            else:
                values[spec.name] = positional.pop(0)
        if positional:
            shown = " ".join(positional)[:60]
            raise UserError(f"unexpected {shown!r} for /{self.name}; usage: {self.usage()}")
        return values

    def validate(self, values: dict[str, Any]) -> BaseModel:
        """Build the argument model from a dict (tool-call JSON, Discord options), as a UserError on failure."""
        try:
            return self.args.model_validate(values)
        except ValidationError as exc:
            raise UserError(f"{_first_error(exc)}; usage: {self.usage()}") from None

    def tool_schema(self) -> dict[str, Any]:
        """An OpenAI Chat Completions tool definition derived from the argument model."""
        params = _clean_schema(self.args.model_json_schema())
        params.setdefault("properties", {})
        params.setdefault("type", "object")
        for name, f in self.args.model_fields.items():
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            if extra.get("hidden") or extra.get("no_tool"):
                params["properties"].pop(name, None)
                if name in params.get("required", []):
                    params["required"].remove(name)
            elif name in params["properties"]:
                # markers for the surfaces (greedy, rare, brief) are not part of the JSON schema a model reads
                for marker in SURFACE_MARKERS:
                    params["properties"][name].pop(marker, None)
        desc = self.summary + (f" {self.tool_hint}" if self.tool_hint else "")
        return {"type": "function", "function": {"name": self.tool_name, "description": desc, "parameters": params}}


def _split_list(val: str) -> list[str]:
    return [v for v in (p.strip() for p in val.split(",")) if v]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int))
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err.get("type") == "missing":
        return f"missing {loc}"
    if err.get("type") == "finite_number":
        return f"{loc or 'value'} must be a finite number, not {_shown(err.get('input'))}"
    msg = msg[0].lower() + msg[1:] if msg else msg
    return f"{loc}: {msg}" if loc else msg


def _shown(value: object) -> str:
    """A refused input, short, as the person wrote it (`nan`, `inf`, `-inf`)."""
    text = str(value).strip()
    return repr(text[:20]) if len(text) > 20 else text


def _kind(annotation: Any) -> tuple[ArgKind, tuple[str, ...], str]:
    """Simplify a field annotation to (kind, choices, item kind)."""
    ann = _strip_optional(annotation)
    origin = get_origin(ann)
    if origin is typing.Annotated:
        return _kind(get_args(ann)[0])
    if origin is Literal:
        return "string", tuple(str(a) for a in get_args(ann)), "string"
    if origin in (list, tuple, set):
        inner = get_args(ann)[0] if get_args(ann) else str
        k, _, _ = _kind(inner)
        return "list", (), k
    if ann is bool:
        return "boolean", (), "string"
    if ann is int:
        return "integer", (), "string"
    if ann is float:
        return "number", (), "string"
    return "string", (), "string"


def _strip_optional(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _clean_schema(schema: Any) -> Any:
    """Drop pydantic's titles and inline $defs so small local models read the schema easily."""
    defs = schema.get("$defs", {}) if isinstance(schema, dict) else {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node and node["$ref"].startswith("#/$defs/"):
                return walk(defs[node["$ref"].split("/")[-1]])
            return {k: walk(v) for k, v in node.items() if k not in ("title", "$defs")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def command(
    name: str,
    summary: str,
    args: type[BaseModel],
    *,
    tool: bool = True,
    admin: bool = False,
    examples: tuple[str, ...] = (),
    tool_hint: str = "",
    heavy: bool = False,
    acts: bool | Callable[[Any], bool] = False,
    result: str | None = None,
) -> Callable[[Handler], Command]:
    """Decorator declaring a command: the handler becomes a `Command` (still awaitable as `cmd(ctx, args)`)."""

    def deco(fn: Handler) -> Command:
        return Command(name, summary, args, fn, tool, admin, examples, tool_hint, heavy, acts, result)

    return deco


@dataclass
class Registry:
    """All declared commands by name."""

    commands: dict[str, Command] = field(default_factory=dict)

    @classmethod
    def collect(cls, *modules: types.ModuleType) -> Registry:
        """The commands declared in `modules` (module attributes that are `Command`s)."""
        reg = cls()
        for mod in modules:
            for value in vars(mod).values():
                if isinstance(value, Command):
                    reg.add(value)
        return reg

    def add(self, cmd: Command) -> Command:
        if cmd.name in self.commands and self.commands[cmd.name] is not cmd:
            raise ValueError(f"command {cmd.name!r} declared twice")
        self.commands[cmd.name] = cmd
        return cmd

    def command(self, name: str, summary: str, args: type[BaseModel], **options: Any) -> Callable[[Handler], Command]:
        """Decorator declaring a command straight into this registry (tests and extensions); options as `command`."""

        def deco(fn: Handler) -> Command:
            return self.add(command(name, summary, args, **options)(fn))

        return deco

    def all(self) -> list[Command]:
        """Every command, sorted by name."""
        return sorted(self.commands.values(), key=lambda c: c.name)

    def groups(self) -> dict[str, list[Command]]:
        """Sub-commands by group name (`watch` -> [watch add, watch list, ...])."""
        out: dict[str, list[Command]] = {}
        for c in self.all():
            if c.group:
                out.setdefault(c.group, []).append(c)
        return out

    def resolve(self, words: list[str]) -> tuple[Command, list[str]]:
        """Find the command named by the first one or two words; return it and the remaining words."""
        if not words:
            raise UserError("empty command; try /help")
        head = words[0].lstrip("/").lower()
        if len(words) > 1 and f"{head} {words[1].lower()}" in self.commands:
            return self.commands[f"{head} {words[1].lower()}"], words[2:]
        if head in self.commands:
            return self.commands[head], words[1:]
        subs = [c.path[1] for c in self.all() if c.group == head]
        if subs:
            given = words[1] if len(words) > 1 else ""
            what = f"unknown /{head} action {given[:20]!r}" if given else f"/{head} needs an action"
            raise UserError(f"{what}; accepted: {', '.join(subs)}")
        shown = head if len(head) <= 24 else head[:24] + "…"
        raise UserError(f"unknown command /{shown}; try /help")
