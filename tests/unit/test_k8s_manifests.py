"""deploy/kubernetes: valid for the Kubernetes API (kubernetes-validate's schemas, strict) and
consistent with the settings, the image and the repository.

No cluster is needed. Every manifest is validated against the OpenAPI-derived JSON schemas that
the `kubernetes-validate` package ships (strict: unknown fields are errors, as `kubectl apply
--validate=strict` would report), for the oldest and newest Kubernetes versions we support; the
ServiceMonitor against the prometheus-operator CRD schema vendored in tests/data. The rest are
cross-checks a schema cannot make: selectors, ports, mounts, settings, probes, sizing.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import mode
import pytest
import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
DATA = ROOT / "tests" / "data"
SERVICEMONITOR_CRD = DATA / "monitoring.coreos.com_servicemonitors.yaml"
SERVICEMONITOR_CRD_SHA256 = "1dae27b7189b5ce7b9ab764656c18b4c75a45cde1e6f3af6a5e84c4317628919"
# Oldest and newest Kubernetes minor versions the manifests are validated for.
KUBERNETES_VERSIONS = ("1.30", "1.37")
CONFIG_FILES = ("scoring-model.yaml", "routing.yaml", "sla.yaml", "roster.yaml")

# Measured on this project (README "Status"): the sizing comments in
# statefulset.yaml derive the requests from these; the test keeps the requests above them.
MEASURED_RSS_MAX_MIB = 731  # one worker, 1M leads (626-731 MiB)
CORES_PER_1000_EVENTS_S = 1.0
STATE_BYTES_PER_LEAD = 2300
DESIGN_EVENTS_S = 1000
DESIGN_LEADS = 1_000_000


# --- loading ------------------------------------------------------------------------------------


def _manifest_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _load() -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], Path]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    sources: dict[tuple[str, str], Path] = {}
    for path in _manifest_files():
        for doc in _docs(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{path.name}: {key} defined twice"
            found[key] = doc
            sources[key] = path
    return found, sources


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> manifest, over every file in deploy/kubernetes (examples included)."""
    return _load()[0]


def _one(resources: dict, kind: str) -> dict[str, Any]:
    (doc,) = [d for (k, _), d in resources.items() if k == kind]
    return doc


def _pod_specs(resources: dict) -> dict[str, dict[str, Any]]:
    """Every pod template: StatefulSet, Job (and any Deployment someone adds)."""
    return {
        f"{k}/{n}": d["spec"]["template"]["spec"]
        for (k, n), d in resources.items()
        if k in ("StatefulSet", "Job", "Deployment", "DaemonSet")
    }


def _worker(resources: dict) -> dict[str, Any]:
    return _one(resources, "StatefulSet")


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["containers"]
    return container


def _config_map(resources: dict, name: str) -> dict[str, str]:
    return resources[("ConfigMap", name)]["data"]


def _environment(resources: dict, container: dict[str, Any]) -> dict[str, Any]:
    """The container's environment as Kubernetes builds it: envFrom first, env overrides.
    Values from secretKeyRef stay as ("secret", name, key), from fieldRef as ("field", path)."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env.update(_config_map(resources, source["configMapRef"]["name"]))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = ("field", item["valueFrom"]["fieldRef"]["fieldPath"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = ("secret", ref["name"], ref["key"])
    return env


def _quantity(value: str | int) -> float:
    """A Kubernetes quantity in base units (bytes, cores)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
    text = str(value)
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text)
    assert match, f"not a quantity: {text!r}"
    number, unit = match.groups()
    return float(number) * (units[unit] if unit else 1)


# --- schemas ------------------------------------------------------------------------------------


def test_there_are_manifests_for_every_required_kind(resources: dict) -> None:
    kinds = {k for k, _ in resources}
    for kind in (
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Secret",
        "Job",
        "PodDisruptionBudget",
        "ServiceAccount",
        "ServiceMonitor",
    ):
        assert kind in kinds, f"deploy/kubernetes has no {kind}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "path",
    [p for p in _manifest_files() if p.parent.name != "prometheus-operator"],
    ids=lambda p: str(p.relative_to(K8S)),
)
def test_manifest_is_valid_for_kubernetes(path: Path, version: str) -> None:
    """Built-in kinds; the operator's CRD kinds: test_servicemonitor_matches_the_crd_schema."""
    docs = _docs(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        # Raises ValidationError naming the path of the offending field, or SchemaNotFoundError
        # for a kind/apiVersion the Kubernetes version does not have.
        assert kubernetes_validate.validate(doc, version, strict=True) == version


def _broken_statefulsets() -> dict[str, Any]:
    def typo(d: dict) -> None:
        d["spec"]["replica"] = d["spec"].pop("replicas")

    def replicas_as_words(d: dict) -> None:
        d["spec"]["replicas"] = "three"

    def no_selector(d: dict) -> None:
        del d["spec"]["selector"]

    def probe_port_as_list(d: dict) -> None:
        d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = [9464]

    def unknown_container_field(d: dict) -> None:
        d["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []

    return {f.__name__: f for f in (typo, replicas_as_words, no_selector, probe_port_as_list, unknown_container_field)}


@pytest.mark.parametrize("breakage", list(_broken_statefulsets()))
def test_validator_rejects_a_broken_statefulset(resources: dict, breakage: str) -> None:
    """The validator is not a rubber stamp: each deliberate mistake is rejected."""
    broken = copy.deepcopy(_worker(resources))
    _broken_statefulsets()[breakage](broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def _servicemonitor_schema() -> dict[str, Any]:
    raw = SERVICEMONITOR_CRD.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SERVICEMONITOR_CRD_SHA256, (
        "vendored CRD changed: see tests/data/README.md"
    )
    crd = yaml.safe_load(raw)
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _strict(v1["schema"]["openAPIV3Schema"])


def _strict(schema: Any) -> Any:
    """Like kubectl's strict validation: unknown fields in an object with declared properties
    are errors (the API server would drop them silently)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    return schema


def test_servicemonitor_matches_the_crd_schema(resources: dict) -> None:
    monitor = _one(resources, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    schema = _servicemonitor_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(monitor, schema, cls=jsonschema.Draft7Validator)
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["interval"] = "every 15 seconds"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)


# --- settings -------------------------------------------------------------------------------------


def test_every_leadflow_name_is_a_settings_field() -> None:
    """Comments included: the optional mTLS lines must work when uncommented."""
    fields = {f"LEADFLOW_{name.upper()}" for name in Settings.model_fields}
    used: set[str] = set()
    for path in _manifest_files():
        names = set(re.findall(r"\bLEADFLOW_[A-Z0-9_]+\b", path.read_text()))
        unknown = names - fields
        assert not unknown, f"{path.relative_to(ROOT)}: not Settings fields: {sorted(unknown)}"
        used |= names
    required = {
        "LEADFLOW_KAFKA_SECURITY_PROTOCOL",
        "LEADFLOW_KAFKA_SASL_MECHANISM",
        "LEADFLOW_KAFKA_SASL_USERNAME",
        "LEADFLOW_KAFKA_SASL_PASSWORD_FILE",
        "LEADFLOW_KAFKA_SSL_CA_FILE",
        "LEADFLOW_KAFKA_SSL_CERT_FILE",
        "LEADFLOW_KAFKA_SSL_KEY_FILE",
        "LEADFLOW_REDIS_URL",
        "LEADFLOW_REDIS_USERNAME",
        "LEADFLOW_REDIS_PASSWORD_FILE",
        "LEADFLOW_REDIS_SSL_CA_FILE",
        "LEADFLOW_SCHEMA_REGISTRY_URL",
        "LEADFLOW_SCHEMA_REGISTRY_USERNAME",
        "LEADFLOW_SCHEMA_REGISTRY_PASSWORD_FILE",
        "LEADFLOW_OUTPUT_FORMAT",
        "LEADFLOW_LOG_FORMAT",
        "LEADFLOW_METRICS_HOST",
        "LEADFLOW_STANDBY_REPLICAS",
        "LEADFLOW_DATA_DIR",
        "LEADFLOW_TOPIC_PARTITIONS",
        "LEADFLOW_SCORING_MODEL_PATH",
        "LEADFLOW_ROUTING_CONFIG_PATH",
        "LEADFLOW_SLA_CONFIG_PATH",
        "LEADFLOW_ROSTER_PATH",
    }
    assert required <= used, f"not configured in deploy/kubernetes: {sorted(required - used)}"


def _uncomment_optional(data: dict[str, str], text: str) -> dict[str, str]:
    """The ConfigMap with its commented-out `# LEADFLOW_X: value` lines enabled."""
    enabled = dict(data)
    for name, value in re.findall(r"^\s*#\s*(LEADFLOW_[A-Z0-9_]+):\s*(\S+)\s*$", text, re.M):
        enabled[name] = value
    return enabled


def _materialize(
    resources: dict, pod: dict[str, Any], container: dict[str, Any], env: dict[str, Any], tmp: Path
) -> dict[str, str]:
    """Settings values as the pod would see them: Secret values from examples/secrets.yaml,
    and every path that lies under a volume mount rewritten to a local copy of that volume's
    files (Secret keys, ConfigMap keys, empty dirs). A path outside every mount stays as it
    is, so Settings rejects it if it must exist."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: list[tuple[PurePosixPath, Path]] = []
    for index, mount in enumerate(container["volumeMounts"]):
        local = tmp / f"mount{index}"
        local.mkdir()
        volume = volumes.get(mount["name"])
        if volume is not None and "secret" in volume:
            secret = resources.get(("Secret", volume["secret"]["secretName"]))
            assert secret is not None or volume["secret"].get("optional"), (
                f"no example for Secret {volume['secret']['secretName']} in examples/secrets.yaml"
            )
            for key, value in (secret or {}).get("stringData", {}).items():
                (local / key).write_text(value)
        elif volume is not None and "configMap" in volume:
            for key, value in _config_map(resources, volume["configMap"]["name"]).items():
                (local / key).write_text(value)
        else:
            assert volume is not None or mount["name"] in _claim_templates(resources), (
                f"volumeMount {mount['name']} has no volume"
            )
        mounts.append((PurePosixPath(mount["mountPath"]), local))
    values: dict[str, str] = {}
    for name, value in env.items():
        if not name.startswith("LEADFLOW_"):
            continue
        if isinstance(value, tuple) and value[0] == "field":
            assert value[1] == "status.podIP", f"{name}: fieldRef {value[1]} is not the pod IP"
            value = "10.42.0.7"  # what the downward API gives
        elif isinstance(value, tuple):
            _, secret_name, key = value
            secret = resources.get(("Secret", secret_name))
            assert secret is not None, f"{name}: Secret {secret_name} has no example in examples/secrets.yaml"
            assert key in secret["stringData"], f"{name}: Secret {secret_name} has no key {key!r}"
            value = secret["stringData"][key]
        if value.startswith("/"):
            path = PurePosixPath(value)
            for mount_path, local in mounts:
                if path == mount_path or mount_path in path.parents:
                    value = str(local / path.relative_to(mount_path))
                    break
        values[name.removeprefix("LEADFLOW_").lower()] = value
    return values


def _claim_templates(resources: dict) -> set[str]:
    return {t["metadata"]["name"] for t in _worker(resources)["spec"].get("volumeClaimTemplates", [])}


@pytest.mark.parametrize("with_mtls", [False, True], ids=["as-shipped", "mtls-enabled"])
def test_every_pod_gets_valid_settings(resources: dict, tmp_path: Path, with_mtls: bool) -> None:
    """Settings built from each pod's environment, with the files its mounts provide: every
    *_FILE and *_PATH names a file the pod really has (Settings checks the credential files;
    the config files are parsed below), SASL has its username, and so on."""
    text = (K8S / "configmap-settings.yaml").read_text()
    if with_mtls:
        enabled = _uncomment_optional(_config_map(resources, "leadflow-settings"), text)
        assert "LEADFLOW_KAFKA_SSL_CERT_FILE" in enabled and "LEADFLOW_KAFKA_SSL_KEY_FILE" in enabled
        resources = {**resources, ("ConfigMap", "leadflow-settings"): {"data": enabled}}
    for index, (name, pod) in enumerate(_pod_specs(resources).items()):
        container = _container(pod)
        env = _environment(resources, container)
        local = tmp_path / str(index)
        local.mkdir()
        values = _materialize(resources, pod, container, env, local)
        settings = Settings(**values)
        for key in ("scoring_model_path", "routing_config_path", "sla_config_path", "roster_path"):
            path = getattr(settings, key)
            assert path.is_file(), (
                f"{name}: LEADFLOW_{key.upper()} names no mounted file ({env.get('LEADFLOW_' + key.upper())})"
            )
            assert path.read_text() == (ROOT / "config" / path.name).read_text()
        assert settings.kafka_security_protocol == "SASL_SSL"
        assert settings.redis_url.startswith("rediss://"), f"{name}: Redis without TLS"
        assert settings.redis_password_value and settings.kafka_sasl_password_value
        assert bool(settings.kafka_ssl_cert_file) == with_mtls
        assert settings.metrics_host == "0.0.0.0"
        assert settings.log_format == "json"
        if name.startswith("StatefulSet/"):
            # The lead API beyond loopback, behind the token, reachable at the pod IP by the other pods.
            assert settings.api_bind == "0.0.0.0" and settings.api_token_value
            assert settings.api_canonical_url == "http://10.42.0.7:6066"


def test_credentials_come_from_mounted_files_only(resources: dict) -> None:
    """Passwords and keys: *_FILE settings to mounted Secrets, never a value in the env."""
    for name, pod in _pod_specs(resources).items():
        container = _container(pod)
        env = _environment(resources, container)
        for key in env:
            if key.startswith("LEADFLOW_") and re.search(r"PASSWORD|_KEY(?!_PREFIX)", key):
                assert key.endswith("_FILE"), f"{name}: {key} should be a *_FILE setting"
        volumes = {v["name"]: v for v in pod["volumes"]}
        for mount in container["volumeMounts"]:
            if "secret" in volumes.get(mount["name"], {}):
                assert mount.get("readOnly") is True, f"{name}: Secret {mount['name']} mounted writable"
                assert volumes[mount["name"]]["secret"]["defaultMode"] == 0o440
    for (kind, name), path in _load()[1].items():
        if kind == "Secret":
            assert path.parent.name == "examples", f"Secret {name} outside examples/ would be applied with placeholders"


def test_config_configmap_is_rendered_from_config_dir(resources: dict) -> None:
    data = _config_map(resources, "leadflow-config")
    assert sorted(data) == sorted(CONFIG_FILES)
    for name in CONFIG_FILES:
        assert data[name] == (ROOT / "config" / name).read_text(), (
            f"configmap-config.yaml is out of date for {name}: run scripts/render_k8s_config.py"
        )


# --- the worker StatefulSet -------------------------------------------------------------------


def test_replicas_do_not_exceed_partitions(resources: dict) -> None:
    worker = _worker(resources)
    env = _environment(resources, _container(worker["spec"]["template"]["spec"]))
    partitions = int(env["LEADFLOW_TOPIC_PARTITIONS"])
    standby = int(env["LEADFLOW_STANDBY_REPLICAS"])
    replicas = worker["spec"]["replicas"]
    assert 1 <= replicas <= partitions, f"replicas {replicas} > LEADFLOW_TOPIC_PARTITIONS {partitions}: idle workers"
    assert standby >= 1, "no standby replicas: a failed worker's tables are rebuilt from scratch"
    assert replicas >= standby + 1, f"{standby} standby replica(s) need at least {standby + 1} workers"


def test_replicas_check_can_fail(resources: dict) -> None:
    worker = copy.deepcopy(_worker(resources))
    env = _environment(resources, _container(worker["spec"]["template"]["spec"]))
    worker["spec"]["replicas"] = int(env["LEADFLOW_TOPIC_PARTITIONS"]) + 1
    with pytest.raises(AssertionError, match="idle workers"):
        test_replicas_do_not_exceed_partitions({**resources, ("StatefulSet", "leadflow-worker"): worker})


def test_statefulset_has_headless_service_selector_and_pdb(resources: dict) -> None:
    worker = _worker(resources)
    labels = worker["spec"]["template"]["metadata"]["labels"]
    selector = worker["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items(), "selector does not match the pod template"
    service = resources[("Service", worker["spec"]["serviceName"])]
    assert service["spec"]["clusterIP"] == "None", "the StatefulSet's service must be headless"
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"].get("publishNotReadyAddresses") is True, "recovering workers would not be scraped"
    pdb = _one(resources, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    assert worker["spec"]["podManagementPolicy"] == "Parallel"


def test_rocksdb_lives_on_a_persistent_volume(resources: dict) -> None:
    worker = _worker(resources)
    pod = worker["spec"]["template"]["spec"]
    container = _container(pod)
    env = _environment(resources, container)
    assert env["LEADFLOW_STORE"] == "rocksdb://"
    data_dir = PurePosixPath(env["LEADFLOW_DATA_DIR"])
    (claim,) = worker["spec"]["volumeClaimTemplates"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    assert PurePosixPath(mount["mountPath"]) in (data_dir, *data_dir.parents), (
        f"LEADFLOW_DATA_DIR {data_dir} is not on the volumeClaimTemplate ({mount['mountPath']})"
    )
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert worker["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}


def test_probes_hit_the_health_endpoints(resources: dict) -> None:
    pod = _worker(resources)["spec"]["template"]["spec"]
    container = _container(pod)
    env = _environment(resources, container)
    port = int(env["LEADFLOW_METRICS_PORT"])
    assert env["LEADFLOW_METRICS_HOST"] == "0.0.0.0", "kubelet cannot reach a loopback-bound endpoint"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    expected = {"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, f"{probe} should GET {path}"
        target = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        assert target == port, f"{probe} port {target} != LEADFLOW_METRICS_PORT {port}"
    # A slow start (Kafka check, topic creation, Redis wait) must not be killed by liveness.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 30


def test_scraped_by_prometheus(resources: dict) -> None:
    worker = _worker(resources)
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    env = _environment(resources, _container(worker["spec"]["template"]["spec"]))
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == env["LEADFLOW_METRICS_PORT"]
    assert annotations["prometheus.io/path"] == "/metrics"
    monitor = _one(resources, "ServiceMonitor")
    service = resources[("Service", worker["spec"]["serviceName"])]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    container_ports = {p["name"]: p["containerPort"] for p in _container(worker["spec"]["template"]["spec"])["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["path"] == "/metrics"
        target = service_ports[endpoint["port"]]["targetPort"]
        assert container_ports[target] == int(env["LEADFLOW_METRICS_PORT"])


def test_graceful_shutdown_fits_faust(resources: dict) -> None:
    """mode (Faust's service framework) waits up to shutdown_timeout for services to stop;
    the pod must not be SIGKILLed before that, plus time to flush and commit."""
    grace = _worker(resources)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= mode.Service.shutdown_timeout + 15, f"{grace}s < mode's {mode.Service.shutdown_timeout}s + 15s"


def test_resources_follow_the_measured_figures(resources: dict) -> None:
    worker = _worker(resources)
    pod = worker["spec"]["template"]["spec"]
    container = _container(pod)
    env = _environment(resources, container)
    replicas = worker["spec"]["replicas"]
    partitions = int(env["LEADFLOW_TOPIC_PARTITIONS"])
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    # Memory: a worker may end up holding every partition.
    assert _quantity(requests["memory"]) >= MEASURED_RSS_MAX_MIB * 2**20
    assert _quantity(limits["memory"]) >= 2 * _quantity(requests["memory"])
    # CPU: the design rate spread over the workers left when the PDB allows one down.
    survivors = max(1, replicas - _pdb_max_unavailable(resources))
    cores_each = DESIGN_EVENTS_S / survivors * CORES_PER_1000_EVENTS_S / 1000
    assert _quantity(requests["cpu"]) >= cores_each, f"cpu request below {cores_each:.2f} cores"
    assert _quantity(limits["cpu"]) >= 1, "a limit below 1 core throttles the event loop"
    # Disk: all partitions' state on one worker, with room for RocksDB compaction (2x).
    (claim,) = worker["spec"]["volumeClaimTemplates"]
    storage = _quantity(claim["spec"]["resources"]["requests"]["storage"])
    assert storage >= 2 * DESIGN_LEADS * STATE_BYTES_PER_LEAD
    assert partitions % replicas == 0, "uneven partitions per worker"
    text = (K8S / "statefulset.yaml").read_text()
    for figure in ("626-731 MiB", "2.3 KB", "1,000 ev/s"):
        assert figure in text, f"statefulset.yaml should state the arithmetic ({figure})"


def _pdb_max_unavailable(resources: dict) -> int:
    return int(_one(resources, "PodDisruptionBudget")["spec"]["maxUnavailable"])


def test_pods_are_locked_down(resources: dict) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = int(re.search(r"useradd .*--uid (\d+)", dockerfile).group(1))
    for name, pod in _pod_specs(resources).items():
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == uid, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert security.get("fsGroup") == security["runAsGroup"], name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["enableServiceLinks"] is False, f"{name}: Service links inject LEADFLOW_<SVC>_PORT variables"
        assert ("ServiceAccount", pod["serviceAccountName"]) in resources, name
        container = _container(pod)
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, f"{name}: read-only root needs a writable /tmp"
        assert container["resources"]["requests"] and container["resources"]["limits"], name


def test_worker_and_job_run_the_image_like_the_dockerfile(resources: dict) -> None:
    pods = _pod_specs(resources)
    images = {_container(p)["image"] for p in pods.values()}
    assert len(images) == 1, f"worker and Job should run the same image: {images}"
    worker = _container(_worker(resources)["spec"]["template"]["spec"])
    assert worker["command"] == ["leadflow", "worker"]
    assert re.search(r'^CMD \["leadflow", "worker"\]', (ROOT / "Dockerfile").read_text(), re.M)
    # Both read the same settings (same Redis key prefix, topics).
    # The lead API's settings are the worker's alone (the Job serves nothing).
    envs = [
        {k: v for k, v in _environment(resources, _container(p)).items() if not k.startswith("LEADFLOW_API_")}
        for p in pods.values()
    ]
    assert all(e == envs[0] for e in envs), "worker and Job environments differ"


def test_roster_job_loads_the_configmap_roster(resources: dict) -> None:
    job = _one(resources, "Job")
    pod = job["spec"]["template"]["spec"]
    container = _container(pod)
    command = container["command"]
    assert command[:3] == ["leadflow", "roster", "load"]
    roster = PurePosixPath(command[-1])
    assert roster == PurePosixPath("/etc/leadflow/roster.yaml")
    (mount,) = [m for m in container["volumeMounts"] if PurePosixPath(m["mountPath"]) == roster.parent]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert roster.name in _config_map(resources, volume["configMap"]["name"])
    roster_cli = (ROOT / "leadflow" / "roster_cli.py").read_text()
    for flag in command[3:-1]:
        assert f'"{flag}"' in roster_cli, f"leadflow roster load has no {flag} option"
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    assert job["spec"]["backoffLimit"] >= 1 and job["spec"]["ttlSecondsAfterFinished"] > 0


def test_docs_name_existing_manifests() -> None:
    docs = (ROOT / "docs" / "deploying.md").read_text()
    assert "## Kubernetes" in docs and "## docker-compose" in docs
    paths = set(re.findall(r"deploy/kubernetes/[\w./-]+", docs))
    assert paths, "docs/deploying.md names no manifest"
    for path in paths:
        assert (ROOT / path.rstrip(".")).exists(), f"docs/deploying.md names {path}, which does not exist"
