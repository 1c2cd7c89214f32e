"""Symbol suggestions for autocomplete: the caller's watchlist and the symbols they used recently."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable

from pydantic import BaseModel

from analytics.symbols import validate_symbol
from bot.request import Ctx, Identity
from core.errors import UserError
from storage import watchlists

#: Argument names that hold one ticker or a list of tickers.
SYMBOL_FIELDS = ("symbol", "symbols", "ticker", "tickers", "underlying")


def symbols_in(args: BaseModel) -> list[str]:
    """The tickers an argument model carries (fields named like `symbol`/`symbols`)."""
    out: list[str] = []
    for name in SYMBOL_FIELDS:
        v = getattr(args, name, None)
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out.extend(x for x in v if isinstance(x, str))
    return out


class RecentSymbols:
    """The last few symbols each user asked about, in memory (bounded), newest first."""

    def __init__(self, per_user: int = 10, max_users: int = 50_000) -> None:
        self.per_user = per_user
        self.max_users = max_users
        self._by_user: OrderedDict[tuple[str, str, str], deque[str]] = OrderedDict()

    @staticmethod
    def _key(ident: Identity) -> tuple[str, str, str]:
        return (ident.platform, ident.tenant, ident.user)

    def add(self, ident: Identity, symbols: Iterable[str]) -> None:
        key = self._key(ident)
        dq = self._by_user.get(key)
        if dq is None:
            dq = self._by_user[key] = deque(maxlen=self.per_user)
            while len(self._by_user) > self.max_users:
                self._by_user.popitem(last=False)
        self._by_user.move_to_end(key)
        for s in symbols:
            if s in dq:
                dq.remove(s)
            dq.appendleft(s)

    def get(self, ident: Identity) -> list[str]:
        return list(self._by_user.get(self._key(ident), ()))


async def suggestions(ctx: Ctx, recent: RecentSymbols, current: str, limit: int = 25) -> list[str]:
    """Watchlist and recent symbols matching what is typed so far; what is typed first when it is a valid new ticker."""
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        watched = await watchlists.list_symbols(s, owner)
    typed = current.strip().upper()
    pool = list(dict.fromkeys([*recent.get(ctx.identity), *watched]))
    hits = [p for p in pool if p.startswith(typed)] + [p for p in pool if typed and typed in p and not p.startswith(typed)]
    if typed and typed not in hits:
        try:
            hits.insert(0, validate_symbol(typed))
        except UserError:
            pass
    return hits[:limit]
