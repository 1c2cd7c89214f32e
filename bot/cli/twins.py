"""`coach <command> ...`: a CLI twin of every chat command, generated from its argument model.

Each field of the model becomes an option (`--symbol`, `--style`, `--chart/--no-chart`; lists
take commas or repeats; fields hidden from chat, such as a chart's renderer, exist only here),
and the words after the command are read exactly as chat reads them (positionals in field
order, `key=value`, `--flag`), so `coach plan TSLA swing` and `coach plan --symbol TSLA --style
swing` are the same request. Every twin also takes `--json` (the structured result), `--as-of`
(pin the time) and `--out PATH` (write the reply's images), and runs through the same request
pipeline as chat, as the local operator, with a progress bar on stderr for long work at a
terminal.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bot.cli.common import as_of_option, exit_for, fail, run
from bot.pipeline import Invocation
from bot.registry import ArgSpec, Command, Registry
from bot.reply import Attachment, Reply
from core.errors import UserError

#: Option names every twin has; a field of the same name is still reachable with chat syntax
#: (`/plan`'s `chart` field: `--no-chart` or `chart=false`, while `--chart PATH` writes the image).
COMMON = ("json", "as_of", "out", "chart")


def add_twins(group: click.Group, registry: Registry) -> None:
    """A twin for every command not already defined by hand, grouped like chat (`coach watch add`)."""
    for cmd in registry.all():
        if cmd.group and cmd.group in registry.commands:
            # `coach plan` is a command itself, so its sub-commands sit beside it: `coach plan-validate`
            flat = "-".join(cmd.path)
            if flat not in group.commands:
                twin = make_twin(cmd)
                twin.name = flat
                group.add_command(twin)
        elif cmd.group:
            sub = group.commands.get(cmd.group)
            if sub is None:
                sub = click.Group(name=cmd.group, help=f"/{cmd.group} commands.")
                group.add_command(sub)
            if isinstance(sub, click.Group) and cmd.path[1] not in sub.commands:
                sub.add_command(make_twin(cmd))
        elif cmd.name not in group.commands:
            group.add_command(make_twin(cmd))


def make_twin(cmd: Command) -> click.Command:
    """The click command for `cmd`: an option per field, the chat words as ARGS, and --json/--as-of/--out."""
    specs = [s for s in cmd.arg_specs(include_hidden=True) if s.name not in COMMON]
    # a field the twin has no option for still parses from ARGS (unknown --words land there)
    params: list[click.Parameter] = [click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)]
    params += [_option(s) for s in specs]
    params += [
        click.Option(["--json", "json_out"], is_flag=True, help="print the result as one JSON object"),
        click.Option(["--as-of", "as_of"], default=None, help="pin the time, ISO 8601 with offset"),
        click.Option(
            ["--out", "--chart", "out"],
            default=None,
            metavar="PATH",
            help="write the reply's image(s) to PATH (several: PATH-<name>.png)",
        ),
    ]
    if cmd.name in LONG_RUNNING:
        params.append(
            click.Option(["--progress/--no-progress"], default=None, help="progress bar on stderr (default: at a terminal)")
        )
    help_text = "\n\n".join(
        [cmd.summary, f"In chat: {cmd.usage()}", "ARGS are read as in chat: positionals in order, name=value, --flag."]
    )
    return click.Command(
        name=cmd.path[-1],
        callback=_callback(cmd, specs),
        params=params,
        help=help_text,
        short_help=cmd.summary,
        # unknown --words go to ARGS, where the chat parser names what it accepts in one line
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True},
    )


#: Commands that may take long enough to deserve a progress bar.
LONG_RUNNING = frozenset({"scan"})


def _option(spec: ArgSpec) -> click.Option:
    flag = "--" + spec.name.replace("_", "-")
    help_text = spec.description + (f" [default: {spec.default}]" if spec.default not in (None, [], "") else "")
    if spec.kind == "boolean":
        return click.Option([f"{flag}/--no-{spec.name.replace('_', '-')}", spec.name], default=None, help=help_text)
    metavar = {"integer": "INTEGER", "number": "NUMBER", "list": "A,B,..."}.get(spec.kind, "TEXT")
    if spec.choices:
        metavar = "[" + "|".join(spec.choices) + "]"
    # values stay text here: the argument model validates them, so an error is the same one line as in chat
    return click.Option([flag, spec.name], default=None, metavar=metavar, multiple=spec.kind == "list", help=help_text)


def _callback(cmd: Command, specs: list[ArgSpec]) -> Callable[..., None]:
    by_name = {s.name: s for s in specs}

    def callback(
        args: tuple[str, ...], json_out: bool, as_of: str | None, out: str | None, progress: bool | None = None, **options: Any
    ) -> None:
        pinned = as_of_option(as_of)
        try:
            values = cmd.token_values(list(args))
        except UserError as exc:
            fail(exc.message, 2)
        for name, value in options.items():
            if value is None or value == ():
                continue
            spec = by_name[name]
            values[name] = _split(value) if spec.kind == "list" else value
        try:
            cmd.validate(values)  # bad input exits 2 before a database is opened
        except UserError as exc:
            fail(exc.message, 2)

        async def go() -> None:
            from bot.app import build_services
            from bot.surfaces.console import console_identity

            # one-shot: charts are drawn in this process rather than by a worker pool started for one image
            services = await build_services(chart_workers=0)
            try:
                ctx = services.pipeline.request(services, console_identity(), as_of=pinned)
                with _progress_bar(progress) as bar:
                    ctx.progress = bar
                    reply = await services.pipeline.handle(ctx, Invocation.call(cmd.name, values))
            finally:
                await services.close()
            exit_for(reply)
            paths = write_images(reply, Path(out)) if out else []
            if json_out:
                data = reply.data_json()
                if paths and isinstance(data, dict):
                    data["paths"] = [str(p) for p in paths]
                click.echo(json.dumps(data, separators=(",", ":"), default=str))
                return
            from rich.console import Console

            from bot.surfaces.console import print_reply

            shown = reply.model_copy(update={"attachments": [] if out else reply.attachments})
            print_reply(shown, Console(highlight=False, soft_wrap=True), Path(services.settings.coach_out_dir))
            for p in paths:
                click.echo(f"  saved {p}")

        run(go)

    return callback


def _split(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [p for item in items for p in re.split(r"[,\s]+", str(item)) if p]


def write_images(reply: Reply, path: Path) -> list[Path]:
    """Write the reply's images: PATH itself for one, PATH-<name>.png for several; never a half-written file."""
    images = [a for a in reply.attachments if a.mime == "image/png"]
    if not images:
        fail("this reply has no image to write", 2)
    paths = (
        [path]
        if len(images) == 1
        else [path.with_name(f"{path.stem}-{_name(a, i)}{path.suffix or '.png'}") for i, a in enumerate(images, 1)]
    )
    for p, att in zip(paths, images):
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".part")
        tmp.write_bytes(att.data)
        tmp.replace(p)
    return paths


def _name(att: Attachment, index: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", att.key) if att.key else str(index)


@contextmanager
def _progress_bar(wanted: bool | None) -> Iterator[Callable[[int, int, str], None] | None]:
    """A rich progress bar on stderr (at a terminal unless asked), fed by the handler's `ctx.progress`."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(file=sys.stderr, highlight=False)
    if not (wanted if wanted is not None else err.is_terminal):
        yield None
        return
    bar = Progress(
        TextColumn("{task.description:<10} {task.fields[label]:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:
        task = bar.add_task("working", total=None, label="")

        def update(done: int, total: int, label: str = "") -> None:
            bar.update(task, completed=done, total=total or None, label=label[:10])

        yield update
