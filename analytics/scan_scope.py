"""What a scan can be asked to cover: the built-in symbol lists, and how many setups it ranks at most.

Light (no numpy, no pandas): `/scan`'s arguments are declared and checked with these before the
scanner itself is loaded.
"""

from __future__ import annotations

#: The default universe: 20 liquid leaders (index ETFs and the most traded large caps).
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
