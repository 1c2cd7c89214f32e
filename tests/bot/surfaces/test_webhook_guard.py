"""Webhook sinks against loopback receivers that count every hit: what the policy refuses never arrives.

The sinks are the runtime's own (`bot.surfaces.webhooks`) with their real HTTP client; names are
resolved by an injected resolver where a test needs a public-looking name to point at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.reply import Reply
from bot.runtime.destinations import DeliveryError
from bot.surfaces.webhooks import DiscordWebhookDestination, SlackWebhookDestination, WebhookDestination
from bot.webhook_targets import WebhookPolicy
from tests.fakes.counting_receiver import CountingReceiver

PUBLIC = "93.184.216.34"  # a public address: resolving to it passes the check (nothing here connects to it)


@pytest.fixture
async def receiver():
    r = await CountingReceiver().start()
    yield r
    await r.stop()


def alert() -> Reply:
    return Reply(title="TSLA crossed 190.00", body="price alert", as_of=datetime(2024, 3, 13, 15, 0, tzinfo=UTC))


def resolver_to(*addresses: str, calls: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(addresses)

    return resolve


async def send(dest, url: str) -> None:
    try:
        await dest.send(url, alert(), "k1")
    finally:
        await dest.aclose()


# ------------------------------------------------------------------ refused by default


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/x",
        "https://127.0.0.1:{port}/x",
        "http://localhost:{port}/x",
        "https://localhost:{port}/x",
        "https://[::1]:{port}/x",
        "https://[::ffff:127.0.0.1]:{port}/x",
        "https://10.0.0.1/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/x",
        "https://0.0.0.0:{port}/x",
    ],
)
async def test_private_and_local_targets_are_refused_and_never_hit(receiver, url):
    url = url.format(port=receiver.port)
    with pytest.raises(DeliveryError) as err:
        await send(WebhookDestination(), url)
    assert err.value.permanent and "refused" in err.value.reason
    assert receiver.hits == []


async def test_a_public_looking_name_that_resolves_to_loopback_is_refused(receiver):
    calls: list[str] = []
    dest = WebhookDestination(resolver=resolver_to("127.0.0.1", calls=calls))
    with pytest.raises(DeliveryError) as err:
        await send(dest, f"https://hooks.example.com:{receiver.port}/x")
    assert err.value.permanent and "resolves to a private" in err.value.reason
    assert calls == ["hooks.example.com"] and receiver.hits == []


async def test_every_address_is_checked_not_only_the_first(receiver):
    dest = WebhookDestination(resolver=resolver_to(PUBLIC, "127.0.0.1"))
    with pytest.raises(DeliveryError) as err:
        await send(dest, f"https://hooks.example.com:{receiver.port}/x")
    assert err.value.permanent and receiver.hits == []


async def test_the_address_is_checked_at_each_connection_not_only_when_added(receiver):
    # the name was public when the webhook was added; now it answers 127.0.0.1 (DNS rebinding)
    from bot.webhook_targets import vet_webhook_url

    answers = [[PUBLIC], ["127.0.0.1"]]

    async def rebinding(host: str, port: int) -> list[str]:
        return answers.pop(0)

    url = f"https://rebind.example.com:{receiver.port}/x"
    assert await vet_webhook_url(url, "webhook", WebhookPolicy(), rebinding) == url
    with pytest.raises(DeliveryError):
        await send(WebhookDestination(resolver=rebinding), url)
    assert receiver.hits == [] and answers == []


@pytest.mark.parametrize(
    ("dest", "url"),
    [
        (DiscordWebhookDestination, "https://evil.example/api/webhooks/123/token"),
        (DiscordWebhookDestination, "https://discord.com.evil.example/api/webhooks/123/token"),
        (DiscordWebhookDestination, "https://127.0.0.1:{port}/api/webhooks/123/token"),
        (DiscordWebhookDestination, "http://discord.com/api/webhooks/123/token"),
        (SlackWebhookDestination, "https://hooks.slack.com.evil.example/services/T0/B0/X"),
        (SlackWebhookDestination, "https://127.0.0.1:{port}/services/T0/B0/X"),
        (SlackWebhookDestination, "https://slack.com/services/T0/B0/X"),
    ],
)
async def test_platform_kinds_go_only_to_their_platforms_hosts(receiver, dest, url):
    calls: list[str] = []
    with pytest.raises(DeliveryError) as err:
        await send(dest(resolver=resolver_to("127.0.0.1", calls=calls)), url.format(port=receiver.port))
    assert err.value.permanent and "goes only to https://" in err.value.reason
    assert calls == [] and receiver.hits == []  # refused before any name is looked up


async def test_a_platform_host_that_resolves_privately_is_refused_even_when_private_receivers_are_allowed(receiver):
    dest = DiscordWebhookDestination(
        policy=WebhookPolicy(allow_private=True), resolver=resolver_to("127.0.0.1")
    )  # a hijacked or poisoned answer for discord.com is never a relay
    with pytest.raises(DeliveryError) as err:
        await send(dest, "https://discord.com/api/webhooks/123456789012345678/tok")
    assert err.value.permanent and receiver.hits == []


# ------------------------------------------------------------------ what the operator's setting opens


async def test_allow_private_lets_a_loopback_receiver_through(receiver):
    await send(WebhookDestination(policy=WebhookPolicy(allow_private=True)), f"http://127.0.0.1:{receiver.port}/x")
    assert receiver.hits == ["POST /x"]


async def test_allow_private_still_refuses_link_local_and_public_plain_http(receiver):
    dest = WebhookDestination(policy=WebhookPolicy(allow_private=True), resolver=resolver_to(PUBLIC))
    with pytest.raises(DeliveryError):
        await send(dest, "http://169.254.169.254/latest/meta-data/")
    with pytest.raises(DeliveryError) as err:  # plain http stays inside the private network
        await send(
            WebhookDestination(policy=WebhookPolicy(allow_private=True), resolver=resolver_to(PUBLIC)),
            f"http://public.example.com:{receiver.port}/x",
        )
    assert err.value.permanent and receiver.hits == []


async def test_the_connection_goes_to_the_checked_address_with_the_name_kept(receiver):
    calls: list[str] = []
    dest = WebhookDestination(policy=WebhookPolicy(allow_private=True), resolver=resolver_to("127.0.0.1", calls=calls))
    await send(dest, f"http://receiver.internal:{receiver.port}/x")
    # resolved once, by the check; the Host header is still the name
    assert calls == ["receiver.internal"] and receiver.hosts == [f"receiver.internal:{receiver.port}"]


async def test_platform_kinds_may_use_a_private_relay_when_allowed(receiver):
    policy = WebhookPolicy(allow_private=True)
    await send(DiscordWebhookDestination(policy=policy), f"http://127.0.0.1:{receiver.port}/api/webhooks/1/tok")
    await send(SlackWebhookDestination(policy=policy), f"http://127.0.0.1:{receiver.port}/services/T0/B0/X")
    assert len(receiver.hits) == 2
    with pytest.raises(DeliveryError):  # but never another public host
        await send(
            DiscordWebhookDestination(policy=policy, resolver=resolver_to(PUBLIC)), "https://evil.example/api/webhooks/1/tok"
        )


# ------------------------------------------------------------------ redirects and what failures say


async def test_a_redirect_is_never_followed():
    inner = await CountingReceiver().start()
    outer = await CountingReceiver(location=f"http://127.0.0.1:{inner.port}/internal").start()
    try:
        for dest in (
            WebhookDestination(policy=WebhookPolicy(allow_private=True)),
            SlackWebhookDestination(policy=WebhookPolicy(allow_private=True)),
        ):
            with pytest.raises(DeliveryError) as err:
                await send(dest, f"http://127.0.0.1:{outer.port}/services/T0/B0/X")
            assert err.value.permanent and "answered 302" in err.value.reason
        assert len(outer.hits) == 2 and inner.hits == []
    finally:
        await inner.stop()
        await outer.stop()


async def test_failures_say_the_status_never_the_body_nor_how_a_connection_failed(receiver):
    receiver.status, receiver.body = 500, "db password is hunter2 at 10.1.2.3"
    dest = WebhookDestination(policy=WebhookPolicy(allow_private=True))
    with pytest.raises(DeliveryError) as err:
        await send(dest, f"http://127.0.0.1:{receiver.port}/x")
    assert "answered 500" in err.value.reason and "hunter2" not in err.value.reason and "10.1.2.3" not in err.value.reason

    # a closed port and a name that does not resolve read the same: no connect-level detail
    closed = await CountingReceiver().start()
    port = closed.port
    await closed.stop()
    reasons = []
    for url, resolver in ((f"http://127.0.0.1:{port}/x", None), ("http://nowhere.internal/x", resolver_to())):
        with pytest.raises(DeliveryError) as err:
            await send(WebhookDestination(policy=WebhookPolicy(allow_private=True), resolver=resolver), url)
        assert not err.value.permanent
        reasons.append(err.value.reason)
    for r in reasons:
        assert r.startswith("could not deliver to ")
        assert not any(w in r.lower() for w in ("refused", "connecterror", "errno", "timed out", "reset"))


# ------------------------------------------------------------------ TLS keeps the name


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=receiver.example"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return key, cert


async def test_tls_is_made_to_the_name_while_the_socket_goes_to_the_checked_address(tmp_path):
    try:
        key, cert = _self_signed(tmp_path)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("openssl is not available to make a test certificate")
    names: list[str | None] = []
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,misc,return-value]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        dest = WebhookDestination(policy=WebhookPolicy(allow_private=True), resolver=resolver_to("127.0.0.1"))
        with pytest.raises(DeliveryError) as err:  # the certificate is not trusted: no request is sent
            await send(dest, f"https://receiver.example:{port}/x")
        assert err.value.reason.startswith("could not deliver")
    finally:
        server.close()
    assert names == ["receiver.example"]  # SNI carried the name, not 127.0.0.1
