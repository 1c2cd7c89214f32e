"""Where a webhook sink may post: public https only, each platform kind to its platform's hosts, private networks by operator choice.

A webhook URL is typed by whoever administers a channel, and in a Discord DM everyone
administers their own space; the service then posts to it from inside its own network. Unchecked,
that lets anyone make the service talk to its loopback, its private network or the cloud's
metadata address. So:

* the generic `webhook` kind posts only over https and only to public addresses;
* `discord_webhook` posts only to Discord's webhook hosts (`https://discord.com/api/webhooks/...`),
  `slack_webhook` only to `https://hooks.slack.com/...`;
* every address a name resolves to must be allowed (one private answer refuses the name), and the
  connection goes to an address that was checked (`bot.surfaces.guarded_http` resolves once, checks,
  and connects to that address, so the name cannot be re-pointed between check and use);
* `COACH_WEBHOOK_ALLOW_PRIVATE` (operator setting, off by default) also allows private receivers
  (loopback, RFC 1918, CGNAT, IPv6 ULA), over http or https, for self-hosted receivers and relays:
  then a platform kind may also go to a private receiver, never to another public host. Link-local
  (the cloud metadata address among them), multicast, unspecified and reserved addresses are
  never receivers, whatever the setting.

The Discord and Slack API bases (`DISCORD_API_BASE`, `SLACK_API_URL`) are not webhook sinks: the
operator sets them, they serve the bots' own REST clients, and these rules do not apply to them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from core.errors import UserError

#: Which addresses a connection may go to: public only, private only, or either.
Reach = Literal["public", "private", "any"]
#: Resolves (host, port) to IP address strings.
Resolver = Callable[[str, int], Awaitable[list[str]]]
AddressClass = Literal["public", "private", "never"]

#: The hosts each platform kind may post to.
PLATFORM_HOSTS: dict[str, frozenset[str]] = {
    "discord_webhook": frozenset(
        f"{sub}{domain}" for sub in ("", "ptb.", "canary.") for domain in ("discord.com", "discordapp.com")
    ),
    "slack_webhook": frozenset({"hooks.slack.com"}),
}
_PLATFORM_PATHS = {
    "discord_webhook": re.compile(r"/api(?:/v\d{1,2})?/webhooks/\d{1,25}/[A-Za-z0-9_\-]{1,200}/?"),
    "slack_webhook": re.compile(r"/(?:services|workflows|triggers)/[A-Za-z0-9_\-/]{1,300}"),
}
_PLATFORM_SHAPE = {
    "discord_webhook": "https://discord.com/api/webhooks/ID/TOKEN",
    "slack_webhook": "https://hooks.slack.com/services/...",
}
# Private networks an operator may open to webhooks; everything not global and not here is never a receiver.
_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "::1/128", "fc00::/7", "fec0::/10")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
RESOLVE_TIMEOUT = 5.0
PUBLIC_RULE = "webhooks go only to public https:// addresses"


class WebhookRefused(UserError):
    """A webhook URL the service will not post to; the message says what was wrong and what is accepted."""


def address_class(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> AddressClass:
    """public, private (opened only by the operator's setting) or never (no webhook receiver lives there).

    IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4) are judged
    by that IPv4 address: they reach it.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return address_class(inner)
        ip = ipaddress.IPv6Address(int(ip))  # a zone id says nothing about the class
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local:
        return "never"
    if any(ip in net for net in _PRIVATE_NETS):
        return "private"
    return "public" if ip.is_global and not ip.is_reserved else "never"


def allowed_in(cls: AddressClass, reach: Reach) -> bool:
    """Whether an address of class `cls` may be connected to under `reach`."""
    return cls != "never" and (reach == "any" or cls == reach)


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address when `host` is an IP literal (brackets allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _host_of(url: str) -> tuple[str, str, str, int | None]:
    """(scheme, host, path, port) of an http(s) URL, refusing what is not one."""
    from core.urls import split_url

    parts = split_url(url)
    if parts is None or any(c.isspace() for c in url):
        raise WebhookRefused(f"that is not a URL; {PUBLIC_RULE}, e.g. https://example.com/hook")
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused(f"webhook URLs must start with https:// ({PUBLIC_RULE})")
    host = parts.host.lower().rstrip(".")
    if not host or not re.fullmatch(r"[a-z0-9.\-]{1,253}|\[[0-9a-f:.]{2,45}\]", host):
        raise WebhookRefused(f"that URL has no valid host name; {PUBLIC_RULE}")
    port: int | None = None
    if parts.port is not None:
        if not parts.port.isdigit() or not 0 < int(parts.port) < 65536:
            raise WebhookRefused("that URL's port is not a number from 1 to 65535")
        port = int(parts.port)
    return parts.scheme, host.strip("[]"), parts.path, port


@dataclass(frozen=True)
class WebhookPolicy:
    """The rules above, with the operator's choice about private receivers."""

    allow_private: bool = False

    def reach(self, kind: str, scheme: str, host: str) -> Reach:
        """Which addresses `host` may resolve to for a `kind` post over `scheme`; WebhookRefused when none may."""
        host = host.lower().rstrip(".").strip("[]")
        platform = PLATFORM_HOSTS.get(kind)
        if platform is not None and host in platform:
            if scheme != "https":
                raise WebhookRefused(f"a {kind} goes only to {_PLATFORM_SHAPE[kind]}")
            return "public"  # the platform's own host answering from a private address is a hijack, never a relay
        if not self.allow_private:
            if platform is not None:
                raise WebhookRefused(f"a {kind} goes only to {_PLATFORM_SHAPE[kind]}")
            if scheme != "https":
                raise WebhookRefused(f"webhook URLs must start with https:// ({PUBLIC_RULE})")
            return "public"
        # the operator opened private receivers: a platform kind may use a self-hosted relay, plain
        # http may be used inside the private network; neither may leave it
        if platform is not None or scheme != "https":
            return "private"
        return "any"

    def check_url(self, url: str, kind: str) -> str:
        """The URL, stripped, when it may be posted to as `kind` (before resolving); WebhookRefused saying why."""
        u = url.strip()
        scheme, host, path, _port = _host_of(u)
        reach = self.reach(kind, scheme, host)
        platform = PLATFORM_HOSTS.get(kind)
        if platform is not None and host in platform and not _PLATFORM_PATHS[kind].fullmatch(path):
            raise WebhookRefused(f"that is not a {kind} URL; accepted: {_PLATFORM_SHAPE[kind]}")
        ip = ip_literal(host)
        if ip is not None:
            self.check_addresses(host, [str(ip)], reach)
        return u

    def check_addresses(self, host: str, addresses: list[str], reach: Reach) -> None:
        """Return when every address may be connected to under `reach`; WebhookRefused naming the rule otherwise."""
        if not addresses:
            raise WebhookRefused(f"{host} has no address")
        for a in addresses:
            ip = ip_literal(a)
            if ip is None or not allowed_in(address_class(ip), reach):
                raise WebhookRefused(self._refusal(host, ip is not None and ip_literal(host) is not None, reach))

    def _refusal(self, host: str, literal: bool, reach: Reach) -> str:
        what = f"{host} is" if literal else f"{host} resolves to"
        if reach == "private":
            return f"{what} an address this webhook may not use; here only private receivers are allowed"
        if self.allow_private:
            return f"{what} a link-local, multicast or reserved address; no webhook receiver lives there"
        return (
            f"{what} a private, local or reserved address; {PUBLIC_RULE} "
            "(private receivers only when the operator sets COACH_WEBHOOK_ALLOW_PRIVATE)"
        )


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for (host, port), in its order, without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def vet_webhook_url(
    url: str, kind: str, policy: WebhookPolicy, resolver: Resolver = system_resolver, *, timeout: float = RESOLVE_TIMEOUT
) -> str:
    """The URL when `kind` may post to it now: the URL's rules, then every address its host resolves to.

    For `/settings webhook add`, so a bad sink is refused when it is typed; delivery checks again
    at each connection, since a name may point elsewhere later. The platforms' own hosts are not
    resolved here (they are fixed public names; delivery still checks their addresses).
    """
    u = policy.check_url(url, kind)
    scheme, host, _path, port = _host_of(u)
    if ip_literal(host) is not None or host in PLATFORM_HOSTS.get(kind, frozenset()):
        return u
    reach = policy.reach(kind, scheme, host)
    try:
        addresses = await asyncio.wait_for(resolver(host, port or (443 if scheme == "https" else 80)), timeout)
    except (OSError, TimeoutError, UnicodeError):
        raise WebhookRefused(f"could not resolve {host}; check the URL ({PUBLIC_RULE})") from None
    policy.check_addresses(host, addresses, reach)
    return u


def webhook_kind(url: str) -> str:
    """discord_webhook, slack_webhook or webhook, judged from the URL."""
    from core.urls import split_url

    parts = split_url(url.strip())
    host = (parts.host if parts else "").lower().rstrip(".")
    path = parts.path if parts else ""
    if host in PLATFORM_HOSTS["discord_webhook"] and "/webhooks/" in path:
        return "discord_webhook"
    if host in PLATFORM_HOSTS["slack_webhook"]:
        return "slack_webhook"
    return "webhook"
