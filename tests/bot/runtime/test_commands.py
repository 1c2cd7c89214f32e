"""Alert commands as people use them: validation, tenancy, admin-only settings, status and test."""

from __future__ import annotations

import pytest

from storage import alerts as store
from tests.bot.runtime.conftest import say


async def test_bad_input_gets_one_clear_line(services):
    cases = {
        "/alert add TSLA above 99999": "absurdly far",
        "/alert add TSLA above 0.5": "absurdly far",
        "/alert add TSLA above 600 expires=2024-03-12": "already past",
        "/alert add TSLA above 600 expires=soonish": "not understood",
        "/alert add TSLA sideways 600": "kind",
        "/alert add TSLA pct 0": "pct alert",
        "/alert add TSLA pct 80": "pct alert",
        "/alert add TSLA above": "needs a price level",
        "/alert add SPY rsi_above 120": "between 1 and 99",
        "/alert add SPY ema_cross_up fast=30 slow=10": "shorter",
        "/alert add TSLA above 600 cooldown=5m": "--repeat",
        "/alert add TSLA above 600 --repeat cooldown=30d": "7d",
        "/alert add TSLA stop": "plan=PLAN_ID",
        "/alert add TSLA stop plan=P-NOPE": "no plan P-NOPE",
        "/alert add TS;LA above 5": "invalid symbol",
        "/alert remove x,y": "not a list",
        "/alert edit 999 value=1": "no alert #999",
        "/track bad$id": "not a plan id",
    }
    for line, needle in cases.items():
        r = await say(services, line)
        assert r.severity == "error", line
        assert needle in r.body, f"{line}: {r.body}"
        assert "\n" not in r.body.split("; usage")[0]
        assert "Traceback" not in r.body


async def test_per_user_maximum(services, monkeypatch):
    monkeypatch.setattr(store, "MAX_ALERTS_PER_USER", 3)
    for lv in (600, 601, 602):
        assert (await say(services, f"/alert add TSLA above {lv}")).severity == "success"
    r = await say(services, "/alert add TSLA above 603")
    assert r.severity == "error" and "3 live alerts" in r.body
    # someone else is not affected
    assert (await say(services, "/alert add TSLA above 603", user="U2")).severity == "success"


async def test_one_guilds_alerts_and_settings_are_invisible_to_another(services, hook):
    g1_admin = dict(tenant="G1", user="A1", channel="C1", admin=True)
    g1 = dict(tenant="G1", user="U1", channel="C1")
    g2 = dict(tenant="G2", user="U1", channel="C1", admin=True)  # same user and channel ids, another guild
    assert (await say(services, "/settings route thread", **g1_admin)).severity == "success"
    assert (await say(services, f"/settings webhook add {hook.url('/g1')}", **g1_admin)).severity == "success"
    a = (await say(services, "/alert add TSLA above 600 secret plan", **g1)).data
    await say(services, "/alerts test", **g1)
    assert hook.delivered("/g1"), "the G1 test alert reached G1's webhook"

    mine = await say(services, "/alert list --all", **g2)
    assert mine.data == {"alerts": []}
    assert (await say(services, f"/alert remove {a.id}", **g2)).severity == "error"
    assert (await say(services, f"/alert edit {a.id} value=610", **g2)).severity == "error"
    shown = await say(services, "/settings show", **g2)
    assert shown.data.route == "channel" and shown.data.webhooks == [] and set(shown.data.origin.values()) == {"default"}
    status = await say(services, "/alerts status", **g2)
    assert status.data.destinations == [] and status.data.alerts == 0
    # G2's admin changing "C1" changes G2's C1 only
    await say(services, "/settings alerts off", **g2)
    assert (await say(services, "/alert add TSLA above 601", **g1)).severity == "success"
    # and G1 still sees its own
    g1_list = await say(services, "/alert list", **g1)
    assert [x.id for x in g1_list.data["alerts"]] == [a.id, a.id + 1]
    g1_status = await say(services, "/alerts status", **g1)
    assert any(d.delivered for d in g1_status.data.destinations)
    assert all("/g1 #" in d.target or d.destination != "webhook" for d in g1_status.data.destinations)


async def test_settings_are_admin_only(services):
    for line in (
        "/settings alerts off",
        "/settings types price",
        "/settings route dm",
        "/settings webhook add https://example.com/x",
    ):
        r = await say(services, line, admin=False)
        assert r.severity == "error" and "admins only" in r.body, line
    assert (await say(services, "/settings show", admin=False)).severity != "error"


async def test_channel_settings_gate_new_alerts(services):
    admin = dict(admin=True)
    await say(services, "/settings types price,plan", **admin)
    r = await say(services, "/alert add SPY rsi_above 70")
    assert r.severity == "error" and "indicator alerts are not allowed" in r.body
    await say(services, "/settings alerts off --workspace", **admin)
    # the channel row does not set enabled, so the workspace's "off" applies
    r = await say(services, "/alert add TSLA above 600")
    assert r.severity == "error" and "turned off" in r.body
    await say(services, "/settings alerts on", **admin)
    assert (await say(services, "/alert add TSLA above 600")).severity == "success"
    shown = await say(services, "/settings show")
    assert shown.data.origin["alerts_enabled"] == "channel" and shown.data.allowed_kinds == ["price", "plan"]


async def test_webhook_urls_are_checked_and_masked(services):
    admin = dict(admin=True)
    bad = await say(services, "/settings webhook add http://example.com/hook", **admin)
    assert bad.severity == "error" and "https" in bad.body
    secret = "https://discord.com/api/webhooks/123456/SuperSecretToken"
    ok = await say(services, f"/settings webhook add {secret}", **admin)
    assert ok.severity == "success"
    assert "SuperSecretToken" not in ok.body and ok.data.webhooks[0]["kind"] == "discord_webhook"
    listed = await say(services, "/settings webhook list")
    assert "SuperSecretToken" not in listed.body + str(listed.data_json())
    assert (await say(services, "/settings webhook remove 2", **admin)).severity == "error"
    assert (await say(services, "/settings webhook remove 1", **admin)).data.webhooks == []


async def test_alert_edit_and_remove(services):
    a = (await say(services, "/alert add TSLA above 600")).data
    r = await say(services, f"/alert edit {a.id} value=605 --repeat cooldown=30m expires=2h note=retest")
    assert r.severity == "success", r.body
    assert r.data.level == 605 and r.data.repeat and r.data.cooldown_s == 1800 and r.data.note == "retest"
    assert r.data.expires_at is not None
    r = await say(services, f"/alert edit {a.id} expires=never")
    assert r.data.expires_at is None
    gone = await say(services, f"/alert remove {a.id}")
    assert gone.data == {"removed": [a.id]}
    assert (await say(services, "/alert list")).data == {"alerts": []}
    async with services.db() as s:
        from sqlalchemy import select

        row = (await s.execute(select(store.Alert).where(store.Alert.id == a.id))).scalar_one()
    assert row.status == "removed"  # kept so a runtime in another process sees the removal


async def test_alerts_test_delivers_inline_without_a_runtime(services, hook):
    admin = dict(admin=True)
    await say(services, f"/settings webhook add {hook.url('/t')}", **admin)
    hook.modes["/bad"] = ("status", 404)
    await say(services, f"/settings webhook add {hook.url('/bad')} kind=slack_webhook", **admin)
    r = await say(services, "/alerts test")
    assert r.data["delivered_inline"]
    statuses = {x["target"].split()[0]: x["status"] for x in r.data["results"]}
    assert statuses["webhook"] == "delivered" and statuses["slack_webhook"] == "failed"
    assert r.severity == "error" and "FAILED" in r.body
    (post,) = hook.delivered("/t")
    assert post.body["title"] == "Test alert" and post.key.startswith("test:")


@pytest.mark.parametrize("cli", [True])
async def test_cli_twin_exists(cli):
    from click.testing import CliRunner

    from bot.cli.main import build_cli

    res = CliRunner().invoke(build_cli(), ["runtime", "--help"])
    assert res.exit_code == 0 and "--speed" in res.output
    res = CliRunner().invoke(build_cli(), ["alert", "add", "--help"])
    assert res.exit_code == 0
