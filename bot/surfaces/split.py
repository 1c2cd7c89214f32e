"""Split long text into chunks that fit a platform's limits, never dropping a character of content.

Chunks break at line boundaries where possible, then at spaces, then anywhere. A code fence
(```) that is open at a break is closed at the end of the chunk and reopened at the start of
the next, so each chunk renders on its own.
"""

from __future__ import annotations

# Discord (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
DISCORD_CONTENT = 2000
DISCORD_EMBED_TOTAL = 6000
DISCORD_EMBED_TITLE = 256
DISCORD_EMBED_DESCRIPTION = 4096
DISCORD_FIELDS_PER_EMBED = 25
DISCORD_FIELD_NAME = 256
DISCORD_FIELD_VALUE = 1024
DISCORD_FOOTER = 2048
DISCORD_EMBEDS_PER_MESSAGE = 10
DISCORD_FILES_PER_MESSAGE = 10
DISCORD_BUTTONS_PER_MESSAGE = 25
DISCORD_BUTTON_LABEL = 80
DISCORD_CUSTOM_ID = 100

# Slack (https://api.slack.com/reference/block-kit/blocks)
SLACK_BLOCKS = 50
SLACK_SECTION_TEXT = 3000
SLACK_FIELD_TEXT = 2000
SLACK_FIELDS_PER_SECTION = 10
SLACK_HEADER = 150
SLACK_BUTTONS_PER_ACTIONS = 25
SLACK_BUTTON_TEXT = 75
SLACK_BUTTON_VALUE = 2000
SLACK_CONTEXT_TEXT = 3000
SLACK_FALLBACK_TEXT = 3000

_FENCE = "```"


def split_text(text: str, limit: int) -> list[str]:
    """Chunks of at most `limit` characters whose words, in order, are exactly the words of `text`."""
    if limit < 16:
        raise ValueError("limit too small to split with code fences")
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    cur: list[str] = []
    cur_len = 0  # len("\n".join(cur))
    fence: str | None = None  # the opening fence line while inside a code block (after the lines in `cur`)
    close = len(_FENCE) + 1  # "\n```" that ends a chunk cut inside a code block

    def fits(line: str, open_after: bool) -> bool:
        return cur_len + (1 if cur else 0) + len(line) + (close if open_after else 0) <= limit

    def add(line: str) -> None:
        nonlocal cur_len
        cur_len += (1 if cur else 0) + len(line)
        cur.append(line)

    def emit() -> None:
        nonlocal cur, cur_len
        if any(line.strip() and not _is_fence(line) for line in cur):
            chunks.append("\n".join(cur) + ("\n" + _FENCE if fence is not None else ""))
        cur, cur_len = [], 0
        if fence is not None:
            add(fence)  # reopen the block in the next chunk

    for line in text.split("\n"):
        is_fence = _is_fence(line)
        after = (None if fence is not None else line.strip()) if is_fence else fence
        if fits(line, after is not None):
            add(line)
            fence = after
            continue
        if is_fence and fence is not None:
            # a closing fence that does not fit: the chunk is closed anyway
            emit()
            cur, cur_len, fence = [], 0, None
            continue
        emit()
        if fits(line, after is not None):
            add(line)
            fence = after
            continue
        room = limit - (cur_len + 1 if cur else 0) - (close if after is not None else 0)
        for piece in _split_line(line, max(room, 1)):
            if not fits(piece, after is not None):
                emit()
            add(piece)
        fence = after
    emit_last = any(line.strip() and not _is_fence(line) for line in cur)
    if emit_last:
        chunks.append("\n".join(cur))
    return chunks


def _is_fence(line: str) -> bool:
    s = line.strip()
    return s.startswith(_FENCE) and len(s) <= 24


def _split_line(line: str, limit: int) -> list[str]:
    """A long line cut at spaces (or anywhere when a word is longer than the limit)."""
    if len(line) <= limit:
        return [line]
    out: list[str] = []
    rest = line
    while len(rest) > limit:
        cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            out.append(rest[:limit])
            rest = rest[limit:]
        else:
            out.append(rest[:cut])
            rest = rest[cut + 1 :]
    if rest:
        out.append(rest)
    return out


def clip(text: str, limit: int) -> tuple[str, str]:
    """`text` cut to `limit` characters (with an ellipsis) and the remainder that did not fit."""
    if len(text) <= limit:
        return text, ""
    cut = text.rfind(" ", 0, limit)
    if cut < limit // 2:
        cut = limit - 1
    return text[:cut].rstrip() + "…", text[cut:].lstrip()
