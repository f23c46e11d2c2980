"""Prometheus config, alert rules and Grafana dashboards: valid, tested, and only using metrics
that streams.metrics defines.

promtool (Debian package `prometheus`) checks the config, the rules, the rule unit tests
(deploy/prometheus/alerts_test.yml) and the syntax of every dashboard query.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.utils import floatToGoString

from leadflow.compose import METRIC_VOCABULARY
from streams.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
CONFIG = PROM_DIR / "prometheus.yml"
ALERTS = PROM_DIR / "alerts.yml"
ALERT_TESTS = PROM_DIR / "alerts_test.yml"
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
DASHBOARDS = ("speed-to-lead.json", "sla-compliance.json", "funnel.json", "pipeline-health.json")
DATASOURCE_UID = "prometheus"

REQUIRED_ALERTS = {
    "LeadflowP1SlaBreached",
    "LeadflowFallbackAssignments",
    "LeadflowDeadLetterRateHigh",
    "LeadflowConsumerLagHigh",
    "LeadflowWorkerDown",
    "LeadflowRedisWaiting",
    "LeadflowPendingAssignments",
    "LeadflowDeadLetterDeliveryFailing",
}
METRIC_RE = re.compile(r"\bleadflow_[a-z_]+")
HISTOGRAM_QUANTILE_RE = re.compile(r"histogram_quantile\(\s*[0-9.]+\s*,\s*sum by \(le\b")
AGGREGATION_RE = re.compile(r"\b(sum|max|min|avg|count|histogram_quantile)\b")
GRAFANA_VAR_RE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
LE_RE = re.compile(r"(leadflow_[a-z_]+)_bucket\{[^}]*\ble=\"([^\"]+)\"")


# --- promtool -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if path is None:
        pytest.fail(
            "promtool not found: install Debian's `prometheus` package "
            "(sudo apt-get install -y prometheus), which provides /usr/bin/promtool"
        )
    return path


def _run(promtool: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_config(promtool: str) -> None:
    # Also checks the rule files the config names, resolved relative to the config file.
    result = _run(promtool, "check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules(promtool: str) -> None:
    result = _run(promtool, "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    """Every dashboard expression (Grafana variables substituted) is valid PromQL."""
    rules = []
    for i, (_where, expr) in enumerate(_dashboard_exprs()):
        rules.append({"record": f"dashboard:check:{i}", "expr": _substitute_vars(expr)})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Prometheus config and rules ----------------------------------------------------------------


@pytest.fixture(scope="module")
def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_config_loads_the_alert_rules() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert [(PROM_DIR / f).resolve() for f in config["rule_files"]] == [ALERTS.resolve()]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    sd = jobs["leadflow"]["dns_sd_configs"][0]
    assert sd["port"] == 9464


def test_required_alerts_present(alert_rules: list[dict[str, Any]]) -> None:
    names = [r["alert"] for r in alert_rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert REQUIRED_ALERTS <= set(names), REQUIRED_ALERTS - set(names)


def test_alerts_are_documented(alert_rules: list[dict[str, Any]]) -> None:
    for rule in alert_rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"].get("summary"), rule["alert"]
        assert rule["annotations"].get("description"), rule["alert"]


def test_every_alert_has_a_firing_and_a_silent_unit_test(alert_rules: list[dict[str, Any]]) -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    firing: set[str] = set()
    silent: set[str] = set()
    for test in tests:
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    for rule in alert_rules:
        assert rule["alert"] in firing, f"{rule['alert']}: no test case where it fires"
        assert rule["alert"] in silent, f"{rule['alert']}: no test case where it stays silent"


def test_worker_down_alert_uses_up(alert_rules: list[dict[str, Any]]) -> None:
    (rule,) = [r for r in alert_rules if r["alert"] == "LeadflowWorkerDown"]
    assert rule["expr"].strip() == 'up{job="leadflow"} == 0'


# --- metric names -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def defined_names() -> frozenset[str]:
    return Metrics(CollectorRegistry(), METRIC_VOCABULARY).sample_names()


def _undefined(expr: str, defined: frozenset[str]) -> set[str]:
    return {name for name in METRIC_RE.findall(expr) if name not in defined}


def test_alert_metrics_are_defined(alert_rules: list[dict[str, Any]], defined_names: frozenset[str]) -> None:
    for rule in alert_rules:
        assert not _undefined(rule["expr"], defined_names), (rule["alert"], _undefined(rule["expr"], defined_names))


def test_dashboard_metrics_are_defined(defined_names: frozenset[str]) -> None:
    used = set()
    for where, expr in _dashboard_exprs(include_variables=True):
        missing = _undefined(expr, defined_names)
        assert not missing, f"{where}: {sorted(missing)} not defined in streams/metrics.py"
        used |= set(METRIC_RE.findall(expr))
    assert used, "no leadflow metric used in any dashboard"


def test_regex_maps_suffixes(defined_names: frozenset[str]) -> None:
    """The name check itself: suffixed names are accepted, bare or unknown ones are not."""
    assert not _undefined("rate(leadflow_dead_letters_total[5m])", defined_names)
    assert not _undefined("sum by (le) (rate(leadflow_speed_to_lead_seconds_bucket[5m]))", defined_names)
    assert _undefined("rate(leadflow_dead_letters[5m])", defined_names) == {"leadflow_dead_letters"}
    assert _undefined("leadflow_no_such_metric_total", defined_names)


def test_every_metric_is_on_a_dashboard(defined_names: frozenset[str]) -> None:
    used = {m for _, expr in _dashboard_exprs() for m in METRIC_RE.findall(expr)}
    families = {
        re.sub(r"_(total|bucket|count|sum|created|info)$", "", n)
        for n in defined_names
        if n.startswith("leadflow_") and not n.endswith("_created")
    }
    shown = {re.sub(r"_(total|bucket|count|sum|info)$", "", n) for n in used}
    assert families <= shown, f"metrics on no dashboard: {sorted(families - shown)}"


# --- dashboards ---------------------------------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARD_DIR / name).read_text())


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def _dashboard_exprs(include_variables: bool = False) -> Iterator[tuple[str, str]]:
    for name in DASHBOARDS:
        dashboard = _load(name)
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                yield f"{name} / {panel['title']} / {target['refId']}", target["expr"]
        if include_variables:
            for var in dashboard.get("templating", {}).get("list", []):
                query = var.get("query")
                yield f"{name} / ${var['name']}", query.get("query", "") if isinstance(query, dict) else str(query)


def _substitute_vars(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return "5m" if name in ("__rate_interval", "__interval", "__range") else ".*"

    return GRAFANA_VAR_RE.sub(value, expr)


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_model(name: str) -> None:
    dashboard = _load(name)
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    assert dashboard["title"].startswith("leadflow")
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard.get("id") is None, "provisioned dashboards must not carry a database id"
    assert "leadflow" in dashboard["tags"]
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in _panels(dashboard):
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target.get("datasource", {}).get("uid", DATASOURCE_UID) == DATASOURCE_UID
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            assert var["datasource"]["uid"] == DATASOURCE_UID


def test_dashboard_uids_unique() -> None:
    uids = [_load(n)["uid"] for n in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_alert_dashboard_links_exist(alert_rules: list[dict[str, Any]]) -> None:
    uids = {_load(n)["uid"] for n in DASHBOARDS}
    for rule in alert_rules:
        link = rule["annotations"].get("dashboard")
        if link:
            assert link.removeprefix("/d/") in uids, (rule["alert"], link)


def test_queries_aggregate_across_workers() -> None:
    """Each worker exposes only its own partitions: a panel must sum (or max/min) over them, and
    quantiles must come from buckets summed by le."""
    for where, expr in _dashboard_exprs():
        if "histogram_quantile" in expr:
            count = expr.count("histogram_quantile(")
            assert len(HISTOGRAM_QUANTILE_RE.findall(expr)) == count, f"{where}: use sum by (le, ...)"
        if METRIC_RE.search(expr):
            assert AGGREGATION_RE.search(expr), f"{where}: aggregate across workers"
        for metric in re.findall(r"rate\((leadflow_[a-z_]+)", expr):
            assert metric.endswith(("_total", "_bucket", "_count", "_sum")), f"{where}: rate() of {metric}"


def test_bucket_edges_used_in_queries_exist() -> None:
    metrics = Metrics(CollectorRegistry(), METRIC_VOCABULARY)
    bounds = {
        family: {floatToGoString(b) for b in getattr(metrics, family.removeprefix("leadflow_")).metric._upper_bounds}
        for family in (
            "leadflow_speed_to_lead_seconds",
            "leadflow_event_to_assignment_seconds",
            "leadflow_event_to_score_seconds",
        )
    }
    for where, expr in _dashboard_exprs():
        for family, le in LE_RE.findall(expr):
            assert le in bounds[family], f"{where}: {family} has no bucket le={le!r}"


def test_required_panels() -> None:
    def exprs(name: str) -> str:
        return "\n".join(t["expr"] for p in _panels(_load(name)) for t in p.get("targets", []))

    speed = exprs("speed-to-lead.json")
    assert "histogram_quantile(0.5, sum by (le, priority)" in speed
    assert "histogram_quantile(0.95, sum by (le, priority)" in speed
    assert "sum by (le, team)" in speed
    assert "leadflow_event_to_assignment_seconds_bucket" in speed
    sla = exprs("sla-compliance.json")
    assert "sum by (priority, tier)" in sla and "leadflow_sla_open_clocks" in sla
    assert "1 - sum" in sla  # compliance ratio
    funnel = exprs("funnel.json")
    assert "sum by (source)" in funnel and "sum by (score_band)" in funnel
    assert 'status="accepted"' in funnel and 'status="rejected"' in funnel
    health = exprs("pipeline-health.json")
    for needle in (
        "leadflow_events_in_total",
        "leadflow_dead_letters_total",
        "leadflow_event_to_score_seconds_bucket",
        "leadflow_consumer_lag",
        "leadflow_redis_waiting",
        "leadflow_fallback_assignments_total",
        'up{job="leadflow"}',
    ):
        assert needle in health, needle
