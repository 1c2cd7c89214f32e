"""The sector of a symbol: from the mapping shipped with the package (analytics/sectors.json), or from an SIC code.

Sectors are GICS-style names (those of sectors.json). A provider that knows a company's SEC
Standard Industrial Classification (Polygon's ticker details carry `sic_code`) is mapped with
`sector_of_sic`: SIC is older than GICS and files by what a company makes, not how it earns, so
the mapping takes the GICS sector most companies of each SIC range sit in (see `_SIC_RANGES`).
Known seams: internet platforms filed under 7370 ("computer programming, data processing")
count as Information Technology where GICS says Communication Services, and card networks under
7389 ("business services") count as Industrials. Funds and ETFs carry no SIC code: they keep the
shipped mapping.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

#: The sector of a symbol the mapping does not hold.
UNKNOWN = "Unclassified"

IT = "Information Technology"
HEALTH = "Health Care"
STAPLES = "Consumer Staples"
DISCRETIONARY = "Consumer Discretionary"
COMMS = "Communication Services"
INDUSTRIALS = "Industrials"
MATERIALS = "Materials"
ENERGY = "Energy"
FINANCIALS = "Financials"
REAL_ESTATE = "Real Estate"
UTILITIES = "Utilities"

#: (first SIC, last SIC, sector), the narrower range first: the first range holding a code wins.
_SIC_RANGES: tuple[tuple[int, int, str], ...] = (
    # exceptions inside the broad divisions below
    (2830, 2836, HEALTH),  # drugs, pharmaceutical preparations, biological products
    (2840, 2844, STAPLES),  # soap, detergents, perfumes, cosmetics
    (3570, 3579, IT),  # computer and office equipment
    (3630, 3639, DISCRETIONARY),  # household appliances
    (3650, 3652, DISCRETIONARY),  # household audio and video
    (3660, 3699, IT),  # communications equipment, semiconductors, electronic components
    (3711, 3716, DISCRETIONARY),  # motor vehicles, bodies, parts, trailers, motor homes
    (3751, 3751, DISCRETIONARY),  # motorcycles and bicycles
    (3812, 3829, IT),  # search, navigation, measuring and control instruments
    (3841, 3851, HEALTH),  # surgical, medical, dental and ophthalmic goods
    (5122, 5122, HEALTH),  # drug wholesalers
    (5300, 5499, STAPLES),  # general merchandise and food stores (GICS moved big-box grocers to staples)
    (5912, 5912, STAPLES),  # drug stores
    (6798, 6798, REAL_ESTATE),  # real estate investment trusts
    (7310, 7319, COMMS),  # advertising
    (7375, 7375, COMMS),  # information retrieval services
    (7370, 7379, IT),  # computer programming, software, data processing
    (7800, 7849, COMMS),  # motion pictures, video distribution and rental
    (8000, 8099, HEALTH),  # health services
    (8731, 8731, HEALTH),  # commercial physical and biological research
    # the SIC divisions and major groups
    (100, 999, STAPLES),  # agriculture, forestry, fishing
    (1000, 1099, MATERIALS),  # metal mining
    (1200, 1399, ENERGY),  # coal, oil and gas extraction and services
    (1400, 1499, MATERIALS),  # non-metallic minerals
    (1500, 1799, INDUSTRIALS),  # construction
    (2000, 2199, STAPLES),  # food, beverages, tobacco
    (2200, 2399, DISCRETIONARY),  # textiles and apparel
    (2400, 2499, MATERIALS),  # lumber and wood
    (2500, 2599, DISCRETIONARY),  # furniture
    (2600, 2699, MATERIALS),  # paper
    (2700, 2799, COMMS),  # printing and publishing
    (2800, 2899, MATERIALS),  # chemicals
    (2900, 2999, ENERGY),  # petroleum refining
    (3000, 3099, MATERIALS),  # rubber and plastics
    (3100, 3199, DISCRETIONARY),  # leather goods
    (3200, 3399, MATERIALS),  # stone, clay, glass; primary metals
    (3400, 3599, INDUSTRIALS),  # fabricated metal, industrial machinery
    (3600, 3659, INDUSTRIALS),  # electrical equipment
    (3700, 3799, INDUSTRIALS),  # aircraft, ships, railroad equipment
    (3800, 3899, HEALTH),  # other instruments (mostly medical and laboratory)
    (3900, 3999, DISCRETIONARY),  # jewelry, toys, sporting goods
    (4000, 4799, INDUSTRIALS),  # transportation
    (4800, 4899, COMMS),  # communications
    (4900, 4999, UTILITIES),  # electric, gas, water, sanitary services
    (5000, 5199, INDUSTRIALS),  # wholesale trade
    (5200, 5999, DISCRETIONARY),  # retail trade
    (6000, 6499, FINANCIALS),  # banks, credit, brokers, insurance
    (6500, 6599, REAL_ESTATE),  # real estate
    (6700, 6799, FINANCIALS),  # holding and investment offices
    (7000, 7299, DISCRETIONARY),  # hotels, personal services
    (7300, 7399, INDUSTRIALS),  # business services
    (7500, 7699, INDUSTRIALS),  # repair services
    (7800, 7999, DISCRETIONARY),  # amusement and recreation
    (8100, 8199, INDUSTRIALS),  # legal services
    (8200, 8299, DISCRETIONARY),  # education
    (8300, 8899, INDUSTRIALS),  # social, engineering, accounting, research, management services
)


@cache
def sector_map() -> dict[str, str]:
    """Symbol -> sector, as shipped."""
    raw = json.loads(resources.files("analytics").joinpath("sectors.json").read_text(encoding="utf-8"))
    return {k: str(v) for k, v in raw.items() if not k.startswith("_")}


def sector_of(symbol: str) -> str:
    """The symbol's sector, or `UNKNOWN`."""
    return sector_map().get(symbol.upper(), UNKNOWN)


def sector_of_sic(code: object) -> str | None:
    """The sector of an SIC code ("3571" or 3571); None for no code, a malformed one, or 9000+ (non-classifiable)."""
    try:
        sic = int(str(code).strip())
    except (TypeError, ValueError):
        return None
    for lo, hi, sector in _SIC_RANGES:
        if lo <= sic <= hi:
            return sector
    return None
