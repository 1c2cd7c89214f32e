"""The webhook policy's rules on their own: address classes, URL shapes, and the reach each URL gets."""

from __future__ import annotations

import ipaddress

import pytest

from bot.webhook_targets import WebhookPolicy, WebhookRefused, address_class, vet_webhook_url, webhook_kind


@pytest.mark.parametrize(
    ("address", "cls"),
    [
        ("93.184.216.34", "public"),
        ("2606:4700::1111", "public"),
        ("::ffff:8.8.8.8", "public"),
        ("127.0.0.1", "private"),
        ("127.8.9.10", "private"),
        ("10.1.2.3", "private"),
        ("172.20.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # CGNAT
        ("::1", "private"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "private"),  # IPv4-mapped loopback
        ("64:ff9b::7f00:1", "private"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", "private"),  # 6to4 of 127.0.0.1
        ("169.254.169.254", "never"),  # cloud metadata
        ("::ffff:169.254.169.254", "never"),
        ("fe80::1", "never"),
        ("0.0.0.0", "never"),
        ("::", "never"),
        ("224.0.0.1", "never"),
        ("ff02::1", "never"),
        ("240.0.0.1", "never"),
        ("255.255.255.255", "never"),
        ("192.0.2.1", "never"),  # documentation
        ("198.18.0.1", "never"),  # benchmarking
    ],
)
def test_address_classes(address, cls):
    assert address_class(ipaddress.ip_address(address)) == cls


def test_reach_by_kind_scheme_and_setting():
    strict, open_ = WebhookPolicy(), WebhookPolicy(allow_private=True)
    assert strict.reach("webhook", "https", "hooks.example.com") == "public"
    assert open_.reach("webhook", "https", "hooks.example.com") == "any"
    assert open_.reach("webhook", "http", "receiver.lan") == "private"  # plain http never leaves the private network
    assert open_.reach("discord_webhook", "https", "discord.com") == "public"
    assert open_.reach("slack_webhook", "http", "relay.lan") == "private"
    with pytest.raises(WebhookRefused, match="https://"):
        strict.reach("webhook", "http", "hooks.example.com")
    with pytest.raises(WebhookRefused, match="discord.com"):
        strict.reach("discord_webhook", "https", "relay.lan")


@pytest.mark.parametrize(
    "url",
    [
        "https://discord.com/api/webhooks/123456789012345678/tok-en_1",
        "https://discordapp.com/api/v10/webhooks/1/t",
        "https://canary.discord.com/api/webhooks/1/t",
        "https://hooks.slack.com/services/T000/B000/XXXX",
    ],
)
def test_real_platform_urls_pass(url):
    kind = webhook_kind(url)
    assert kind in ("discord_webhook", "slack_webhook")
    assert WebhookPolicy().check_url(url, kind) == url


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://discord.com/api/webhooks/abc/tok", "discord_webhook"),
        ("https://discord.com/api/webhooks/1/tok/../../users/@me", "discord_webhook"),
        ("https://hooks.slack.com/", "slack_webhook"),
        ("https://user@[fe80::1%25eth0]/x", "webhook"),
        ("https:///nohost", "webhook"),
        ("https://hooks.example.com:99999/x", "webhook"),
        ("javascript:alert(1)", "webhook"),
    ],
)
def test_malformed_urls_are_refused(url, kind):
    with pytest.raises(WebhookRefused):
        WebhookPolicy().check_url(url, kind)


async def test_vetting_resolves_and_checks_every_address():
    async def two(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example.com", 443)
        return ["93.184.216.34", "10.0.0.7"]

    async def one(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    with pytest.raises(WebhookRefused, match="resolves to a private"):
        await vet_webhook_url("https://hooks.example.com/x", "webhook", WebhookPolicy(), two)
    assert (
        await vet_webhook_url(" https://hooks.example.com/x ", "webhook", WebhookPolicy(), one) == "https://hooks.example.com/x"
    )
