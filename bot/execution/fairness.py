"""How many requests one person and one workspace may have running at once.

A market-open burst from one channel must not fill every worker: past `per_user` running
requests a person is asked to wait for them, past `per_tenant` a whole server or workspace is.
The front counts a request from submission until its worker is done with it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bot.request import Identity


@dataclass
class InFlight:
    """Running requests per person and per tenant, within limits."""

    per_user: int = 3
    per_tenant: int = 100
    _users: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _tenants: Counter[tuple[str, str]] = field(default_factory=Counter)

    def refusal(self, ident: Identity) -> str | None:
        """Why this caller must wait (one line), or None when they may start another request."""
        if self._users[_user(ident)] >= self.per_user:
            n = self.per_user
            return f"You have {n} request{'s' if n != 1 else ''} running; I'll take the next one when one of them is answered."
        if self._tenants[_tenant(ident)] >= self.per_tenant:
            return "This server is busy with its own requests right now; try again in a few seconds."
        return None

    def start(self, ident: Identity) -> None:
        self._users[_user(ident)] += 1
        self._tenants[_tenant(ident)] += 1

    def finish(self, ident: Identity) -> None:
        user, tenant = _user(ident), _tenant(ident)
        self._users[user] -= 1
        if self._users[user] <= 0:
            del self._users[user]  # forget idle people: the counters hold only who has something running
        self._tenants[tenant] -= 1
        if self._tenants[tenant] <= 0:
            del self._tenants[tenant]

    def running(self, ident: Identity) -> int:
        """How many requests this caller has running."""
        return self._users[_user(ident)]


def _user(ident: Identity) -> tuple[str, str, str]:
    return ident.platform, ident.tenant, ident.user


def _tenant(ident: Identity) -> tuple[str, str]:
    return ident.platform, ident.tenant
