"""Render a Reply as Discord messages: embeds (API JSON), files and buttons, within Discord's limits.

The output is plain data in the shape of Discord's REST API, so the same rendering feeds the
discord.py client (via `discord.Embed.from_dict`) and a bare webhook POST. Anything that does
not fit one message continues in the next; nothing is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.reply import Action, Attachment, Reply
from bot.surfaces import split as L

COLOURS = {
    "long": 0x2ECC71,
    "short": 0xE74C3C,
    "info": 0x3498DB,
    "success": 0x2ECC71,
    "warning": 0xF1C40F,
    "error": 0xE74C3C,
}

#: Prefix of button custom ids; the rest is the command invocation the button runs.
CUSTOM_ID_PREFIX = "coach:"
MAX_INVOCATION = L.DISCORD_CUSTOM_ID - len(CUSTOM_ID_PREFIX)


@dataclass
class DiscordMessage:
    """One message to send: content, embeds as API dicts, files, and buttons (actions)."""

    content: str | None = None
    embeds: list[dict[str, Any]] = field(default_factory=list)
    files: list[Attachment] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The JSON part of a create-message request (without components or attachments)."""
        out: dict[str, Any] = {"allowed_mentions": {"parse": []}}
        if self.content:
            out["content"] = self.content
        if self.embeds:
            out["embeds"] = self.embeds
        return out

    def request(self, *, flags: int = 0) -> tuple[dict[str, Any], dict[str, tuple[str, bytes, str]]]:
        """(JSON payload, multipart files) of a REST request that sends this message with its buttons and files.

        Files go as `files[n]` parts with an `attachments` entry each; buttons as action rows
        whose custom ids carry the command they run.
        """
        payload = self.payload()
        if self.actions:
            payload["components"] = components(self.actions)
        if flags:
            payload["flags"] = flags
        files: dict[str, tuple[str, bytes, str]] = {}
        if self.files:
            payload["attachments"] = [
                {"id": n, "filename": a.filename, "description": a.description or None} for n, a in enumerate(self.files)
            ]
            files = {f"files[{n}]": (a.filename, a.data, a.mime) for n, a in enumerate(self.files)}
        return payload, files


#: Discord's button styles by the name an Action carries.
BUTTON_STYLES = {"primary": 1, "secondary": 2, "success": 3, "danger": 4}
#: Discord's style of a button that opens a URL.
LINK_STYLE = 5
#: Longest URL a Discord link button takes.
MAX_BUTTON_URL = 512


def components(actions: list[Action]) -> list[dict[str, Any]]:
    """Action rows of buttons (five to a row) that run each action's command when clicked."""
    buttons = [
        # a link button (style 5) opens its url in the browser; Discord sends the bot nothing for it
        {"type": 2, "style": LINK_STYLE, "label": a.label[:80], "url": a.url}
        if a.url
        else {"type": 2, "style": BUTTON_STYLES.get(a.style, 2), "label": a.label[:80], "custom_id": CUSTOM_ID_PREFIX + a.command}
        for a in actions
    ]
    return [{"type": 1, "components": buttons[i : i + 5]} for i in range(0, len(buttons), 5)]


def colour(reply: Reply) -> int:
    """Green/red for a long/short idea, otherwise the severity's colour."""
    if reply.direction:
        return COLOURS[reply.direction]
    return COLOURS.get(reply.severity, COLOURS["info"])


def safe_filename(name: str, used: set[str]) -> str:
    """A filename `attachment://` URLs accept (letters, digits, . _ -), unique within a message."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip("._") or "file"
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    cand, n = base, 1
    while cand in used:
        n += 1
        cand = f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}"
    used.add(cand)
    return cand


def embed_size(e: dict[str, Any]) -> int:
    """Characters Discord counts toward the 6,000 per-message embed total."""
    n = len(e.get("title", "")) + len(e.get("description", ""))
    n += len(e.get("footer", {}).get("text", "")) + len(e.get("author", {}).get("name", ""))
    n += sum(len(f["name"]) + len(f["value"]) for f in e.get("fields", []))
    return n


def button_actions(actions: list[Action]) -> tuple[list[Action], list[Action]]:
    """Split actions into those that fit buttons (custom id and count) and those listed as text."""
    buttons: list[Action] = []
    overflow: list[Action] = []
    for a in actions:
        fits = len(a.url) <= MAX_BUTTON_URL if a.url else len(a.command) <= MAX_INVOCATION and "\n" not in a.command
        if fits and len(buttons) < L.DISCORD_BUTTONS_PER_MESSAGE:
            buttons.append(a)
        else:
            overflow.append(a)
    return buttons, overflow


def render(reply: Reply, *, tz: str = "America/New_York", buttons: bool = True) -> list[DiscordMessage]:
    """The messages that show `reply`; actions become buttons on the last one (or text when `buttons` is off)."""
    col = colour(reply)
    used: set[str] = set()
    files = [(a, safe_filename(a.filename, used)) for a in reply.attachments]
    images = [(a, n) for a, n in files if a.mime in ("image/png", "image/jpeg", "image/gif", "image/webp")]

    embeds: list[tuple[dict[str, Any], str | None]] = []  # (embed, filename it shows)

    title, title_rest = L.clip(reply.title or "", L.DISCORD_EMBED_TITLE)
    body = reply.body or ""
    if title_rest:
        body = f"**{reply.title}**\n{body}" if body else f"**{reply.title}**"
    desc_chunks = L.split_text(body, L.DISCORD_EMBED_DESCRIPTION) if body else []

    main: dict[str, Any] = {"color": col}
    if title:
        main["title"] = title
    if desc_chunks:
        main["description"] = desc_chunks[0]
    first_image = images[0][1] if images else None
    if first_image:
        main["image"] = {"url": f"attachment://{first_image}"}
    embeds.append((main, first_image))
    for chunk in desc_chunks[1:]:
        embeds.append(({"color": col, "description": chunk}, None))

    current = embeds[-1][0]
    for f in reply.fields:
        name, name_rest = L.clip(f.name or "\u200b", L.DISCORD_FIELD_NAME)
        value = f.value if not name_rest else f"({f.name}) {f.value}"
        parts = L.split_text(value or "\u200b", L.DISCORD_FIELD_VALUE) or ["\u200b"]
        for i, part in enumerate(parts):
            item: dict[str, Any] = {
                "name": name if i == 0 else _cont(name),
                "value": part,
                "inline": f.inline and len(parts) == 1,
            }
            cur_fields = current.setdefault("fields", [])
            if (
                len(cur_fields) >= L.DISCORD_FIELDS_PER_EMBED
                or embed_size(current) + len(item["name"]) + len(part) > L.DISCORD_EMBED_TOTAL
            ):
                if not cur_fields:
                    current.pop("fields")
                current = {"color": col, "fields": []}
                embeds.append((current, None))
                cur_fields = current["fields"]
            cur_fields.append(item)

    for _att, name in images[1:]:
        embeds.append(({"color": col, "image": {"url": f"attachment://{name}"}}, name))

    last = embeds[-1][0] if embeds[-1][1] is None else None
    foot = reply.footer(tz)
    footer_target = last if last is not None else embeds[0][0]
    if foot:
        foot, _ = L.clip(foot, L.DISCORD_FOOTER)
        if embed_size(footer_target) + len(foot) > L.DISCORD_EMBED_TOTAL:
            footer_target = {"color": col}
            embeds.append((footer_target, None))
        footer_target["footer"] = {"text": foot}
    if reply.as_of is not None:
        footer_target["timestamp"] = reply.as_of.isoformat()

    # pack embeds into messages: at most 10 and 6,000 characters per message
    messages: list[DiscordMessage] = []
    msg = DiscordMessage()
    total = 0
    for e, shows in embeds:
        size = embed_size(e)
        if msg.embeds and (len(msg.embeds) >= L.DISCORD_EMBEDS_PER_MESSAGE or total + size > L.DISCORD_EMBED_TOTAL):
            messages.append(msg)
            msg, total = DiscordMessage(), 0
        msg.embeds.append(e)
        total += size
        if shows:
            att = next(a for a, n in files if n == shows)
            msg.files.append(att.model_copy(update={"filename": shows}))
    messages.append(msg)

    # files no embed shows go with the first message that has room
    shown = {n for _, n in embeds if n}
    for att, name in files:
        if name in shown:
            continue
        target = next((m for m in messages if len(m.files) < L.DISCORD_FILES_PER_MESSAGE), None)
        if target is None:
            target = DiscordMessage()
            messages.append(target)
        target.files.append(att.model_copy(update={"filename": name}))

    btns, overflow = button_actions(reply.actions) if buttons else ([], list(reply.actions))
    messages[-1].actions = btns
    if overflow:
        text = "More: " + " · ".join(f"{a.label}: <{a.url}>" if a.url else f"{a.label}: `{a.command}`" for a in overflow)
        chunks = L.split_text(text, L.DISCORD_CONTENT)
        messages[-1].content = chunks[0]
        messages.extend(DiscordMessage(content=c) for c in chunks[1:])
    return messages


def _cont(name: str) -> str:
    suffix = " (cont.)"
    return (name[: L.DISCORD_FIELD_NAME - len(suffix)] + suffix) if name != "\u200b" else name
