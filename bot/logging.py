"""Structured logs that never carry a secret.

Server mode logs to stderr (the operator's log, tracebacks included). CLI and console
mode log to ./var/coach.log so the person at the terminal sees replies, never tracebacks.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import structlog
from structlog.typing import EventDict, WrappedLogger

from bot.config import Settings

_SECRET_ENV = (
    "OPENAI_API_KEY",
    "DISCORD_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "POLYGON_API_KEY",
    "TRADIER_ACCESS_TOKEN",
)


def _secrets(settings: Settings | None) -> list[str]:
    # the raw variables too: when the settings fail to load, the error being logged may quote them
    vals = [os.environ.get(k, "") for k in _SECRET_ENV]
    if settings is not None:
        vals += settings.secret_values()
    return [v for v in set(vals) if v and len(v) >= 6]


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret value in `text` with ***."""
    for s in secrets:
        text = text.replace(s, "***")
    return text


class _Redactor:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets

    def __call__(self, _logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        if not self.secrets:
            return event_dict
        return {k: redact(v, self.secrets) if isinstance(v, str) else v for k, v in event_dict.items()}


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def setup_logging(mode: str = "cli", settings: Settings | None = None) -> None:
    """Configure stdlib logging and structlog for `mode` ("cli" or "server") from the settings."""
    level_name = (settings.coach_log_level if settings is not None else "INFO").upper()
    lvl = getattr(logging, level_name, logging.INFO)
    secrets = _secrets(settings)
    if mode == "server":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        path = Path(settings.coach_log_file if settings is not None else "./var/coach.log")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8")
        except OSError:
            handler = logging.NullHandler()
    handler.setFormatter(_RedactingFormatter(secrets))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(lvl)
    for noisy in ("aiosqlite", "asyncio", "matplotlib", "PIL", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(lvl, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            _Redactor(secrets),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event", "level"], sort_keys=True),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        cache_logger_on_first_use=False,
    )
