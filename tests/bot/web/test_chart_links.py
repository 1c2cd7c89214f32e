"""Chart links are capabilities: signed, expiring, scoped to the tenant, symbol, plan version and intervals they were made for."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from bot.config import Settings
from bot.reply import Action, Reply
from bot.surfaces import render_discord, render_slack
from bot.surfaces.console import render_text
from bot.web.chart_page import add_chart_page
from bot.web.links import LinkError, LinkScope, LinkSigner, link_signer
from core.errors import ConfigError
from storage.identity import ensure_owner
from tests.bot.web.conftest import PUBLIC, SECRET, WITH_PLAN, plan_link, signer, token_of


def _b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=").decode()


def test_a_token_names_its_scope_and_nothing_else_verifies():
    s = signer()
    scope = LinkScope(tenant_id=3, user_id=7, symbol="NVDA", intervals=("5m", "15m"), plan_id="P-ABC123", version=2)
    tok = s.token(scope, WITH_PLAN)
    got = s.verify(tok, WITH_PLAN + timedelta(days=6))
    assert (got.tenant_id, got.user_id, got.symbol, got.intervals, got.plan_id, got.version) == (
        3,
        7,
        "NVDA",
        ("5m", "15m"),
        "P-ABC123",
        2,
    )
    payload, mac = tok.split(".")
    # the same payload signed with another key, a changed payload under the old mac, junk: all refused alike
    other = LinkSigner("another-secret-" + "y" * 40, base_url=PUBLIC, ttl=3600).token(scope, WITH_PLAN)
    changed = _b64({**json.loads(base64.urlsafe_b64decode(payload + "==")), "t": 4}) + "." + mac
    for bad in (other, changed, tok[:-2] + ("AA" if not tok.endswith("AA") else "BB"), "", "a.b.c", "x" * 2000, "%%%.%%%"):
        with pytest.raises(LinkError, match="altered"):
            s.verify(bad, WITH_PLAN)
    with pytest.raises(LinkError, match="expired on 2024-03-21 14:15 UTC"):
        s.verify(tok, WITH_PLAN + timedelta(days=7))


def test_links_need_a_real_secret():
    with pytest.raises(ConfigError, match="at least 32"):
        LinkSigner("short", base_url=PUBLIC, ttl=60)
    base = {"_env_file": None, "coach_public_url": "https://coach.example.com/"}
    assert link_signer(Settings(_env_file=None)) is None  # no public URL: no links, quietly
    assert link_signer(Settings(**base)) is None  # no secret: no links (and serve refuses to start, below)
    assert link_signer(Settings(**base, coach_link_secret="short")) is None
    made = link_signer(Settings(**base, coach_link_secret=SECRET, coach_link_ttl="36h"))
    assert made is not None and made.base_url == "https://coach.example.com" and made.ttl == 36 * 3600
    with pytest.raises(ValueError, match="http"):
        Settings(_env_file=None, coach_public_url="coach.example.com")


async def test_serve_refuses_a_public_url_without_a_secret(svc):
    from aiohttp import web

    svc.settings = svc.settings.model_copy(update={"coach_link_secret": None})
    with pytest.raises(ConfigError, match="COACH_LINK_SECRET"):
        add_chart_page(web.Application(), svc)
    svc.settings = svc.settings.model_copy(update={"coach_public_url": None})
    assert add_chart_page(web.Application(), svc) is False


async def test_plan_and_chart_replies_carry_the_link(svc, clock):
    reply = await plan_link(svc, clock)
    url = reply.data.chart_url
    link = [a for a in reply.actions if a.url]
    assert link == [Action(label="Open chart", url=url)]
    scope = signer().verify(token_of(url), WITH_PLAN)
    p = reply.data.plan
    assert (scope.symbol, scope.plan_id, scope.version, scope.intervals) == ("NVDA", p.plan_id, p.version, ("5m", "15m", "1h"))
    assert reply.data_json()["chart_url"] == url  # what --json, the tools and the API return

    from bot.request import Ctx
    from tests.bot.web.conftest import ident
    from tests.conftest import run_text

    chart = await run_text(Ctx(services=svc, identity=ident()), "/chart NVDA 15m,1h plan")
    cscope = signer().verify(token_of(chart.data.chart_url), WITH_PLAN)
    assert cscope.intervals == ("15m", "1h") and cscope.plan_id == p.plan_id
    assert [a.label for a in chart.actions if a.url] == ["Open chart"]

    svc.settings = svc.settings.model_copy(update={"coach_public_url": None})
    plain = await run_text(Ctx(services=svc, identity=ident()), "/chart NVDA")
    assert plain.data.chart_url is None and not [a for a in plain.actions if a.url]


def test_each_surface_shows_the_link():
    url = PUBLIC + "/chart/abc.def"
    reply = Reply(
        title="NVDA long", actions=[Action(label="Track plan", command="/track P-1"), Action(label="Open chart", url=url)]
    )
    msg = render_discord.render(reply)[-1]
    buttons = msg.request()[0]["components"][0]["components"]
    assert buttons[1] == {"type": 2, "style": 5, "label": "Open chart", "url": url}
    assert "custom_id" in buttons[0] and "custom_id" not in buttons[1]
    from bot.surfaces.discord import make_view  # what discord.py sends for the bot's own messages

    view = make_view(reply.actions)
    assert view is not None
    sent = view.to_components()[0]["components"]
    assert sent[1]["style"] == 5 and sent[1]["url"] == url and "custom_id" not in sent[1]
    blocks = render_slack.render(reply)[-1].blocks
    elements = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert elements[1]["url"] == url and elements[1]["action_id"].startswith("coach_link") and "value" not in elements[1]
    assert f"[Open chart: {url}]" in render_text(reply)


async def test_tampered_expired_and_foreign_links_get_a_403(svc, clock, page):
    reply = await plan_link(svc, clock)
    tok = token_of(reply.data.chart_url)
    ok = await page.get(f"/chart/{tok}")
    assert ok.status == 200 and "no-referrer" in ok.headers["Referrer-Policy"]
    data = await page.get(f"/chart/{tok}/data?interval=15m")
    assert data.status == 200 and (await data.json())["plan"]["plan_id"] == reply.data.plan.plan_id

    payload, mac = tok.split(".")
    scope = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered = _b64({**scope, "s": "TSLA"}) + "." + mac
    for path in (f"/chart/{tampered}", f"/chart/{tok[:-3]}xyz"):
        r = await page.get(path)
        assert r.status == 403 and r.content_type == "text/html"
        assert "this link was altered or is not a chart link" in await r.text()
    for path in (f"/chart/{tampered}/data", f"/chart/{tampered}/live"):
        r = await page.get(path)
        assert r.status == 403 and "altered" in (await r.json())["error"]

    # an interval the reply did not show
    r = await page.get(f"/chart/{tok}/data?interval=1D")
    assert r.status == 403 and (await r.json())["error"] == "this link shows 5m, 15m, 1h only, not 1D"

    # another plan of the same person, signed properly: only a plan that is theirs opens
    s = signer()
    base = LinkScope(
        tenant_id=scope["t"], user_id=scope["u"], symbol="NVDA", intervals=("5m",), plan_id=scope["p"], version=scope["n"]
    )
    other_plan = s.token(LinkScope(**{**base.__dict__, "plan_id": "P-ZZZZZZ"}), clock.t)
    r = await page.get(f"/chart/{other_plan}")
    assert r.status == 403 and "plan P-ZZZZZZ is not available to this link" in await r.text()
    old_version = s.token(LinkScope(**{**base.__dict__, "version": scope["n"] + 1}), clock.t)
    r = await page.get(f"/chart/{old_version}/data")
    assert r.status == 403 and "has changed" in (await r.json())["error"]

    # someone of another tenant: the same plan id does not open for them, nor their own private plans for others
    async with svc.db() as sess, sess.begin():
        stranger = await ensure_owner(sess, "discord", "G2", "U9")
    foreign = s.token(LinkScope(**{**base.__dict__, "tenant_id": stranger.tenant_id, "user_id": stranger.user_id}), clock.t)
    for path in (f"/chart/{foreign}", f"/chart/{foreign}/data", f"/chart/{foreign}/live"):
        r = await page.get(path)
        assert r.status == 403
    # a plan made in a DM opens for its owner only, not for a colleague of the same tenant
    private = await plan_link(svc, clock, user="U9", tenant="G2", channel=None)
    pscope = s.verify(token_of(private.data.chart_url), clock.t)
    assert (await page.get(f"/chart/{token_of(private.data.chart_url)}/data?interval=5m")).status == 200
    async with svc.db() as sess, sess.begin():
        colleague = await ensure_owner(sess, "discord", "G2", "U8")
    peek = s.token(LinkScope(**{**pscope.__dict__, "user_id": colleague.user_id}), clock.t)
    r = await page.get(f"/chart/{peek}/data")
    assert r.status == 403 and "not available" in (await r.json())["error"]

    # a week later the link is refused, page and data alike
    clock.t = WITH_PLAN + timedelta(days=7, seconds=1)
    r = await page.get(f"/chart/{tok}")
    assert r.status == 403 and "this link expired on 2024-03-21 14:15 UTC" in await r.text()
    assert (await page.get(f"/chart/{tok}/data")).status == 403
    assert (await page.get("/chart/static/chart.js")).status == 200
    assert (await page.get("/chart/static/VERSION")).status == 404
