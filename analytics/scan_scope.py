"""What a scan can be asked to cover: the built-in symbol lists, and how many setups it ranks at most.

Light (no numpy, no pandas): `/scan`'s arguments are declared and checked with these before the
scanner itself is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

#: The fallback universe of `leaders`: 20 liquid names (index ETFs and the most traded large caps), used when the
#: market data provider cannot rank the last session by dollar volume.
LEADERS: tuple[str, ...] = (
    "SPY",
    "QQQ",
    "IWM",
    "AAPL",
    "MSFT",
    "NVDA",
    "TSLA",
    "AMZN",
    "META",
    "GOOGL",
    "AMD",
    "AVGO",
    "NFLX",
    "JPM",
    "BAC",
    "XOM",
    "UNH",
    "COST",
    "PLTR",
    "COIN",
)
#: Built-in named lists (matched case-insensitively).
NAMED_LISTS: dict[str, tuple[str, ...]] = {
    "leaders": LEADERS,
    "indices": ("SPY", "QQQ", "IWM", "DIA"),
    "megacaps": ("AAPL", "MSFT", "NVDA", "AMZN", "META", "GOOGL", "AVGO", "TSLA"),
    "semis": ("NVDA", "AMD", "AVGO", "MU", "INTC"),
    "banks": ("JPM", "BAC", "XLF"),
}
#: The most ranked setups one scan returns.
MAX_LIMIT = 50

#: Tickers a ranking of leaders takes: plain listed symbols (no warrants/units suffixes like ".WS", no preferreds "p").
_PLAIN = re.compile(r"^[A-Z]{1,5}(\.[AB])?$")
#: Five-letter Nasdaq symbols ending in W, R or U are warrants, rights and units, not shares.
_NASDAQ_SUFFIX = re.compile(r"^[A-Z]{4}[WRU]$")
#: Below this price a name is left out of the leaders (penny stocks top share counts, not a trader's universe).
MIN_LEADER_PRICE = 5.0


class SessionRow(Protocol):
    """What a market-wide session summary gives per symbol (providers.base.SessionVolume)."""

    @property
    def symbol(self) -> str: ...
    @property
    def close(self) -> float: ...
    @property
    def volume(self) -> float: ...
    @property
    def vwap(self) -> float | None: ...


def rank_by_dollar_volume(rows: Iterable[SessionRow], n: int = len(LEADERS)) -> list[str]:
    """The `n` plain symbols priced at least MIN_LEADER_PRICE with the largest dollar volume (VWAP, else close, x volume).

    Ties break by symbol, so the same session always gives the same list.
    """
    scored: list[tuple[float, str]] = []
    for r in rows:
        if not _PLAIN.match(r.symbol) or _NASDAQ_SUFFIX.match(r.symbol) or r.close < MIN_LEADER_PRICE or r.volume <= 0:
            continue
        price = r.vwap if r.vwap is not None and r.vwap > 0 else r.close
        scored.append((-price * r.volume, r.symbol))
    return [sym for _, sym in sorted(scored)[:n]]
