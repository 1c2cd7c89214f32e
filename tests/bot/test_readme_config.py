"""The README's configuration table says what the code does: every default there is the settings' default."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from bot.config import DEFAULT_LOG_LEVEL, Settings, get_settings
from core.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"


def table_rows() -> list[tuple[str, str]]:
    """(variable, default) of each row of the README's main configuration table."""
    text = README.read_text(encoding="utf-8")
    table = text.split("| variable | default | what it does |", 1)[1].split("\n\n", 1)[0]
    rows: list[tuple[str, str]] = []
    for line in table.strip().splitlines()[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        defaults = [d.strip().strip("`") for d in cells[1].split(", ")]
        if len(defaults) == 1 and len(names) > 1:
            defaults *= len(names)  # "unset" for several variables
        rows += list(zip(names, defaults, strict=True))
    return rows


def same(readme: str, default: object) -> bool:
    if readme == "unset":
        return default is None
    if isinstance(default, bool):
        return readme == str(default).lower()
    if isinstance(default, Path):
        return Path(readme) == default
    return readme == str(default)


def test_every_default_in_the_readme_table_is_the_settings_default():
    rows = table_rows()
    names = [n for n, _ in rows]
    assert "COACH_LOG_LEVEL" in names and len(rows) >= 15
    from bot.app import DEFAULT_PORT

    # settings left unset on purpose, whose fallback is decided where they are used
    fallback: dict[str, object] = {"PORT": DEFAULT_PORT}
    fields = Settings.model_fields
    for name, readme in rows:
        if name == "TEST_DATABASE_URL":
            continue  # read by the tests, not the service
        default = fallback.get(name, fields[name.lower()].default)
        assert same(readme, default), f"README says {name} defaults to {readme!r}; the code says {default!r}"
    assert dict(rows)["COACH_LOG_LEVEL"] == DEFAULT_LOG_LEVEL == fields["coach_log_level"].default


def test_the_log_level_is_checked_and_used(monkeypatch):
    import structlog

    from bot.logging import setup_logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setenv("COACH_LOG_LEVEL", "warn")
    get_settings.cache_clear()
    try:
        s = get_settings()
        assert s.coach_log_level == "WARNING"
        setup_logging("cli", s.model_copy(update={"coach_log_file": Path("/dev/null")}))
        assert logging.getLogger().level == logging.WARNING
        monkeypatch.setenv("COACH_LOG_LEVEL", "verbose")
        get_settings.cache_clear()
        with pytest.raises(ConfigError) as err:
            get_settings()
        assert str(err.value.message) == (
            "COACH_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (default INFO), not 'verbose'"
        )
    finally:
        get_settings.cache_clear()
        # the previous configuration comes back, as the JSON log tests leave it
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
        structlog.reset_defaults()
