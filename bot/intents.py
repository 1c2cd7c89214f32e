"""The free-text handler when no LLM is configured: a few phrasings mapped to registry commands.

"plan tsla swing" -> `/plan TSLA style=swing`, "iv on nvda?" -> `/vol NVDA`,
"alert me if AAPL breaks 200" -> `/alert add AAPL above 200`, "scan my watchlist" -> `/scan`.
The invocation runs through `bot.pipeline.run_text` like any typed command, and the reply
notes that the LLM coach is off. Options (style, interval, call/put) are passed by name
only when the target command declares a field that accepts them, so the mapping follows
the registry as commands are added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from analytics.intervals import normalise_interval
from bot.pipeline import Invocation, clean_text
from bot.registry import Registry
from bot.reply import Reply
from bot.request import Ctx
from core.errors import UserError

#: Phrasings shown when nothing matched (each with the command it needs).
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("plan TSLA swing", "plan"),
    ("iv on NVDA?", "vol"),
    ("alert me if AAPL breaks 200", "alert add"),
    ("scan my watchlist", "scan"),
    ("best calls on SPY", "contracts"),
    ("chart NVDA 15m", "chart"),
    ("quote SPY", "quote"),
    ("what's the session?", "session"),
    ("add TSLA to my watchlist", "watch add"),
)

LLM_OFF = "LLM coach off"

# Words that are never tickers in these phrasings (lower case).
_STOP = frozenset(
    """
a an the i me my mine we us our you your it its is are was be been am do does did doing done can could would should will
shall may might must of on in at to for from by with about into over under above below if when whenever once then than
and or but not no yes so as up down out off please pls thanks thank hi hey hello what whats what's how hows how's where
wheres where's which who why show give get tell let know see look check find run make set put add remove delete cancel
list clear reset forget start stop new this that these those there here now today tomorrow week day daily weekly hourly
alert alerts alarm notify ping message watch watchlist watching unwatch scan scanner scans setups setup setting plan
plans planning trade trades trading idea ideas entry entries price prices quote quotes quoted last doing going trading
iv ivs vol vols volatility implied rank regime percentile option options contract contracts call calls put puts strike
strikes chart charts graph candles candle bars bar session market markets open opened closed close hours hour minute
minutes swing scalp intraday leaps long short term buy sell short good bad best top worth should shall on
break breaks breaking breaks crosses cross crossing hits hit reaches reach goes go gets drops drop falls fall rises rise
climbs climb dips dip tops bottom above below over under under past through level levels support resistance ticker
symbol stock stocks share shares me pls journal context news size sizing position user users person people
someone anyone everyone else other others ignore previous prior instructions instruction rules prompt system admin all any
some every each only just also too very really much many more less most least ok okay lol thx yo gm gn sup hmm pick picks
help want need like love think feel mean wait time see saw got via per vs etc try again nah yeah yep nope sure cool nice
""".split()
)
#: Words after (or before) which a lower-case word is read as a ticker: "on nvda", "plan tsla", "tsla swing".
_ANCHORS = frozenset(
    """
on for of in if when is quote price plan chart scan watch add remove unwatch iv ivr vol volatility bars alert alerts
contracts calls puts options strikes swing scalp intraday leaps trade setup context and buy sell short
""".split()
)
#: Capitalised words that are trading jargon, not tickers.
_CAPS_STOP = frozenset(
    "I A IV IVR ATM OTM ITM DTE RSI EMA SMA VWAP MACD ATR USD ET EST EDT PM AM OK PT TP SL RR R LLM AI NYSE".split()
)

_TICKER = re.compile(r"^\$?[A-Za-z][A-Za-z0-9.\-]{0,9}$")
_NUMBER = re.compile(r"\$?(\d+(?:,\d{3})*(?:\.\d+)?)")


@dataclass(frozen=True)
class Intent:
    """A recognised request: the registry command it needs and the invocation to run."""

    command: str
    invocation: str
    #: Options that the command had no field for (dropped from the invocation).
    dropped: tuple[str, ...] = field(default=())


def symbols_in(text: str) -> list[str]:
    """Ticker-looking words in order: `$tsla` and `TSLA` first; lower-case words only where a ticker is expected.

    A lower-case word counts when it sits next to a word that introduces a symbol ("on nvda",
    "plan tsla", "tsla swing") or next to another symbol, or when the message is a few words long.
    """
    text = re.sub(r"['\u2019]\w*", "", text)  # what's -> what, nvda's -> nvda
    words = [w.rstrip(".-") for w in re.findall(r"\$?[A-Za-z0-9][A-Za-z0-9.\-]*", text)]
    strong: list[str] = []
    weak: list[str] = []
    short = len(words) <= 3
    accepted_at: set[int] = set()
    for i, word in enumerate(words):
        if not _TICKER.match(word):
            continue
        bare = word.lstrip("$")
        sym = bare.upper()
        if sym in _CAPS_STOP and not word.startswith("$"):
            continue
        if word.startswith("$") or (bare.isupper() and len(bare) <= 6):
            if sym not in strong:
                strong.append(sym)
            continue
        if bare.lower() in _STOP or len(bare) > 5 or not bare.isalpha():
            continue
        prev = words[i - 1].lower() if i else ""
        nxt = words[i + 1].lower() if i + 1 < len(words) else ""
        if short or prev in _ANCHORS or nxt in _ANCHORS or (i - 1) in accepted_at:
            accepted_at.add(i)
            if sym not in weak:
                weak.append(sym)
    return strong or weak


def _interval(text: str) -> str | None:
    for tok in re.findall(r"\b(\d+\s?(?:m|min|mins|minute|h|hr|hour|d|w)|daily|weekly|hourly)\b", text.lower()):
        try:
            return normalise_interval(tok.replace(" ", "").replace("daily", "1D").replace("weekly", "1W").replace("hourly", "1h"))
        except UserError:
            continue
    return None


def _style(text: str) -> str | None:
    t = text.lower()
    for word, style in (
        ("scalp", "scalp"),
        ("intraday", "intraday"),
        ("day trade", "intraday"),
        ("daytrade", "intraday"),
        ("swing", "swing"),
        ("leaps", "leaps"),
        ("long term", "leaps"),
        ("long-term", "leaps"),
    ):
        if word in t:
            return style
    return None


def _side(text: str) -> str | None:
    """calls or puts when the words name one side (not both)."""
    t = text.lower()
    calls, puts = re.search(r"\bcalls?\b", t), re.search(r"\bputs?\b", t)
    if calls and not puts:
        return "calls"
    if puts and not calls:
        return "puts"
    return None


def _numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in _NUMBER.findall(text)]


def parse_intent(text: str, registry: Registry) -> Intent | None:
    """Map a phrase to a command invocation, or None when no rule matches."""
    t = clean_text(text)
    low = t.lower().strip(" ?!.")
    if not low:
        return None
    syms = symbols_in(t)
    sym = syms[0] if syms else None

    def has(pattern: str) -> bool:
        return re.search(pattern, low) is not None

    if has(
        r"^(reset|start over|forget (it|that|everything|our (chat|conversation))|clear (the |our |my )?(chat|conversation|history))$"
    ):
        return Intent("reset", "/reset")
    if has(r"\b(alerts?|alarms?|notify|ping|tell me|let me know|text me)\b"):
        nums = _numbers(low)
        if sym and nums and not has(r"\b(cancel|delete|remove|clear)\b"):
            return _build(registry, "alert add", [sym, _direction(low) or "?", f"{nums[-1]:g}"])
        if has(r"\b(cancel|delete|remove|clear)\b"):
            return None  # removals are never guessed from loose words: /alert remove ID says exactly which
        if has(r"\b(my|show|list|what)\b.*\balerts?\b|^alerts?$"):
            return _build(registry, "alert list", [])
    if has(r"\bscan\b|\bscanner\b|what'?s setting up|any setups|find (me )?setups"):
        return _build(
            registry, "scan", [s for s in syms if s != "WATCHLIST"] if not has(r"watchlist") else [], {"style": _style(low)}
        )
    if has(r"\bwatchlist\b|\bwatch\b|\bunwatch\b|\bwatching\b"):
        if has(r"\b(remove|delete|drop|unwatch|take)\b") and syms:
            return _build(registry, "watch remove", syms)
        if has(r"\b(add|watch|put|track)\b") and syms and not has(r"\b(show|list|what'?s on|what is on)\b"):
            return _build(registry, "watch add", syms)
        return _build(registry, "watch list", [])
    if has(r"\bsession\b|\bmarket (open|closed|hours)\b|\bis the market\b|\bmarkets? open\b|when does the market"):
        return _build(registry, "session", [])
    if sym and has(r"\b(iv|ivr|ivs|implied vol\w*|volatility|vol|iv rank|iv percentile|vol regime)\b"):
        return _build(registry, "vol", [sym])
    if sym and has(r"\b(contracts?|options?|calls?|puts?|strikes?|which strike)\b"):
        return _build(registry, "contracts", [sym], {"style": _style(low), "side": _side(low)})
    if sym and has(r"\b(chart|graph|candles|picture)\b"):
        return _build(registry, "chart", [sym], {"interval": _interval(low), "style": _style(low)})
    if sym and has(r"\bbars?\b"):
        count = [n for n in _numbers(re.sub(r"\b\d+\s?(m|min|h|d|w)\b", "", low)) if n.is_integer() and 1 <= n <= 200]
        return _build(registry, "bars", [sym, _interval(low) or "5m"] + ([f"{int(count[0])}"] if count else []))
    if sym and has(r"\b(plan|setup|trade idea|idea|entry|should i (buy|sell|short)|how (should|would|do) i trade|play)\b"):
        return _build(registry, "plan", [sym], {"style": _style(low)})
    if sym and has(r"\b(context|news|what'?s going on)\b"):
        return _build(registry, "context", [sym])
    if sym and has(r"\b(quote|price|trading at|at\b|doing|last|bid|ask|where is|how is|how's)\b"):
        return _build(registry, "quote", [sym])
    if sym and len(low.split()) == 1:
        return _build(registry, "quote", [sym])  # a bare ticker: the price
    return None


def _direction(low: str) -> str | None:
    if re.search(r"\b(below|under|drops?|falls?|dips?|loses|breaks down|sinks?|goes under)\b", low):
        return "below"
    if re.search(r"\b(above|over|rises?|climbs?|tops?|breaks out|goes over|reclaims?)\b", low):
        return "above"
    return None  # "breaks", "crosses", "hits": decided against the current price


def _build(registry: Registry, name: str, positional: list[str], options: dict[str, str | None] | None = None) -> Intent:
    """The invocation `/name positional... key=value`, passing an option only if the command has a field for it."""
    cmd = registry.commands.get(name)
    parts = [f"/{name}", *positional]
    dropped: list[str] = []
    for key, value in (options or {}).items():
        if value is None:
            continue
        if cmd is None:
            parts.append(value)
            continue
        spec = next((s for s in cmd.arg_specs() if s.name == key or value in s.choices), None)
        if spec is None:
            dropped.append(value)
            continue
        parts.append(f"{spec.name}={value}")
    return Intent(name, " ".join(parts), tuple(dropped))


class IntentParser:
    """The no-LLM free-text handler: `await parser(ctx, text) -> Reply`, running what it understood through the pipeline."""

    async def __call__(self, ctx: Ctx, text: str) -> Reply:
        registry, pipeline = ctx.services.registry, ctx.services.pipeline
        text = clean_text(text)
        if not text:
            return Reply.error('empty message; try "plan TSLA swing" or type /help')
        if text.startswith("/"):
            return await pipeline.handle(ctx, Invocation.line(text), limit=False)
        intent = parse_intent(text, registry)
        if intent is None:
            return examples(registry)
        if intent.command == "alert add" and " ? " in intent.invocation:
            intent = await _resolve_direction(ctx, intent)
        if intent.command not in registry.commands:
            return Reply(
                title="Not available yet",
                body=f"I read that as `{intent.invocation}`, but /{intent.command} is not available here yet. "
                f"Type /help for what is.\n\n_({LLM_OFF}: I match a few phrasings to commands.)_",
                severity="warning",
                data={"intent": intent.invocation, "available": False},
            )
        # the message already took its rate-limit token; the command it maps to is part of it
        reply = await pipeline.handle(ctx, Invocation.line(intent.invocation), limit=False)
        note = f"_({LLM_OFF}: ran `{intent.invocation}`.)_"
        return reply.model_copy(update={"body": f"{reply.body}\n\n{note}" if reply.body else note})


def examples(registry: Registry) -> Reply:
    """The phrasings understood without an LLM, for commands that exist here."""
    shown = [f"• {p}" for p, cmd in EXAMPLES if cmd in registry.commands]
    return Reply(
        title="I didn't catch that",
        body=(
            "The LLM coach is off, so I understand a few phrasings, for example:\n"
            + "\n".join(shown)
            + "\nor any /command (type /help for the list). "
            "To chat freely, the operator sets OPENAI_API_KEY or OPENAI_BASE_URL."
        ),
        data={"examples": [p for p, cmd in EXAMPLES if cmd in registry.commands], "llm": "off"},
    )


async def _resolve_direction(ctx: Ctx, intent: Intent) -> Intent:
    """For "breaks 200" / "crosses 200": above when the level is over the current price, else below."""
    words = intent.invocation.split()
    sym, level = words[2], float(words[4])
    direction = "above"
    try:
        q = await ctx.market.quote(sym, at=ctx.now())
        direction = "above" if level >= q.last else "below"
    except Exception:  # no quote (bad symbol, provider down): the command itself reports the symbol
        pass
    return Intent(intent.command, intent.invocation.replace(" ? ", f" {direction} ", 1), intent.dropped)
