"""`coach journal export --csv [PATH]`: the local user's journal as CSV (stdout, or a file written whole)."""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

import click

from core.errors import UserError


def register(group: click.Group) -> None:
    """Add the `journal` group (the chat sub-commands join it as generated twins) with `export`."""
    journal_group = group.commands.get("journal")
    if not isinstance(journal_group, click.Group):
        journal_group = click.Group(name="journal", help="/journal commands: add, list, show, edit, remove; export to CSV.")
        group.add_command(journal_group)
    journal_group.add_command(export)


@click.command("export")
@click.option(
    "--csv",
    "csv_path",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[PATH]",
    help="write CSV to PATH (stdout when no PATH is given)",
)
@click.argument("path", required=False)
@click.option("--symbol", default=None, help="only entries about this ticker")
@click.option("--source", default=None, help="only manual, broker or plan entries")
def export(csv_path: str | None, path: str | None, symbol: str | None, source: str | None) -> None:
    """Export your journal (every entry, oldest first) as CSV."""
    from bot.cli.common import fail, run

    if csv_path not in (None, "-") and path:
        fail("give the output path once: coach journal export --csv PATH", 2)
    target = path or csv_path or "-"

    async def go() -> None:
        from bot.app import build_services
        from bot.commands.journal import entries_csv_rows
        from bot.surfaces.console import console_identity
        from storage import journal
        from storage.identity import ensure_owner

        if source is not None and source.lower() not in journal.SOURCES:
            raise UserError(f"unknown source {source[:16]!r}; accepted: {', '.join(journal.SOURCES)}")
        services = await build_services()
        try:
            ident = console_identity()
            async with services.db() as s, s.begin():
                owner = await ensure_owner(s, ident.platform, ident.tenant, ident.user, ident.display_name)
                entries = await journal.list_entries(
                    s, owner, symbol=symbol, source=source.lower() if source else None, limit=None, newest_first=False
                )
        finally:
            await services.close()
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(entries_csv_rows(entries))
        if target == "-":
            sys.stdout.write(buf.getvalue())
            return
        out = Path(target).expanduser()
        if out.is_dir():
            raise UserError(f"{target} is a folder; give a file name like journal.csv")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(buf.getvalue(), encoding="utf-8")
            os.replace(tmp, out)  # a reader never sees half a file
        except OSError as exc:
            raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
        click.echo(f"wrote {len(entries)} entries to {out}", err=True)

    run(go)
