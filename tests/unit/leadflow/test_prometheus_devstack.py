"""leadflow.devstack.prometheus without starting Prometheus: the config it writes (checked by
promtool), Grafana variable substitution, what alert conditions measure, clear errors."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from leadflow.devstack import prometheus as prom_module
from leadflow.devstack.exceptions import PortInUseError, ToolMissingError
from leadflow.devstack.prometheus import (
    ALERTS_FILE,
    PrometheusServer,
    grafana_to_promql,
    measured_exprs,
    render_prometheus_config,
)

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


# --- config ---------------------------------------------------------------------------------


def test_config_scrapes_targets_every_second_and_loads_the_alerts() -> None:
    config = yaml.safe_load(render_prometheus_config(["127.0.0.1:9464", "127.0.0.1:9465"]))
    assert config["global"] == {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    assert config["rule_files"] == [str(ALERTS_FILE.resolve())]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "leadflow"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9464", "127.0.0.1:9465"]}]


@pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool (Debian package prometheus) not installed")
def test_rendered_config_passes_promtool(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(render_prometheus_config(["127.0.0.1:9464"]))
    result = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_config_or_targets_exactly_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        PrometheusServer(9090, tmp_path)
    with pytest.raises(ValueError):
        PrometheusServer(9090, tmp_path, config_path=tmp_path / "p.yml", scrape_targets=["x:1"])


def test_missing_binary_names_the_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(prom_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(prom_module, "DEFAULT_BINARY", tmp_path / "no-such-prometheus")
    server = PrometheusServer(9090, tmp_path, scrape_targets=["127.0.0.1:1"])
    with pytest.raises(ToolMissingError, match=r"apt-get install -y prometheus"):
        server.launch()
    assert not (tmp_path / "prometheus.pid").exists()


def test_refuses_a_port_taken_by_someone_else(tmp_path: Path) -> None:
    if not Path(prom_module.DEFAULT_BINARY).exists() and not shutil.which("prometheus"):
        pytest.skip("prometheus not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        server = PrometheusServer(sock.getsockname()[1], tmp_path, scrape_targets=["127.0.0.1:1"])
        with pytest.raises(PortInUseError, match="taken by another process"):
            server.launch()


# --- Grafana variables ----------------------------------------------------------------------


def test_grafana_variables_are_substituted() -> None:
    expr = (
        'histogram_quantile(0.5, sum by (le) (rate(m_bucket{priority=~"$priority", team=~"${team:regex}"}'
        "[$__rate_interval]))) + increase(n[$__range]) + [[priority]] + $__range_s + $__interval_ms"
    )
    out = grafana_to_promql(expr, {"priority": ".*", "team": "a|b"}, interval="2s", rate_interval="30s", range_="1h")
    assert out == (
        'histogram_quantile(0.5, sum by (le) (rate(m_bucket{priority=~".*", team=~"a|b"}[30s]))) '
        "+ increase(n[1h]) + .* + 3600 + 2000"
    )


def test_an_undefined_variable_is_an_error() -> None:
    with pytest.raises(KeyError, match=r"\$region"):
        grafana_to_promql('sum(m{region=~"$region"})', {"priority": ".*"})


def test_expressions_without_variables_are_unchanged() -> None:
    assert grafana_to_promql('sum(up{job="leadflow"})') == 'sum(up{job="leadflow"})'


# --- alert conditions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr,measured",
    [
        ('up{job="leadflow"} == 0', ['up{job="leadflow"}']),
        ('absent(up{job="leadflow"})', ['up{job="leadflow"}']),
        (
            'sum by (tier) (increase(m_total{priority="P1"}[5m])) > 0',
            ['sum by (tier) (increase(m_total{priority="P1"}[5m]))'],
        ),
        (
            "(sum(a) / (sum(a) + sum(b))) > 0.05 and sum(increase(a[10m])) >= 10",
            ["sum(a) / (sum(a) + sum(b))", "sum(increase(a[10m]))"],
        ),
        ("x > bool 1e3 or on(instance) y < -2", ["x", "y"]),
        ('m{l!="0", k=~"a|b"}', ['m{l!="0", k=~"a|b"}']),  # matchers are not comparisons
        ('m{s="x and y"} unless n', ['m{s="x and y"}', "n"]),  # neither are strings
        ("sum(rate(a[5m])) / sum(rate(b[5m]))", ["sum(rate(a[5m])) / sum(rate(b[5m]))"]),
        ("x > y", ["x > y"]),  # comparing two vectors is itself the measure
    ],
)
def test_measured_exprs(expr: str, measured: list[str]) -> None:
    assert measured_exprs(expr) == measured


def test_every_alert_measures_something_valid(tmp_path: Path) -> None:
    rules = [r for g in yaml.safe_load(ALERTS_FILE.read_text())["groups"] for r in g["rules"] if "alert" in r]
    records = []
    for rule in rules:
        parts = measured_exprs(rule["expr"])
        assert parts and all(p.strip() for p in parts), rule["alert"]
        records += [{"record": f"measured:{rule['alert']}:{i}", "expr": p} for i, p in enumerate(parts)]
    if not Path(PROMTOOL).exists():
        pytest.skip("promtool not installed")
    path = tmp_path / "measured.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "measured", "rules": records}]}))
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
