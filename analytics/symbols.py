"""Ticker symbol validation: one place decides what a symbol may look like."""

from __future__ import annotations

import re

from core.errors import UserError

_EQUITY = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")


def validate_symbol(value: object) -> str:
    """Return the upper-cased symbol, or raise UserError saying what is accepted."""
    if not isinstance(value, str):
        raise UserError("symbol must be text like TSLA or BRK.B")
    sym = value.strip().lstrip("$").upper()
    if not sym:
        raise UserError("symbol is empty; give a ticker like TSLA or BRK.B")
    if not _EQUITY.match(sym):
        shown = sym if len(sym) <= 16 else sym[:16] + "…"
        raise UserError(
            f"invalid symbol {shown!r}: use 1-10 characters, a letter first, then letters, digits, '.' or '-' (e.g. TSLA, BRK.B)"
        )
    return sym
