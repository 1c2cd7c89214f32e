"""Render a Reply as Slack Block Kit messages (header, sections, fields, context, actions) within Slack's limits.

Files are not part of the blocks: the Slack surface uploads them with `files_upload_v2`
next to the message. Anything that does not fit one message (50 blocks) continues in the next.

Every piece of text here may hold what a person typed (a note, a symbol, a command line) or
what the model wrote, so all of it is escaped the way Slack documents (`&` `<` `>` as
`&amp;` `&lt;` `&gt;`) in mrkdwn, plain_text and the fallback `text` alike: `<!channel>`,
`<!here>`, `<@U…>` or `<!subteam^…>` typed by someone arrives as text, never as a mention.
The only live mention is the one this module builds on purpose, from a Slack user id
(`WhoAsked`). mrkdwn objects are also `verbatim`, so Slack does not turn a bare `@here` into
a mention either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.reply import Action, Reply
from bot.surfaces import split as L

MARKERS = {
    "long": ":large_green_circle:",
    "short": ":red_circle:",
    "error": ":x:",
    "warning": ":warning:",
    "success": ":white_check_mark:",
}

#: action_id prefix of buttons that run a command; the button value is the invocation.
ACTION_PREFIX = "coach_run"
#: action_id prefix of link buttons (nothing to run when clicked).
LINK_PREFIX = "coach_link"
#: Longest url a Block Kit button takes.
SLACK_BUTTON_URL = 3000


#: A Slack user id (`U…`, or `W…` on Enterprise Grid): the only thing a live mention is built from.
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
#: An entity cut short at the end of a clipped text (`&am`), dropped rather than shown half.
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def escape(text: str) -> str:
    """Text with Slack's three control characters escaped (`&` first, so nothing is escaped twice over)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: str) -> str:
    """`<@U123>` for a Slack user id; anything that is not an id is shown as escaped text, never as a mention."""
    return f"<@{user_id}>" if _USER_ID.match(user_id) else escape(user_id)


@dataclass(frozen=True)
class WhoAsked:
    """Who ran the command a reply answers, shown under it: `<@U1>: `/plan TSLA``."""

    #: The Slack user id of the person; the one mention a reply carries.
    user: str
    #: The command line as they typed it (shown as text).
    line: str
    #: The label of the button they clicked, when the command came from a click.
    clicked: str = ""

    def mrkdwn(self) -> str:
        line = escape(self.line[:200])
        if self.clicked:
            return f"{mention(self.user)} clicked {escape(plain(self.clicked)[:80])}: `{line}`"
        return f"{mention(self.user)}: `{line}`"


def _clip(text: str, limit: int) -> tuple[str, str]:
    """`split.clip` for escaped text: an entity cut in half at the end is dropped."""
    head, rest = L.clip(text, limit)
    if head.endswith("…") and _PARTIAL_ENTITY.search(head[:-1]):
        head = _PARTIAL_ENTITY.sub("", head[:-1]).rstrip() + "…"
    return head, rest


def _mrkdwn_text(text: str) -> dict[str, Any]:
    # verbatim: Slack does not link-ify names or parse bare @here/@channel; <url|label> links still work
    return {"type": "mrkdwn", "text": text, "verbatim": True}


@dataclass
class SlackMessage:
    """One chat.postMessage worth of content: fallback text and blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def mrkdwn(text: str) -> str:
    """Markdown as Slack mrkdwn: escaped &<>, *bold*, <url|links>, headings as bold; code left alone (but escaped)."""
    out: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        line = escape(line)
        if line.strip().startswith("```"):
            in_fence = not in_fence
            out.append(line)
            continue
        if in_fence:
            out.append(line)
            continue
        parts = re.split(r"(`[^`]*`)", line)  # leave inline code untouched
        for i in range(0, len(parts), 2):
            p = parts[i]
            p = re.sub(r"\*\*(.+?)\*\*", r"*\1*", p)
            p = re.sub(r"__(.+?)__", r"_\1_", p)
            p = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"<\2|\1>", p)
            p = re.sub(r"^#{1,6}\s+(.*)$", r"*\1*", p)
            parts[i] = p
        out.append("".join(parts))
    return "\n".join(out)


def plain(text: str) -> str:
    """Text for a plain_text element: markdown emphasis removed."""
    return re.sub(r"(\*\*|__|`)", "", text)


def action_buttons(actions: list[Action]) -> tuple[list[dict[str, Any]], list[Action]]:
    """Button elements for actions that fit, and the actions that must be listed as text."""
    elements: list[dict[str, Any]] = []
    overflow: list[Action] = []
    for i, a in enumerate(actions):
        too_long = len(a.url) > SLACK_BUTTON_URL if a.url else len(a.command) > L.SLACK_BUTTON_VALUE
        if too_long or len(elements) >= L.SLACK_BUTTONS_PER_ACTIONS:
            overflow.append(a)
            continue
        if a.url:
            # Slack opens the url itself and still sends a block action, which the surface only acknowledges
            label, _ = _clip(escape(plain(a.label) or "Open"), L.SLACK_BUTTON_TEXT)
            elements.append(
                {"type": "button", "action_id": f"{LINK_PREFIX}_{i}", "text": {"type": "plain_text", "text": label}, "url": a.url}
            )
            continue
        label, _ = _clip(escape(plain(a.label) or a.command), L.SLACK_BUTTON_TEXT)
        el: dict[str, Any] = {
            "type": "button",
            "action_id": f"{ACTION_PREFIX}_{i}",
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "value": a.command,
        }
        if a.style in ("primary", "danger"):
            el["style"] = a.style
        elif a.style == "success":
            el["style"] = "primary"
        elements.append(el)
    return elements, overflow


def render(
    reply: Reply,
    *,
    tz: str = "America/New_York",
    extra_context: str = "",
    who: WhoAsked | None = None,
    buttons: bool = True,
) -> list[SlackMessage]:
    """The messages that show `reply`: header first, actions and context on the last (listed as text when `buttons` is off).

    `extra_context` is plain text for the context line; `who` adds who asked, with a mention of them.
    """
    blocks: list[dict[str, Any]] = []
    marker = MARKERS.get(reply.direction or "", "") or MARKERS.get(reply.severity, "")
    title = escape(plain(reply.title))
    title = f"{marker} {title}".strip() if marker else title
    head, rest = _clip(title or " ", L.SLACK_HEADER)
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": head, "emoji": True}})
    body = mrkdwn(reply.body or "")
    if rest:
        body = f"*{mrkdwn(reply.title)}*\n{body}".strip()
    for chunk in L.split_text(body, L.SLACK_SECTION_TEXT):
        blocks.append({"type": "section", "text": _mrkdwn_text(chunk)})

    field_texts: list[str] = []
    for f in reply.fields:
        label = f"*{mrkdwn(f.name)}*\n"
        room = L.SLACK_FIELD_TEXT - len(label) - 12
        for i, part in enumerate(L.split_text(mrkdwn(f.value) or " ", room) or [" "]):
            field_texts.append((label if i == 0 else f"*{mrkdwn(f.name)} (cont.)*\n") + part)
    for i in range(0, len(field_texts), L.SLACK_FIELDS_PER_SECTION):
        group = field_texts[i : i + L.SLACK_FIELDS_PER_SECTION]
        blocks.append({"type": "section", "fields": [_mrkdwn_text(t) for t in group]})

    tail: list[dict[str, Any]] = []
    elements, overflow = action_buttons(reply.actions) if buttons else ([], list(reply.actions))
    if overflow:
        listed = "More: " + " · ".join(
            f"<{a.url}|{escape(plain(a.label))}>" if a.url else f"{mrkdwn(a.label)}: `{escape(a.command)}`" for a in overflow
        )
        for chunk in L.split_text(listed, L.SLACK_SECTION_TEXT):
            blocks.append({"type": "section", "text": _mrkdwn_text(chunk)})
    if elements:
        tail.append({"type": "actions", "block_id": "coach_actions", "elements": elements})
    asked = who.mrkdwn() if who is not None else ""
    context = " · ".join(p for p in (escape(reply.footer(tz)), asked, escape(extra_context)) if p)
    if context:
        ctx_text, _ = _clip(context, L.SLACK_CONTEXT_TEXT)
        tail.append({"type": "context", "elements": [_mrkdwn_text(ctx_text)]})

    fallback = fallback_text(reply)
    messages: list[SlackMessage] = []
    current: list[dict[str, Any]] = []
    for b in blocks:
        if len(current) >= L.SLACK_BLOCKS:
            messages.append(SlackMessage(text=fallback, blocks=current))
            current = []
        current.append(b)
    if len(current) + len(tail) > L.SLACK_BLOCKS:
        messages.append(SlackMessage(text=fallback, blocks=current))
        current = []
    current.extend(tail)
    messages.append(SlackMessage(text=fallback, blocks=current))
    if len(messages) > 1:
        for n, m in enumerate(messages[1:], 2):
            m.text = f"{fallback} ({n}/{len(messages)})"
    return messages


def fallback_text(reply: Reply) -> str:
    """The notification text Slack shows where blocks are not rendered (escaped: Slack parses it like mrkdwn)."""
    text = plain(reply.title)
    if reply.body:
        text += " — " + reply.body.replace("```", "").strip()
    clipped, _ = _clip(escape(text), L.SLACK_FALLBACK_TEXT)
    return clipped
