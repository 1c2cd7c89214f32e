"""The one URL masking rule: what it hides (credentials, tokens) and what it keeps (where, and which one)."""

from __future__ import annotations

import pytest

from core.urls import mask_url, split_url, url_credentials, url_fingerprint

DISCORD = (
    "https://discord.com/api/webhooks/123456789012345678/AbCdEfGhIj-KlMnOp_QrStUvWxYz0123456789abcdefghijklmnopqrstuvwxyzABCD"
)
SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        (DISCORD, "https://discord.com/api/webhooks/… #", ["123456789012345678", "AbCdEfGhIj"]),
        (SLACK, "https://hooks.slack.com/services/… #", ["T000", "B000", "XXXX"]),
        ("http://user:PASS@host.example/", "http://***@host.example/ #", ["user", "PASS"]),
        ("https://TOKENASUSER@api.example/v1", "https://***@api.example/v1 #", ["TOKENASUSER"]),
        (
            "https://hook.example/in?token=s3cr3tvalue&apiKey=K3Y",
            "https://hook.example/in?token=***&apiKey=*** #",
            ["s3cr3t", "K3Y"],
        ),
        ("https://e0a1b2c3d4e5f6.m.pipedream.net/", "https://….m.pipedream.net/ #", ["e0a1b2c3d4e5f6"]),
        (
            "postgresql+asyncpg://coach:hunter22@10.0.0.5:5432/coach",
            "postgresql+asyncpg://***@10.0.0.5:5432/coach #",
            ["hunter22"],
        ),
        (
            "https://hooks.example/hook/abcdefghijklmnopqrstuvwxyz",
            "https://hooks.example/hook/… #",
            ["abcdefghijklmnopqrstuvwxyz"],
        ),
        ("https://x.example/a#frag-secret", "https://x.example/a #", ["frag-secret"]),
    ],
)
def test_secrets_are_masked_and_the_place_is_kept(url, shown, hidden):
    out = mask_url(url)
    assert out.startswith(shown), out
    for secret in hidden:
        assert secret not in out


def test_what_is_not_secret_stays_readable():
    assert mask_url("http://127.0.0.1:8000/v1").startswith("http://127.0.0.1:8000/v1 #")
    assert mask_url("https://[::1]:8443/hook").startswith("https://[::1]:8443/hook #")
    assert mask_url("sqlite+aiosqlite:///./var/coach.db").startswith("sqlite+aiosqlite:///./var/coach.db #")
    assert mask_url("wss://socket.massive.com/stocks").startswith("wss://socket.massive.com/stocks #")


def test_the_fingerprint_tells_two_webhooks_apart_and_is_stable():
    other = DISCORD[:-4] + "ZZZZ"
    assert mask_url(DISCORD).split()[0] == mask_url(other).split()[0]  # same shape shown...
    assert mask_url(DISCORD) != mask_url(other)  # ...told apart by the fingerprint
    assert mask_url(DISCORD) == mask_url(DISCORD + "  ")
    assert mask_url(DISCORD).endswith("#" + url_fingerprint(DISCORD)) and len(url_fingerprint(DISCORD)) == 6


@pytest.mark.parametrize("junk", ["plain words s3cret", "", "://nohost", "discord.com/api/webhooks/1/tok", "https://a b@c/d"])
def test_junk_never_comes_back_whole(junk):
    out = mask_url(junk)
    assert "tok" not in out and (junk == "" or junk not in out)


def test_parts_and_credentials():
    p = split_url("https://u:p@[::1]:8443/x?y=1")
    assert p is not None and (p.userinfo, p.host, p.port, p.path, p.query) == ("u:p", "[::1]", "8443", "/x", "y=1")
    assert split_url("no scheme here") is None
    assert url_credentials("http://user:PASS@h/?a=1&b=two") == ["PASS", "1", "two"]
    assert url_credentials("https://TOKEN@h/") == ["TOKEN"]
    assert url_credentials("https://h/plain") == []
