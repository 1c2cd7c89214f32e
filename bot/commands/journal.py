"""/journal add|list|show|edit|remove: the caller's trading journal.

Entries are free text about a symbol or a plan, with tags (`--tags a,b` or `#hashtags` in the
text). A leading `$TSLA` or upper-case ticker names the symbol. With a plan id, the plan's
chart is rendered and stored with the entry as a screenshot (when the chart service runs).
Broker fills and tracked-plan outcomes land here on their own (source broker / plan).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.symbols import validate_symbol
from bot.args import ArgsModel, SymbolArg
from bot.registry import command
from bot.removals import must_confirm, propose
from bot.reply import Attachment, Reply, ReplyField
from bot.request import Ctx
from core.errors import CoachError, UserError
from storage import journal
from storage.identity import Owner

# Plans, charts and the renderers (pandas, numpy) are imported where they are used: declaring the
# commands, as a chat front does to validate arguments, loads none of them.
if TYPE_CHECKING:
    from analytics.models import Plan

log = structlog.get_logger("coach.journal")

SOURCE_MARK = {"manual": "✎", "broker": "⇄", "plan": "◎"}
_HASHTAG = re.compile(r"(?:^|\s)#([A-Za-z0-9][A-Za-z0-9_\-.]{0,31})\b")
#: A leading `$tsla` (any case, any length) or an upper-case word of two or more characters.
_LEAD_TICKER = re.compile(r"^(?:\$([A-Za-z][A-Za-z0-9.\-]{0,9})|([A-Z][A-Z0-9.\-]{1,9}))(?=\s|$|[,:;])")


def _tags(v: object) -> object:
    if isinstance(v, str):
        return [p for p in re.split(r"[,\s]+", v) if p]
    return v


class AddArgs(ArgsModel):
    text: str = Field(
        description="what you saw, did or felt; a leading ticker ($TSLA or TSLA) and #tags are picked up",
        json_schema_extra={"greedy": True},
        max_length=journal.MAX_TEXT + 100,
    )
    symbol: SymbolArg | None = Field(None, description="ticker the entry is about (else taken from a leading ticker)")
    tags: list[str] = Field(default_factory=list, description="tags, e.g. fomo,breakout (or #tags in the text)")
    plan: str | None = Field(None, max_length=64, description="plan id the entry is about, e.g. P-1A2B3C (attaches its chart)")

    _split = field_validator("tags", mode="before")(_tags)


class ListArgs(ArgsModel):
    symbol: SymbolArg | None = Field(None, description="only entries about this ticker")
    tag: str | None = Field(None, max_length=40, description="only entries with this tag")
    plan: str | None = Field(None, max_length=64, description="only entries about this plan id")
    source: str | None = Field(None, description="only manual, broker or plan entries")
    limit: int = Field(10, ge=1, le=50, description="how many, newest first (1-50)")


class IdArgs(ArgsModel):
    id: int = Field(ge=1, description="entry number, as /journal list shows it")


class EditArgs(ArgsModel):
    id: int = Field(ge=1, description="entry number, as /journal list shows it")
    text: str | None = Field(
        None,
        description="new text (or the line to add with --append)",
        json_schema_extra={"greedy": True},
        max_length=journal.MAX_TEXT + 100,
    )
    tags: list[str] | None = Field(None, description="replace the tags, e.g. lesson,patience")
    symbol: str | None = Field(None, max_length=16, description="set the ticker (`none` clears it)")
    plan: str | None = Field(None, max_length=64, description="set the plan id (`none` clears it)")
    append: bool = Field(False, description="add the text as a new line instead of replacing")

    _split = field_validator("tags", mode="before")(_tags)


class EntryList(BaseModel):
    entries: list[journal.EntryView]
    total: int


def split_text(text: str, symbol: str | None) -> tuple[str | None, str, list[str]]:
    """(symbol, text, hashtags): a leading `$TSLA` or upper-case ticker becomes the symbol when none was given."""
    text = text.strip()
    if symbol is None:
        m = _LEAD_TICKER.match(text)
        if m:
            try:
                symbol = validate_symbol(m.group(1) or m.group(2))
                rest = text[m.end() :].lstrip(" ,:;-–—")
                text = rest or text
            except UserError:
                pass
    tags = [t.lower() for t in _HASHTAG.findall(text)]
    return symbol, text, tags


def _line(e: journal.EntryView, width: int = 110) -> str:
    from renderers.text import fmt_time

    text = " ".join(e.text.split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    bits = [f"#{e.id}", fmt_time(e.created_at), SOURCE_MARK.get(e.source, "·")]
    if e.symbol:
        bits.append(e.symbol)
    if e.plan_id:
        bits.append(e.plan_id)
    if e.tags:
        bits.append("[" + ", ".join(e.tags) + "]")
    if e.has_screenshot:
        bits.append("📷")
    return " · ".join(bits) + f"\n    {text}"


async def _find_plan(s: AsyncSession, owner: Owner, plan_id: str) -> Plan | None:
    """The plan with this id the owner may see: one /plan stored for them (or shared in their workspace), or one they track."""
    from analytics.models import Plan
    from storage import alerts
    from storage import plans as plan_store

    plan = await plan_store.get_plan(s, owner, plan_id)
    if plan is not None:
        return plan
    row = await alerts.get_tracked(s, owner, plan_id)
    if row is None:
        return None
    try:
        return Plan.model_validate(row.plan)
    except ValueError:
        return None


def _plan_id(text: str | None) -> str | None:
    """A plan id as the coach writes them (`1a2b3c` -> `P-1A2B3C`), or UserError."""
    from storage.plans import normalise_plan_id

    return normalise_plan_id(text) if text else None


async def _screenshot(ctx: Ctx, plan: Plan) -> tuple[bytes | None, str]:
    """The plan's chart as PNG bytes (or None and why not)."""
    service = ctx.services.charts
    try:
        from analytics.sessions import session_info
        from bot.chart_service import fetch_bars

        bars = await fetch_bars(ctx.market, plan.symbol, plan.interval, ctx.now())
        if bars.df.empty:
            return None, f"no {plan.interval} bars for {plan.symbol}"
        att = await service.plan_chart(
            symbol=plan.symbol,
            interval=plan.interval,
            bars=bars.df,
            plan=plan,
            levels=[],
            as_of=bars.as_of,
            session_status=session_info(bars.as_of).status,
            source=bars.source,
            style=plan.style,
        )
        return att.data, ""
    except CoachError as exc:
        return None, exc.message
    except Exception:  # a chart must never stop the entry from being written
        log.exception("journal_screenshot_failed", plan=plan.plan_id)
        return None, "the chart could not be drawn"


@command(
    "journal add",
    "Write a journal entry (free text, optional symbol, tags and plan id).",
    AddArgs,
    acts=True,
    examples=(
        "/journal add TSLA chased the open, no plan #fomo",
        "/journal add waited for the retest --plan P-1A2B3C --tags patience",
    ),
    tool_hint="Use when the user wants to record a trade, a mistake or a lesson. Returns the stored entry.",
    result="storage.journal:EntryView",
)
async def journal_add(ctx: Ctx, a: AddArgs) -> Reply:
    symbol, text, hashtags = split_text(a.text, a.symbol)
    tags = journal.clean_tags([*a.tags, *hashtags])
    plan_id = _plan_id(a.plan)
    png, note = None, ""
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        plan = await _find_plan(s, owner, plan_id) if plan_id else None
    if plan_id and plan is None:
        note = f"plan {plan_id} is not one of your plans, so no chart was attached"
    elif plan is not None:
        symbol = symbol or plan.symbol
        png, why = await _screenshot(ctx, plan)
        if png is None:
            note = f"no chart attached: {why}"
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        entry_id = await journal.add_entry(
            s, owner, symbol=symbol, text=text, plan_id=plan_id, tags=tags, screenshot=png, created_at=ctx.services.clock()
        )
        entry = await journal.get_entry(s, owner, entry_id)
    body = f"Saved entry #{entry.id}" + (f" about {entry.symbol}" if entry.symbol else "") + "."
    if note:
        body += f"\n{note}."
    fields = [ReplyField(name="Tags", value=", ".join(entry.tags))] if entry.tags else []
    if entry.plan_id:
        fields.append(ReplyField(name="Plan", value=entry.plan_id))
    atts = [Attachment(filename=f"journal-{entry.id}.png", data=png, description=f"chart of plan {plan_id}")] if png else []
    return Reply(title="Journal", body=body, fields=fields, severity="success", attachments=atts, data=entry)


@command(
    "journal list",
    "Your recent journal entries (filter by symbol, tag, plan or source).",
    ListArgs,
    result="bot.commands.journal:EntryList",
    examples=("/journal list", "/journal list TSLA", "/journal list --tag fomo --limit 20"),
)
async def journal_list(ctx: Ctx, a: ListArgs) -> Reply:
    if a.source is not None and a.source.lower() not in journal.SOURCES:
        raise UserError(f"unknown source {a.source[:16]!r}; accepted: {', '.join(journal.SOURCES)}")
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        entries = await journal.list_entries(
            s,
            owner,
            symbol=a.symbol,
            tag=a.tag,
            plan_id=_plan_id(a.plan),
            source=a.source.lower() if a.source else None,
            limit=a.limit,
        )
        total = await journal.count_entries(s, owner)
    if not entries:
        body = "Nothing matches." if total else "Your journal is empty. Write one with `/journal add TSLA chased the open #fomo`."
        return Reply(title="Journal", body=body, data=EntryList(entries=[], total=total), ephemeral=True)
    body = "\n".join(_line(e) for e in entries)
    legend = "✎ you · ⇄ broker · ◎ plan outcome"
    return Reply(
        title=f"Journal · {len(entries)} of {total}",
        body=f"{body}\n{legend}",
        data=EntryList(entries=entries, total=total),
        ephemeral=True,
    )


@command(
    "journal show",
    "One journal entry in full, with its chart if it has one.",
    IdArgs,
    examples=("/journal show 12",),
    result="storage.journal:EntryView",
)
async def journal_show(ctx: Ctx, a: IdArgs) -> Reply:
    from renderers.text import fmt_time

    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        e = await journal.get_entry(s, owner, a.id)
        png = await journal.get_screenshot(s, owner, a.id) if e.has_screenshot else None
    fields = [ReplyField(name="Written", value=fmt_time(e.created_at)), ReplyField(name="Source", value=e.source)]
    if e.edited_at:
        fields.append(ReplyField(name="Edited", value=fmt_time(e.edited_at)))
    if e.symbol:
        fields.append(ReplyField(name="Symbol", value=e.symbol))
    if e.plan_id:
        fields.append(ReplyField(name="Plan", value=e.plan_id))
    if e.tags:
        fields.append(ReplyField(name="Tags", value=", ".join(e.tags)))
    atts = [Attachment(filename=f"journal-{e.id}.png", data=png, description=f"chart stored with entry {e.id}")] if png else []
    return Reply(title=f"Journal #{e.id}", body=e.text, fields=fields, attachments=atts, data=e, ephemeral=True)


def _maybe_none(v: str | None) -> str | None:
    return None if v is None or v.strip().lower() in ("none", "-", "") else v


@command(
    "journal edit",
    "Change a journal entry's text, tags, symbol or plan id.",
    EditArgs,
    acts=True,
    examples=(
        "/journal edit 12 held to T2 this time",
        "/journal edit 12 --append lesson: size down",
        "/journal edit 12 --tags lesson",
    ),
    result="storage.journal:EntryView",
)
async def journal_edit(ctx: Ctx, a: EditArgs) -> Reply:
    if a.text is None and a.tags is None and a.symbol is None and a.plan is None:
        raise UserError("nothing to change; give new text, --tags, --symbol or --plan, e.g. /journal edit 12 held to T2")
    kwargs: dict[str, Any] = {}
    if a.symbol is not None:
        kwargs["symbol"] = _maybe_none(a.symbol)
    if a.plan is not None:
        kwargs["plan_id"] = _plan_id(_maybe_none(a.plan))
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        e = await journal.edit_entry(s, owner, a.id, text=a.text, tags=a.tags, append=a.append, **kwargs)
    return Reply(
        title=f"Journal #{e.id} updated",
        body=e.text,
        severity="success",
        fields=[ReplyField(name="Tags", value=", ".join(e.tags) or "—")],
        data=e,
    )


@command("journal remove", "Delete a journal entry.", IdArgs, examples=("/journal remove 12",), acts=True)
async def journal_remove(ctx: Ctx, a: IdArgs) -> Reply:
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
        e = await journal.get_entry(s, owner, a.id)
        # one entry removes directly, but a coach turn that already removed something only proposes
        proposing = must_confirm(ctx, 1)
        if not proposing:
            e = await journal.remove_entry(s, owner, a.id)
    if proposing:
        return await propose(ctx, "journal", [e.id], [_line(e)])
    return Reply(title=f"Journal #{e.id} removed", body=_line(e), data={"removed": e.id})


def entries_csv_rows(entries: list[journal.EntryView]) -> list[list[str]]:
    """Entries as CSV rows (header first): what `coach journal export --csv` writes."""
    import json

    rows = [["id", "created_at", "edited_at", "source", "symbol", "plan_id", "tags", "text", "has_screenshot", "data"]]
    for e in entries:
        rows.append(
            [
                str(e.id),
                e.created_at.isoformat(),
                e.edited_at.isoformat() if e.edited_at else "",
                e.source,
                e.symbol or "",
                e.plan_id or "",
                ";".join(e.tags),
                e.text,
                "yes" if e.has_screenshot else "",
                json.dumps(e.data, separators=(",", ":"), sort_keys=True) if e.data else "",
            ]
        )
    return rows
