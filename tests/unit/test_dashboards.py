"""The Grafana dashboards are valid dashboard models that import as they are.

Complements tests/unit/test_prometheus_rules.py, which already checks uid/title/schemaVersion
ranges, ``id: null``, tags, unique panel ids, the x/w bounds of gridPos, the panel datasource
uid, non-empty exprs, aggregation, metric names and PromQL syntax (promtool). Here: the file
is a bare model (no export-for-sharing ``__inputs`` / ``${DS_...}`` placeholders, no API
envelope), every panel is complete (type, positive int id, full gridPos, no overlap, rows
well formed), targets (unique refIds, Prometheus datasource type), thresholds, template
variables (defined, used, multi-value ones only with regex matchers) and legends that name
labels the query keeps. The datasource uid the panels use is the one Grafana provisions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.glob("*.json"))
DATASOURCE_UID = "prometheus"

# Grafana 11 core panel plugins (docker-compose runs grafana/grafana:11.2.0; no plugins installed).
CORE_PANEL_TYPES = {
    "row",
    "timeseries",
    "stat",
    "gauge",
    "bargauge",
    "table",
    "barchart",
    "piechart",
    "text",
    "heatmap",
    "histogram",
    "state-timeline",
    "status-history",
    "logs",
    "nodeGraph",
    "trend",
    "xychart",
    "candlestick",
    "canvas",
    "geomap",
    "dashlist",
    "alertlist",
    "annolist",
    "news",
    "flamegraph",
    "traces",
    "datagrid",
}
GRAFANA_BUILTINS = {
    "__interval",
    "__interval_ms",
    "__rate_interval",
    "__rate_interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
    "__from",
    "__to",
    "__dashboard",
    "__org",
    "__user",
    "__name",
    "timeFilter",
    "__timeFilter",
    "__all",
}
VARIABLE_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
# label <op> "...$var..." inside a selector
MATCHER_WITH_VAR_RE = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*\$[^"]*)"')
LEGEND_LABEL_RE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
BY_CLAUSE_RE = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
RELATIVE_TIME_RE = re.compile(r"^now(?:-\d+[smhdwMy])?(?:/[smhdwMy])?$")


def _variables_in(text: str) -> set[str]:
    return {m.group(1) or m.group(2) or m.group(3) for m in VARIABLE_RE.finditer(text)}


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


@pytest.fixture(params=DASHBOARD_FILES, ids=lambda p: p.name)
def dashboard_file(request) -> Path:
    return request.param


@pytest.fixture
def dashboard(dashboard_file: Path) -> dict[str, Any]:
    return json.loads(dashboard_file.read_text(encoding="utf-8"))


def test_every_dashboard_file_is_found() -> None:
    assert {p.name for p in DASHBOARD_FILES} >= {
        "speed-to-lead.json",
        "sla-compliance.json",
        "funnel.json",
        "pipeline-health.json",
    }


def test_bare_model_needing_no_import_inputs(dashboard_file: Path, dashboard: dict[str, Any]) -> None:
    """Provisioning and the import UI take the model as it is: no API envelope, no inputs to
    fill in (an "export for sharing externally" adds __inputs and ${DS_...} placeholders)."""
    assert isinstance(dashboard, dict)
    assert "dashboard" not in dashboard, "an API envelope ({dashboard: ...}), not a dashboard model"
    for key in ("__inputs", "__requires", "__elements"):
        assert key not in dashboard, f"{key}: exported for sharing; provisioning cannot fill inputs"
    text = dashboard_file.read_text(encoding="utf-8")
    assert "${DS_" not in text, "datasource input placeholder ${DS_...}: reference uid 'prometheus'"
    assert isinstance(dashboard.get("panels"), list) and dashboard["panels"]
    assert isinstance(dashboard.get("templating", {}).get("list", []), list)
    assert isinstance(dashboard.get("annotations", {}).get("list", []), list)
    assert isinstance(dashboard.get("version", 0), int)


def test_time_range_and_refresh(dashboard: dict[str, Any]) -> None:
    time_range = dashboard["time"]
    assert RELATIVE_TIME_RE.match(time_range["from"]) and RELATIVE_TIME_RE.match(time_range["to"]), time_range
    refresh = dashboard.get("refresh", "")
    assert refresh in ("", False) or re.fullmatch(r"\d+[smhd]", refresh), refresh


def test_panels_are_complete(dashboard: dict[str, Any]) -> None:
    for panel in _panels(dashboard):
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        assert isinstance(panel.get("id"), int) and not isinstance(panel["id"], bool) and panel["id"] > 0, where
        assert panel.get("type") in CORE_PANEL_TYPES, f"{where}: unknown panel type {panel.get('type')!r}"
        assert isinstance(panel.get("title"), str) and panel["title"].strip(), where
        grid = panel.get("gridPos", {})
        assert set(grid) >= {"x", "y", "w", "h"}, f"{where}: gridPos needs x, y, w, h: {grid}"
        assert all(isinstance(grid[k], int) for k in ("x", "y", "w", "h")), f"{where}: {grid}"
        assert grid["y"] >= 0 and grid["w"] >= 1 and grid["h"] >= 1, f"{where}: {grid}"
        if panel["type"] != "row":
            datasource = panel["datasource"]
            assert datasource.get("type") == "prometheus", f"{where}: datasource {datasource}"


def test_panel_titles_unique(dashboard: dict[str, Any]) -> None:
    """Titles identify panels in alerts, links and test failures."""
    titles = [p["title"] for p in _panels(dashboard) if p["type"] != "row"]
    duplicates = sorted({t for t in titles if titles.count(t) > 1})
    assert not duplicates, duplicates


def test_rows_are_well_formed(dashboard: dict[str, Any]) -> None:
    """An open row lists no panels (they follow it at top level); a collapsed row holds them.
    Rows are full width, one unit high, and never nested."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            assert panel["gridPos"]["w"] == 24 and panel["gridPos"]["h"] == 1, panel["title"]
            nested = panel.get("panels", [])
            if not panel.get("collapsed", False):
                assert nested == [], f"open row {panel['title']!r} must not hold panels"
            assert all(p["type"] != "row" for p in nested), f"row inside row {panel['title']!r}"
        else:
            assert "panels" not in panel or panel["panels"] == [], panel["title"]


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    """What Grafana lays out at load: top-level panels (collapsed rows' content is hidden)."""
    placed: list[tuple[str, tuple[int, int, int, int]]] = []
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        box = (g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"])
        for title, other in placed:
            overlap = box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]
            assert not overlap, f"{panel['title']!r} {g} overlaps {title!r}"
        placed.append((panel["title"], box))


def test_targets(dashboard: dict[str, Any]) -> None:
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        ref_ids = [t.get("refId") for t in panel["targets"]]
        assert all(isinstance(r, str) and r for r in ref_ids), f"{panel['title']}: refId missing"
        assert len(ref_ids) == len(set(ref_ids)), f"{panel['title']}: duplicate refId {ref_ids}"
        for target in panel["targets"]:
            datasource = target.get("datasource", panel["datasource"])
            assert datasource.get("type", "prometheus") == "prometheus", panel["title"]
            assert isinstance(target.get("instant", False), bool) and isinstance(target.get("range", True), bool)
            assert target.get("instant") or target.get("range", True), f"{panel['title']}: neither instant nor range"


def test_thresholds_start_with_a_base_step(dashboard: dict[str, Any]) -> None:
    """Grafana's threshold list starts with the base step (value null), then increases."""
    for panel in _panels(dashboard):
        thresholds = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds")
        if not thresholds:
            continue
        assert thresholds.get("mode") in ("absolute", "percentage"), panel["title"]
        steps = thresholds["steps"]
        assert steps and steps[0]["value"] is None, f"{panel['title']}: first step must have value null"
        values = [s["value"] for s in steps[1:]]
        assert all(isinstance(v, (int, float)) for v in values), f"{panel['title']}: {values}"
        assert values == sorted(values) and len(values) == len(set(values)), f"{panel['title']}: {values}"


def test_template_variables(dashboard: dict[str, Any]) -> None:
    """Every $variable a query uses is defined (or a Grafana built-in), every defined one is
    used, and multi-value / "All" variables are only used with regex matchers (=~, !~): with
    "All" selected they expand to .* or a|b|c, which = would compare literally."""
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    for name, var in variables.items():
        assert re.fullmatch(r"\w+", name), name
        assert var.get("type") in ("query", "custom", "constant", "interval", "textbox", "datasource", "adhoc"), name
        if var.get("includeAll"):
            assert var.get("allValue") == ".*", f"${name}: includeAll without allValue '.*' expands to a|b|c"
    used: set[str] = set()
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            names = _variables_in(expr)
            used |= names
            undefined = names - set(variables) - GRAFANA_BUILTINS
            assert not undefined, f"{panel['title']}: undefined variable(s) {sorted(undefined)} in {expr}"
            for label, op, value in MATCHER_WITH_VAR_RE.findall(expr):
                for name in _variables_in(value) & set(variables):
                    var = variables[name]
                    if var.get("multi") or var.get("includeAll"):
                        assert op in ("=~", "!~"), (
                            f'{panel["title"]}: {label}{op}"{value}" uses multi-value ${name}; use =~'
                        )
    for var in variables.values():  # chained variables may use others in their own query
        query = var.get("query")
        used |= _variables_in(query.get("query", "") if isinstance(query, dict) else str(query or ""))
    unused = set(variables) - used
    assert not unused, f"variables no panel uses: {sorted(unused)}"


def test_legends_name_labels_the_query_keeps(dashboard: dict[str, Any]) -> None:
    """A legend {{label}} renders empty when the aggregation drops that label."""
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            legend = target.get("legendFormat") or ""
            labels = set(LEGEND_LABEL_RE.findall(legend))
            if not labels:
                continue
            expr = target["expr"]
            if not re.search(r"\b(sum|max|min|avg|count|topk|bottomk|quantile|stddev)\b", expr):
                continue  # no aggregation: every label of the series is kept
            kept = {label.strip() for clause in BY_CLAUSE_RE.findall(expr) for label in clause.split(",")}
            missing = labels - kept
            assert not missing, f"{panel['title']}: legend {legend!r} uses {sorted(missing)} dropped by {expr}"


def test_panel_datasource_uid_is_the_provisioned_one() -> None:
    """The uid every panel references exists: Grafana provisions it from this file."""
    datasources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    by_uid = {d["uid"]: d for d in datasources}
    assert DATASOURCE_UID in by_uid and by_uid[DATASOURCE_UID]["type"] == "prometheus"
    for path in DASHBOARD_FILES:
        for panel in _panels(json.loads(path.read_text())):
            uids = [panel.get("datasource", {}).get("uid")] + [
                t.get("datasource", {}).get("uid") for t in panel.get("targets", [])
            ]
            assert set(uids) <= {DATASOURCE_UID, None}, f"{path.name} / {panel['title']}: {uids}"
