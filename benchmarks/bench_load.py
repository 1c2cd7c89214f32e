"""Market-open burst: many `/plan` slash commands at once against `coach serve`, with the real discord.py.

    .venv/bin/python benchmarks/bench_load.py [--n 60] [--seconds 3] [--timeout 60] [--env KEY=VALUE ...]
        [--queue URL [--workers 2] [--kill-worker-after SECONDS]] [--busy]
        [--alerts [N] [--alerts-speed 450] [--alerts-quiet 15]]

The loopback Discord of the tests (tests/fakes/discord_fake.py: a real gateway and REST server on
127.0.0.1) runs in this process; `coach serve` runs as a real subprocess pointed at it, on a
temporary SQLite file and the offline market, with a per-person rate limit too high to refuse
anyone. Once the bot has synced its commands, identified and answered a `/help`, the burst starts:
`--n` `/plan SYMBOL` interactions from as many different people, spread evenly over `--seconds`,
symbols drawn (seeded) from 30 liquid tickers, so some repeat and the market's caches see the
reuse they see at a real open.

For each interaction the fake's arrival times (`Recorded.at`) give:
- ack latency: dispatch -> the interaction callback (`/interactions/{id}/{token}/callback`).
  Discord drops an interaction not acknowledged within 3 s; those are counted.
- answer latency: dispatch -> the first message of the answer (a follow-up POST
  `/webhooks/{app}/{token}`, a PATCH of `@original`, or an immediate callback that carries the
  message). An answer starts with a titled embed (later messages of a long reply carry none), so
  more than one such message per interaction is a duplicate. Interactions without an answer
  within `--timeout` of their dispatch are unanswered; after the last answer the script waits
  `--settle` seconds for late duplicates.

The CPU-bound limit is what the burst would take with every core busy and nothing else in the
way: N x (CPU per /plan) / cores. CPU per /plan is measured in the same run, after the burst, in
this process: the composition root (`bot.app.build_services`, charts drawn in a thread so all
CPU is this process's) and the pipeline serve the same N plans for the same people one after
another, after one warm-up plan of a symbol outside the burst. The answer p99 is printed as a
multiple of that limit. Beside it, on Linux, the CPU the service itself spent during the burst
(serve, the workers and their children such as the chart processes, read from /proc): what the
Discord side, rendering and IPC add to the plans.

Options:
- `--env KEY=VALUE` (repeatable) goes to the serve process (and to the workers, and to the
  in-process measurement's settings).
- `--queue URL` sets COACH_QUEUE_URL for serve and starts `--workers` `coach worker` processes
  with the same environment: `coach worker` consumes the queue the front puts requests on.
  `--kill-worker-after SECONDS` SIGKILLs the first worker that long after the first dispatch;
  every interaction must still be answered exactly once.
- `--busy` runs a process burning one core for the whole burst, as a neighbour on a shared host
  (with `--alerts`, from before the quiet window on).

`--alerts N` (2,000 when N is left out) measures the alert runtime's tick-to-outbox latency during
the burst; the target is p99 <= 20 ms. Before serve starts, N repeating "cross" price alerts are
stored in serve's database with the project's storage functions, as `/alert add` would make them:
on the burst's 30 tickers and 10 others, on a grid 0.4% apart around each symbol's offline price at
2024-03-13 09:31 New York, owned 100 per person (the per-person maximum), in one console channel
(the runtime prints them on its stdout, which is discarded: nothing needs a network). The runtime's
leader lease is taken in advance in the name of the `coach runtime` to come, so serve's own runtime
(embedded mode) stands by. Once serve is ready, `coach runtime` (its own process) starts replaying
the offline market from that moment at `--alerts-speed` market seconds per wall second (450: 30
moments a second, each with a trade of every symbol), so a few alerts fire in most batches. The
latency is what the runtime measures itself: from a batch's first tick arriving to the commit of
its transaction with the outbox rows, per batch that queued messages (delivery is not in it). The
runtime prints its figures on stderr for the time since the previous report when sent SIGUSR1:
after a 2 s lead, the quiet window (`--alerts-quiet` seconds, serve idle: the anchor) and then the
burst's window, from the first dispatch to the last answer (or the timeout), are read that way.
Both are printed with their sample counts (batches; under 200 the p99 is said to mean little, and
a window with none says so), their ratio, the target and the runtime's CPU in each; the market
time the replay reached is printed too (a replay past the 16:00 close carries the next open's
overnight gap). The seeded alerts are removed at the end, so a shared database given with
`--env DATABASE_URL=...` keeps no live ones.

The front logs `event=loop_lag` for every 5 s window whose worst wake-up was 50 ms late or more
(a warning past 250 ms); those windows' worst figures are printed, or that there were none. The script exits 0 once it printed its figures; it asserts nothing beyond
the service starting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.discord_fake import DiscordFake, Recorded, snowflake  # noqa: E402

if TYPE_CHECKING:
    from storage.identity import Owner

#: Liquid tickers a market open brings requests for (all priced realistically by the offline market).
TICKERS = (
    "SPY QQQ IWM DIA AAPL MSFT NVDA TSLA AMZN META GOOGL AMD NFLX AVGO JPM "
    "BAC XOM V UNH COST WMT DIS INTC BA CRM ORCL ADBE COIN GOOG BRK.B"
).split()
#: Warms the in-process measurement up without touching a symbol of the burst.
WARMUP_SYMBOL = "ZZWARM"
#: Seed of the symbol draw, so two runs ask for the same symbols in the same order.
SEED = 7
#: Discord drops an interaction whose callback has not arrived by then.
ACK_DEADLINE = 3.0
#: Inherited variables that would switch on another surface or the LLM in the serve process.
FOREIGN_VARS = (
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
    "COACH_QUEUE_URL",
)

_CALLBACK = re.compile(r"/interactions/(\d+)/([^/]+)/callback")
_FOLLOWUP = re.compile(r"/webhooks/\d+/([^/]+)")
_ORIGINAL = re.compile(r"/webhooks/\d+/([^/]+)/messages/@original")
#: With --alerts: the market moment the runtime replays from (a Wednesday, just after the opening minute, so
#: the overnight gap is not in a measured window), how fast, the other symbols alerts are set on, and the
#: grid of levels around each symbol's price (repeating crosses 0.4% apart fire a few at a time, steadily).
ALERT_START = datetime(2024, 3, 13, 13, 31, tzinfo=UTC)  # 09:31 New York
ALERT_SPEED = 450.0
ALERT_SYMBOLS = "PLTR UBER SHOP PYPL SNOW MU QCOM TXN PEP KO".split()
ALERT_STEP = 0.004
NEW_YORK = ZoneInfo("America/New_York")
#: Seconds the runtime runs with serve up before the quiet window (its first batches load caches).
ALERT_LEAD = 2.0
#: The name `coach runtime` leads under, and how long the lease taken for it in advance lasts.
RUNTIME_ID = "bench-load-runtime"
RUNTIME_LEASE = 600.0
#: Batches that queued messages in a window below which its p99 is said to mean little.
ALERT_MIN_SAMPLES = 200
TARGET_P99_MS = 20.0

# key=value lines (`event=loop_lag lag_ms=3.2`) and JSON lines (`"event": "loop_lag", "lag_ms": 3.2`) alike
_EVENT = re.compile(r"(?:\bevent=['\"]?|\"event\":\s*\")(\w+)")
_LAG_EVENT = re.compile(r"(?:\bevent=['\"]?|\"event\":\s*\")loop_lag\b")
_LAG_MS = re.compile(r"(?:\blag_ms=['\"]?|\"lag_ms\":\s*)([0-9.eE+-]+)")
_WINDOW = re.compile(
    r"coach runtime: window (\d+), ([0-9.]+) s: (\d+) ticks, (\d+) alerts fired, \d+ plan events, (\d+) messages queued\."
    r" Tick to outbox: (?:p50 ([0-9.]+) ms, p99 ([0-9.]+) ms, max ([0-9.]+) ms over (\d+) batches\.|no batch queued a message\.)"
)


# ---------------------------------------------------------------------- child processes


@dataclass
class Child:
    """A subprocess whose stderr is drained as it runs (a full pipe would stall it), keeping a tail and the lag lines."""

    name: str
    proc: asyncio.subprocess.Process
    tail: list[str] = field(default_factory=list)
    lags_ms: list[float] = field(default_factory=list)
    #: Every structured log event name the process logged.
    events: set[str] = field(default_factory=set)
    errors: int = 0
    killed: bool = False
    reader: asyncio.Task[None] | None = None
    #: Lines of `coach runtime` itself (its reports) and its start, in order; `_seen` is set on each new one.
    notable: list[str] = field(default_factory=list)
    _seen: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(cls, name: str, *args: str, env: dict[str, str], cwd: Path) -> Child:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        child = cls(name, proc)
        child.reader = asyncio.create_task(child._drain())
        return child

    async def wait_for_event(self, event: str, timeout: float) -> None:
        """Wait until the process has logged `event`."""
        deadline = time.monotonic() + timeout
        while event not in self.events:
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not log {event!r}; last lines:\n" + "\n".join(self.tail[-20:]))
            await asyncio.sleep(0.1)

    async def _drain(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.tail = [*self.tail[-39:], line]
            if m := _EVENT.search(line):
                self.events.add(m.group(1))
            if "Traceback" in line or "level='error'" in line or '"level": "error"' in line:
                self.errors += 1
            if line.startswith("coach runtime:") or "runtime_started" in line:
                self.notable.append(line)
                self._seen.set()
            if _LAG_EVENT.search(line):
                m = _LAG_MS.search(line)
                if m:
                    with contextlib.suppress(ValueError):
                        self.lags_ms.append(float(m.group(1)))

    @property
    def exited(self) -> bool:
        return self.proc.returncode is not None

    async def line(self, needle: str, timeout: float) -> str:
        """The first notable line containing `needle` (waiting up to `timeout` s); SystemExit if the process ends first."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.notable:
                if needle in line:
                    return line
            if self.reader is not None and self.reader.done():
                raise SystemExit(
                    f"{self.name} exited (code {self.proc.returncode}); last log lines:\n" + "\n".join(self.tail[-20:])
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(
                    f"{self.name}: no {needle!r} within {timeout:g} s; last log lines:\n" + "\n".join(self.tail[-20:])
                )
            self._seen.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._seen.wait(), min(left, 0.5))

    def ask_window(self) -> None:
        """Ask `coach runtime` for its figures since its previous report (SIGUSR1); the next window starts now."""
        if not self.exited:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGUSR1)

    async def window(self, n: int, timeout: float = 30.0) -> AlertWindow:
        """The figures of `coach runtime`'s report number `n` (asked for with `ask_window`)."""
        line = await self.line(f"coach runtime: window {n},", timeout)
        m = _WINDOW.search(line)
        if m is None:
            raise SystemExit(f"unexpected report from coach runtime: {line}")
        return AlertWindow.of(m)

    def kill(self) -> None:
        """SIGKILL, if it still runs (a process that already exited is reported by its exit code, not as killed)."""
        if self.exited:
            return
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    async def stop(self, grace: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code."""
        if not self.exited:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.kill()
                await self.proc.wait()
        if self.reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reader, 5)
        return self.proc.returncode if self.proc.returncode is not None else -1


def child_env(fake: DiscordFake, work: Path, queue: str | None, extra: dict[str, str]) -> dict[str, str]:
    """The environment of `coach serve` (and its workers): the fake's Discord, a temporary SQLite file, the offline market."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_VARS}
    env.update(
        {
            "DISCORD_TOKEN": "fake",
            "DISCORD_API_BASE": fake.api_base,
            "DISCORD_GATEWAY_URL": fake.gateway_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{work}/serve.db",
            "COACH_PROVIDER": "sim",
            # every person asks once; a limit that refused anyone would measure refusals, not plans
            "COACH_RATE_PER_MINUTE": "100000",
            "COACH_OUT_DIR": str(work / "out"),
            "COACH_LOG_FILE": str(work / "coach.log"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        }
    )
    if queue:
        env["COACH_QUEUE_URL"] = queue
    env.update(extra)
    return env


async def start_burner() -> asyncio.subprocess.Process:
    """A process spinning on one core (the lowest this process may use), as a busy neighbour would."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, {min(os.sched_getaffinity(0))})
    return proc


def tree_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by a process and its live descendants (chart workers); None off Linux."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone since the listing
            continue
        fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    if pid not in stats:
        return None
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats[p][1]
        todo.extend(c for c, (parent, _) in stats.items() if parent == p)
    return total


# ---------------------------------------------------------------------- the alert runtime beside the burst


@dataclass
class AlertWindow:
    """What `coach runtime` reported for one window: counts, and tick-to-outbox latency (ms) over its batches."""

    seconds: float
    ticks: int
    fired: int
    messages: int
    p50: float | None = None
    p99: float | None = None
    max: float | None = None
    batches: int = 0

    @classmethod
    def of(cls, m: re.Match[str]) -> AlertWindow:
        w = cls(float(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)))
        if m.group(6) is not None:
            w.p50, w.p99, w.max, w.batches = float(m.group(6)), float(m.group(7)), float(m.group(8)), int(m.group(9))
        return w

    def describe(self) -> str:
        counts = f"{self.seconds:.1f} s, {self.ticks:,} ticks, {self.fired:,} alerts fired, {self.messages:,} messages queued"
        if self.p99 is None:
            return f"{counts}; tick->outbox: NO SAMPLES (no batch queued a message)"
        few = f" (fewer than {ALERT_MIN_SAMPLES}: the p99 says little)" if self.batches < ALERT_MIN_SAMPLES else ""
        return (
            f"{counts}; tick->outbox p50 {self.p50:.2f} ms  p99 {self.p99:.2f} ms  max {self.max:.2f} ms "
            f"over {self.batches:,} batches{few}"
        )


def alert_symbols() -> list[str]:
    """The burst's tickers and a few others: the symbols alerts are set on."""
    return [*TICKERS, *ALERT_SYMBOLS]


def grid_step(j: int) -> int:
    """The j-th level of a symbol's grid, in steps from its price: 0, +1, -1, +2, -2, ..."""
    return (j + 1) // 2 * (1 if j % 2 else -1)


async def seed_alerts(url: str, n: int, seed: int, tenant: str) -> list[Owner]:
    """Store `n` repeating cross alerts on a grid around each symbol's price at ALERT_START, as `/alert add` would.

    Console alerts (the runtime delivers them to its own stdout, so nothing needs a network), at most
    the per-person maximum each; the rule's band and armed state come from the alert book as in the
    command. Also puts the runtime's replay cursor at ALERT_START (a shared database may hold a later
    one from an earlier run), and takes the runtime's leader lease in RUNTIME_ID's name: `coach serve`
    (embedded mode) then keeps its own runtime standing by, and the `coach runtime` started after it
    under that name leads at once. Returns the owners, for `remove_alerts`.
    """
    from analytics.alertbook import build_rule
    from bot.runtime.worker import LEASE_KEY, cursor_key
    from providers.sim import NAME as SIM_NAME
    from providers.sim import SimMarket
    from storage import alerts as store
    from storage.db import make_engine, make_sessionmaker, upgrade
    from storage.identity import ensure_owner
    from storage.runtime_state import acquire_lease, put_state

    market = SimMarket(seed=seed, now=lambda: ALERT_START)
    symbols = alert_symbols()
    last = {sym: (await market.quote(sym, at=ALERT_START)).last for sym in symbols}
    engine = make_engine(url)
    owners: list[Owner] = []
    try:
        await upgrade(engine)
        db = make_sessionmaker(engine)
        async with db() as s, s.begin():
            if not await acquire_lease(s, LEASE_KEY, RUNTIME_ID, RUNTIME_LEASE):
                raise SystemExit("another alert runtime holds the leader lease of this database; stop it first")
            await put_state(s, cursor_key(SIM_NAME), {"at": ALERT_START.isoformat()})
        per_owner = store.MAX_ALERTS_PER_USER
        for first in range(0, n, per_owner):
            user = f"alerts{first // per_owner}"
            async with db() as s, s.begin():
                owner = await ensure_owner(s, "console", tenant, user)
                owners.append(owner)
                for i in range(first, min(n, first + per_owner)):
                    sym = symbols[i % len(symbols)]
                    level = round(last[sym] * (1 + grid_step(i // len(symbols)) * ALERT_STEP), 2)
                    rule = build_rule("cross", id=0, symbol=sym, value=level)
                    rule.initial_armed(last[sym])
                    await store.create_alert(
                        s,
                        owner,
                        symbol=sym,
                        kind="cross",
                        value=level,
                        level=rule.level,
                        band=rule.band,
                        armed_up=rule.armed_up,
                        armed_down=rule.armed_down,
                        params={},
                        repeat=True,
                        cooldown_s=0,
                        session="regular",
                        note="",
                        platform="console",
                        channel="bench-alerts",
                        user_ref=user,
                        now=ALERT_START,
                    )
    finally:
        await engine.dispose()
    return owners


async def replay_cursor(url: str) -> datetime | None:
    """The market moment the runtime's replay reached (its saved cursor)."""
    from bot.runtime.worker import cursor_key
    from providers.sim import NAME as SIM_NAME
    from storage.db import make_engine, make_sessionmaker
    from storage.runtime_state import get_state

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            saved = await get_state(s, cursor_key(SIM_NAME))
    finally:
        await engine.dispose()
    return datetime.fromisoformat(saved["at"]) if saved and saved.get("at") else None


async def remove_seeded(url: str, owners: list[Owner]) -> None:
    """Remove the seeded alerts (a shared database keeps no leftovers for the next run)."""
    from storage import alerts as store
    from storage.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        db = make_sessionmaker(engine)
        async with db() as s, s.begin():
            for owner in owners:
                await store.remove_alerts(s, owner, None)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------- the burst


@dataclass
class Sent:
    """One interaction of the burst and when it went out."""

    id: str
    token: str
    symbol: str
    user: dict[str, object]
    at: float = 0.0


def is_answer_start(rec: Recorded) -> bool:
    """Whether a message the bot sent begins an answer (its first embed has a title, or it has no embed)."""
    embeds = rec.embeds
    return not embeds or bool(embeds[0].get("title"))


def answers_by_token(requests: list[Recorded]) -> tuple[dict[str, Recorded], dict[str, list[Recorded]]]:
    """The first callback per interaction token, and the messages that start an answer per token, in arrival order."""
    acks: dict[str, Recorded] = {}
    answers: dict[str, list[Recorded]] = {}
    for rec in sorted(requests, key=lambda r: r.at):
        token: str | None = None
        if rec.method == "POST" and (m := _CALLBACK.fullmatch(rec.path)):
            acks.setdefault(m.group(2), rec)
            # type 4 answers in the callback itself (a refusal, or a reply with no deferral)
            if isinstance(rec.json, dict) and rec.json.get("type") == 4:
                token = m.group(2)
        elif rec.method == "PATCH" and (m := _ORIGINAL.fullmatch(rec.path)):
            token = m.group(1)
        elif rec.method == "POST" and (m := _FOLLOWUP.fullmatch(rec.path)):
            token = m.group(1)
        if token is not None and is_answer_start(rec):
            answers.setdefault(token, []).append(rec)
    return acks, answers


@dataclass
class Tally:
    """What the fake saw of the burst: latencies in seconds and the counts the report prints."""

    ack: list[float] = field(default_factory=list)
    answer: list[float] = field(default_factory=list)
    late_acks: int = 0
    never_acked: int = 0
    duplicates: int = 0
    not_plans: int = 0
    example: str = ""  # the title of the first answer that was not a plan

    @classmethod
    def of(cls, sent: list[Sent], requests: list[Recorded], timeout: float) -> Tally:
        acks, answers = answers_by_token(requests)
        t = cls()
        for s in sent:
            ack = acks.get(s.token)
            if ack is None:
                t.never_acked += 1
            else:
                t.ack.append(ack.at - s.at)
                t.late_acks += int(ack.at - s.at > ACK_DEADLINE)
            starts = answers.get(s.token, [])
            if not starts or starts[0].at - s.at > timeout:
                continue
            t.answer.append(starts[0].at - s.at)
            t.duplicates += len(starts) - 1
            first = starts[0]
            title = (first.embeds[0].get("title") if first.embeds else first.content) or ""
            if not title.startswith(s.symbol + " "):
                t.not_plans += 1
                t.example = t.example or title
        return t


async def wait_ready(fake: DiscordFake, serve: Child, timeout: float) -> None:
    """Return once the bot synced its commands, identified and answered a /help; SystemExit if serve dies first."""

    async def ready() -> None:
        await fake.wait_for(lambda r: r.method == "PUT" and r.path.endswith("/commands"), timeout=timeout)
        await asyncio.wait_for(fake.identified.wait(), timeout)
        probe = fake.slash("help", user=fake.user(snowflake(), "probe"))
        await fake.dispatch("INTERACTION_CREATE", probe)
        token = probe["token"]
        await fake.wait_for(lambda r: token in r.path and r.path.startswith("/webhooks/"), timeout=timeout)

    waiter = asyncio.create_task(ready())
    died = asyncio.create_task(serve.proc.wait())
    done, _ = await asyncio.wait({waiter, died}, timeout=timeout * 3, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done and waiter.exception() is None:
        died.cancel()
        return
    waiter.cancel()
    died.cancel()
    why = "exited" if serve.exited else "did not become ready"
    raise SystemExit(f"coach serve {why}; last log lines:\n" + "\n".join(serve.tail[-20:]))


async def burst(fake: DiscordFake, n: int, seconds: float, workers: list[Child], kill_after: float | None) -> list[Sent]:
    """The interactions, dispatched evenly over `seconds` (each stamped with when it went out)."""
    rng = random.Random(SEED)
    sent = [Sent(id="", token="", symbol=rng.choice(TICKERS), user=fake.user(snowflake(), f"trader{i}")) for i in range(n)]
    payloads = []
    for s in sent:
        payload = fake.slash("plan", [{"name": "symbol", "type": 3, "value": s.symbol}], user=s.user)
        s.id, s.token = payload["id"], payload["token"]
        payloads.append(payload)
    start = time.monotonic() + 0.05
    killer: asyncio.Task[None] | None = None
    if kill_after is not None and workers:

        async def kill_one() -> None:
            await asyncio.sleep(max(0.0, start + kill_after - time.monotonic()))
            workers[0].kill()

        killer = asyncio.create_task(kill_one())
    for i, (s, payload) in enumerate(zip(sent, payloads)):
        delay = start + i * seconds / n - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        s.at = time.monotonic()
        await fake.dispatch("INTERACTION_CREATE", payload)
    if killer is not None:
        await killer
    return sent


async def collect(
    fake: DiscordFake,
    sent: list[Sent],
    serve: Child,
    timeout: float,
    settle: float,
    answered: Callable[[], None] = lambda: None,
) -> None:
    """Wait until every interaction has an answer (or its timeout passed, or serve died), call `answered`, then
    wait `settle` seconds more."""
    deadline = max(s.at for s in sent) + timeout
    tokens = {s.token for s in sent}
    while time.monotonic() < deadline and not serve.exited:
        _, answers = answers_by_token(fake.requests)
        if tokens <= answers.keys():
            answered()
            await asyncio.sleep(settle)
            return
        await asyncio.sleep(0.05)
    answered()


# ---------------------------------------------------------------------- CPU per /plan, in process


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ replaced by `env` for the duration (the settings object reads it when built)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def cpu_per_plan(env: dict[str, str], sent: list[Sent], guild_id: str, channel_id: str) -> tuple[float, float]:
    """CPU and wall seconds per /plan: the burst's plans, one after another, through the root's services and pipeline."""
    from bot.app import build_services
    from bot.config import Settings
    from bot.logging import setup_logging
    from bot.pipeline import Invocation
    from bot.request import Identity

    with environment(env):
        settings = Settings(_env_file=None)
    # the service's logs go to its log file, as in the CLI, not between the figures
    setup_logging("cli", settings)
    services = await build_services(settings, chart_workers=0)
    try:

        async def one(symbol: str, user_id: str) -> None:
            ident = Identity(platform="discord", tenant=guild_id, user=user_id, channel=channel_id, display_name=user_id)
            ctx = services.pipeline.request(services, ident)
            reply = await services.pipeline.handle(ctx, Invocation.call("plan", {"symbol": symbol}))
            if not (reply.title or "").startswith(symbol + " "):
                raise SystemExit(f"in-process /plan {symbol} did not plan: {reply.title}: {reply.body[:200]}")

        await one(WARMUP_SYMBOL, snowflake())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for s in sent:
            await one(s.symbol, str(s.user["id"]))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await services.close()
    return cpu / len(sent), wall / len(sent)


# ---------------------------------------------------------------------- report


def cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pcts(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max (nan for none)."""
    if not values:
        return float("nan"), float("nan"), float("nan")
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99), max(values)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class AlertRun:
    """The alert runtime beside the burst: its process, the seeded owners and what it reported."""

    runtime: Child
    owners: list[Owner]
    quiet: AlertWindow | None = None
    during: AlertWindow | None = None
    #: CPU seconds it used in the quiet window and in the burst's
    quiet_cpu: float | None = None
    cpu: float | None = None
    rc: int | None = None
    #: Where its replay stopped (market time), read from the database after it stopped.
    replayed_to: datetime | None = None


async def start_runtime(args: argparse.Namespace, env: dict[str, str], work: Path) -> Child:
    """`coach runtime` replaying the offline market from ALERT_START; returns once it leads and has loaded the alerts."""
    runtime = await Child.start(
        "runtime",
        sys.executable,
        "-m",
        "bot.runtime",
        "--speed",
        f"{args.alerts_speed:g}",
        "--start",
        ALERT_START.isoformat(),
        env={**env, "COACH_WORKER_ID": RUNTIME_ID},
        cwd=work,
    )
    await runtime.line("runtime_started", 120)
    return runtime


async def run(args: argparse.Namespace) -> None:
    extra = dict(kv.split("=", 1) for kv in args.env)
    load_before = loadavg()
    fake = await DiscordFake().start()
    workers: list[Child] = []
    burner: asyncio.subprocess.Process | None = None
    serve: Child | None = None
    alerts: AlertRun | None = None
    owners: list[Owner] = []
    service_cpu: float | None = None
    rt_cpu0: float | None = None
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        env = child_env(fake, work, args.queue, extra)
        try:
            if args.alerts:
                seed = int(env.get("COACH_SEED", "0"))
                owners = await seed_alerts(env["DATABASE_URL"], args.alerts, seed, f"bench-load-{os.getpid()}")
            serve = await Child.start("serve", sys.executable, "-m", "bot.cli", "serve", env=env, cwd=work)
            if args.queue:  # the front's readiness check (a /help) is answered by a worker
                for i in range(args.workers):
                    workers.append(await Child.start(f"worker{i}", sys.executable, "-m", "bot.cli", "worker", env=env, cwd=work))
            await wait_ready(fake, serve, timeout=120)
            for w in workers:  # every worker warm and reading the queue before the burst
                await w.wait_for_event("worker_started", timeout=120)
            if args.busy:
                burner = await start_burner()
            if args.alerts:
                # started last, so that the market it replays is not spent on the others' start; then the
                # anchor: the same runtime, everything up, no burst; the burst's window follows at once
                alerts = AlertRun(await start_runtime(args, env, work), owners)
                rt = alerts.runtime
                await asyncio.sleep(ALERT_LEAD)
                rt.ask_window()
                quiet_cpu0 = tree_cpu(rt.proc.pid)
                await rt.window(1)
                await asyncio.sleep(args.alerts_quiet)
                rt.ask_window()
                rt_cpu0 = tree_cpu(rt.proc.pid)
                if rt_cpu0 is not None and quiet_cpu0 is not None:
                    alerts.quiet_cpu = rt_cpu0 - quiet_cpu0
                alerts.quiet = await rt.window(2)
            pids = [c.proc.pid for c in (serve, *workers)]
            cpu_before = [tree_cpu(p) for p in pids]
            sent = await burst(fake, args.n, args.seconds, workers, args.kill_worker_after)

            def answered() -> None:
                # the burst's window of the runtime ends with the last answer (or the timeout)
                if alerts is not None:
                    alerts.runtime.ask_window()
                    cpu1 = tree_cpu(alerts.runtime.proc.pid)
                    alerts.cpu = cpu1 - rt_cpu0 if cpu1 is not None and rt_cpu0 is not None else None

            await collect(fake, sent, serve, args.timeout, args.settle, answered)
            # a killed worker's CPU is gone with it: only the processes still there are counted
            used = [b - a for a, b in zip(cpu_before, (tree_cpu(p) for p in pids)) if a is not None and b is not None]
            service_cpu = sum(used) if used else None
            if alerts is not None:
                alerts.during = await alerts.runtime.window(3)
        finally:
            if burner is not None:
                burner.kill()
                await burner.wait()
            for w in workers:
                await w.stop()
            serve_rc = await serve.stop() if serve is not None else None
            if alerts is not None:
                alerts.rc = await alerts.runtime.stop()
                with contextlib.suppress(Exception):
                    alerts.replayed_to = await replay_cursor(env["DATABASE_URL"])
            if owners:
                with contextlib.suppress(Exception):  # best effort: a temporary database goes anyway
                    await remove_seeded(env["DATABASE_URL"], owners)
            await fake.stop()
        load_after = loadavg()

        tally = Tally.of(sent, fake.requests, args.timeout)

        cpu, wall = await cpu_per_plan(
            {**env, "DATABASE_URL": f"sqlite+aiosqlite:///{work}/inprocess.db"}, sent, fake.guild_id, fake.channel_id
        )

    n = len(sent)
    a50, a99, amax = pcts(tally.ack)
    r50, r99, rmax = pcts(tally.answer)
    limit = n * cpu / cores()
    mode = (
        f"queue {args.queue}, {args.workers} worker(s)"
        if args.queue
        else "one machine (handlers in the front's local worker processes)"
    )
    print(
        f"burst: {n} /plan from {n} people over {args.seconds:g} s, {len({s.symbol for s in sent})} distinct symbols; "
        f"{mode}{'; one core kept busy' if args.busy else ''}"
    )
    print(
        f"ack:    p50 {a50 * 1e3:.0f} ms  p99 {a99 * 1e3:.0f} ms  max {amax * 1e3:.0f} ms  "
        f"over {ACK_DEADLINE:g} s: {tally.late_acks}  never acked: {tally.never_acked}"
    )
    print(
        f"answer: p50 {r50:.2f} s  p99 {r99:.2f} s  max {rmax:.2f} s  answered {len(tally.answer)}/{n} within {args.timeout:g} s  "
        f"duplicates: {tally.duplicates}  not a plan: {tally.not_plans}" + (f" (e.g. {tally.example!r})" if tally.example else "")
    )
    print(f"CPU per /plan (in process, {n} plans after 1 warm-up): {cpu * 1e3:.0f} ms CPU, {wall * 1e3:.0f} ms wall")
    print(
        f"CPU-bound limit: {n} x {cpu * 1e3:.0f} ms / {cores()} cores = {limit:.2f} s; answer p99 = {r99 / limit:.2f}x the limit"
    )
    if service_cpu is not None:
        print(
            f"service CPU during the burst (serve, workers and their children): {service_cpu:.2f} s = {service_cpu / n * 1e3:.0f} ms per /plan"
        )
    lags = serve.lags_ms if serve is not None else []
    if lags:
        _, l99, lmax = pcts(lags)
        print(f"front event-loop lag: p99 {l99:.0f} ms  max {lmax:.0f} ms  ({len(lags)} samples)")
    else:
        print("front event-loop lag: under 50 ms in every 5 s window (the front logs windows past that)")
    if alerts is not None:
        print_alerts(args, alerts)
    if workers:
        states = ", ".join(f"{w.name} exit code {w.proc.returncode}{' (killed)' if w.killed else ''}" for w in workers)
        print(f"workers: {states}")
        for w in workers:
            if w.proc.returncode not in (0, -signal.SIGTERM) and not w.killed:
                print(f"  {w.name} log tail: " + " | ".join(w.tail[-5:]))
    if serve is not None:
        print(f"serve: exit code {serve_rc}, {serve.errors} error lines in its log")
    print(f"machine: {cores()} cores; load average (1/5/15 min) before {load_before}, after {load_after}")


def print_alerts(args: argparse.Namespace, alerts: AlertRun) -> None:
    """The alert runtime's figures: quiet anchor, during the burst, their ratio and the target."""
    print(
        f"alert runtime (`coach runtime`, its own process): {args.alerts:,} repeating cross alerts on {len(alert_symbols())} "
        f"symbols, {ALERT_STEP:.2%} apart, delivered to its console; offline market replayed at {args.alerts_speed:g}x "
        f"from {ALERT_START.astimezone(NEW_YORK):%Y-%m-%d %H:%M} New York"
    )
    quiet, during = alerts.quiet, alerts.during
    print(f"  quiet, before the burst: {quiet.describe() if quiet else 'no report'}")
    print(f"  during the burst:        {during.describe() if during else 'no report'}")
    if quiet and during and quiet.p99 and during.p99 is not None and quiet.p50:
        assert during.p50 is not None
        print(f"  burst / quiet: p50 {during.p50 / quiet.p50:.2f}x, p99 {during.p99 / quiet.p99:.2f}x")
    else:
        print("  burst / quiet: n/a (a window without samples)")
    if during is None or during.p99 is None:
        print(f"  target p99 <= {TARGET_P99_MS:g} ms during the burst: not measured (no samples)")
    else:
        verdict = "met" if during.p99 <= TARGET_P99_MS else "NOT met"
        print(f"  target p99 <= {TARGET_P99_MS:g} ms during the burst: {verdict} ({during.p99:.2f} ms)")
    cpu = ""
    if alerts.quiet_cpu is not None and quiet:
        cpu += f"; CPU quiet {alerts.quiet_cpu:.2f} s ({alerts.quiet_cpu / max(quiet.seconds, 1e-9):.0%} of a core)"
    if alerts.cpu is not None and during:
        cpu += f", during the burst {alerts.cpu:.2f} s ({alerts.cpu / max(during.seconds, 1e-9):.0%} of a core)"
    print(f"  runtime: exit code {alerts.rc}, {alerts.runtime.errors} error lines in its log{cpu}")
    if alerts.replayed_to is not None:
        end = alerts.replayed_to.astimezone(NEW_YORK)
        crossed = end.date() != ALERT_START.astimezone(NEW_YORK).date()
        note = " (past the session's close: the windows may hold the next open's gap)" if crossed else ""
        print(f"  market replayed up to {end:%Y-%m-%d %H:%M} New York{note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="interactions in the burst, one person each")
    ap.add_argument("--seconds", type=float, default=3.0, help="the burst is spread evenly over this long")
    ap.add_argument("--timeout", type=float, default=60.0, help="an interaction unanswered this long after dispatch is lost")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds to wait after the last answer for duplicates")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for serve (repeatable)")
    ap.add_argument("--queue", metavar="URL", help="COACH_QUEUE_URL for serve; also starts --workers `coach worker` processes")
    ap.add_argument("--workers", type=int, default=None, help="`coach worker` processes with --queue (default 2)")
    ap.add_argument(
        "--kill-worker-after", type=float, default=None, metavar="SECONDS", help="SIGKILL one worker this long into the burst"
    )
    ap.add_argument("--busy", action="store_true", help="keep one core busy with another process during the burst")
    ap.add_argument(
        "--alerts",
        type=int,
        nargs="?",
        const=2000,
        default=None,
        metavar="N",
        help="seed N price alerts (2,000 when no N) and measure `coach runtime`'s tick-to-outbox latency quiet and during the burst",
    )
    ap.add_argument(
        "--alerts-speed", type=float, default=ALERT_SPEED, help="with --alerts: market seconds replayed per wall second"
    )
    ap.add_argument(
        "--alerts-quiet", type=float, default=15.0, metavar="SECONDS", help="with --alerts: length of the quiet window"
    )
    args = ap.parse_args()
    if args.n < 1 or args.seconds < 0 or args.timeout <= 0 or args.settle < 0:
        ap.error("--n must be at least 1, --seconds and --settle not negative, --timeout positive")
    if args.alerts is not None and (args.alerts < 1 or not args.alerts_speed > 0 or not args.alerts_quiet > 0):
        ap.error("--alerts needs at least 1 alert, --alerts-speed and --alerts-quiet positive numbers")
    if any("=" not in kv for kv in args.env):
        ap.error("--env takes KEY=VALUE")
    if not args.queue and (args.workers is not None or args.kill_worker_after is not None):
        ap.error("--workers and --kill-worker-after need --queue")
    args.workers = 2 if args.workers is None else args.workers
    if args.queue and args.workers < 1:
        ap.error("--queue needs at least one worker")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
