"""The project's error tree, sorted by who must act.

    CoachError
     +-- UserError          the person asking must fix their input (exit code 2, short reply)
     |    +-- NotFoundError  a thing the user named does not exist (symbol, plan, alert, expiry)
     +-- ProviderError      an upstream data/broker service failed; carries the provider's name;
     |    |                  `transient` says whether trying again later can help
     |    +-- RateLimited    the provider asked us to slow down (retry_after seconds)
     +-- ConfigError        the operator must fix configuration (bad DATABASE_URL, missing key)

Anything else is a bug: surfaces log it with a request id and show only that id.
"""

from __future__ import annotations

from typing import Any


class CoachError(Exception):
    """Base of every error the project raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle (worker processes send errors back) re-calls __init__ with `args` only, which the
        # subclasses' own signatures (provider, reason, ...) would refuse: rebuild from the state instead
        return (_rebuild, (self.__class__, self.args, dict(self.__dict__)))


def _rebuild(cls: type[CoachError], args: tuple[Any, ...], state: dict[str, Any]) -> CoachError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class UserError(CoachError):
    """Bad input: the message says what was wrong and what is accepted."""


class NotFoundError(UserError):
    """Something the user referred to does not exist."""


class ConfigError(CoachError):
    """The service is misconfigured; the operator must act."""


class ProviderError(CoachError):
    """An upstream provider failed. `provider` names it; the message is one line for the user."""

    #: False when the provider cannot serve this at all (this account, this kind of data): no retry helps.
    transient: bool = True

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class RateLimited(ProviderError):
    """The provider answered 429 (or equivalent); `retry_after` is in seconds when known."""

    def __init__(self, provider: str, reason: str = "rate limited", retry_after: float | None = None) -> None:
        super().__init__(provider, reason)
        self.retry_after = retry_after
