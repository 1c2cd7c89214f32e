"""`coach serve` as an operator sees it: JSON logs, /metrics counting real requests, a ref that finds a request's lines."""

from __future__ import annotations

import asyncio
import json
import re
import signal

import aiohttp

from tests.bot.surfaces.test_serve import COACH, _env, _free_port


async def _wait_http(http: aiohttp.ClientSession, url: str) -> None:
    for _ in range(300):
        try:
            async with http.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_plan_is_counted_every_line_is_json_and_a_ref_finds_front_and_worker(tmp_path, discord_fake) -> None:
    port, dead = _free_port(), _free_port()  # nothing listens on `dead`: the coach's model is unreachable
    env = _env(
        tmp_path,
        DISCORD_TOKEN="fake-token",
        DISCORD_API_BASE=discord_fake.api_base,
        DISCORD_GATEWAY_URL=discord_fake.gateway_url,
        COACH_WORKERS="1",  # a real worker process: its counts and lines must reach the front's /metrics and log
        OPENAI_API_KEY="sk-test-observability",
        OPENAI_BASE_URL=f"http://127.0.0.1:{dead}/v1",
        COACH_LLM_TIMEOUT="3",
    )
    proc = await asyncio.create_subprocess_exec(
        COACH,
        "serve",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.wait_for(discord_fake.identified.wait(), 60)
        await discord_fake.wait_for(lambda r: r.method == "PUT" and r.path.endswith("/commands"), timeout=30)
        async with aiohttp.ClientSession() as http:
            await _wait_http(http, f"{base}/healthz")
            for _ in range(100):  # ready once the gateway session is up (READY), a moment after the identify
                async with http.get(f"{base}/readyz") as r:
                    ready = await r.json()
                if r.status == 200:
                    break
                await asyncio.sleep(0.1)
            assert r.status == 200, ready
            assert ready["checks"]["database"]["ok"] and ready["checks"]["discord"]["ok"]

            await discord_fake.dispatch(
                "INTERACTION_CREATE", discord_fake.slash("plan", [{"name": "symbol", "type": 3, "value": "TSLA"}])
            )
            await discord_fake.wait_for(lambda r: r.method in ("POST", "PATCH") and r.path.startswith("/webhooks/"), timeout=60)
            for _ in range(100):  # the worker counts the delivery once the platform has answered it
                async with http.get(f"{base}/metrics") as r:
                    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
                    text = await r.text()
                if _metric(text, "coach_deliveries_total", kind="discord_interaction", result="ok"):
                    break
                await asyncio.sleep(0.05)
            # counted in the worker process, served by the front
            assert _metric(text, "coach_command_seconds_count", command="plan", surface="discord", outcome="ok") == 1
            assert _metric(text, "coach_ack_seconds_count", surface="discord") >= 1
            assert _metric(text, "coach_deliveries_total", kind="discord_interaction", result="ok") >= 1

            await discord_fake.dispatch("MESSAGE_CREATE", discord_fake.message_create("how does TSLA look?", mention=True))
            [sent] = await discord_fake.wait_for(
                lambda r: r.method == "POST" and r.path.startswith("/channels/") and "ref " in json.dumps(r.json), timeout=60
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    [ref] = re.findall(r"\(ref ([0-9A-F]{8})\)", json.dumps(sent.json))
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]  # every line is one JSON object
    assert lines and all({"timestamp", "level", "event"} <= set(line) for line in lines)
    front_pid = next(line["pid"] for line in lines if line["event"] == "http_listening")
    mine = [line for line in lines if line.get("request_id") == ref]
    assert any(line["pid"] == front_pid and line["event"] == "job_submitted" for line in mine)
    assert any(line["pid"] != front_pid and line["event"] == "agent_model_unavailable" for line in mine)
    assert any(line["pid"] != front_pid and line["event"] == "job_answered" for line in mine)
    # who asked is hashed; no secret anywhere
    assert all(line.get("user", "x" * 12) != "1" and len(str(line.get("user", "x" * 12))) == 12 for line in mine)
    assert "fake-token" not in err.decode() and "sk-test-observability" not in err.decode()
