"""/watch add|remove|list: the caller's watchlist."""

from __future__ import annotations

from pydantic import Field

from bot.args import ArgsModel, SymbolsArg
from bot.registry import command
from bot.removals import must_confirm, propose
from bot.reply import Reply
from bot.request import Ctx
from storage import watchlists


class WatchSymbolsArgs(ArgsModel):
    symbols: SymbolsArg = Field(min_length=1, description="one or more tickers, e.g. TSLA NVDA")


class WatchListArgs(ArgsModel):
    pass


@command("watch add", "Add symbols to your watchlist.", WatchSymbolsArgs, examples=("/watch add TSLA NVDA",), acts=True)
async def watch_add(ctx: Ctx, a: WatchSymbolsArgs) -> Reply:
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        new = await watchlists.add(s, owner, a.symbols)
        now = await watchlists.list_symbols(s, owner)
    already = [x for x in a.symbols if x not in new]
    body = f"Added {', '.join(new)}." if new else "Nothing new."
    if already:
        body += f" Already watching {', '.join(dict.fromkeys(already))}."
    return Reply(
        title="Watchlist",
        body=f"{body}\nNow watching: {', '.join(now)}",
        severity="success",
        data={"added": new, "watchlist": now},
    )


@command("watch remove", "Remove symbols from your watchlist.", WatchSymbolsArgs, examples=("/watch remove TSLA",), acts=True)
async def watch_remove(ctx: Ctx, a: WatchSymbolsArgs) -> Reply:
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        present = set(await watchlists.list_symbols(s, owner))
        listed = [x for x in dict.fromkeys(a.symbols) if x in present]
        # the coach's model only proposes removing several: the person confirms exactly this list
        proposing = must_confirm(ctx, len(listed))
        gone = [] if proposing else await watchlists.remove(s, owner, listed)
        now = await watchlists.list_symbols(s, owner)
    missing = [x for x in a.symbols if x not in present]
    if proposing:
        reply = await propose(ctx, "watchlist", listed, listed)
        if missing:
            reply.body += f"\nNot on your list: {', '.join(dict.fromkeys(missing))}."
        return reply
    body = f"Removed {', '.join(gone)}." if gone else "Nothing removed."
    if missing:
        body += f" Not on your list: {', '.join(dict.fromkeys(missing))}."
    return Reply(
        title="Watchlist", body=f"{body}\nNow watching: {', '.join(now) or 'nothing'}", data={"removed": gone, "watchlist": now}
    )


@command("watch list", "Show your watchlist.", WatchListArgs, examples=("/watch list",))
async def watch_list(ctx: Ctx, a: WatchListArgs) -> Reply:
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        now = await watchlists.list_symbols(s, owner)
    body = ", ".join(now) if now else "Your watchlist is empty. Add with `/watch add TSLA NVDA`."
    return Reply(title="Watchlist", body=body, data={"watchlist": now})
