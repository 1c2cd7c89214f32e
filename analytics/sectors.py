"""The sector of a symbol, from the mapping shipped with the package (analytics/sectors.json)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

#: The sector of a symbol the mapping does not hold.
UNKNOWN = "Unclassified"


@cache
def sector_map() -> dict[str, str]:
    """Symbol -> sector, as shipped."""
    raw = json.loads(resources.files("analytics").joinpath("sectors.json").read_text(encoding="utf-8"))
    return {k: str(v) for k, v in raw.items() if not k.startswith("_")}


def sector_of(symbol: str) -> str:
    """The symbol's sector, or `UNKNOWN`."""
    return sector_map().get(symbol.upper(), UNKNOWN)
