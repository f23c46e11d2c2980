"""A private Prometheus server (Debian's ``prometheus`` package) scraping leadflow workers.

Used by the integration tests to prove the dashboards and alerts against a real Prometheus:
the same ``deploy/prometheus/alerts.yml`` the deployment loads, a 1 s scrape and rule
evaluation interval so a test sees data within seconds, and static targets (the workers'
``LEADFLOW_METRICS_PORT`` endpoints) under the job name the dashboards use (``leadflow``).

    prom = PrometheusServer(port, data_dir, scrape_targets=["127.0.0.1:9464"], tie_to_parent=True)
    prom.start()                        # waits until /-/ready
    prom.wait_for_targets(1)            # every target scraped successfully
    prom.query('sum(up{job="leadflow"})')
    prom.stop()

Built on ``ManagedProcess`` like Kafka and Redis: own process group, pid file, log file in
``data_dir``, stop() leaves nothing behind. ``--web.enable-lifecycle`` is on, so
``set_targets()`` rewrites the config and reloads it without a restart.

``grafana_to_promql()`` turns a Grafana panel expression into plain PromQL (template and
built-in variables substituted the way Grafana does when a dashboard is opened).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from agents.domain.durations import parse_duration_ms
from leadflow.devstack.base import ManagedProcess, launch_and_wait, port_is_free
from leadflow.devstack.exceptions import DevStackError, NotReadyError, PortInUseError, ToolMissingError
from streams.settings import REPO_ROOT

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
JOB = "leadflow"
DEFAULT_BINARY = Path("/usr/bin/prometheus")
ALERTS_FILE = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
_HTTP_TIMEOUT_S = 10.0


class PrometheusQueryError(DevStackError):
    """The Prometheus HTTP API refused a query (bad PromQL, timeout ...); names the query."""


def find_prometheus(binary: str | Path | None = None) -> str:
    """Path of the prometheus server binary, or a ToolMissingError saying what to install."""
    if binary is not None:
        if Path(binary).is_file():
            return str(binary)
        raise ToolMissingError(f"prometheus binary {binary} does not exist")
    found = shutil.which("prometheus") or (str(DEFAULT_BINARY) if DEFAULT_BINARY.is_file() else None)
    if found is None:
        raise ToolMissingError(
            "prometheus not found (neither on PATH nor at /usr/bin/prometheus). Install Debian's "
            "`prometheus` package: `sudo apt-get update && sudo apt-get install -y prometheus` "
            "(scripts/bootstrap.sh does this; it also stops the system service the package starts)."
        )
    return found


def render_prometheus_config(
    scrape_targets: Iterable[str],
    *,
    job: str = JOB,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    rule_files: Sequence[str | Path] = (ALERTS_FILE,),
) -> str:
    """prometheus.yml for static ``host:port`` targets under ``job``, loading ``rule_files``."""
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,  # may not exceed the interval
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(Path(f).resolve()) for f in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(scrape_targets)}],
            }
        ],
    }
    return "# written by leadflow.devstack.prometheus\n" + yaml.safe_dump(config, sort_keys=False)


class PrometheusServer:
    """One prometheus process on loopback; start() is idempotent and stop() leaves nothing behind.

    Either ``config_path`` (an existing prometheus.yml, used as it is) or ``scrape_targets``
    (``host:port`` of worker metrics endpoints; the config is written to ``data_dir``).
    """

    def __init__(
        self,
        port: int,
        data_dir: Path,
        config_path: Path | None = None,
        scrape_targets: Iterable[str] | None = None,
        tie_to_parent: bool = False,
        *,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        rule_files: Sequence[str | Path] = (ALERTS_FILE,),
        binary: str | Path | None = None,
    ) -> None:
        if (config_path is None) == (scrape_targets is None):
            raise ValueError("pass either config_path or scrape_targets")
        self.port = port
        self.data_dir = Path(data_dir)
        self.binary = binary
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.rule_files = tuple(rule_files)
        self.scrape_targets = list(scrape_targets) if scrape_targets is not None else None
        self.config_path = Path(config_path) if config_path is not None else self.data_dir / "prometheus.yml"
        self._writes_config = config_path is None
        self.started_at: float | None = None  # wall clock, once ready
        self.process = ManagedProcess(
            "prometheus",
            argv=[],  # set by launch(): needs the resolved binary
            log_file=self.data_dir / "prometheus.log",
            pid_file=self.data_dir / "prometheus.pid",
            cwd=self.data_dir,
            tie_to_parent=tie_to_parent,
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> float:
        """Start (unless running) and wait until ``/-/ready``; returns seconds taken."""
        taken = launch_and_wait(self, timeout)
        self.started_at = time.time()
        return taken

    def launch(self) -> bool:
        """Write the config (unless given) and spawn prometheus; False if ours already runs."""
        if self.process.running_pid() is not None:
            log.info("prometheus already running on %s", self.url)
            return False
        binary = find_prometheus(self.binary)
        if not port_is_free(self.port):
            raise PortInUseError(
                f"port {HOST}:{self.port} is taken by another process, so Prometheus cannot "
                f"start. Find it with `ss -ltnp 'sport = :{self.port}'` or choose another port."
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._writes_config:
            self._write_config()
        self.process.argv = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
            f"--web.listen-address={HOST}:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d",
        ]
        self.process.start()
        return True

    def wait_ready(self, timeout: float = 30.0) -> float:
        return self.process.wait_ready(self.is_ready, timeout, interval=0.1, what=f"ready on {self.url}/-/ready")

    def is_ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1.0) as response:
            return response.status == 200

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM (Prometheus shuts down cleanly), SIGKILL of the group after ``timeout``."""
        return self.process.stop(timeout)

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines)

    def _write_config(self) -> None:
        assert self.scrape_targets is not None
        text = render_prometheus_config(
            self.scrape_targets,
            scrape_interval=self.scrape_interval,
            evaluation_interval=self.evaluation_interval,
            rule_files=self.rule_files,
        )
        tmp = self.config_path.with_name(self.config_path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_path)

    def set_targets(self, scrape_targets: Iterable[str]) -> None:
        """Replace the scrape targets and reload the running server (lifecycle API)."""
        if not self._writes_config:
            raise ValueError("this server runs a given config file; edit it and call reload()")
        self.scrape_targets = list(scrape_targets)
        self._write_config()
        self.reload()

    def reload(self) -> None:
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT_S):
                pass
        except urllib.error.HTTPError as exc:
            raise DevStackError(
                f"prometheus refused to reload {self.config_path}: {exc.read().decode(errors='replace')}"
            ) from None

    # --- HTTP API ------------------------------------------------------------------------------

    def api(self, path: str, **params: object) -> Any:
        """GET ``/api/v1/<path>``; returns ``data`` or raises PrometheusQueryError."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=_HTTP_TIMEOUT_S) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 400/422: bad query; the body says why
            try:
                body = json.loads(exc.read())
            except ValueError:
                raise PrometheusQueryError(f"{path} {params}: HTTP {exc.code}") from None
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; the result as a list of ``{"metric": {...}, "value": [t, "v"]}``
        (a scalar or string result becomes one such element without labels)."""
        data = self.api("query", query=expr, time=at)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """Range query; a list of ``{"metric": {...}, "values": [[t, "v"], ...]}``."""
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets", state="active")["activeTargets"]

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule, each with its group name under ``"group"``."""
        return [{**rule, "group": group["name"]} for group in self.api("rules")["groups"] for rule in group["rules"]]

    def wait_for_targets(self, count: int, timeout: float = 30.0, *, job: str = JOB) -> list[dict[str, Any]]:
        """Wait until ``count`` targets of ``job`` have been scraped successfully."""
        deadline = time.monotonic() + timeout
        targets: list[dict[str, Any]] = []
        while True:
            if self.process.running_pid() is None:
                raise DevStackError(f"prometheus exited. Last lines of its log:\n{self.log_tail()}")
            targets = [t for t in self.targets() if t["labels"].get("job") == job]
            if sum(t["health"] == "up" for t in targets) >= count:
                return targets
            if time.monotonic() >= deadline:
                state = (
                    ", ".join(f"{t['scrapeUrl']}: {t['health']} {t.get('lastError') or ''}".strip() for t in targets)
                    or "no targets"
                )
                raise NotReadyError(
                    f"prometheus did not scrape {count} {job} target(s) within {timeout:.0f}s ({state})"
                )
            time.sleep(0.2)


# --- Alert expressions -> what they measure ------------------------------------------------

_BINARY_SET_OPS = re.compile(r"(and|or|unless)\b")
_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)\s*(?:bool\s+)?([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?)\s*$", re.I)


def _top_level(expr: str) -> Iterator[tuple[int, str]]:
    """(index, char) of the characters of ``expr`` outside (), {}, [] and string literals."""
    depth, quote, escaped = 0, None, False
    for i, ch in enumerate(expr):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            yield i, ch


def _strip_parens(expr: str) -> str:
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, ch in enumerate(expr):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr  # "(a) / (b)": the outer pair does not wrap everything
        expr = expr[1:-1].strip()
    return expr


def measured_exprs(expr: str) -> list[str]:
    """What an alert condition measures, as queries that return data whenever the inputs exist.

    Each operand of a top-level ``and`` / ``or`` / ``unless`` (``on(...)`` / ``ignoring(...)``
    dropped), without its comparison against a number (``x > 0.05`` -> ``x``; ``bool`` too),
    and ``absent(x)`` -> ``x``. Enclosing parentheses are removed. Anything else is returned
    as it is: ``sum by (reason) (increase(m[15m])) > 0`` -> ``[sum by (reason) (increase(m[15m]))]``.
    """
    expr = _strip_parens(expr)
    cuts = []
    for i, _ch in _top_level(expr):
        op = _BINARY_SET_OPS.match(expr, i)
        if op and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] == "_")):
            cuts.append((i, op.end()))
    if cuts:
        parts, start = [], 0
        for begin, end in cuts:
            parts.append(expr[start:begin])
            start = end
            modifier = re.match(r"\s*(?:on|ignoring)\s*\([^)]*\)", expr[start:])
            if modifier:
                start += modifier.end()
        parts.append(expr[start:])
        return [e for part in parts for e in measured_exprs(part)]
    outside = {i for i, _ in _top_level(expr)}
    top = "".join(ch if i in outside else " " for i, ch in enumerate(expr))
    match = _COMPARISON.search(top)
    if match:
        return measured_exprs(expr[: match.start()])
    absent = re.fullmatch(r"absent\s*\((.*)\)", expr, re.S)
    if absent:
        return measured_exprs(absent.group(1))
    return [expr]


# --- Grafana expressions -> PromQL ----------------------------------------------------------

# $var, ${var}, ${var:format}, [[var]] (the last is deprecated but still understood by Grafana).
GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


def grafana_to_promql(
    expr: str,
    variables: Mapping[str, str] | None = None,
    *,
    interval: str = "1s",
    rate_interval: str = "10s",
    range_: str = "24h",
) -> str:
    """Substitute Grafana's variables in a panel expression.

    ``variables`` maps a dashboard variable to the text it stands for; a multi-value variable
    with "All" selected stands for its ``allValue`` (``.*``, so it must be used with ``=~``).
    Built-ins: ``$__interval`` (the step), ``$__rate_interval`` (Grafana: max(step + scrape
    interval, 4 x scrape interval)), ``$__range`` (the dashboard's time range), their ``_ms``
    / ``_s`` forms. Any other variable raises KeyError: the dashboard uses a variable it does
    not define.
    """
    values = dict(variables or {})
    seconds = {"__interval": interval, "__rate_interval": rate_interval, "__range": range_}

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in seconds:
            return seconds[name]
        if name in ("__interval_ms", "__range_ms", "__range_s"):
            base_ms = parse_duration_ms(seconds[name.rsplit("_", 1)[0]])
            return str(base_ms) if name.endswith("_ms") else str(base_ms // 1000)
        if name in values:
            return values[name]
        raise KeyError(f"variable ${name} is not defined (known: {sorted(values)})")

    return GRAFANA_VARIABLE.sub(sub, expr)
