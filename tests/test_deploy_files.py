"""deploy/: the Grafana dashboard and the Prometheus alert rules read only metrics the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import bot.metrics  # noqa: F401  (registers the service's metrics)

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("coach_"):
            names.add(family.name)
            names |= {family.name + s for s in SUFFIXES}
    return names


def used(expr: str) -> set[str]:
    return set(re.findall(r"\bcoach_[a-z_]+", expr))


def test_alert_rules_name_exported_metrics_and_cover_the_operator_cases() -> None:
    rules = [r for g in yaml.safe_load((DEPLOY / "prometheus" / "coach-alerts.yml").read_text())["groups"] for r in g["rules"]]
    names = exported()
    for rule in rules:
        assert used(rule["expr"]) and used(rule["expr"]) <= names, rule["alert"]
        assert rule["annotations"]["summary"] and rule["labels"]["severity"]
    by_metric = {m for r in rules for m in used(r["expr"])}
    for needed in (
        "coach_feed_age_seconds",
        "coach_outbox_pending",
        "coach_deliveries_total",
        "coach_ack_seconds_bucket",
        "coach_llm_budget_used_ratio",
    ):
        assert needed in by_metric, needed


def test_dashboard_panels_query_exported_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana" / "coach-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    names = exported()
    assert exprs and all(used(e) and used(e) <= names for e in exprs)
    # every metric the service exports has a panel
    queried = {n for e in exprs for n in used(e)}
    families = {f.name for f in REGISTRY.collect() if f.name.startswith("coach_")}
    assert all(any(q == f or q in {f + s for s in SUFFIXES} for q in queried) for f in families), families
