"""`coach serve`: the console without credentials; Discord + Slack HTTP against the fakes; clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
import structlog.testing
from pydantic import SecretStr

from bot import serve as serve_mod
from tests.bot.surfaces.conftest import SLACK_SECRET
from tests.fakes.slack_fake import form_body, signed

COACH = str(Path(sys.executable).with_name("coach"))
CRED_VARS = (
    "DISCORD_TOKEN",
    "DISCORD_GUILD_ID",
    "DISCORD_API_BASE",
    "DISCORD_GATEWAY_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CRED_VARS}
    env.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.db",
            "COACH_OUT_DIR": str(tmp_path / "out"),
            "COACH_LOG_FILE": str(tmp_path / "coach.log"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_without_credentials_runs_the_console(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        COACH,
        "serve",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    out, err = await asyncio.wait_for(proc.communicate(b"/quote TSLA\n/watch add NVDA\n"), 90)
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "TSLA " in text and "Bid" in text and "Now watching: NVDA" in text
    assert "Traceback" not in err.decode()


async def test_serve_runs_discord_and_slack_http_and_stops_on_sigterm(tmp_path, discord_fake, slack_fake):
    port = _free_port()
    env = _env(
        tmp_path,
        DISCORD_TOKEN="fake-token",
        DISCORD_API_BASE=discord_fake.api_base,
        DISCORD_GATEWAY_URL=discord_fake.gateway_url,
        SLACK_BOT_TOKEN="xoxb-serve-token",
        SLACK_SIGNING_SECRET=SLACK_SECRET,
        SLACK_API_URL=slack_fake.api_url,
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
    try:
        await asyncio.wait_for(discord_fake.identified.wait(), 60)
        await discord_fake.wait_for(lambda r: r.method == "PUT" and r.path.endswith("/commands"), timeout=30)
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            body = form_body(slack_fake.command("/coach", "quote TSLA"))
            async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=signed(SLACK_SECRET, body)) as r:
                assert r.status == 200
        [post] = await slack_fake.wait_for(lambda c: c.method == "chat.postMessage", timeout=30)
        assert post.body["text"].startswith("TSLA ")
        await discord_fake.dispatch(
            "INTERACTION_CREATE", discord_fake.slash("quote", [{"name": "symbol", "type": 3, "value": "NVDA"}])
        )
        [fu] = await discord_fake.wait_for(
            lambda r: r.method in ("POST", "PATCH") and r.path.startswith("/webhooks/"), timeout=30
        )
        assert fu.embeds[0]["title"].startswith("NVDA ")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    log = err.decode()
    assert "Traceback" not in log and "stopped" in log
    assert "fake-token" not in log and "xoxb-serve-token" not in log and SLACK_SECRET not in log


async def test_a_refused_discord_token_is_one_clear_error(services, discord_fake):
    from pydantic import SecretStr

    from core.errors import ConfigError

    discord_fake.fail("GET", r"^/users/@me$", status=401, body={"message": "401: Unauthorized", "code": 0})
    services.settings = services.settings.model_copy(
        update={
            "discord_token": SecretStr("bad-token"),
            "discord_api_base": discord_fake.api_base,
            "discord_gateway_url": discord_fake.gateway_url,
        }
    )
    with structlog.testing.capture_logs() as logs, pytest.raises(ConfigError, match="Discord refused DISCORD_TOKEN"):
        await asyncio.wait_for(serve_mod.serve(services=services), 30)
    failed = [e for e in logs if e["event"] == "serve_part_failed"]
    assert failed and "exc_info" not in failed[0]  # a configuration problem, not a bug: no traceback


async def test_incomplete_slack_settings_are_refused(services):
    from pydantic import SecretStr

    from core.errors import ConfigError

    services.settings = services.settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-1")})
    with pytest.raises(ConfigError, match="neither SLACK_APP_TOKEN"):
        await serve_mod.serve(services=services)


async def test_serve_tasks_run_beside_a_blocked_console_and_stop_cleanly(services):
    from bot.app import serve_tasks

    jobs = serve_tasks(services)
    # what `coach serve` runs beside the surfaces is named in one place, the composition root
    assert sorted(jobs) == ["alert_runtime", "iv_recorder", "loop_lag", "odds_refit", "outcome_sync", "risk_summary"]
    # with a queue it is only a front: the runtime and the daily jobs move to `coach runtime`
    queued = dataclasses.replace(
        services, settings=services.settings.model_copy(update={"coach_queue_url": SecretStr("redis://127.0.0.1:6379/0")})
    )
    assert sorted(serve_tasks(queued)) == ["loop_lag"]
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def probe() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # runs until cancelled
        except asyncio.CancelledError:
            cancelled.set()
            raise

    r, w = os.pipe()  # a console whose input never arrives
    stop = asyncio.Event()
    stdin = open(r)
    try:
        with open(os.devnull, "w") as stdout:
            run = asyncio.create_task(
                serve_mod.serve(services=services, stop=stop, stdin=stdin, stdout=stdout, tasks={**jobs, "probe": probe})
            )
            await asyncio.wait_for(started.wait(), 10)
            for _ in range(100):  # the alert runtime runs beside the console too
                if services.runtime_stats is not None:
                    break
                await asyncio.sleep(0.05)
            assert services.runtime_stats is not None
            stop.set()
            await asyncio.wait_for(run, 10)  # returns although the console is still waiting for a line
    finally:
        os.close(w)  # end of input releases the reader thread, then the file can be closed
        await asyncio.sleep(0.05)
        stdin.close()
    assert cancelled.is_set()


@pytest.mark.parametrize(
    "env,expected",
    [
        ({}, []),
        ({"discord_token": "t"}, ["discord"]),
        ({"slack_bot_token": "xoxb", "slack_signing_secret": "s"}, ["slack-http", "api"]),  # the API shares its port
        ({"slack_bot_token": "xoxb", "slack_signing_secret": "s", "slack_app_token": "xapp"}, ["slack-socket"]),
    ],
)
def test_configured_surfaces(env, expected):
    from bot.app import configured_surfaces
    from bot.config import Settings

    assert configured_surfaces(Settings(_env_file=None, **env)) == expected
