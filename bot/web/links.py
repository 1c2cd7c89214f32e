"""Chart links as capabilities: signed, expiring, scoped to what the reply showed.

A link is `COACH_PUBLIC_URL/chart/<token>`. The token is `<payload>.<mac>`, both base64url:
the payload is compact JSON naming the tenant and user ids the reply was made for, the symbol,
the intervals it covered, the plan id and version (when a plan was shown) and the expiry; the
mac is HMAC-SHA256 over the payload with COACH_LINK_SECRET. Whoever holds the link sees that
chart and nothing else: the page and its data endpoints read only what the token names, after
checking the mac in constant time and the expiry on the service clock.

There is no fallback key: without COACH_LINK_SECRET (32+ characters) no link is made, and
`coach serve` refuses to start when COACH_PUBLIC_URL is set without one. A key derived from
another setting would let whoever knows that setting mint links.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from core.errors import ConfigError

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.request import Ctx

log = structlog.get_logger("coach.links")

#: Shortest accepted COACH_LINK_SECRET: 32 characters (e.g. `openssl rand -hex 32` gives 64).
MIN_SECRET = 32
#: Keeps a chart mac from being valid as any other HMAC the same key might one day sign.
_DOMAIN = b"coach-chart-link/1\n"
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
_INTERVAL = re.compile(r"^(1m|5m|15m|30m|1h|4h|1D|1W)$")
_PLAN_ID = re.compile(r"^P-[0-9A-Z]{1,12}$")
#: Longest token accepted before any work is done on it.
MAX_TOKEN = 1024
#: Whether this process already said that links are off for want of a secret.
_warned: list[bool] = []


class LinkError(Exception):
    """A link that does not open: `reason` is the one line the browser shows."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkScope:
    """What one link may show: one symbol of one tenant, its intervals, and at most one plan version."""

    tenant_id: int
    user_id: int
    symbol: str
    intervals: tuple[str, ...]
    plan_id: str | None = None
    version: int | None = None
    #: Unix seconds after which the link is refused.
    expires: int = 0

    def to_json(self) -> dict[str, object]:
        d: dict[str, object] = {"t": self.tenant_id, "u": self.user_id, "s": self.symbol, "i": list(self.intervals)}
        if self.plan_id is not None:
            d["p"], d["n"] = self.plan_id, self.version
        d["e"] = self.expires
        return d

    @classmethod
    def from_json(cls, d: object) -> LinkScope:
        """The scope in a verified payload; a shape we never sign is refused like a bad signature."""
        if not isinstance(d, dict):
            raise ValueError("payload is not an object")
        t, u, s, i, e = d.get("t"), d.get("u"), d.get("s"), d.get("i"), d.get("e")
        p, n = d.get("p"), d.get("n")
        ok = (
            isinstance(t, int)
            and isinstance(u, int)
            and isinstance(e, int)
            and isinstance(s, str)
            and bool(_SYMBOL.match(s))
            and isinstance(i, list)
            and 0 < len(i) <= 8
            and all(isinstance(x, str) and _INTERVAL.match(x) for x in i)
            and (p is None or (isinstance(p, str) and bool(_PLAN_ID.match(p)) and isinstance(n, int)))
        )
        if not ok:
            raise ValueError("payload fields")
        return cls(
            tenant_id=int(t),  # type: ignore[arg-type]
            user_id=int(u),  # type: ignore[arg-type]
            symbol=str(s),
            intervals=tuple(str(x) for x in i),  # type: ignore[union-attr]
            plan_id=str(p) if p is not None else None,
            version=int(n) if p is not None else None,  # type: ignore[arg-type]
            expires=int(e),  # type: ignore[arg-type]
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Makes and checks chart links with one secret."""

    def __init__(self, secret: str, *, base_url: str, ttl: int) -> None:
        if len(secret) < MIN_SECRET:
            raise ConfigError(f"COACH_LINK_SECRET must be at least {MIN_SECRET} characters (e.g. `openssl rand -hex 32`)")
        self._key = secret.encode("utf-8")
        self.base_url = base_url.rstrip("/")
        self.ttl = int(ttl)

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._key, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()

    def token(self, scope: LinkScope, now: datetime) -> str:
        """The signed token of `scope`, expiring `ttl` seconds after `now`."""
        scope = LinkScope(**{**scope.__dict__, "expires": int(now.timestamp()) + self.ttl})
        payload = _b64(json.dumps(scope.to_json(), separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._mac(payload))}"

    def url(self, scope: LinkScope, now: datetime) -> str:
        """The page address of `scope`: COACH_PUBLIC_URL/chart/<token>."""
        return f"{self.base_url}/chart/{self.token(scope, now)}"

    def verify(self, token: str, now: datetime) -> LinkScope:
        """The scope a token grants, or LinkError saying in one line why it does not open."""
        bad = LinkError("this link was altered or is not a chart link; open the chart from the chat message again")
        if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
            raise bad
        payload, mac_text = token.split(".")
        try:
            mac = _unb64(mac_text)
            want = self._mac(payload)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise bad from None
        if not hmac.compare_digest(mac, want):
            raise bad
        try:
            scope = LinkScope.from_json(json.loads(_unb64(payload)))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise bad from None
        if int(now.timestamp()) >= scope.expires:
            when = datetime.fromtimestamp(scope.expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
            raise LinkError(f"this link expired on {when}; ask the coach for the chart again for a fresh link")
        return scope


def link_signer(settings: Settings) -> LinkSigner | None:
    """The signer when COACH_PUBLIC_URL and a good COACH_LINK_SECRET are set; None (no links) otherwise."""
    if not settings.coach_public_url:
        return None
    secret = settings.coach_link_secret.get_secret_value() if settings.coach_link_secret else ""
    if len(secret) < MIN_SECRET:
        if not _warned:  # once per process, not on every reply
            _warned.append(True)
            log.warning(
                "chart_links_off",
                reason=f"COACH_PUBLIC_URL is set but COACH_LINK_SECRET is unset or under {MIN_SECRET} characters",
            )
        return None
    return LinkSigner(secret, base_url=settings.coach_public_url, ttl=settings.coach_link_ttl)


def require_signer(settings: Settings) -> LinkSigner | None:
    """For `coach serve`: the signer, None without COACH_PUBLIC_URL, a ConfigError when the secret is missing or short."""
    if not settings.coach_public_url:
        return None
    secret = settings.coach_link_secret.get_secret_value() if settings.coach_link_secret else ""
    if not secret:
        raise ConfigError(
            "COACH_PUBLIC_URL is set but COACH_LINK_SECRET is not: chart links must be signed (openssl rand -hex 32)"
        )
    return LinkSigner(secret, base_url=settings.coach_public_url, ttl=settings.coach_link_ttl)


#: The intervals an alert's chart link opens on when the alert names none (those /chart offers first).
ALERT_INTERVALS = ("5m", "1h", "1D")


def event_link(
    signer: LinkSigner | None,
    tenant_id: int,
    user_id: int,
    symbol: str,
    intervals: tuple[str, ...],
    now: datetime,
    plan: tuple[str, int] | None = None,
) -> str | None:
    """The "Open chart" link of a message the runtime pushes (a fired alert, a plan's transition, a re-plan) for
    its owner, or None when links are not configured. `plan`: (plan id, version) the page draws."""
    if signer is None or not intervals:
        return None
    scope = LinkScope(
        tenant_id=tenant_id,
        user_id=user_id,
        symbol=symbol,
        intervals=tuple(dict.fromkeys(intervals)),
        plan_id=plan[0] if plan else None,
        version=plan[1] if plan else None,
    )
    return signer.url(scope, now)


async def chart_url_for(
    ctx: Ctx, symbol: str, intervals: list[str] | tuple[str, ...], plan_id: str | None = None, version: int | None = None
) -> str | None:
    """The "Open chart" link for what a reply shows to the caller, or None when links are not configured."""
    signer = link_signer(ctx.services.settings)
    if signer is None or not intervals:
        return None
    async with ctx.tx() as s:
        owner = await ctx.owner(s)
    scope = LinkScope(
        tenant_id=owner.tenant_id,
        user_id=owner.user_id,
        symbol=symbol,
        intervals=tuple(dict.fromkeys(intervals)),
        plan_id=plan_id,
        version=version if plan_id is not None else None,
    )
    # the service clock, not the request's pinned time: a link made with --as-of still lasts its TTL
    return signer.url(scope, ctx.services.clock())


__all__ = [
    "ALERT_INTERVALS",
    "MIN_SECRET",
    "LinkError",
    "LinkScope",
    "LinkSigner",
    "chart_url_for",
    "event_link",
    "link_signer",
    "require_signer",
]
