"""`coach ask "..."` as a user runs it: a real process, with and without an LLM configured (its input check in this one)."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime
from pathlib import Path

from bot.app import command_registry
from bot.config import Settings
from providers.sim import SimMarket

ROOT = Path(__file__).resolve().parents[3]
AS_OF = "2024-03-13T11:00:00-04:00"


def env_for(tmp_path, **extra) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "DISCORD", "SLACK", "POLYGON", "TRADIER", "COACH_"))
    }
    env.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/coach.db",
            "COACH_LOG_FILE": str(tmp_path / "coach.log"),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


async def tsla_last() -> float:
    """The offline market's TSLA last at AS_OF, on the default seed (the process gets no COACH_ settings)."""
    market = SimMarket(seed=Settings.model_fields["coach_seed"].default)
    return (await market.quote("TSLA", at=datetime.fromisoformat(AS_OF))).last


async def coach(tmp_path, *args, **env) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "ask",
        *args,
        cwd=tmp_path,
        env=env_for(tmp_path, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


async def test_ask_without_llm_uses_the_intent_parser(tmp_path):
    code, out, err = await coach(tmp_path, "quote tsla", "--as-of", AS_OF)
    assert code == 0, err
    assert f"TSLA {await tsla_last():.2f}" in out and "LLM coach off: ran `/quote TSLA`" in out


def test_ask_with_an_empty_message_is_one_line_exit_2(cli):
    # in this process: the ways a user error leaves a real one are checked in tests/bot/test_cli.py
    r = cli(["ask", "   "])
    assert r.exit_code == 2 and r.stderr.strip().startswith("error: empty message") and "Traceback" not in r.output


async def test_ask_with_an_llm_prints_a_grounded_reply_and_saves_the_chart(tmp_path, fake):
    calls = [("call_1", "quote", {"symbol": "TSLA"})]
    if "chart" in command_registry().commands:
        calls.append(("call_2", "chart", {"symbol": "TSLA"}))
    fake.tool_calls(*calls)
    last = await tsla_last()
    target = float(round(last * 1.2))  # a level no tool returned
    fake.text(f"TSLA trades at ${last:.2f}; a target of ${target:.2f} would need a big move.")
    code, out, err = await coach(
        tmp_path,
        "how",
        "is",
        "tsla?",
        "--as-of",
        AS_OF,
        OPENAI_BASE_URL=fake.base_url,
        OPENAI_MODEL="fake-model",
        COACH_LLM_RETRIES="0",
    )
    assert code == 0, err
    assert f"${last:.2f};" in out and f"${target:.2f} (unverified)" in out
    assert "data: quote: sim" in out and "grounding" in out and "(checked against tools)" in out and "confidence" not in out
    assert fake.requests[0]["messages"][-1]["content"] == "how is tsla?"
    if "chart" in command_registry().commands:  # the chart made during the turn is saved under ./out/
        pngs = list((tmp_path / "out").glob("*.png"))
        assert len(pngs) == 1 and pngs[0].read_bytes().startswith(b"\x89PNG") and "saved out/" in out
