"""/help: the commands and their usage."""

from __future__ import annotations

from pydantic import Field

from bot.args import ArgsModel
from bot.registry import command
from bot.reply import Reply
from bot.request import Ctx
from core.errors import UserError


class HelpArgs(ArgsModel):
    command: str | None = Field(None, description="a command name for its details, e.g. plan or watch")


@command("help", "List the commands, or explain one.", HelpArgs, tool=False, examples=("/help", "/help watch"))
async def help_cmd(ctx: Ctx, a: HelpArgs) -> Reply:
    if a.command:
        name = a.command.lstrip("/").lower().strip()
        cmds = [c for c in ctx.services.registry.all() if c.name == name or c.group == name]
        if not cmds:
            raise UserError(f"no command /{name[:24]}; type /help for the list")
        lines = []
        for c in cmds:
            lines.append(f"`{c.usage()}` — {c.summary}")
            for s in c.arg_specs():
                extra = f" (one of {', '.join(s.choices)})" if s.choices else ""
                default = "" if s.required or s.default in (None, [], False) else f", default {s.default}"
                lines.append(f"  • {s.name}: {s.description}{extra}{default}")
            lines.extend(f"  e.g. `{e}`" for e in c.examples)
        return Reply(title=f"/{name}", body="\n".join(lines), data={"commands": [c.name for c in cmds]})
    lines = [f"`{c.usage()}` — {c.summary}" for c in ctx.services.registry.all()]
    lines.append("\nAnything without a / goes to the coach.")
    return Reply(title="Commands", body="\n".join(lines), data={"commands": [c.name for c in ctx.services.registry.all()]})
