"""The service's Prometheus metrics, by fixed name, and the text `/metrics` serves.

Every process that does the work counts it: the front (acknowledgements, queue depth), the
worker processes (commands, providers, charts, LLM tokens) and the runtime (feed age, outbox,
deliveries). Where workers are processes of one machine, `coach serve` sets
PROMETHEUS_MULTIPROC_DIR before they start, so each writes its counts to that directory and the
front's `/metrics` adds them up (prometheus-client's multiprocess mode). Without it, the
process's own registry is served.

This module imports prometheus-client only: a light front may import it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Where worker processes of one machine write their counts (prometheus-client's variable).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _define() -> None:
    """(Re)create every metric, in the value store prometheus-client uses now (memory, or the multiprocess files)."""
    global \
        COMMAND_SECONDS, \
        ACK_SECONDS, \
        QUEUE_DEPTH, \
        PROVIDER_SECONDS, \
        PROVIDER_FALLBACKS, \
        FEED_AGE, \
        ALERT_TICK_TO_OUTBOX, \
        OUTBOX_PENDING, \
        OUTBOX_FAILED, \
        DELIVERIES, \
        LLM_TOKENS, \
        LLM_BUDGET_USED, \
        CHART_RENDER_SECONDS
    COMMAND_SECONDS = Histogram(
        "coach_command_seconds",
        "Time to run a command, by command, surface and outcome",
        ["command", "surface", "outcome"],
        buckets=_SLOW,
    )
    ACK_SECONDS = Histogram(
        "coach_ack_seconds", "Time from a request's arrival to its acknowledgement, by surface", ["surface"], buckets=_FAST
    )
    QUEUE_DEPTH = Gauge("coach_queue_depth", "Jobs waiting for a worker", ["lane"], multiprocess_mode="livemax")
    PROVIDER_SECONDS = Histogram(
        "coach_provider_request_seconds",
        "Time of a market-data provider request, by provider, kind and outcome",
        ["provider", "kind", "outcome"],
        buckets=_FAST + (10.0, 30.0),
    )
    PROVIDER_FALLBACKS = Counter(
        "coach_provider_fallbacks_total", "Requests a provider failed and the next one in the chain served", ["provider", "kind"]
    )
    FEED_AGE = Gauge(
        "coach_feed_age_seconds", "Seconds since the price feed's last tick, by source", ["source"], multiprocess_mode="livemax"
    )
    ALERT_TICK_TO_OUTBOX = Histogram(
        "coach_alert_tick_to_outbox_seconds", "Time from a tick that triggers an alert to its outbox row", buckets=_FAST
    )
    OUTBOX_PENDING = Gauge("coach_outbox_pending", "Outbox rows not yet delivered", multiprocess_mode="livemax")
    OUTBOX_FAILED = Gauge("coach_outbox_failed", "Outbox rows given up on", multiprocess_mode="livemax")
    DELIVERIES = Counter(
        "coach_deliveries_total", "Answers and alerts delivered, by destination kind and result", ["kind", "result"]
    )
    LLM_TOKENS = Counter("coach_llm_tokens_total", "LLM tokens used, by kind (prompt, completion)", ["kind"])
    LLM_BUDGET_USED = Gauge(
        "coach_llm_budget_used_ratio",
        "The largest share of the daily LLM token budget one person has used today",
        multiprocess_mode="livemax",
    )
    CHART_RENDER_SECONDS = Histogram("coach_chart_render_seconds", "Time to render a chart image", buckets=_SLOW)


COMMAND_SECONDS: Histogram
ACK_SECONDS: Histogram
QUEUE_DEPTH: Gauge
PROVIDER_SECONDS: Histogram
PROVIDER_FALLBACKS: Counter
FEED_AGE: Gauge
ALERT_TICK_TO_OUTBOX: Histogram
OUTBOX_PENDING: Gauge
OUTBOX_FAILED: Gauge
DELIVERIES: Counter
LLM_TOKENS: Counter
CHART_RENDER_SECONDS: Histogram
LLM_BUDGET_USED: Gauge
_define()


def use_multiprocess(path: str) -> None:
    """Count in the files under `path` from now on (this process and the worker processes it starts after this).

    The metric objects are made again because prometheus-client picks its value store when one is
    made; every caller reads them as `metrics.NAME` at the time of use, so the new ones are used.
    """
    os.environ[MULTIPROC_ENV] = path
    _remake()


def use_memory() -> None:
    """Count in this process's memory again (after `use_multiprocess`, when the service that set it stops)."""
    os.environ.pop(MULTIPROC_ENV, None)
    _remake()


def _remake() -> None:
    """Let prometheus-client pick its value store again from the environment, and make the metrics anew in it."""
    from prometheus_client import values

    pick: Callable[[], type] = values.get_value_class  # untyped upstream
    values.ValueClass = pick()
    for name in _NAMES:
        with contextlib.suppress(KeyError):
            REGISTRY.unregister(globals()[name])
    _define()


_NAMES = (
    "COMMAND_SECONDS",
    "ACK_SECONDS",
    "QUEUE_DEPTH",
    "PROVIDER_SECONDS",
    "PROVIDER_FALLBACKS",
    "FEED_AGE",
    "ALERT_TICK_TO_OUTBOX",
    "OUTBOX_PENDING",
    "OUTBOX_FAILED",
    "DELIVERIES",
    "LLM_TOKENS",
    "CHART_RENDER_SECONDS",
    "LLM_BUDGET_USED",
)


#: The day `budget_used` last heard of, and the largest share used on it.
_budget_top: dict[object, float] = {}


def budget_used(day: object, ratio: float) -> None:
    """Record that someone has used `ratio` of their daily budget on `day` (the gauge keeps the day's largest)."""
    top = max(_budget_top.get(day, 0.0), ratio)
    _budget_top.clear()
    _budget_top[day] = top
    LLM_BUDGET_USED.set(top)


def outcome_of(error_kind: str | None) -> str:
    """The `outcome` label of a reply: ok, or the kind of its error (user, provider, config, bug)."""
    return "ok" if not error_kind else error_kind


@contextmanager
def timed(hist: Histogram, **labels: str) -> Iterator[None]:
    """Observe how long the block took on `hist` (with `labels`), whether it returned or raised."""
    start = time.perf_counter()
    try:
        yield
    finally:
        (hist.labels(**labels) if labels else hist).observe(time.perf_counter() - start)


def render() -> tuple[bytes, str]:
    """The metrics text and its content type: every process's counts in multiprocess mode, this one's otherwise."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        collect: Callable[[CollectorRegistry], object] = multiprocess.MultiProcessCollector  # untyped upstream
        collect(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
