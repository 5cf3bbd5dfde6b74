"""docs/grafana: the dashboard imports and the alert rules load, and every
query names only metrics the library registers, so a renamed metric cannot
leave a silently empty panel or an alert that never fires."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from lash_streams.observability.metrics import Metrics

GRAFANA = Path(__file__).resolve().parent.parent / "docs" / "grafana"
METRIC = re.compile(r"lash_streams_[a-z_]+")
# Only counters and histogram buckets may sit inside rate()/increase(): over a
# gauge they compute nonsense without any error.
RATED = re.compile(r"\b(?:rate|increase)\(\s*(lash_streams_[a-z_]+)")


def _families() -> tuple[dict[str, set[str]], set[str]]:
    """Every metric family the library registers with the sample names it
    exports, and the names that are cumulative (counters, histogram buckets)."""
    registry = CollectorRegistry()
    Metrics(registry)
    families: dict[str, set[str]] = {}
    cumulative: set[str] = set()
    for family in registry.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
        }.get(family.type, [""])
        exported = {family.name + suffix for suffix in suffixes}
        families[family.name] = exported | {sample.name for sample in family.samples}
        if family.type in ("counter", "histogram"):
            cumulative.add(family.name + suffixes[0])
    return families, cumulative


FAMILIES, CUMULATIVE = _families()
REGISTERED = set().union(*FAMILIES.values())


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GRAFANA / "lash-streams.json").read_text())
    return loaded


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Panels, those inside collapsed rows included."""
    found: list[dict[str, Any]] = []
    for panel in panels:
        found.append(panel)
        found.extend(_panels(panel.get("panels", [])))
    return found


def _dashboard_exprs() -> list[str]:
    dashboard = _dashboard()
    exprs = [t["expr"] for p in _panels(dashboard["panels"]) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def _alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((GRAFANA / "alerts.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


@pytest.mark.no_key_hygiene
def test_the_registry_is_read_whole() -> None:
    # A broken collection would make every later check pass vacuously.
    assert {
        "lash_streams_appends_total",
        "lash_streams_append_duration_seconds_bucket",
        "lash_streams_worker_busy_slots",
    } <= REGISTERED
    assert "lash_streams_worker_busy_slots" not in CUMULATIVE


@pytest.mark.no_key_hygiene  # no server of the suite is involved
def test_the_dashboard_is_importable_json() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 39
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = _panels(dashboard["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert "job" in names


@pytest.mark.no_key_hygiene
def test_the_dashboard_shows_every_metric() -> None:
    """A metric added to the library without a panel is one nobody looks at."""
    used = {name for expr in _dashboard_exprs() for name in METRIC.findall(expr)}
    assert sorted(family for family, names in FAMILIES.items() if not names & used) == []


@pytest.mark.no_key_hygiene
def test_dashboard_queries_name_registered_metrics() -> None:
    exprs = _dashboard_exprs()
    assert len(exprs) > 20
    for expr in exprs:
        names = METRIC.findall(expr)
        assert names, expr
        assert set(names) <= REGISTERED, f"unknown metric in {expr!r}"
        assert set(RATED.findall(expr)) <= CUMULATIVE, f"rate over a gauge in {expr!r}"


@pytest.mark.no_key_hygiene
def test_alert_rules_load_and_name_registered_metrics() -> None:
    rules = _alert_rules()
    assert len(rules) >= 8
    alerts = [rule["alert"] for rule in rules]
    assert len(alerts) == len(set(alerts))
    for rule in rules:
        names = METRIC.findall(rule["expr"])
        assert names, rule["alert"]
        assert set(names) <= REGISTERED, f"{rule['alert']}: unknown metric in {rule['expr']!r}"
        assert set(RATED.findall(rule["expr"])) <= CUMULATIVE, rule["alert"]
        description = rule["annotations"]["description"]
        assert description and "\n" not in description.strip(), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
