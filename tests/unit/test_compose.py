"""docker-compose.yml stays consistent with Settings, the repository, Prometheus and Grafana.

No Docker engine is needed: the file is validated against the compose-spec JSON schema (vendored
from the Go module github.com/compose-spec/compose-go/v2, see tests/data/README.md) with the
`jsonschema` package, then parsed and cross-checked.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
COMPOSE_SPEC = ROOT / "tests" / "data" / "compose-spec.json"
COMPOSE_SPEC_SHA256 = "f266dcbb043229405d7cedd5aec918f9102c2b3d5e3850808fdd8edd564a43ff"  # compose-go v2.16.2
DASHBOARDS = ("speed-to-lead.json", "sla-compliance.json", "funnel.json", "pipeline-health.json")
REQUIRED_SERVICES = ("kafka", "redis", "prometheus", "grafana", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of every bind mount (short or long syntax)."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.split(":")[0]
            if source.startswith((".", "/", "~")):
                mounts.append((source, target))
        elif volume.get("type") == "bind":
            mounts.append((volume["source"], volume["target"]))
    return mounts


def _host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """Map a path inside the container back to the repository through the bind mounts."""
    target = PurePosixPath(container_path)
    for source, mount in _bind_mounts(service):
        mount_path = PurePosixPath(mount)
        if target == mount_path or mount_path in target.parents:
            return ROOT / source / target.relative_to(mount_path)
    return None


def _worker_services(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in services.items() if _command(s)[-2:] == ["leadflow", "worker"]}


# --- the compose specification ----------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_validator() -> jsonschema.Draft202012Validator:
    raw = COMPOSE_SPEC.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == COMPOSE_SPEC_SHA256, (
        "vendored compose-spec.json changed: see tests/data/README.md"
    )
    schema = json.loads(raw)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_compose_file_matches_the_compose_spec(compose: dict[str, Any], compose_validator) -> None:
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in compose_validator.iter_errors(compose)
    ]
    assert not errors, "docker-compose.yml violates the compose spec:\n" + "\n".join(errors)


def _breakages() -> dict[str, Any]:
    def condition_typo(c: dict) -> None:
        c["services"]["worker"]["depends_on"]["redis"]["condition"] = "service_ready"

    def service_key_typo(c: dict) -> None:
        c["services"]["worker"]["helthcheck"] = c["services"]["worker"].pop("healthcheck")

    def top_level_typo(c: dict) -> None:
        c["servics"] = c.pop("services")

    def port_key_typo(c: dict) -> None:
        c["services"]["grafana"]["ports"] = [
            {"target": 3000, "published": "3000", "host_ip": "127.0.0.1", "protocl": "tcp"}
        ]

    def volume_key_typo(c: dict) -> None:
        c["volumes"]["kafka-data"] = {"drivr": "local"}

    return {f.__name__: f for f in (condition_typo, service_key_typo, top_level_typo, port_key_typo, volume_key_typo)}


@pytest.mark.parametrize("breakage", list(_breakages()))
def test_compose_schema_rejects_broken_files(compose: dict[str, Any], compose_validator, breakage: str) -> None:
    broken = copy.deepcopy(compose)
    _breakages()[breakage](broken)
    assert not compose_validator.is_valid(broken), f"{breakage} was accepted by the compose-spec schema"


def test_compose_v2_is_stated() -> None:
    header = COMPOSE.read_text().split("\nname:")[0]
    assert re.search(r"Compose v2", header), "docker-compose.yml should say it needs Compose v2"
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"Compose v2", readme), "README should say docker-compose.yml needs Compose v2"


def _published_ports(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host ip, published port) of every published port, short or long syntax."""
    published = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            published.append((str(port.get("host_ip", "")), str(port.get("published", ""))))
            continue
        parts = str(port).rsplit(":", 2)
        if len(parts) == 3:
            published.append((parts[0].strip("[]"), parts[1]))
        elif len(parts) == 2:
            published.append(("", parts[0]))
        else:
            published.append(("", parts[0]))  # container port only: a random host port, all interfaces
    return published


def test_published_ports_bind_loopback(services: dict[str, Any]) -> None:
    count = 0
    for name, service in services.items():
        for host_ip, port in _published_ports(service):
            count += 1
            assert host_ip in ("127.0.0.1", "::1"), f"{name}: port {port} is published on all interfaces"
    assert count
    assert _published_ports({"ports": ["9090:9090", "3000"]}) == [("", "9090"), ("", "3000")]


def test_required_services(services: dict[str, Any]) -> None:
    for name in REQUIRED_SERVICES:
        assert name in services, f"docker-compose.yml has no {name!r} service"
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert services["redis"]["image"].startswith("redis:7")
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["grafana"]["image"].startswith("grafana/grafana")


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service.get("image")
        if image and "build" not in service:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag ({image})"


def test_kafka_is_kraft_and_reachable_as_kafka_9092(services: dict[str, Any]) -> None:
    env = _env(services["kafka"])
    assert env["KAFKA_NODE_ID"] == "1"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    # leadflow creates co-partitioned topics itself.
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_every_leadflow_env_key_is_a_settings_field(services: dict[str, Any]) -> None:
    fields = {f"LEADFLOW_{name.upper()}" for name in Settings.model_fields}
    seen = 0
    for name, service in services.items():
        for key in _env(service):
            if key.startswith("LEADFLOW_"):
                seen += 1
                assert key in fields, f"{name}: {key} is not a Settings field (known: {sorted(fields)})"
    assert seen


def test_worker_environment_is_valid_settings(services: dict[str, Any]) -> None:
    """The values parse: Settings built from the worker's environment, nothing else."""
    (worker,) = _worker_services(services).values()
    env = _env(worker)
    values = {k.removeprefix("LEADFLOW_").lower(): v for k, v in env.items() if k.startswith("LEADFLOW_")}
    settings = Settings(**values)
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.metrics_port == 9464
    assert str(settings.data_dir) == "/data"


def test_worker_and_topic_init(services: dict[str, Any]) -> None:
    workers = _worker_services(services)
    assert list(workers) == ["worker"]
    worker = workers["worker"]
    assert "build" in worker
    inits = [n for n, s in services.items() if _command(s)[-3:] == ["leadflow", "topics", "create"]]
    assert inits, "no service runs `leadflow topics create`"
    depends = worker["depends_on"]
    assert depends[inits[0]]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"
    assert services[inits[0]]["depends_on"]["kafka"]["condition"] == "service_healthy"
    # Both see the same configuration (same topics, same prefix, same broker).
    assert _env(services[inits[0]]) == _env(worker)


def test_roster_init_loads_the_roster_before_the_worker(services: dict[str, Any]) -> None:
    inits = {n: s for n, s in services.items() if _command(s)[:3] == ["leadflow", "roster", "load"]}
    assert list(inits) == ["roster-init"], "one one-shot service should run `leadflow roster load`"
    init = inits["roster-init"]
    command = _command(init)
    # The image is the repository at /app (Dockerfile: WORKDIR /app, COPY . .).
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^WORKDIR /app$", dockerfile, re.M) and re.search(r"^COPY \. \.$", dockerfile, re.M)
    roster = PurePosixPath(command[-1])
    assert roster.is_relative_to("/app"), roster
    assert (ROOT / roster.relative_to("/app")).is_file(), f"{roster} is not in the image"
    assert "config" not in (ROOT / ".dockerignore").read_text().split()
    roster_cli = (ROOT / "leadflow" / "roster_cli.py").read_text()
    for flag in command[3:-1]:
        assert f'"{flag}"' in roster_cli, f"leadflow roster load has no {flag} option"
    assert init.get("restart") == "no"
    assert init["depends_on"]["redis"]["condition"] == "service_healthy"
    assert _env(init) == _env(services["worker"]), "roster-init must use the worker's Redis and key prefix"
    assert services["worker"]["depends_on"]["roster-init"]["condition"] == "service_completed_successfully"


def test_worker_health_metrics_and_logs(services: dict[str, Any]) -> None:
    worker = services["worker"]
    env = _env(worker)
    assert env["LEADFLOW_METRICS_HOST"] == "0.0.0.0", "Prometheus cannot scrape a loopback-bound worker"
    assert env["LEADFLOW_LOG_FORMAT"] == "json"
    test = worker["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], "the image has python, not curl/wget"
    url = re.search(r"https?://[^'\"]+", test[3]).group(0)
    assert url == f"http://127.0.0.1:{env['LEADFLOW_METRICS_PORT']}/readyz"
    compile(test[3], "healthcheck", "exec")  # the one-liner is valid Python


def test_healthchecks_and_conditions(services: dict[str, Any]) -> None:
    for name in ("kafka", "redis", "prometheus", "grafana", "worker"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dep, spec in depends.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = spec["condition"]
            assert condition in ("service_healthy", "service_completed_successfully", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health, which it lacks"


def test_bind_mounts_exist(services: dict[str, Any]) -> None:
    mounts = 0
    for name, service in services.items():
        for source, _ in _bind_mounts(service):
            mounts += 1
            assert (ROOT / source).exists(), f"{name}: bind-mounted {source} does not exist"
        build = service.get("build")
        if build:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), f"{name}: no {dockerfile} in {context}"
    assert mounts


def test_named_volumes_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: volume {source} not declared"


def test_dockerfile_runs_the_worker() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^CMD \["leadflow", "worker"\]', text, re.M)
    assert re.search(r"^USER (?!root)", text, re.M), "the image should not run as root"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


# --- Prometheus -------------------------------------------------------------------------------


def test_prometheus_config_is_what_compose_mounts(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    flags = dict(f.split("=", 1) for f in _command(prometheus) if f.startswith("--") and "=" in f)
    config = _host_path(prometheus, flags["--config.file"])
    assert config is not None and config.resolve() == PROMETHEUS.resolve()


def test_prometheus_scrapes_the_worker_metrics_port(services: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "leadflow"]
    ((worker_name, worker),) = _worker_services(services).items()
    port = int(_env(worker)["LEADFLOW_METRICS_PORT"])
    assert str(port) in [str(p) for p in worker.get("expose", [])]
    targets: list[tuple[str, int]] = []
    for sd in job.get("dns_sd_configs", []):
        targets += [(n, int(sd["port"])) for n in sd["names"]]
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, _, p = target.rpartition(":")
            targets.append((host, int(p)))
    assert targets, "job leadflow has no targets"
    for host, target_port in targets:
        assert host == worker_name, f"scrape target {host} is not the worker service"
        assert target_port == port, f"scrape port {target_port} != LEADFLOW_METRICS_PORT {port}"
    assert job.get("metrics_path", "/metrics") == "/metrics"


# --- Grafana ----------------------------------------------------------------------------------


def _provisioning(services: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    grafana = services["grafana"]
    directory = _host_path(grafana, f"/etc/grafana/provisioning/{kind}")
    assert directory is not None and directory.is_dir(), f"grafana {kind} provisioning not mounted"
    docs = [yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.y*ml"))]
    assert docs, f"no {kind} provisioning file"
    return docs


def test_grafana_datasource(services: dict[str, Any]) -> None:
    datasources = [d for doc in _provisioning(services, "datasources") for d in doc["datasources"]]
    (prometheus,) = [d for d in datasources if d["type"] == "prometheus"]
    assert prometheus["uid"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    port = services["prometheus"]["ports"][0].split(":")[-1]
    assert port == "9090"


def test_grafana_dashboards_provisioned(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    providers = [p for doc in _provisioning(services, "dashboards") for p in doc["providers"]]
    assert providers
    found: set[str] = set()
    for provider in providers:
        assert provider["type"] == "file"
        directory = _host_path(grafana, provider["options"]["path"])
        assert directory is not None, f"{provider['options']['path']} is not bind-mounted"
        assert directory.is_dir(), f"{directory} does not exist"
        for path in directory.glob("*.json"):
            json.loads(path.read_text())
            found.add(path.name)
    assert set(DASHBOARDS) <= found, f"missing dashboards: {set(DASHBOARDS) - found}"
    home = _env(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        home_path = _host_path(grafana, home)
        assert home_path is not None and home_path.is_file(), f"home dashboard {home} not found"


def test_grafana_needs_a_password_and_no_anonymous_access(services: dict[str, Any]) -> None:
    env = _env(services["grafana"])
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED") == "false"
    password = env.get("GF_SECURITY_ADMIN_PASSWORD")
    if password is None:  # or a compose secret read through Grafana's __FILE variant
        assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/secrets/")
        return
    # ${VAR:?message}: compose refuses to start while VAR is unset or empty; no default.
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), (
        f"Grafana's admin password must be a required variable, got {password!r}"
    )


def test_prometheus_lifecycle_api_is_off(services: dict[str, Any]) -> None:
    flags = _command(services["prometheus"])
    assert flags, "prometheus has no command"
    assert "--web.enable-lifecycle" not in flags and "--web.enable-admin-api" not in flags
