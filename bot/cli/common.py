"""What every `coach` command shares: one error line and an exit code, never a traceback.

A user error prints `error: ...` on stderr and exits 2; a provider or configuration problem,
or a bug, exits 1 (a bug's details go to the log file, with the reference shown).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import click
import structlog

from analytics.sessions import parse_as_of
from bot.reply import Reply
from bot.request import new_request_id
from core.clock import utc_now
from core.errors import CoachError, UserError

log = structlog.get_logger("coach.cli")

T = TypeVar("T")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async entry point, turning project errors into one line and an exit code."""
    try:
        return asyncio.run(coro_fn())
    except UserError as exc:
        fail(exc.message, 2)
    except CoachError as exc:  # ConfigError, ProviderError: the operator or the provider must act
        fail(exc.message, 1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: log it fully, show one line
        ref = new_request_id()
        log.exception("cli_failed", request_id=ref)
        fail(f"something went wrong ({exc.__class__.__name__}; ref {ref}, details in the log file)", 1)


def exit_for(reply: Reply) -> None:
    """For an error reply: print its one line and exit (2 when the person's input was wrong, else 1)."""
    if reply.severity != "error":
        return
    text = " ".join((reply.body or reply.title).split())
    if reply.error_kind == "bug":
        text += " (details in the log file)"
    fail(text, 2 if reply.error_kind == "user" else 1)


def as_of_option(value: str | None) -> datetime | None:
    """Parse --as-of or exit 2 with the accepted format."""
    if value is None:
        return None
    try:
        return parse_as_of(value, utc_now())
    except UserError as exc:
        fail(exc.message, 2)


def replay_progress(err: Any) -> Any:
    """The progress bar of a replay (backtest, calibration): one task per run, decisions done of total, eta.

    On stderr (`err`, a rich Console), so `--json` on stdout stays clean.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]replaying[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("decisions"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
