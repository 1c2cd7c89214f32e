"""The chart page in a real browser (the system's headless Chromium): drawn, readable, and following live prices."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from analytics.lifecycle import PlanState, observe
from bot.request import Ctx
from bot.runtime.api import state_to_json
from bot.web import chart_page
from storage import alerts as alert_store
from storage import plans as plan_store
from storage.identity import ensure_owner
from tests.bot.web.conftest import ident, plan_link, signer, token_of
from tests.conftest import run_text

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Screenshots land here (ignored by git) for people to look at.
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        await b.close()


async def open_tab(browser, width: int, height: int):
    """A tab whose test probes may evaluate script (the page's CSP allows no eval; the page itself needs none)."""
    context = await browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    return await context.new_page()


async def test_the_page_draws_the_plan_and_follows_live_prices(svc, clock, page, stream, browser, monkeypatch):
    monkeypatch.setattr(chart_page, "STATUS_EVERY", 0.3)  # the plan's state arrives in a test's patience
    reply = await plan_link(svc, clock)
    plan = reply.data.plan
    tok = token_of(reply.data.chart_url)
    tab = await open_tab(browser, 1280, 760)
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    await tab.goto(str(page.make_url(f"/chart/{tok}")))
    await tab.wait_for_function("window.coachChart && window.coachChart.ready", timeout=30_000)
    st = await tab.evaluate("window.coachChart")
    assert not errors and st["interval"] == "5m"
    titles = {ln["title"]: ln["price"] for ln in st["priceLines"]}
    assert titles["Entry"] == pytest.approx(plan.entry) and titles["Stop"] == pytest.approx(plan.stop)
    for i, t in enumerate(plan.targets, 1):
        assert titles[f"T{i}"] == pytest.approx(t.price)
    assert [ln["label"] for ln in st["lines"]] == ["EMA 9", "EMA 21", "VWAP"]
    assert all(ln["points"] > 50 for ln in st["lines"])
    vwap = next(ln for ln in st["lines"] if ln["label"] == "VWAP")
    assert vwap["color"] == "#ffffff"
    assert (await tab.locator("#title").inner_text()).startswith("NVDA")
    banner = await tab.locator("#banner").inner_text()
    assert "market open" in banner and f"plan {plan.plan_id} v{plan.version}" in banner and "not tracked" in banner
    # the chart library drew on its canvases
    assert await tab.locator("#chart canvas").count() >= 2
    await tab.check("#more")
    more = await tab.evaluate("window.coachChart.moreLines")
    assert more and all(m["title"] for m in more)
    await tab.uncheck("#more")
    ARTIFACTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(ARTIFACTS / "chart_page_plan.png"))

    # a trade on the feed moves the last bar and the pill turns green
    await stream.subscribed.wait()
    last = st["lastBar"]
    price = round(last["close"] + 0.75, 2)
    stream.push("NVDA", price, clock.t)
    await tab.wait_for_function("window.coachChart.updates >= 1", timeout=10_000)
    now = await tab.evaluate("window.coachChart")
    assert now["lastBar"]["close"] == pytest.approx(price) and now["lastBar"]["high"] >= price
    assert now["pill"]["level"] == "green" and "live" in now["pill"]["text"]
    assert await tab.locator("#pill.green").count() == 1

    # the plan is tracked, triggers and hits T1: markers appear without reloading
    await run_text(Ctx(services=svc, identity=ident()), f"/track {plan.plan_id}")
    state = PlanState.from_plan(plan)
    entry_at = clock.t + timedelta(minutes=5)
    ns = int(entry_at.timestamp() * 1e9)
    state, _events = observe(state, [plan.entry], ns)
    assert state.status == "triggered"
    async with svc.db() as s, s.begin():
        owner = await ensure_owner(s, "discord", "G1", "U1")
        row = await alert_store.get_tracked(s, owner, plan.plan_id)
        row.state = {"state": state_to_json(state), "sessions": 0}
        row.status = state.status
    await tab.wait_for_function("window.coachChart.markers.some(m => m.startsWith('Triggered'))", timeout=10_000)
    assert "triggered" in await tab.locator("#banner").inner_text()

    # the price reaches T1 in the next bar: the tracker counts the target, the page marks it on that bar
    t1 = plan.targets[0].price
    later = clock.t + timedelta(minutes=10)
    stream.push("NVDA", t1, later)
    await tab.wait_for_function("window.coachChart.updates >= 2", timeout=10_000)
    state, _events = observe(state, [t1], int(later.timestamp() * 1e9))
    assert state.targets_hit == 1
    async with svc.db() as s, s.begin():
        row = await alert_store.get_tracked(s, owner, plan.plan_id)
        row.state = {"state": state_to_json(state), "sessions": 0}
    hit = f"T1 hit {t1:.2f}"
    await tab.wait_for_function(f"window.coachChart.markers.includes({hit!r})", timeout=10_000)
    await tab.screenshot(path=str(ARTIFACTS / "chart_page_live.png"))

    # stopped out, and the re-plan waits to be adopted: both marked, with the re-plan's own link and its Adopt command
    state, _events = observe(state, [plan.stop], ns + 1_200_000_000_000)
    assert state.status == "stopped"
    replan = plan.model_copy(update={"plan_id": "P-NEXT01", "entry": plan.entry + 0.2, "version": 0})
    async with svc.db() as s, s.begin():
        stored = await plan_store.save_plan(s, owner, replan, "C1")
        row = await alert_store.get_tracked(s, owner, plan.plan_id)
        row.state = {"state": state_to_json(state), "sessions": 0}
        row.status, row.replan_status, row.next_plan_id = "stopped", "done", stored.plan_id
    await tab.wait_for_function("window.coachChart.markers.some(m => m.startsWith('Re-plan P-NEXT01'))", timeout=10_000)
    marks = await tab.evaluate("window.coachChart.markers")
    assert any(m.startswith("Stopped") for m in marks)
    assert await tab.locator("#replan button").inner_text() == "Adopt: /track P-NEXT01"
    href = await tab.locator("#replan a").get_attribute("href")
    again = signer().verify(token_of(href), clock.t)
    assert (again.plan_id, again.version, again.tenant_id) == ("P-NEXT01", stored.version, owner.tenant_id)
    await tab.screenshot(path=str(ARTIFACTS / "chart_page_replan.png"))


async def test_the_page_runs_under_its_own_content_security_policy(svc, clock, page, browser):
    reply = await plan_link(svc, clock)
    context = await browser.new_context(viewport={"width": 900, "height": 600})  # the CSP enforced
    tab = await context.new_page()
    refused: list[str] = []
    tab.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    tab.on("pageerror", lambda e: refused.append(str(e)))
    response = await tab.goto(str(page.make_url(f"/chart/{token_of(reply.data.chart_url)}")))
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    for _ in range(300):  # polled from the test: evaluating a predicate inside the page would itself be refused
        if await tab.evaluate("Boolean(window.coachChart && window.coachChart.ready)"):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the chart never became ready")
    assert await tab.locator(".legend .swatch").count() == 3
    assert refused == []


async def test_old_data_shows_a_red_pill_and_a_chart_without_a_plan(svc, clock, page, browser):
    from tests.conftest import run_text as run

    clock.t = clock.t.replace(hour=23)  # after hours: the newest bar is hours old
    reply = await run(Ctx(services=svc, identity=ident()), "/chart TSLA 15m,1h")
    tab = await open_tab(browser, 1100, 700)
    await tab.goto(str(page.make_url(f"/chart/{token_of(reply.data.chart_url)}")))
    await tab.wait_for_function("window.coachChart && window.coachChart.ready", timeout=30_000)
    st = await tab.evaluate("window.coachChart")
    assert st["interval"] == "15m" and st["pill"]["level"] == "red"
    assert not any(ln["role"] in ("entry", "stop", "target") for ln in st["priceLines"])
    await tab.click("#intervals button[data-iv='1h']")
    await tab.wait_for_function("window.coachChart.ready && window.coachChart.interval === '1h'", timeout=30_000)
    assert [ln["label"] for ln in (await tab.evaluate("window.coachChart.lines"))] == ["EMA 20", "EMA 50"]
    await tab.screenshot(path=str(ARTIFACTS / "chart_page_noplan.png"))
