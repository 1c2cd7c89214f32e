"""The freshness badge as text, the same on every surface (footer of Discord embeds, Slack context, console)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from analytics.freshness import Freshness

_MARK = {"live": "🟢", "delayed": "🟡", "closed": "⚪", "stale": "🔴"}


def age_text(seconds: float) -> str:
    """An age as a trader reads it: 40 s, 16 min, 3 h 05 min, 2 d."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} h {m:02d} min" if m else f"{h} h"
    return f"{s // 86400} d"


def badge_text(f: Freshness, tz: str = "America/New_York") -> str:
    """`🟢 live`, `🟡 delayed 16 min`, `⚪ closed · as of Fri Mar 15 close`, `🔴 stale 3 h · polygon`."""
    mark = _MARK[f.kind]
    if f.kind == "live":
        return f"{mark} live"
    if f.kind == "delayed":
        return f"{mark} delayed {age_text(f.age_seconds)}"
    if f.kind == "closed":
        at = (f.last_close or f.as_of).astimezone(ZoneInfo(tz))
        return f"{mark} closed · as of {at:%a %b} {at.day} close"
    return f"{mark} stale {age_text(f.age_seconds)} · {f.provider}"
