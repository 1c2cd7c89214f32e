"""Ground the coach's final answer in the turn's tool results: verify prices, cite sources, score the grounding.

The server does this, not the model: citations and `as_of` come from the Replies the
tools produced, every price written in the answer is looked up among the numbers those
tools returned, and a price found nowhere is marked "(unverified)" in the text.

The grounding score says how far the answer rests on what the tools returned. It is not a
plan's confidence (a setup grade) and is never called one where people read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from bot.agent.tools import ToolResult

UNVERIFIED = "(unverified)"
#: Data older than this while the market is open is called stale.
STALE_AFTER = timedelta(minutes=20)

# A number as written: $1,234.50, 586.46, 200, .5 -- with what surrounds it, to tell prices from other numbers.
_NUMBER = re.compile(r"(?P<dollar>\$\s?)?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)")
#: Words right before a number that make it a price ("entry 182.5", "stop at 179", "breaks 200").
_PRICE_WORDS = frozenset(
    """
entry enter entries stop stops target targets tp sl price priced prices at @ above below near around support resistance
level levels strike strikes bid ask last close closed closing open opened opening high highs low lows trading trades
traded break breaks breaking breakout breakdown over under reclaim reclaims reclaimed hold holds holding test tests
retest vwap pivot trigger triggers triggered fill filled limit quote quoted spot hit hits reach
""".split()
)
#: Words right after a number that make it something else (a count, a duration, a ratio).
_NOT_PRICE_AFTER = re.compile(
    r"^\s*(?:%|x\b|r\b|-?(?:percent|day|days|week|weeks|month|months|year|years|hour|hours|min|mins|minute|minutes|"
    r"sec|secs|seconds|share|shares|contract|contracts|bar|bars|step|steps|dte|delta|point|points|pts|session|sessions|"
    r"times|st|nd|rd|th|am|pm|et|utc|m|h|d|w|k|b)\b)",
    re.IGNORECASE,
)


class Citation(BaseModel):
    """Where a piece of the answer came from: the tool, the data source and as of when."""

    tool: str
    source: str
    as_of: datetime | None = None


class Grounding(BaseModel):
    """The server's verdict on one answer."""

    text: str
    #: How far the answer rests on checked tool data, in [0.05, 0.95] (`grounding_score`).
    score: float
    citations: list[Citation]
    prices: list[float]
    unverified: list[float]
    stale: bool = False
    stale_note: str | None = None
    as_of: datetime | None = None


@dataclass
class _Found:
    start: int
    end: int
    value: float
    decimals: int
    text: str = field(default="")


def find_prices(text: str) -> list[_Found]:
    """Numbers in `text` that read as prices: `$`-prefixed, two decimals, or right after a price word."""
    found: list[_Found] = []
    for m in _NUMBER.finditer(text):
        start, end = m.start(), m.end()
        raw = m.group("num")
        before = text[max(0, start - 1) : start]
        after = text[end : end + 12]
        # part of a larger token: a date (2024-03-13), a time (10:30), an id (P-1A2B), a decimal's tail
        if before and (before.isalnum() or before in "-:/._") and not m.group("dollar"):
            continue
        if after[:1] in ("-", "/") and after[1:2].isdigit():
            continue
        if after[:1] == ":":  # a time (10:30), a ratio (2:1) or a label ("Target 1: ...")
            continue
        if after[:1].isalpha() and after[:1] not in "kK":
            continue
        if _NOT_PRICE_AFTER.match(after) and not m.group("dollar"):
            continue
        if m.group("dollar") and re.match(r"^\s*(?:k|m|b|bn|million|billion)\b", after, re.IGNORECASE):
            continue  # $5k, $2 million: money, not a price level
        decimals = len(raw.split(".")[1]) if "." in raw else 0
        is_price = bool(m.group("dollar")) or decimals == 2 or _price_word_before(text, start)
        if not is_price:
            continue
        found.append(_Found(start, end, float(raw.replace(",", "")), decimals, m.group(0)))
    return found


def _price_word_before(text: str, start: int) -> bool:
    words = re.findall(r"[A-Za-z@]+", text[max(0, start - 28) : start].lower())
    return any(w in _PRICE_WORDS for w in words[-2:])


def matches(value: float, decimals: int, known: list[float], tick: float = 0.01) -> bool:
    """True when some known number, written with the same decimals, reads as `value` (or lies within half a tick)."""
    for n in known:
        if abs(n - value) <= tick / 2 + 1e-9:
            return True
        if abs(round(n, decimals) - value) < 10 ** (-decimals) / 2 - 1e-12:
            return True
    return False


def ground(
    answer: str,
    results: list[ToolResult],
    *,
    now: datetime,
    market_open: bool,
    user_text: str = "",
) -> Grounding:
    """Check the answer's prices against this turn's tool numbers, cite sources, and score the grounding."""
    known = [n for r in results if r.ok for n in r.numbers]
    # numbers the person wrote themselves (their own level, "alert at 200") are theirs, not a data claim
    user_numbers = [float(m.group("num").replace(",", "")) for m in _NUMBER.finditer(user_text or "")]
    prices = find_prices(answer)
    unverified: list[_Found] = [
        p for p in prices if not matches(p.value, p.decimals, known) and not matches(p.value, p.decimals, user_numbers, tick=0)
    ]
    text = answer
    for p in sorted(unverified, key=lambda f: f.start, reverse=True):
        if not text[p.end :].lstrip().startswith(UNVERIFIED):
            text = text[: p.end] + f" {UNVERIFIED}" + text[p.end :]

    citations = citations_of(results)
    stamps = [c.as_of for c in citations if c.as_of is not None]
    as_of = min(stamps) if stamps else None
    stale = bool(market_open and as_of is not None and now - as_of > STALE_AFTER)
    stale_note = None
    if stale and as_of is not None:
        minutes = int((now - as_of).total_seconds() // 60)
        stale_note = f"Some of this data is {minutes} minutes old while the market is open; check a live quote before acting."

    score = grounding_score(results, len(prices), len(unverified), stale)
    return Grounding(
        text=text,
        score=score,
        citations=citations,
        prices=[p.value for p in prices],
        unverified=[p.value for p in unverified],
        stale=stale,
        stale_note=stale_note,
        as_of=as_of,
    )


def citations_of(results: list[ToolResult]) -> list[Citation]:
    """One citation per (tool, source) of the successful results, with the Reply's as_of."""
    out: dict[tuple[str, str], Citation] = {}
    for r in results:
        if not r.ok or r.reply is None:
            continue
        sources = r.reply.sources or [r.name]
        for s in sources:
            key = (r.name, s)
            prev = out.get(key)
            if prev is None or (r.reply.as_of and prev.as_of and r.reply.as_of < prev.as_of):
                out[key] = Citation(tool=r.name, source=s, as_of=r.reply.as_of)
    return list(out.values())


def grounding_score(results: list[ToolResult], n_prices: int, n_unverified: int, stale: bool) -> float:
    """How far the answer rests on data: looked up or not, minus unverified prices, failures and stale data.

    A plan's quality grade or odds say nothing about whether the answer quotes its tools faithfully,
    so they do not enter here."""
    oks = [r for r in results if r.ok]
    if oks:
        base = 0.8
    else:
        base = 0.4  # general explanation, nothing looked up
    if n_prices:
        base *= 1.0 - 0.6 * (n_unverified / n_prices)
    if any(not r.ok for r in results):
        base -= 0.1
    if stale:
        base -= 0.15
    return round(min(0.95, max(0.05, base)), 2)
