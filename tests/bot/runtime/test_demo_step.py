"""The demo's alerts step with the real planner: an alert fires, a tracked plan stops out, the re-plan comes with Adopt."""

from __future__ import annotations

import io
import re

from bot.app import build_services
from bot.config import Settings
from bot.demo_alerts import run_alerts_demo


async def test_alerts_demo_step(tmp_path, monkeypatch):
    monkeypatch.setenv("COACH_CHART_WORKERS", "0")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/demo.db",
        coach_provider="sim",
        coach_out_dir=tmp_path / "out",
        openai_api_key=None,
        openai_base_url=None,
    )
    services = await build_services(settings)
    out = io.StringIO()
    try:
        answered = await run_alerts_demo(services, out)
    finally:
        await services.close()
    text = out.getvalue()
    assert answered >= 6, text[-3000:]
    assert "── pushed ──" in text
    assert re.search(r"one-shot, now done", text), "the alert fired and was pushed"
    assert "entry touched" in text and "stopped out" in text
    assert re.search(r"re-plan P-[0-9A-Z]{6}|no new plan after the stop-out", text)
    if "re-plan P-" in text:
        new_id = re.search(r"re-plan (P-[0-9A-Z]{6})", text).group(1)
        assert f"Adopt  /track {new_id}" in text and f"Tracking {new_id}" in text
    assert "0 pending" in text and "failed" in text
    assert list((tmp_path / "out").glob("*.png")), "plan transitions are posted with a chart"
