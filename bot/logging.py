"""Structured logs that never carry a secret.

Server mode (`coach serve` with a chat surface, `coach worker`, `coach runtime`) writes one JSON
object per line to stderr: `timestamp level event logger` plus whatever the request bound
(`request_id surface command tenant user`, tenant and user hashed with a per-deployment salt so
the log can follow one person without naming them) and the event's own fields. Library loggers
(discord.py, aiohttp) go through the same renderer, so every line parses. CLI and console mode
log key=value lines to ./var/coach.log so the person at the terminal sees replies, never tracebacks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from bot.config import DEFAULT_LOG_LEVEL, Settings

_SECRET_ENV = (
    "OPENAI_API_KEY",
    "DISCORD_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "POLYGON_API_KEY",
    "TRADIER_ACCESS_TOKEN",
)

#: Set by server mode so that the worker processes it starts log the same way (they inherit the environment).
MODE_ENV = "COACH_LOG_MODE"

#: Fields that name a person or a workspace: hashed in server logs.
_HASHED = ("tenant", "user")


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


def hash_id(value: str, salt: str) -> str:
    """The first 12 hex digits of sha256(salt + value): stable within a deployment, meaningless outside it."""
    return hashlib.sha256(f"{salt}\x00{value}".encode()).hexdigest()[:12]


def log_salt(settings: Settings | None) -> str:
    """COACH_LOG_SALT, else one derived from the database URL (the same for every process of a deployment)."""
    if settings is None:
        return ""
    if settings.coach_log_salt is not None:
        return settings.coach_log_salt.get_secret_value()
    return hashlib.sha256(("coach-log:" + settings.database_url).encode()).hexdigest()


class _Redactor:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets

    def __call__(self, _logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        if not self.secrets:
            return event_dict
        return {k: redact(v, self.secrets) if isinstance(v, str) else v for k, v in event_dict.items()}


class _Hasher:
    def __init__(self, salt: str) -> None:
        self.salt = salt

    def __call__(self, _logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        for key in _HASHED:
            v = event_dict.get(key)
            if isinstance(v, str) and v:
                event_dict[key] = hash_id(v, self.salt)
        return event_dict


class _RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def _logger_name(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if "logger" not in event_dict:
        name = record.name if isinstance(record, logging.LogRecord) else getattr(_logger, "name", None)
        if name:
            event_dict["logger"] = name
    return event_dict


def _pid(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    # the front and its worker processes share one stderr: the pid tells their lines apart
    event_dict.setdefault("pid", os.getpid())
    return event_dict


def _json_formatter(secrets: list[str], salt: str) -> logging.Formatter:
    """One JSON object per record, for structlog's events and the libraries' plain log calls alike."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _logger_name,
    ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _pid,
            _Hasher(salt),
            structlog.processors.format_exc_info,  # before redaction: a traceback may quote a secret
            _Redactor(secrets),
            structlog.processors.JSONRenderer(default=str),
        ],
    )


def setup_logging(mode: str = "cli", settings: Settings | None = None) -> None:
    """Configure stdlib logging and structlog for `mode` ("cli" or "server") from the settings."""
    level_name = (settings.coach_log_level if settings is not None else DEFAULT_LOG_LEVEL).upper()
    lvl = logging.getLevelName(level_name)
    secrets = _secrets(settings)
    if mode == "server":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_json_formatter(secrets, log_salt(settings)))
        os.environ[MODE_ENV] = "server"
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
    if mode == "server":
        processors: list[Processor] = [
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ]
    else:
        processors = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            _Redactor(secrets),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event", "level"], sort_keys=True),
        ]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        cache_logger_on_first_use=False,
    )


def setup_worker_logging(settings: Settings) -> None:
    """In a worker process the front started: log the way the front does (JSON to stderr when it is a server)."""
    setup_logging(os.environ.get(MODE_ENV, "cli"), settings)
