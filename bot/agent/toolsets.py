"""Which tools one model call offers: a small core, what the message's words point to, and what the talk used lately.

Offering every tool on every call costs thousands of input tokens and crowds a small model's
context. So a turn starts with:

- the core (`CORE`): what most questions need;
- the command the rule-based intent parser (`bot.intents`) reads in the message;
- the tools a keyword index points to: a family of sub-commands by its nouns (alerts, journal,
  watchlist, orders), narrowed by the action words (add, list, remove, edit, show), and single
  tools by their own words (IV -> vol, "how many shares" -> size);
- the tools the conversation used in its last turns, so a follow-up ("and on the 1h?") keeps them.

The model reaches everything else through `more_tools` (`bot.agent.schemas`). The selection only
decides what is shown: which tools may run is `ToolBox`'s permission check, whatever was offered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.intents import parse_intent
from bot.registry import Registry

#: Offered on every call.
CORE: tuple[str, ...] = ("chart", "plan", "quote")

#: A family's nouns: a message naming the family gets its `list` and `add` (what most mentions want).
FAMILY_WORDS: dict[str, str] = {
    "alert": r"alerts?|alarms?|notify|notification|ping me|let me know|tell me (?:when|if)|text me|heads.?up|"
    r"wake me|warn me|when (?:\$?[a-z]{1,5} )?(?:breaks|crosses|hits|drops|falls|reclaims|loses|goes)",
    "alerts": r"alert (?:runtime|feed|status|delivery)|alerts? (?:not )?(?:firing|pending|delivered|working|status)",
    "journal": r"journal|diary|trade log|log (?:a|my|this|the|that) ?trade|lessons?|mistakes?|note to self|write (?:this |that |it )?down|"
    r"record (?:a|my|this|the|that)|entry #?\d+|entries",
    "watch": r"watch ?lists?|watching|unwatch|keep an eye|\bwatch\b",
    "order": r"orders?|fills?|filled|previews?",
}
#: Action words that add the family's matching sub-command.
ACTION_WORDS: dict[str, str] = {
    "add": r"add|set|create|new|make|put|record|log|write|note|track|watch|alert me|notify me|ping me|let me know|tell me",
    "list": r"list|show|my|what|which",
    "remove": r"remove|delete|cancel|clear|drop|kill|get rid|unwatch|take .{0,20} off|forget",
    "edit": r"edit|change|update|move|modify|raise|lower|adjust|snooze|rename|append|fix|repeat|cooldown|expir\w*",
    "show": r"in full|full entry|entry #?\d+|#\d+|(?:open|read|view|show) (?:the|that|this|it|entry|one|first|last)",
    "status": r"status|running|feed|firing|pending|delivered|working|runtime",
}
#: Single tools by their own words.
TOOL_WORDS: dict[str, str] = {
    "scan": r"scan\w*|setting up|setups|screen\w*|best (?:trades?|ideas?|setups?|plays?)|top (?:trades?|ideas?|setups?|picks?|plays?)|"
    r"what (?:should|can) i (?:trade|buy|play)|opportunit\w+|movers|leaders|megacaps|semis|banks|indices|rank\w*",
    "vol": r"iv|ivr|ivs|implied|volatility|vol|vols|skew|term structure|hv\d*|iv rank|iv percentile|regime|expensive|cheap|premium",
    "contracts": r"contracts?|options?|calls?|puts?|strikes?|expir\w*|expiry|dte|delta|greeks?|leaps|spreads?|premium",
    "size": r"size|sizing|sized|how (?:many|much)|shares|position|lots?|risking|max loss|afford",
    "positions": r"positions?|holdings?|holding|what (?:do )?i (?:hold|own)|my (?:shares|stocks|book)|unreali[sz]ed|p&l|pnl|p/l",
    "portfolio": r"portfolio|exposure|exposed|concentrat\w*|diversif\w*|correlat\w*|beta|sectors?|open risk|heat|net long|net short",
    "risk": r"risk profile|account size|account|risk per trade|risk %|percent (?:risk|of my)|my risk|\d+(?:\.\d+)? ?% risk|risk \d",
    "track": r"track|tracking|follow|monitor|break.?even|move (?:my|the) stop|trail\w*",
    "tracked": r"tracked|tracking|following|auto.?rearm|re-?plans?|adopt",
    "plan_validate": r"validate|check (?:my|this|the) (?:own )?(?:plan|trade|setup|levels)|my (?:entry|stop|targets?)|rate my",
    "untrack": r"untrack|stop (?:tracking|following)|unfollow",
    "scorecard": r"scorecard|score|hit rate|expectancy|win rate|performance|track record|how (?:did|have|are) my|"
    r"my (?:plans|trades|results)|drawdown|results",
    "backtest": r"backtest\w*|back.?test\w*|replay|historically|would (?:it|this|that|they) have|calibrat\w*|brier|"
    r"win rate|hit rate|expectancy",
    "bars": r"bars?|candles?|ohlc|candlesticks?|volume",
    "context": r"context|indicators?|rsi|ema\w*|macd|vwap|atr|trend\w*|levels?|support|resistance|technicals?|"
    r"moving averages?|what'?s going on|momentum|overbought|oversold",
    "session": r"session|market (?:open|closed|hours)|is the market|markets? open|when does|holiday|half.?day|"
    r"pre.?market|after.?hours|closing bell|opening bell",
    # preparing an order from a plan: the tool previews; placing stays the person's click
    "order_plan": r"(?:prepare|draft|preview|stage|set up|ready|write up) (?:\w+ ){0,3}orders?|"
    r"orders? (?:for|from) (?:\w+ ){0,2}plan|(?:place|execute|enter|send) (?:it|that|this|the plan|the trade|an? order)|"
    r"(?:buy|sell|short) (?:it|that|this)",
}

_FAMILY = {k: re.compile(rf"\b(?:{v})\b") for k, v in FAMILY_WORDS.items()}
_ACTION = {k: re.compile(rf"\b(?:{v})\b") for k, v in ACTION_WORDS.items()}
_TOOL = {k: re.compile(rf"\b(?:{v})\b") for k, v in TOOL_WORDS.items()}
#: Sub-commands a family mention brings even without an action word.
_FAMILY_DEFAULT = ("add", "list")


def select_tools(text: str, registry: Registry, recent: Iterable[str] = ()) -> list[str]:
    """The tool names to offer for this message (sorted): core, intent, keywords and recently used ones."""
    names = {c.tool_name for c in registry.all() if c.tool}
    low = " ".join(text.lower().split())
    picked: set[str] = set(CORE)
    intent = parse_intent(text, registry)
    if intent is not None:
        picked.add(intent.command.replace(" ", "_"))
    groups = registry.groups()
    recent = list(recent)
    for family, pattern in _FAMILY.items():
        subs = {c.path[1]: c.tool_name for c in groups.get(family, [])}
        named = pattern.search(low) is not None
        # a follow-up ("open the first one", "make it repeat") acts on the family the talk was using
        if not named and not set(subs.values()) & set(recent):
            continue
        actions = [a for a, p in _ACTION.items() if a in subs and p.search(low)]
        if named:
            chosen = [subs[a] for a in actions or _FAMILY_DEFAULT if a in subs]
            picked.update(chosen or subs.values())  # a family without an add or a list ("alerts status") is itself
        else:
            picked.update(subs[a] for a in actions)
        if actions and "list" in subs:
            picked.add(subs["list"])  # a removal or an edit needs the ids a list shows
    for tool, pattern in _TOOL.items():
        if pattern.search(low):
            picked.add(tool)
    picked.update(recent)
    return sorted(picked & names)
