"""The offline market's symbols: what makes each look like itself (price level, volatility, dividend, volume).

Symbols the market knows by name carry their own figures and a volatility class; any other symbol
is drawn from a stable hash of (seed, symbol), inside the "stock" class. The classes' bands keep
the market as calm as the markets traders know; `benchmarks/bench_offline_realism.py` measures
them and `tests/providers/test_sim.py` holds them.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

#: Volatility bands by symbol class, annualised. A symbol's long-run volatility sits inside its
#: class's band and so do most of its 20-session regimes: calm spells dip a little below, stress
#: rises above, but a regime's volatility never passes STRESS_CAP times the band's top (markets
#: traders know: SPY rarely runs above 30%, TSLA rarely above 100%); a 20-session measure can, by
#: chance, when a fat-tailed day or an earnings gap falls in it.
VOL_BANDS: dict[str, tuple[float, float]] = {
    "index": (0.12, 0.20),  # broad index ETFs
    "fund": (0.12, 0.25),  # sector, bond and gold funds
    "megacap": (0.20, 0.40),  # megacaps and other large caps
    "high_beta": (0.50, 0.70),
    "stock": (0.20, 0.70),  # any other symbol: its level is drawn inside this band
}
#: How far a stress regime may take volatility above the class band's top.
STRESS_CAP = 1.3
#: How far a calm spell may take it below the band's bottom.
CALM_FLOOR = 0.6

# symbol: (reference price, annualised vol, dividend yield, average daily share volume, class)
KNOWN: dict[str, tuple[float, float, float, float, str]] = {
    "SPY": (500.0, 0.15, 0.013, 60e6, "index"),
    "QQQ": (430.0, 0.18, 0.006, 40e6, "index"),
    "IWM": (200.0, 0.19, 0.012, 30e6, "index"),
    "DIA": (390.0, 0.14, 0.017, 3e6, "index"),
    "AAPL": (190.0, 0.26, 0.005, 55e6, "megacap"),
    "MSFT": (410.0, 0.24, 0.007, 20e6, "megacap"),
    "NVDA": (120.0, 0.55, 0.0003, 300e6, "high_beta"),
    "TSLA": (250.0, 0.58, 0.0, 90e6, "high_beta"),
    "AMZN": (180.0, 0.30, 0.0, 40e6, "megacap"),
    "META": (500.0, 0.34, 0.004, 15e6, "megacap"),
    "GOOGL": (165.0, 0.28, 0.005, 25e6, "megacap"),
    "GOOG": (166.0, 0.28, 0.005, 20e6, "megacap"),
    "AMD": (160.0, 0.52, 0.0, 50e6, "high_beta"),
    "NFLX": (600.0, 0.34, 0.0, 4e6, "megacap"),
    "AVGO": (160.0, 0.34, 0.013, 25e6, "megacap"),
    "BRK.B": (410.0, 0.20, 0.0, 4e6, "megacap"),
    "JPM": (200.0, 0.24, 0.023, 9e6, "megacap"),
    "BAC": (38.0, 0.28, 0.025, 35e6, "megacap"),
    "XOM": (115.0, 0.25, 0.033, 15e6, "megacap"),
    "V": (270.0, 0.22, 0.008, 6e6, "megacap"),
    "UNH": (500.0, 0.26, 0.016, 4e6, "megacap"),
    "COST": (800.0, 0.22, 0.005, 2e6, "megacap"),
    "WMT": (65.0, 0.22, 0.013, 15e6, "megacap"),
    "DIS": (100.0, 0.28, 0.008, 9e6, "megacap"),
    "INTC": (30.0, 0.36, 0.015, 40e6, "megacap"),
    "BA": (180.0, 0.34, 0.0, 7e6, "megacap"),
    "CRM": (250.0, 0.32, 0.006, 6e6, "megacap"),
    "ORCL": (130.0, 0.30, 0.012, 8e6, "megacap"),
    "ADBE": (500.0, 0.32, 0.0, 3e6, "megacap"),
    "COIN": (220.0, 0.66, 0.0, 10e6, "high_beta"),
    "PLTR": (25.0, 0.60, 0.0, 45e6, "high_beta"),
    "MU": (120.0, 0.54, 0.004, 20e6, "high_beta"),
    "UBER": (70.0, 0.36, 0.0, 18e6, "megacap"),
    "GLD": (215.0, 0.15, 0.0, 8e6, "fund"),
    "TLT": (92.0, 0.15, 0.038, 35e6, "fund"),
    "XLF": (42.0, 0.20, 0.016, 35e6, "fund"),
    "XLE": (92.0, 0.23, 0.032, 15e6, "fund"),
}
#: Index ETFs: daily expirations, $1 strikes, steeper put skew, tighter spreads.
INDEX_LIKE = frozenset(sym for sym, known in KNOWN.items() if known[4] == "index")


def symbol_class(symbol: str) -> str:
    """The volatility class of `symbol` (a key of VOL_BANDS)."""
    known = KNOWN.get(symbol)
    return known[4] if known else "stock"


def digest(text: str) -> int:
    """A stable 64-bit integer for `text` (never Python's salted hash())."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def unit(text: str) -> float:
    """A stable uniform number in [0, 1) for `text`."""
    return (digest(text) >> 11) * 2.0**-53


@dataclass(frozen=True)
class Profile:
    """What makes a symbol look like itself."""

    level: float
    ann_vol: float
    div_yield: float
    avg_volume: float
    spread_bps: float
    index_like: bool
    band: tuple[float, float]  # the class's volatility band, annualised


def profile(seed: int, symbol: str) -> Profile:
    def u(tag: str) -> float:
        return unit(f"{seed}:{symbol}:{tag}")

    spread_bps = 1.0 + 2.0 * u("spread")
    if symbol in KNOWN:
        level, vol, q, volume, kind = KNOWN[symbol]
        index_like = symbol in INDEX_LIKE
        return Profile(level, vol, q, volume, 1.0 if index_like else spread_bps, index_like, VOL_BANDS[kind])
    level = 8.0 * (600.0 / 8.0) ** u("level")
    # cheaper stocks tend to move more
    cheapness = 1.0 - math.log(level / 8.0) / math.log(75.0)
    lo, hi = VOL_BANDS["stock"]
    vol = lo * (hi / lo) ** min(1.0, 0.65 * u("vol") + 0.35 * cheapness)
    q = 0.0 if u("divpays") < 0.4 else 0.02 * u("div")
    volume = 3e5 * (2e7 / 3e5) ** u("volume")
    return Profile(level, vol, q, volume, spread_bps, False, VOL_BANDS["stock"])
