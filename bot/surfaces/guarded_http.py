"""The HTTP client webhooks are posted with: it connects only to addresses the webhook policy allows.

A check of the URL's name before the request is not enough: the name can resolve to a public
address for the check and to 127.0.0.1 for the connection (DNS rebinding). So the check happens
where the connection is made: the connection pool's network backend resolves the name once,
refuses it unless every address is allowed (`bot.webhook_targets`), and connects to one of those
checked addresses. TLS still runs against the name (SNI and certificate check) and the Host header
is still the name, because httpcore does both from the request's own URL. The client follows no
redirect, reads no proxy from the environment (a proxy would make the proxy's address the one
checked), and the pool is keyed by name, so a connection is reused only for the name it was made for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from bot.webhook_targets import Reach, Resolver, WebhookPolicy, system_resolver

# httpcore's errors as httpx's, most specific first (callers catch httpx.HTTPError and its kinds)
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core_exc, httpx_exc in _ERRORS:
            if isinstance(exc, core_exc):
                raise httpx_exc(str(exc)) from exc
        raise


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves a name once, checks every address against a reach, and connects only to a checked address."""

    def __init__(self, policy: WebhookPolicy, reach: Reach, resolver: Resolver) -> None:
        self.policy = policy
        self.reach = reach
        self.resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self.resolver(host, port), timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout("name resolution timed out") from None
        except (OSError, UnicodeError):
            raise httpcore.ConnectError("name resolution failed") from None
        if not addresses:
            raise httpcore.ConnectError("name resolution failed")
        self.policy.check_addresses(host, addresses, self.reach)  # WebhookRefused: not a network error, never retried
        last: Exception = httpcore.ConnectError("no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        closer = getattr(self._stream, "aclose", None)
        if closer is not None:
            await closer()


class CheckedTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose connections go only where `policy` lets a `kind` webhook go.

    The reach (public, private or either) follows from the URL (`WebhookPolicy.reach`); each reach
    has its own pool, whose backend enforces it when it connects.
    """

    def __init__(self, policy: WebhookPolicy, kind: str, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self.kind = kind
        self.resolver = resolver or system_resolver
        self._ssl = httpx.create_ssl_context(trust_env=False)
        self._pools: dict[str, httpcore.AsyncConnectionPool] = {}

    def _pool(self, reach: Reach) -> httpcore.AsyncConnectionPool:
        pool = self._pools.get(reach)
        if pool is None:
            pool = httpcore.AsyncConnectionPool(
                ssl_context=self._ssl,
                max_connections=20,
                max_keepalive_connections=10,
                keepalive_expiry=30.0,
                network_backend=CheckedBackend(self.policy, reach, self.resolver),
            )
            self._pools[reach] = pool
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("the webhook transport sends async request bodies only")
        reach = self.policy.reach(self.kind, request.url.scheme, request.url.host)
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            resp = await self._pool(reach).handle_async_request(req)
        return httpx.Response(
            status_code=resp.status, headers=resp.headers, stream=_Body(resp.stream), extensions=resp.extensions
        )

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()


def webhook_client(
    policy: WebhookPolicy, kind: str, *, timeout: float = 10.0, resolver: Resolver | None = None
) -> httpx.AsyncClient:
    """The client a `kind` webhook posts with: bounded time, no redirect (a webhook URL never moves), checked addresses."""
    return httpx.AsyncClient(
        transport=CheckedTransport(policy, kind, resolver), timeout=timeout, follow_redirects=False, trust_env=False
    )
