"""URLs as they may be shown: the one masking rule for every URL the service prints, logs or replies with.

A URL often is a credential: a Discord webhook's token sits in its path, a Slack incoming
webhook's in its last three segments, a base URL may carry `user:password@`, an API key rides in
the query, and some receivers put the secret in a sub-domain. Whoever sees a webhook's URL can
post to it, and channel settings are shown to every member of the channel; so a URL is shown as
its scheme, host and port, the leading path segments that are plain words, and a short
fingerprint of the whole URL, which tells two webhooks apart without revealing either.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# RFC 3986, appendix B: splits any URI reference into scheme, authority, path, query and fragment.
_URI = re.compile(r"^(?:([A-Za-z][A-Za-z0-9+.\-]*):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$", re.S)
_WORD = re.compile(r"[a-z][a-z0-9_\-]{0,19}")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,31}")
_HOST_CHARS = re.compile(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]")
#: Characters of the fingerprint (hex of the SHA-256 of the whole URL).
FINGERPRINT_LEN = 6


@dataclass(frozen=True)
class UrlParts:
    """A URL cut into the parts the masking rule treats differently (None: the part is absent)."""

    scheme: str
    userinfo: str | None
    host: str
    port: str | None
    path: str
    query: str | None


def split_url(url: str) -> UrlParts | None:
    """The parts of an absolute URL, or None when `url` has no scheme."""
    m = _URI.match(url)
    if m is None or not m.group(1):
        return None
    scheme, authority, path, query = m.group(1), m.group(2), m.group(3), m.group(4)
    userinfo: str | None = None
    hostport = authority or ""
    if "@" in hostport:
        userinfo, _, hostport = hostport.rpartition("@")
    port: str | None = None
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        host += "]"
        if rest.startswith(":"):
            port = rest[1:]
    else:
        host, sep, maybe_port = hostport.rpartition(":")
        if not sep:
            host = hostport
        else:
            port = maybe_port
    return UrlParts(scheme=scheme.lower(), userinfo=userinfo, host=host, port=port, path=path, query=query)


def url_fingerprint(url: str) -> str:
    """A short stable tag of the whole URL: the same URL always gets it, two different ones almost never share it."""
    return hashlib.sha256(url.strip().encode("utf-8", "surrogatepass")).hexdigest()[:FINGERPRINT_LEN]


def url_credentials(url: str) -> list[str]:
    """The credential parts of a URL: its password (or a user part that stands alone, as a token does) and query values.

    Logs are redacted of these, whatever library writes them.
    """
    parts = split_url(url.strip())
    if parts is None:
        return []
    out: list[str] = []
    if parts.userinfo:
        user, sep, password = parts.userinfo.partition(":")
        out.append(password if sep else user)
    if parts.query:
        out += [pair.partition("=")[2] for pair in parts.query.split("&")]
    return [v for v in out if v]


def mask_url(url: str) -> str:
    """`url` without anything secret in it: `scheme://***@host:port/word/… #fingerprint`.

    Userinfo becomes `***`; a host label that looks like a token (long, or letters mixed with
    digits) becomes `…`, the domain itself stays; the path keeps its leading plain words and the
    rest becomes `…`; each query value becomes `***`; a fragment is left out. A URL without a host
    (a SQLite file) keeps its path, which names a file, not a secret.
    """
    text = url.strip()
    parts = split_url(text)
    tag = url_fingerprint(text)
    if parts is None:
        return f"<not a url> #{tag}"
    out = f"{parts.scheme}://"
    if parts.userinfo is not None:
        out += "***@"
    out += _mask_host(parts.host)
    if parts.port:
        out += f":{parts.port}" if parts.port.isdigit() else ":***"
    if parts.host:
        out += _mask_path(parts.path)
    else:
        out += parts.path
    if parts.query is not None:
        keys = [pair.partition("=")[0] for pair in parts.query.split("&") if pair]
        out += "?" + "&".join(f"{k if _KEY.fullmatch(k) else '***'}=***" for k in keys)
    return f"{out} #{tag}"


def _is_word(text: str) -> bool:
    """A path segment shown as is: a short lower-case word with at most two digits (api, v10, hook)."""
    return bool(_WORD.fullmatch(text)) and sum(c.isdigit() for c in text) <= 2


def _mask_host(host: str) -> str:
    if not host:
        return ""
    if not _HOST_CHARS.fullmatch(host):
        return "***"
    if host.startswith("[") or re.fullmatch(r"[\d.]+", host):
        return host  # an address is where the receiver is, not a secret
    labels = host.split(".")
    # the domain (its last two labels) is shown: it is registered, not secret; a sub-domain may be a token
    kept = [("…" if _token_like(label) else label) for label in labels[:-2]] + labels[-2:]
    return ".".join(kept)


def _token_like(label: str) -> bool:
    has_digit = any(c.isdigit() for c in label)
    has_alpha = any(c.isalpha() for c in label)
    return len(label) >= 16 or (len(label) >= 8 and has_digit and has_alpha)


def _mask_path(path: str) -> str:
    segments = path.split("/")[1:] if path.startswith("/") else ([path] if path else [])
    shown: list[str] = []
    for seg in segments:
        if not _is_word(seg):
            break
        shown.append(seg)
    rest = segments[len(shown) :]
    hidden = any(rest)
    text = "/" + "/".join(shown) if shown else ("/" if segments else "")
    if hidden:
        text = text.rstrip("/") + "/…"
    return text
