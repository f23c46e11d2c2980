"""Prometheus metrics of a leadflow worker.

One ``Metrics`` object per worker process, built on its own ``CollectorRegistry`` (nothing is
registered in prometheus_client's global registry, so tests and several apps in one process
never clash). Several workers run at once and each serves its own ``/metrics``; dashboards and
alerts aggregate across them with ``sum()`` / ``sum by (le, ...)``.

Labels are bounded by construction. Every labelled metric is wrapped in a ``BoundedMetric``
whose ``labels()`` passes each value through a ``LabelGuard``:

* closed vocabularies (event kinds, encodings, dead-letter reason codes, priorities, CRM
  statuses, dispositions, lifecycle stages, score bands) map anything else to ``"other"``;
* configuration-defined names (attribution source, team, routing rule, fallback reason,
  data-quality issue code, pipeline stage, topic) must look like identifiers (no ``@``, no
  spaces, at most 64 characters) and each label keeps at most a fixed number of distinct
  values; beyond that, values map to ``"other"``.

So an email, a lead id or free text can never explode a time series count, whatever a caller
passes. ``None`` becomes ``"none"``, booleans ``"true"``/``"false"``, integers their decimal
form. Rejected values are never logged (they may be personal data); the first rejection per
label is logged once, naming the metric and the label.

Callers use the prometheus_client API they know::

    metrics.events_in.labels(kind="form_submitted", encoding="avro").inc()
    metrics.event_to_score_seconds.labels(kind=event.kind).observe(elapsed_seconds(t0, t1))
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    make_wsgi_app,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from agents.domain.events import CRM_STATUSES, DISPOSITIONS, EVENT_KINDS, STAGES

log = logging.getLogger(__name__)

NAMESPACE = "leadflow"
OTHER = "other"
NONE = "none"

# --- Vocabularies (closed label sets) -------------------------------------------------------
ENCODINGS = ("avro", "json")
# docs/contracts.md, "Dead-letter reason codes".
DEAD_LETTER_REASONS = (
    "too_large", "unknown_encoding", "undecodable", "unknown_schema_id", "schema_invalid",
    "missing_field", "invalid_value", "invalid_email", "unknown_kind",
    "timestamp_out_of_range", "processing_error",
)
PRIORITIES = ("P1", "P2", "P3")
SCORE_BANDS = ("<50", "50-60", "60-70", "70-80", "80-90", "90+")
BOOLEANS = ("true", "false")
# Lower edges of SCORE_BANDS[1:].
_BAND_EDGES = (50.0, 60.0, 70.0, 80.0, 90.0)
# The CRM status whose leadflow_dispositions_total series carry a rejection reason.
REJECTED = "rejected"
# Where duplicates are skipped (label ``stage``): scoring's dedup window, and routing's
# redelivery checks (agents/routing/redelivery.py: duplicate -> "route", stale, same_mql).
DUPLICATE_STAGES = ("score", "route", "route_stale", "route_same_mql", "reassign_duplicate", "reassign_stale")

# --- Histogram buckets (seconds) ------------------------------------------------------------
# Input event (broker timestamp) -> score emitted: 5 ms .. 60 s.
EVENT_TO_SCORE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Input event -> assignment emitted; the business target is "assigned within 2 minutes".
EVENT_TO_ASSIGNMENT_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)
_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
# Assignment -> first touch, up to 7 days. Edges include the default SLAs (10 min P1, 48 h P2,
# 5 days P3) and the business targets (1 h hot, 24 h MQL), so the dashboards' "within X" ratios
# read exact bucket counts.
SPEED_TO_LEAD_BUCKETS = (
    30.0, _MINUTE, 2 * _MINUTE, 5 * _MINUTE, 10 * _MINUTE, 15 * _MINUTE, 30 * _MINUTE,
    _HOUR, 2 * _HOUR, 4 * _HOUR, 8 * _HOUR, 24 * _HOUR, 48 * _HOUR, 72 * _HOUR,
    5 * _DAY, 7 * _DAY,
)

# Label names that must never appear on any metric (personal data / unbounded ids).
FORBIDDEN_LABELS = frozenset({
    "email", "lead_id", "event_id", "visitor_id", "rep_id", "owner_id", "account_id",
    "account_domain", "company", "name", "reason_text", "detail", "url",
})

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,63}")
_DIGITS = re.compile(r"[0-9]{1,4}")


# --- Label guards ---------------------------------------------------------------------------


def _as_label_text(value: object) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class LabelGuard:
    """Maps an arbitrary value to a bounded label value.

    ``allowed`` given: a closed vocabulary, anything outside it becomes ``"other"``.
    Otherwise ``pattern`` must match the whole value and at most ``max_values`` distinct values
    are admitted (first come, first kept); the rest become ``"other"``.
    """

    def __init__(
        self,
        name: str,
        *,
        allowed: Iterable[str] | None = None,
        pattern: re.Pattern[str] = _IDENTIFIER,
        max_values: int = 50,
        nullable: bool = True,
        convert: Callable[[object], object] | None = None,
    ) -> None:
        self.name = name
        self.allowed = (
            (frozenset(allowed) | ({NONE} if nullable else frozenset())) if allowed is not None else None
        )
        self.convert = convert
        self.pattern = pattern
        self.max_values = max_values
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._warned = False
        self.metric_name = "?"  # set by BoundedMetric

    def __call__(self, value: object) -> str:
        text = _as_label_text(self.convert(value) if self.convert else value)
        if self.allowed is not None:
            return text if text in self.allowed else self._reject("not in its vocabulary")
        if text == NONE or text in self._seen:
            return text
        if not self.pattern.fullmatch(text):
            return self._reject("not an identifier")
        with self._lock:
            if text in self._seen:
                return text
            if len(self._seen) >= self.max_values:
                return self._reject(f"more than {self.max_values} distinct values")
            self._seen.add(text)
        return text

    def _reject(self, why: str) -> str:
        if not self._warned:
            self._warned = True
            # Never log the value itself: it may be an email or other personal data.
            log.warning(
                "metric %s: a value of label %r was %s; recorded as %r (logged once)",
                self.metric_name, self.name, why, OTHER,
            )
        return OTHER


def _closed(name: str, allowed: Iterable[str], *, nullable: bool = False) -> LabelGuard:
    return LabelGuard(name, allowed=allowed, nullable=nullable)


def _ident(name: str, *, max_values: int = 50) -> LabelGuard:
    return LabelGuard(name, max_values=max_values)


def _number(name: str, *, max_values: int) -> LabelGuard:
    return LabelGuard(name, pattern=_DIGITS, max_values=max_values)


class BoundedMetric:
    """A labelled prometheus_client metric whose ``labels()`` bounds every value.

    Anything else (``collect``, ``clear``, ``_name`` ...) is delegated to the wrapped metric,
    available as ``.metric``.
    """

    __slots__ = ("metric", "label_names", "_guards")

    def __init__(self, metric: Any, guards: Iterable[LabelGuard]) -> None:
        self.metric = metric
        self._guards = {g.name: g for g in guards}
        self.label_names: tuple[str, ...] = tuple(metric._labelnames)
        if set(self._guards) != set(self.label_names):
            raise ValueError(f"guards {sorted(self._guards)} != labels {self.label_names}")
        for guard in self._guards.values():
            guard.metric_name = metric._name

    def _bounded(self, values: tuple[object, ...], kwargs: Mapping[str, object]) -> dict[str, str]:
        if values and kwargs:
            raise ValueError("pass label values either positionally or by name, not both")
        if values:
            if len(values) != len(self.label_names):
                raise ValueError(f"{self.metric._name}: expected labels {self.label_names}")
            kwargs = dict(zip(self.label_names, values))
        if set(kwargs) != set(self.label_names):
            raise ValueError(
                f"{self.metric._name}: expected labels {self.label_names}, got {tuple(sorted(kwargs))}"
            )
        return {name: self._guards[name](kwargs[name]) for name in self.label_names}

    def bounded_values(self, *values: object, **kwargs: object) -> tuple[str, ...]:
        """The label values ``labels()`` would record, in label order."""
        bounded = self._bounded(values, kwargs)
        return tuple(bounded[n] for n in self.label_names)

    def labels(self, *values: object, **kwargs: object) -> Any:
        return self.metric.labels(*self.bounded_values(*values, **kwargs))

    def remove(self, *values: object, **kwargs: object) -> None:
        with contextlib.suppress(KeyError):
            self.metric.remove(*self.bounded_values(*values, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.metric, name)

    def __repr__(self) -> str:
        return f"BoundedMetric({self.metric!r})"


# --- Helpers ----------------------------------------------------------------------------------


def score_band(score: float) -> str:
    """Bucket a score for the ``score_band`` label: ``<50``, ``50-60`` ... ``80-90``, ``90+``.

    Lower edges are inclusive (60 -> ``60-70``). NaN and -inf fall in ``<50``, +inf in ``90+``.
    """
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return SCORE_BANDS[0]
    band = 0
    for edge in _BAND_EDGES:
        if score >= edge:
            band += 1
        else:
            break
    return SCORE_BANDS[band]


def _score_band_label(value: object) -> object:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return score_band(float(value))
    return value


def mql_label_pairs(lowest_score: float, fast_track_above: float) -> tuple[tuple[str, str], ...]:
    """The (score_band, fast_track) label pairs an MQL can carry when its score at the crossing
    is above ``lowest_score`` (the MQL threshold) and it is fast-tracked above
    ``fast_track_above``. Bands are [lower edge, next edge)."""
    lows = (-math.inf, *_BAND_EDGES)
    highs = (*_BAND_EDGES, math.inf)
    pairs: list[tuple[str, str]] = []
    for band, low, high in zip(SCORE_BANDS, lows, highs):
        if high <= lowest_score:
            continue  # every score in the band is at or below the threshold
        if low <= fast_track_above:
            pairs.append((band, "false"))
        if high > fast_track_above:
            pairs.append((band, "true"))
    return tuple(pairs)


def elapsed_seconds(start_ms: int | float | None, end_ms: int | float) -> float | None:
    """Seconds from ``start_ms`` to ``end_ms`` (epoch ms), clamped at 0 for clock skew;
    None if there is no start."""
    if start_ms is None:
        return None
    return max(0.0, (float(end_ms) - float(start_ms)) / 1000.0)


def _package_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("leadflow")
    except (ImportError, PackageNotFoundError):  # pragma: no cover - not installed
        return "unknown"


# --- Metrics ----------------------------------------------------------------------------------


class Metrics:
    """All metrics of one worker, registered on ``registry`` (never the global registry)."""

    def __init__(self, registry: CollectorRegistry, *, process_metrics: bool = False) -> None:
        if registry is None:
            raise ValueError("Metrics needs its own CollectorRegistry (use Metrics.create())")
        self.registry = registry
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._lag_labels: set[tuple[str, ...]] = set()
        r = registry

        def counter(name: str, doc: str, *guards: LabelGuard) -> BoundedMetric:
            metric = Counter(name, doc, [g.name for g in guards], namespace=NAMESPACE, registry=r)
            return BoundedMetric(metric, guards)

        def gauge(name: str, doc: str, *guards: LabelGuard) -> BoundedMetric:
            metric = Gauge(name, doc, [g.name for g in guards], namespace=NAMESPACE, registry=r)
            return BoundedMetric(metric, guards)

        def histogram(name: str, doc: str, buckets: tuple[float, ...], *guards: LabelGuard) -> BoundedMetric:
            metric = Histogram(
                name, doc, [g.name for g in guards], namespace=NAMESPACE, registry=r,
                buckets=buckets,
            )
            return BoundedMetric(metric, guards)

        kinds = lambda: _closed("kind", EVENT_KINDS)  # noqa: E731
        priorities = lambda: _closed("priority", PRIORITIES)  # noqa: E731

        # --- Capture ---------------------------------------------------------------------
        self.events_in = counter(
            "events_in_total", "Input events accepted by capture, by kind and wire encoding.",
            kinds(), _closed("encoding", ENCODINGS),
        )
        self.dead_letters = counter(
            "dead_letters_total", "Input records sent to the dead-letter topic, by reason code.",
            _closed("reason", DEAD_LETTER_REASONS),
        )
        self.dead_letter_delivery_failures = Counter(
            "dead_letter_delivery_failures_total",
            "Dead-letter sends the broker did not acknowledge; each is retried (input partition blocked, "
            "offset not committed) until delivered.",
            namespace=NAMESPACE, registry=r,
        )
        self.duplicates_skipped = counter(
            "duplicates_skipped_total",
            "Redelivered or duplicate events skipped, by the pipeline stage that skipped them.",
            _ident("stage", max_values=20),
        )
        self.data_quality_issues = counter(
            "data_quality_issues_total", "Data-quality issues found, by issue code.",
            _ident("issue_code", max_values=50),
        )

        # --- Scoring / MQL ---------------------------------------------------------------
        self.event_to_score_seconds = histogram(
            "event_to_score_seconds",
            "Latency from an input event's broker timestamp to its score being emitted.",
            EVENT_TO_SCORE_BUCKETS, kinds(),
        )
        self.leads_scored = counter(
            "leads_scored_total", "Scores emitted, by the lead's lifecycle stage after scoring.",
            _closed("stage", STAGES),
        )
        # score_band also accepts the numeric score itself.
        band = LabelGuard("score_band", allowed=SCORE_BANDS, nullable=False, convert=_score_band_label)
        self.mqls = counter(
            "mqls_total", "Leads crossing the MQL threshold, by attribution source and score band.",
            _ident("source", max_values=30), band, _closed("fast_track", BOOLEANS),
        )

        # --- Routing ---------------------------------------------------------------------
        self.event_to_assignment_seconds = histogram(
            "event_to_assignment_seconds",
            "Latency from the input event that made a lead an MQL to its assignment being emitted.",
            EVENT_TO_ASSIGNMENT_BUCKETS, priorities(),
        )
        self.assignments = counter(
            "assignments_total", "Assignments emitted, by routing rule and priority.",
            _ident("rule", max_values=50), priorities(),
        )
        self.fallback_assignments = counter(
            "fallback_assignments_total",
            "Assignments that went to a named fallback owner (no rule matched, owner inactive...).",
            _ident("reason", max_values=20),
        )
        self.pending_assignments = Gauge(
            "pending_assignments",
            "MQLs parked on this worker's partitions because the roster in Redis is unusable "
            "(roster_error: pending in routing.yaml); routed once it is readable again.",
            namespace=NAMESPACE, registry=r,
        )

        # --- SLA / first touch -----------------------------------------------------------
        self.speed_to_lead_seconds = histogram(
            "speed_to_lead_seconds", "Time from assignment to the first sales touch.",
            SPEED_TO_LEAD_BUCKETS, priorities(), _ident("team", max_values=50),
        )
        self.sla_breaches = counter(
            "sla_breaches_total",
            "SLA breaches; tier 0 = first-touch SLA, 1.. = escalation tiers.",
            priorities(), _number("tier", max_values=10),
        )
        self.sla_open_clocks = gauge(
            "sla_open_clocks", "SLA clocks running on this worker's partitions.", priorities(),
        )

        # --- Dispositions ----------------------------------------------------------------
        self.dispositions = counter(
            "dispositions_total", "CRM status changes applied, by status and disposition.",
            _closed("status", CRM_STATUSES), _closed("disposition", DISPOSITIONS, nullable=True),
        )

        # --- Infrastructure ----------------------------------------------------------------
        self.redis_waiting = Gauge(
            "redis_waiting", "1 while the worker is waiting for Redis to become reachable.",
            namespace=NAMESPACE, registry=r,
        )
        self.redis_retries = Counter(
            "redis_retries_total", "Redis operations retried after a connection error.",
            namespace=NAMESPACE, registry=r,
        )
        self.consumer_lag = gauge(
            "consumer_lag", "Records behind the high watermark, per assigned topic partition.",
            _ident("topic", max_values=64), _number("partition", max_values=1024),
        )
        self.worker_info = Info(
            "worker", "Version and Faust app id of this worker.", namespace=NAMESPACE, registry=r,
        )
        self.worker_ready = Gauge(
            "worker_ready",
            "1 while /readyz says ready: consumer group joined, table recovery done, Redis reachable.",
            namespace=NAMESPACE, registry=r,
        )
        self.roster_loaded = Gauge(
            "roster_loaded",
            "1 if Redis holds a sales roster; 0: every MQL goes to the fallback owner.",
            namespace=NAMESPACE, registry=r,
        )

        self._preinitialise()
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

    def _preinitialise(self) -> None:
        """Create the small closed label sets at zero, so that rate()/increase() see the first
        increment (a series born at 1 has no earlier sample to compare with)."""
        for kind in EVENT_KINDS:
            for encoding in ENCODINGS:
                self.events_in.labels(kind=kind, encoding=encoding)
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason=reason)
        for kind in EVENT_KINDS:
            self.event_to_score_seconds.labels(kind=kind)
        for stage in STAGES:
            self.leads_scored.labels(stage=stage)
        for priority in PRIORITIES:
            self.sla_breaches.labels(priority=priority, tier=0)
            self.sla_open_clocks.labels(priority=priority).set(0)
            self.event_to_assignment_seconds.labels(priority=priority)
        self.redis_waiting.set(0)
        self.pending_assignments.set(0)
        self.worker_ready.set(0)
        self.roster_loaded.set(0)

    def start_at_zero(
        self,
        *,
        statuses: Iterable[str] = (),
        dispositions: Iterable[str] = (),
        issue_codes: Iterable[str] = (),
        sources: Iterable[str] = (),
        mql_bands: Iterable[tuple[str, str]] = (),
        duplicate_stages: Iterable[str] = (),
    ) -> None:
        """Create the label values the configuration knows at zero (``configured_label_values``),
        so the dashboards' ratios and ``increase()`` count the first disposition, data-quality
        issue or MQL of each kind after a worker starts, and a ratio over a reason that has not
        happened yet reads 0 instead of no data.

        ``statuses``: CRM statuses counted by ``dispositions_total`` (disposition ``none``);
        ``dispositions``: rejection reasons (status ``rejected``); ``sources`` x ``mql_bands``
        ((score_band, fast_track) pairs): ``mqls_total``. Values pass the label guards as usual.
        """
        for status in statuses:
            self.dispositions.labels(status=status, disposition=None)
        for disposition in dispositions:
            self.dispositions.labels(status=REJECTED, disposition=disposition)
        for code in issue_codes:
            self.data_quality_issues.labels(issue_code=code)
        bands = tuple(mql_bands)
        for source in sources:
            for band, fast_track in bands:
                self.mqls.labels(source=source, score_band=band, fast_track=fast_track)
        for stage in duplicate_stages:
            self.duplicates_skipped.labels(stage=stage)

    @classmethod
    def create(cls, *, process_metrics: bool = True) -> "Metrics":
        """Metrics on a fresh registry (with process/platform/GC collectors by default)."""
        return cls(CollectorRegistry(auto_describe=True), process_metrics=process_metrics)

    # --- Convenience ------------------------------------------------------------------------

    def set_worker_info(self, *, app_id: str, version: str | None = None) -> None:
        self.worker_info.info({"version": version or _package_version(), "app_id": app_id})

    def set_consumer_lag(self, lags: Mapping[tuple[str, int], int | float]) -> None:
        """Replace the lag gauge with the partitions this worker holds now (partitions lost in
        a rebalance disappear instead of reporting a frozen value)."""
        gauge = self.consumer_lag
        current: dict[tuple[str, ...], float] = {}
        for (topic, partition), lag in lags.items():
            bounded = gauge.bounded_values(topic=topic, partition=partition)
            current[bounded] = current.get(bounded, 0) + max(0, lag)
        for bounded, lag in current.items():
            gauge.metric.labels(*bounded).set(lag)
        # Set first, then drop the stale ones: a scrape in between never sees an empty gauge.
        for bounded in self._lag_labels - current.keys():
            with contextlib.suppress(KeyError):
                gauge.metric.remove(*bounded)
        self._lag_labels = set(current)

    @contextlib.contextmanager
    def waiting_for_redis(self) -> Iterator[None]:
        """``leadflow_redis_waiting`` is 1 inside the block."""
        self.redis_waiting.set(1)
        try:
            yield
        finally:
            self.redis_waiting.set(0)

    def sample_names(self) -> frozenset[str]:
        """Every sample name this registry can expose (``_total``, ``_bucket``, ``_info``...)."""
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created", ""),
            "info": ("_info",),
            "gauge": ("",),
        }
        names: set[str] = set()
        for family in self.registry.collect():
            for suffix in suffixes.get(family.type, ("",)):
                names.add(family.name + suffix)
        return frozenset(names)

    # --- HTTP endpoint ----------------------------------------------------------------------

    def serve(self, port: int, addr: str = "127.0.0.1", health: Any = None) -> Any:
        """Serve ``/metrics`` (and ``/livez``, ``/readyz`` from ``health``, a
        :class:`streams.health.Health`) on ``addr:port`` in a daemon thread; other paths are
        404. Port 0 means do not serve (returns None).

        Returns the WSGI server (``server.server_port`` is the bound port)."""
        from streams.health import make_server, routes

        if not port:
            return None
        if self._server is not None:
            raise RuntimeError("metrics endpoint already served on port "
                               f"{self._server.server_port}")
        self._server = make_server(addr, port, routes(make_wsgi_app(self.registry), health))
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True,
        )
        self._server_thread.start()
        host = self._server.server_address[0]
        shown = f"[{host}]" if ":" in host else host
        paths = "/metrics, /livez, /readyz" if health is not None else "/metrics"
        log.info("serving %s on http://%s:%d (bound to %s)", paths, shown, self._server.server_port,
                 "all interfaces" if host in ("0.0.0.0", "::") else host)
        return self._server

    def stop(self) -> None:
        """Stop the endpoint started by ``serve`` (no-op if none)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)
            self._server_thread = None
