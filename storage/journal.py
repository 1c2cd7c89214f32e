"""The trading journal and plan outcomes: per tenant and owner, written by people, the broker and the plan tracker.

Two tables:

* `journal_entries`: free text about a symbol or a plan, with tags, an optional PNG
  screenshot (the plan chart at the time of writing, stored in the row so an entry is never
  half-written across a file and a row) and a `source` saying who wrote it: `manual` (the
  user), `broker` (an order or fill, journaled automatically) or `plan` (a tracked plan's
  outcome, journaled automatically). `data` keeps the structured payload of automatic entries.
* `plan_outcomes`: one row per (owner, plan id, version): what happened to a tracked plan
  (`analytics.outcomes.TradeOutcome`). `/scorecard` computes its statistics from these rows.

Other features call `add_entry` (fills, orders) and `record_outcome` (tracked plans); both only
add to the caller's transaction, so the journal row commits or rolls back with the event that
caused it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, deferred, mapped_column

from analytics.symbols import validate_symbol
from core.clock import utc_now
from core.errors import NotFoundError, UserError
from core.values import as_utc, to_float
from storage.alerts import FINISHED_TRACKED, TrackedPlan
from storage.base import Base, Owned
from storage.identity import Owner, owned_by

if TYPE_CHECKING:  # imported where outcomes are read or written: importing the journal (for its entries) loads no numpy
    from analytics.outcomes import TradeOutcome

SOURCES: tuple[str, ...] = ("manual", "broker", "plan")
#: Longest entry text kept (a chat message is at most a few thousand characters).
MAX_TEXT = 4000
MAX_TAGS = 12
MAX_TAG_LEN = 32
#: Largest screenshot stored with an entry (a plan chart PNG is about 100-300 KB).
MAX_SCREENSHOT = 5 * 1024 * 1024
#: Largest structured payload (JSON characters) an automatic entry may carry.
MAX_DATA_CHARS = 20_000
#: Outcome statuses that no later bar can change.
FINAL_OUTCOMES = ("closed", "no_entry")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_\-.]*$")
_PLAN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.:]{0,63}$")


class JournalEntry(Owned, Base):
    """One journal entry."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        Index("ix_journal_entries_owner_created", "tenant_id", "owner_id", "created_at"),
        Index("ix_journal_entries_owner_plan", "tenant_id", "owner_id", "plan_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str | None] = mapped_column(String(16), default=None)
    text: Mapped[str] = mapped_column(Text)
    plan_id: Mapped[str | None] = mapped_column(String(64), default=None)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: The PNG bytes; deferred so listing entries never loads images.
    screenshot: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, default=None))
    has_screenshot: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    edited_at: Mapped[datetime | None] = mapped_column(default=None)


class PlanOutcomeRow(Owned, Base):
    """What happened to one tracked plan version: the figures `/scorecard` aggregates."""

    __tablename__ = "plan_outcomes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "owner_id", "plan_id", "version", name="uq_plan_outcomes_owner_plan_version"),
        Index("ix_plan_outcomes_owner_strategy", "tenant_id", "owner_id", "strategy"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    symbol: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(48))
    style: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(8))
    #: The plan's quality grade (the column kept its first name, from before quality and odds were told apart).
    confidence: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    hit_t1: Mapped[bool | None] = mapped_column(Boolean, default=None)
    targets_hit: Mapped[int] = mapped_column(Integer, default=0)
    r_multiple: Mapped[float | None] = mapped_column(Float, default=None)
    mae_r: Mapped[float | None] = mapped_column(Float, default=None)
    mfe_r: Mapped[float | None] = mapped_column(Float, default=None)
    planned_at: Mapped[datetime] = mapped_column()
    entered_at: Mapped[datetime | None] = mapped_column(default=None)
    exited_at: Mapped[datetime | None] = mapped_column(default=None)
    time_in_trade_s: Mapped[float | None] = mapped_column(Float, default=None)
    #: The whole outcome as JSON (event sequence included), for re-reading it as a model.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class EntryView(BaseModel):
    """A journal entry as commands and exports show it (no image bytes)."""

    id: int
    symbol: str | None
    text: str
    plan_id: str | None
    tags: list[str]
    source: str
    data: dict[str, Any] | None = None
    has_screenshot: bool = False
    created_at: datetime
    edited_at: datetime | None = None


# ---------------------------------------------------------------------------- validation


def clean_tags(tags: Iterable[str] | str | None) -> list[str]:
    """Tags lower-cased, without a leading '#', de-duplicated in order; UserError for bad ones."""
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = re.split(r"[,\s]+", tags)
    out: list[str] = []
    for raw in tags:
        if not isinstance(raw, str):
            raise UserError("tags must be words like breakout or fomo")
        tag = raw.strip().lstrip("#").lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LEN or not _TAG.match(tag):
            shown = tag if len(tag) <= 20 else tag[:20] + "…"
            raise UserError(
                f"invalid tag {shown!r}: use up to {MAX_TAG_LEN} letters, digits, '-', '_' or '.' (e.g. breakout, fomo)"
            )
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise UserError(f"at most {MAX_TAGS} tags per entry (got {len(out)})")
    return out


def clean_text(text: object) -> str:
    """The entry text, stripped; UserError when empty or too long."""
    if not isinstance(text, str) or not text.strip():
        raise UserError("journal text is empty; write what you saw, did or felt")
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise UserError(f"journal text is too long ({len(text)} characters); keep it under {MAX_TEXT}")
    return text


def clean_plan_id(plan_id: object) -> str | None:
    """A plan id as given (letters, digits, '-', '_', '.', ':'), or None; UserError when malformed."""
    if plan_id is None:
        return None
    if not isinstance(plan_id, str) or not _PLAN_ID.match(plan_id.strip()):
        shown = str(plan_id)[:20]
        raise UserError(f"invalid plan id {shown!r}: plan ids look like P-1A2B3C (letters, digits, '-')")
    return plan_id.strip()


def _clean_source(source: str) -> str:
    if source not in SOURCES:
        raise UserError(f"unknown journal source {source!r}; accepted: {', '.join(SOURCES)}")
    return source


def _clean_data(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A JSON-safe copy of `data` (NaN/inf become None), bounded in size."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise UserError("journal data must be a JSON object")
    import json

    from pydantic_core import to_jsonable_python

    safe: dict[str, Any] = _finite(to_jsonable_python(data, fallback=str))
    if len(json.dumps(safe, separators=(",", ":"))) > MAX_DATA_CHARS:
        raise UserError(f"journal data is too large; keep it under {MAX_DATA_CHARS} characters of JSON")
    return safe


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _view(row: JournalEntry) -> EntryView:
    return EntryView(
        id=row.id,
        symbol=row.symbol,
        text=row.text,
        plan_id=row.plan_id,
        tags=list(row.tags or []),
        source=row.source,
        data=row.data,
        has_screenshot=bool(row.has_screenshot),
        created_at=as_utc(row.created_at),
        edited_at=as_utc(row.edited_at),
    )


# ---------------------------------------------------------------------------- entries


async def add_entry(
    session: AsyncSession,
    owner: Owner,
    *,
    symbol: str | None,
    text: str,
    plan_id: str | None = None,
    tags: Sequence[str] = (),
    source: str = "manual",
    data: dict[str, Any] | None = None,
    screenshot: bytes | None = None,
    created_at: datetime | None = None,
) -> int:
    """Add a journal entry in the caller's transaction and return its id; UserError for bad input.

    Automatic writers pass `source="broker"` (orders, fills) or `source="plan"` (tracked-plan
    outcomes) and put the structured event in `data`.
    """
    source = _clean_source(source)
    if source == "manual":
        sym, body, pid, tag_list = (
            (validate_symbol(symbol) if symbol else None),
            clean_text(text),
            clean_plan_id(plan_id),
            clean_tags(tags),
        )
        payload = _clean_data(data)
    else:
        # an automatic entry rides in the caller's transaction (an order, a plan outcome): odd input is
        # kept as data, never raised, so journaling can never undo the event it records
        sym, body, pid, tag_list, payload = _lenient(symbol, text, plan_id, tags, data)
    row = JournalEntry(
        tenant_id=owner.tenant_id,
        owner_id=owner.user_id,
        symbol=sym,
        text=body,
        plan_id=pid,
        tags=tag_list,
        source=source,
        data=payload,
        created_at=as_utc(created_at) or utc_now(),
    )
    if screenshot is not None:
        _check_png(screenshot)
        row.screenshot = screenshot
        row.has_screenshot = True
    session.add(row)
    await session.flush()
    return row.id


def _lenient(
    symbol: Any, text: Any, plan_id: Any, tags: Any, data: Any
) -> tuple[str | None, str, str | None, list[str], dict[str, Any] | None]:
    """(symbol, text, plan id, tags, data) for an automatic entry: what does not validate moves into data."""
    extra: dict[str, Any] = {}
    try:
        sym = validate_symbol(symbol) if symbol else None
    except UserError:
        sym, extra["symbol"] = None, str(symbol)[:64]
    body = str(text or "").strip() or "(no text)"
    if len(body) > MAX_TEXT:
        body = body[: MAX_TEXT - 1] + "…"
    try:
        pid = clean_plan_id(plan_id)
    except UserError:
        pid, extra["plan_id"] = None, str(plan_id)[:64]
    kept: list[str] = []
    for t in [tags] if isinstance(tags, str) else list(tags or []):
        try:
            kept.extend(x for x in clean_tags([t]) if x not in kept)
        except UserError:
            continue
    kept = kept[:MAX_TAGS]
    try:
        payload = _clean_data(data) if isinstance(data, dict) or data is None else {"value": str(data)[:1000]}
    except UserError:
        payload = {"note": "payload too large to keep"}
    if extra:
        payload = {**(payload or {}), "unparsed": extra}
    return sym, body, pid, kept, payload


def _check_png(data: bytes) -> None:
    if not isinstance(data, (bytes, bytearray)) or not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise UserError("a journal screenshot must be a PNG image")
    if len(data) > MAX_SCREENSHOT:
        raise UserError(f"screenshot too large ({len(data) // 1024} KB); at most {MAX_SCREENSHOT // 1024 // 1024} MB")


async def _row(session: AsyncSession, owner: Owner, entry_id: int) -> JournalEntry:
    row = (
        await session.execute(select(JournalEntry).where(JournalEntry.id == entry_id, owned_by(JournalEntry, owner)))
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no journal entry #{entry_id} in your journal; see /journal list")
    return row


async def get_entry(session: AsyncSession, owner: Owner, entry_id: int) -> EntryView:
    """One of the owner's entries; NotFoundError when it is not theirs or does not exist."""
    return _view(await _row(session, owner, entry_id))


async def get_screenshot(session: AsyncSession, owner: Owner, entry_id: int) -> bytes | None:
    """The PNG stored with one of the owner's entries, or None."""
    await _row(session, owner, entry_id)
    return (
        await session.execute(select(JournalEntry.screenshot).where(JournalEntry.id == entry_id, owned_by(JournalEntry, owner)))
    ).scalar_one_or_none()


_UNSET: Any = object()


async def edit_entry(
    session: AsyncSession,
    owner: Owner,
    entry_id: int,
    *,
    text: str | None = None,
    tags: Sequence[str] | None = None,
    symbol: str | None = _UNSET,
    plan_id: str | None = _UNSET,
    append: bool = False,
) -> EntryView:
    """Change an entry's text (replace, or append a line), tags, symbol or plan id; stamps `edited_at`."""
    row = await _row(session, owner, entry_id)
    changed = False
    if text is not None:
        new = clean_text(text)
        new = clean_text(f"{row.text}\n{new}") if append else new
        changed |= new != row.text
        row.text = new
    if tags is not None:
        new_tags = clean_tags(tags)
        changed |= new_tags != list(row.tags or [])
        row.tags = new_tags
    if symbol is not _UNSET:
        new_sym = validate_symbol(symbol) if symbol else None
        changed |= new_sym != row.symbol
        row.symbol = new_sym
    if plan_id is not _UNSET:
        new_pid = clean_plan_id(plan_id)
        changed |= new_pid != row.plan_id
        row.plan_id = new_pid
    if changed:
        row.edited_at = utc_now()
    await session.flush()
    return _view(row)


async def remove_entry(session: AsyncSession, owner: Owner, entry_id: int) -> EntryView:
    """Delete one of the owner's entries; returns what was deleted."""
    row = await _row(session, owner, entry_id)
    view = _view(row)
    await session.execute(delete(JournalEntry).where(JournalEntry.id == entry_id, owned_by(JournalEntry, owner)))
    return view


async def list_entries(
    session: AsyncSession,
    owner: Owner,
    *,
    symbol: str | None = None,
    tag: str | None = None,
    plan_id: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 20,
    newest_first: bool = True,
) -> list[EntryView]:
    """The owner's entries matching the filters, newest first by default; `limit=None` for all."""
    q = select(JournalEntry).where(owned_by(JournalEntry, owner))
    if symbol:
        q = q.where(JournalEntry.symbol == validate_symbol(symbol))
    if plan_id:
        q = q.where(JournalEntry.plan_id == clean_plan_id(plan_id))
    if source:
        q = q.where(JournalEntry.source == _clean_source(source))
    if since is not None:
        q = q.where(JournalEntry.created_at >= as_utc(since))
    if until is not None:
        q = q.where(JournalEntry.created_at <= as_utc(until))
    order = (
        (JournalEntry.created_at.desc(), JournalEntry.id.desc()) if newest_first else (JournalEntry.created_at, JournalEntry.id)
    )
    q = q.order_by(*order)
    want = clean_tags([tag])[0] if tag and clean_tags([tag]) else None
    if want is None and limit is not None:
        q = q.limit(limit)
    rows = [_view(r) for r in (await session.execute(q)).scalars()]
    if want is not None:
        # tags are a JSON list; filtering here keeps the query portable across SQLite and PostgreSQL
        rows = [r for r in rows if want in r.tags]
        if limit is not None:
            rows = rows[:limit]
    return rows


async def count_entries(session: AsyncSession, owner: Owner) -> int:
    """How many entries the owner has."""
    return int(
        (await session.execute(select(func.count()).select_from(JournalEntry).where(owned_by(JournalEntry, owner)))).scalar_one()
    )


# ---------------------------------------------------------------------------- plan outcomes


def outcome_text(o: TradeOutcome) -> str:
    """One line describing an outcome, as the automatic journal entry says it."""
    head = f"{o.symbol} {o.strategy} {o.direction} plan {o.plan_id}"
    if o.status == "no_entry":
        why = "invalidated before entry" if any(e.kind == "invalidated" for e in o.events) else "entry never filled"
        return f"{head}: {why}."
    path = "T1 before the stop" if o.first == "t1" else ("stopped before T1" if o.first == "stop" else "neither T1 nor the stop")
    hits = f", {o.targets_hit} target{'s' if o.targets_hit != 1 else ''} hit" if o.targets_hit else ""
    r = f"{o.r_multiple:+.2f}R" if o.r_multiple is not None else "?R"
    held = _duration(o.time_in_trade_s) if o.time_in_trade_s is not None else "?"
    state = {"stop": "stopped out", "breakeven": "out at break-even", "target": "final target", "time": "time exit"}.get(
        o.exit_reason or "", "still open"
    )
    return f"{head}: {path}{hits}; {state}, {r} in {held} (MAE {o.mae_r or 0:.2f}R, MFE {o.mfe_r or 0:.2f}R)."


def _duration(seconds: float) -> str:
    minutes = int(round(seconds / 60.0))
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


async def record_outcome(
    session: AsyncSession,
    owner: Owner,
    plan_id: str,
    outcome: TradeOutcome | dict[str, Any],
    *,
    journal: bool = True,
) -> int:
    """Store (insert or update) the outcome of the owner's plan `plan_id` and return the row id.

    `outcome` is an `analytics.outcomes.TradeOutcome` (or its JSON dict), e.g. from
    `analytics.outcomes.evaluate_plan(plan, bars)` once a tracked plan has ended. With
    `journal=True` the first time the plan reaches a final state (closed, or never entered)
    a `source="plan"` journal entry describes it, in the same transaction; recording the same
    final outcome again does not journal it twice.
    """
    from analytics.outcomes import TradeOutcome

    o = outcome if isinstance(outcome, TradeOutcome) else TradeOutcome.model_validate(outcome)
    pid = clean_plan_id(plan_id) or o.plan_id
    if pid != o.plan_id:
        o = o.model_copy(update={"plan_id": pid})
    row = (
        await session.execute(
            select(PlanOutcomeRow).where(
                owned_by(PlanOutcomeRow, owner), PlanOutcomeRow.plan_id == pid, PlanOutcomeRow.version == o.version
            )
        )
    ).scalar_one_or_none()
    was_final = row is not None and row.status in FINAL_OUTCOMES
    values = dict(
        symbol=o.symbol,
        strategy=o.strategy[:48],
        style=o.style,
        direction=o.direction,
        confidence=float(o.quality),
        status=o.status,
        hit_t1=o.hit_t1,
        targets_hit=o.targets_hit,
        r_multiple=to_float(o.r_multiple),
        mae_r=to_float(o.mae_r),
        mfe_r=to_float(o.mfe_r),
        planned_at=as_utc(o.planned_at),
        entered_at=as_utc(o.entered_at),
        exited_at=as_utc(o.exited_at),
        time_in_trade_s=to_float(o.time_in_trade_s),
        data=_finite(o.model_dump(mode="json")),
        updated_at=utc_now(),
    )
    if row is None:
        row = PlanOutcomeRow(tenant_id=owner.tenant_id, owner_id=owner.user_id, plan_id=pid, version=o.version, **values)
        session.add(row)
    else:
        for k, v in values.items():
            setattr(row, k, v)
    await session.flush()
    if journal and o.status in FINAL_OUTCOMES and not was_final:
        await add_entry(
            session,
            owner,
            symbol=o.symbol,
            text=outcome_text(o),
            plan_id=pid,
            tags=["outcome", o.strategy.lower()[:MAX_TAG_LEN]] if _TAG.match(o.strategy.lower()) else ["outcome"],
            source="plan",
            data={
                "kind": "outcome",
                "version": o.version,
                "status": o.status,
                "exit_reason": o.exit_reason,
                "r": to_float(o.r_multiple),
                "hit_t1": o.hit_t1,
                "probability": o.probability,
                "quality": o.quality,
            },
        )
    return row.id


async def list_outcomes(
    session: AsyncSession,
    owner: Owner,
    *,
    strategy: str | None = None,
    symbol: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[TradeOutcome]:
    """The owner's recorded plan outcomes, oldest plan first, optionally for one strategy or symbol."""
    from analytics.outcomes import TradeOutcome

    q = select(PlanOutcomeRow.data).where(owned_by(PlanOutcomeRow, owner))
    if strategy:
        q = q.where(PlanOutcomeRow.strategy == strategy)
    if symbol:
        q = q.where(PlanOutcomeRow.symbol == validate_symbol(symbol))
    if since is not None:
        q = q.where(PlanOutcomeRow.planned_at >= as_utc(since))
    q = q.order_by(PlanOutcomeRow.planned_at, PlanOutcomeRow.id)
    if limit is not None:
        q = q.limit(limit)
    out = []
    for (data,) in await session.execute(q):
        try:
            out.append(TradeOutcome.model_validate(data))
        except ValueError:  # a row written by an older shape: skip it rather than fail the scorecard
            continue
    return out


async def outcome_strategies(session: AsyncSession, owner: Owner) -> list[str]:
    """Strategy ids the owner has recorded outcomes for."""
    rows = await session.execute(
        select(PlanOutcomeRow.strategy).where(owned_by(PlanOutcomeRow, owner)).distinct().order_by(PlanOutcomeRow.strategy)
    )
    return [r[0] for r in rows]


async def finished_tracked_without_outcome(
    session: AsyncSession, owner: Owner | None = None, *, limit: int = 200
) -> list[TrackedPlan]:
    """Tracked plans the market ended that have no final outcome yet, longest finished first (every owner's when None)."""
    po = PlanOutcomeRow
    final = and_(
        po.tenant_id == TrackedPlan.tenant_id,
        po.owner_id == TrackedPlan.owner_id,
        po.plan_id == TrackedPlan.plan_id,
        po.status.in_(FINAL_OUTCOMES),
    )
    q = select(TrackedPlan).outerjoin(po, final).where(TrackedPlan.status.in_(FINISHED_TRACKED), po.id.is_(None))
    if owner is not None:
        q = q.where(owned_by(TrackedPlan, owner))
    q = q.order_by(TrackedPlan.updated_at, TrackedPlan.id).limit(limit)
    return list((await session.execute(q)).scalars())
