"""The console surface: lines from stdin (a TTY or a pipe), replies as text, images saved under ./out/."""

from __future__ import annotations

import asyncio
import getpass
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Protocol, TextIO

from rich.console import Console
from rich.markup import escape

from bot.pipeline import Invocation
from bot.reply import Reply
from bot.request import Identity
from bot.services import Services

SEVERITY_STYLE = {"info": "cyan", "success": "green", "warning": "yellow", "error": "red"}


def console_identity() -> Identity:
    """The local operator: tenant ("console", "local"), user = the OS login name."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "local"
    return Identity(platform="console", tenant="local", user=user, channel="console", display_name=user, is_admin=True, dm=True)


def render_text(reply: Reply) -> str:
    """A reply as plain text with light markdown left as is (readable in a terminal or a log)."""
    lines = [reply.title]
    if reply.body:
        lines.append(reply.body)
    if reply.fields:
        width = max(len(f.name) for f in reply.fields)
        lines.extend(f"  {f.name:<{width}}  {_hang(f.value, width + 4)}" for f in reply.fields)
    if reply.actions:
        lines.append("  " + "   ".join(f"[{a.label}: {a.shown}]" for a in reply.actions))
    foot = reply.footer()
    if foot:
        lines.append(f"  — {foot}")
    return "\n".join(lines)


def _hang(value: str, indent: int) -> str:
    """A field value whose later lines start under its first (a multi-line value stays in its column)."""
    return value.replace("\n", "\n" + " " * indent)


def save_attachments(reply: Reply, out_dir: Path) -> list[Path]:
    """Write the reply's files under `out_dir`, with a timestamp so nothing is overwritten."""
    paths: list[Path] = []
    if not reply.attachments:
        return paths
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for att in reply.attachments:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", att.filename) or "file.bin"
        path = out_dir / f"{stamp}-{name}"
        n = 1
        while path.exists():
            path = out_dir / f"{stamp}-{n}-{name}"
            n += 1
        path.write_bytes(att.data)
        paths.append(path)
    return paths


def print_reply(reply: Reply, console: Console, out_dir: Path) -> None:
    """Print a reply (coloured on a TTY) and save its images."""
    colour = SEVERITY_STYLE.get(reply.severity, "cyan")
    console.print(f"[bold {colour}]{escape(reply.title)}[/]")
    if reply.body:
        # code fences are for chat clients; a terminal shows the block as is
        body = "\n".join(line for line in reply.body.splitlines() if line.strip() != "```")
        console.print(escape(body), highlight=False)
    if reply.fields:
        width = max(len(f.name) for f in reply.fields)
        for f in reply.fields:
            console.print(f"  [bold]{escape(f.name):<{width}}[/]  {escape(_hang(f.value, width + 4))}", highlight=False)
    if reply.actions:
        console.print(
            "  " + "   ".join(f"[reverse] {escape(a.label)} [/] {escape(a.shown)}" for a in reply.actions), highlight=False
        )
    foot = reply.footer()
    if foot:
        console.print(f"  [dim]— {escape(foot)}[/]", highlight=False)
    for path in save_attachments(reply, out_dir):
        console.print(f"  [dim]saved {escape(str(path))}[/]", highlight=False)


class LineInput(Protocol):
    """What the console reads lines from: stdin, or `coach serve`'s reader that a signal can end."""

    def readline(self) -> str: ...

    def isatty(self) -> bool: ...


async def chat(
    services: Services,
    *,
    stdin: LineInput | None = None,
    stdout: TextIO | None = None,
    as_of: datetime | None = None,
    identity: Identity | None = None,
) -> int:
    """Read lines until EOF (or `quit`), answer each; returns the number of lines answered."""
    stdin = stdin or sys.stdin
    console = Console(file=stdout or sys.stdout, highlight=False, soft_wrap=True)
    identity = identity or console_identity()
    tty = stdin.isatty()
    out_dir = Path(services.settings.coach_out_dir)
    if tty:
        console.print("[bold]trading-coach[/] — type /help for commands, quit to leave.")
    answered = 0
    while True:
        if tty:
            try:
                line = await asyncio.to_thread(input, "coach> ")
            except EOFError:
                break
        else:
            line = await asyncio.to_thread(stdin.readline)
            if line == "":
                break
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() in {"quit", "exit", "/quit", "/exit"}:
            break
        if not tty:
            console.print(f"[dim]> {escape(line)}[/]", highlight=False)
        ctx = services.pipeline.request(services, identity, as_of=as_of)
        reply = await services.pipeline.handle(ctx, Invocation.line(line))
        print_reply(reply, console, out_dir)
        console.print()
        answered += 1
    return answered


class ConsoleDestination:
    """The runtime's console sink: prints pushed replies on this process's console, images saved under the out dir."""

    def __init__(self, stream: TextIO | None = None, out_dir: Path | None = None) -> None:
        self.console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        self.out_dir = out_dir or Path("./out")
        self.sent: list[tuple[str, str]] = []

    async def send(self, target: str, reply: Reply, idempotency_key: str) -> None:
        self.console.print("[dim]── pushed ──[/]")
        print_reply(reply, self.console, self.out_dir)
        self.console.print()
        self.sent.append((idempotency_key, reply.title))
