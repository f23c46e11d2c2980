"""Prometheus metrics of a leadflow worker.

One ``Metrics`` object per worker process, built on its own ``CollectorRegistry`` (nothing is
registered in prometheus_client's global registry, so tests and several apps in one process
never clash). Several workers run at once and each serves its own ``/metrics``; dashboards and
alerts aggregate across them with ``sum()`` / ``sum by (le, ...)``.

Labels are bounded by construction. Every labelled metric is wrapped in a ``BoundedMetric``
whose ``labels()`` passes each value through a ``LabelGuard``:

* closed vocabularies (event kinds, encodings, dead-letter reason codes, priorities, CRM
  statuses, dispositions, lifecycle stages, score bands) map anything else to ``"other"``;
  the application's own (:class:`~streams.metric_labels.Vocabulary`: kinds, stages, statuses,
  dispositions, reason codes) are handed in by the composition root, the runtime knows none;
* configuration-defined names (attribution source, team, routing rule, fallback reason,
  data-quality issue code, pipeline stage, topic) must look like identifiers (no ``@``, no
  spaces, at most 64 characters) and each label keeps at most a fixed number of distinct
  values; beyond that, values map to ``"other"``.

So an email, a lead id or free text can never explode a time series count, whatever a caller
passes. ``None`` becomes ``"none"``, booleans ``"true"``/``"false"``, integers their decimal
form. Rejected values are never logged (they may be personal data); the first rejection per
label is logged once, naming the metric and the label.

Label guards and score bands live in :mod:`streams.metric_labels`, the namespace, the runtime's
own label sets and the histogram buckets in :mod:`streams.metric_schema`, the HTTP endpoint in
:mod:`streams.metrics_endpoint`. Callers use the prometheus_client API they know::

    metrics.events_in.labels(kind="form_submitted", encoding="avro").inc()
    metrics.event_to_score_seconds.labels(kind=event.kind).observe(elapsed_seconds(t0, t1))
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from streams.metric_labels import (
    SCORE_BANDS,
    BoundedMetric,
    LabelGuard,
    Vocabulary,
    closed_guard,
    ident_guard,
    number_guard,
    score_band_guard,
)
from streams.metric_schema import (
    API_ENDPOINTS,
    API_REQUEST_BUCKETS,
    API_SERVED,
    API_STATUSES,
    BOOLEANS,
    ENCODINGS,
    EVENT_TO_ASSIGNMENT_BUCKETS,
    EVENT_TO_SCORE_BUCKETS,
    IN_PROCESS_ROUTING_OUTCOMES,
    NAMESPACE,
    PRIORITIES,
    REJECTED,
    SHADOW_DIRECTIONS,
    SPEED_TO_LEAD_BUCKETS,
)
from streams.metrics_endpoint import MetricsEndpoint

log = logging.getLogger(__name__)


def _package_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("leadflow")
    except (ImportError, PackageNotFoundError):  # pragma: no cover - not installed
        return "unknown"


# --- Metrics ----------------------------------------------------------------------------------


class Metrics:
    """All metrics of one worker, registered on ``registry`` (never the global registry)."""

    def __init__(self, registry: CollectorRegistry, vocabulary: Vocabulary, *, process_metrics: bool = False) -> None:
        if registry is None:
            raise ValueError("Metrics needs its own CollectorRegistry (use Metrics.create())")
        if not isinstance(vocabulary, Vocabulary):
            raise TypeError("Metrics needs the application's Vocabulary (leadflow.compose.METRIC_VOCABULARY)")
        self.registry = registry
        self.vocabulary = vocab = vocabulary
        self._endpoint = MetricsEndpoint(registry)
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
                name,
                doc,
                [g.name for g in guards],
                namespace=NAMESPACE,
                registry=r,
                buckets=buckets,
            )
            return BoundedMetric(metric, guards)

        def kinds() -> LabelGuard:
            return closed_guard("kind", vocab.event_kinds)

        def priorities() -> LabelGuard:
            return closed_guard("priority", PRIORITIES)

        # --- Capture ---------------------------------------------------------------------
        self.events_in = counter(
            "events_in_total",
            "Input events accepted by capture, by kind and wire encoding.",
            kinds(),
            closed_guard("encoding", ENCODINGS),
        )
        self.dead_letters = counter(
            "dead_letters_total",
            "Input records sent to the dead-letter topic, by reason code.",
            closed_guard("reason", vocab.dead_letter_reasons),
        )
        self.dead_letter_delivery_failures = Counter(
            "dead_letter_delivery_failures_total",
            "Dead-letter sends the broker did not acknowledge; each is retried (input partition blocked, "
            "offset not committed) until delivered.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.hand_offs = Counter(
            "events_handed_off_total",
            "Events delivered in-process to the next topic's consumers instead of a round trip "
            "through Kafka (inputs keyed by lead id; docs/contracts.md, Keys).",
            namespace=NAMESPACE,
            registry=r,
        )
        self.duplicates_skipped = counter(
            "duplicates_skipped_total",
            "Redelivered or duplicate events skipped, by the pipeline stage that skipped them.",
            ident_guard("stage", max_values=20),
        )
        self.data_quality_issues = counter(
            "data_quality_issues_total",
            "Data-quality issues found, by issue code.",
            ident_guard("issue_code", max_values=50),
        )

        # --- Scoring / MQL ---------------------------------------------------------------
        self.event_to_score_seconds = histogram(
            "event_to_score_seconds",
            "Latency from an input event's broker timestamp to its score being emitted.",
            EVENT_TO_SCORE_BUCKETS,
            kinds(),
        )
        self.leads_scored = counter(
            "leads_scored_total",
            "Scores emitted, by the lead's lifecycle stage after scoring.",
            closed_guard("stage", vocab.stages),
        )
        # score_band also accepts the numeric score itself.
        band = score_band_guard()
        self.mqls = counter(
            "mqls_total",
            "Leads crossing the MQL threshold, by attribution source and score band.",
            ident_guard("source", max_values=30),
            band,
            closed_guard("fast_track", BOOLEANS),
        )
        self.shadow_decisions = counter(
            "shadow_decisions",
            "MQL decisions where the shadow (candidate) model and the live one disagree: gained = the "
            "candidate would have made the MQL, lost = only the live model made it; by first-touch source "
            "and the crossing score's band.",
            closed_guard("direction", SHADOW_DIRECTIONS),
            ident_guard("source", max_values=30),
            score_band_guard(),
        )

        # --- Routing ---------------------------------------------------------------------
        self.event_to_assignment_seconds = histogram(
            "event_to_assignment_seconds",
            "Latency from the input event that made a lead an MQL to its assignment being emitted.",
            EVENT_TO_ASSIGNMENT_BUCKETS,
            priorities(),
        )
        self.assignments = counter(
            "assignments_total",
            "Assignments emitted, by routing rule and priority.",
            ident_guard("rule", max_values=50),
            priorities(),
        )
        self.fallback_assignments = counter(
            "fallback_assignments_total",
            "Assignments that went to a named fallback owner (no rule matched, owner inactive...).",
            ident_guard("reason", max_values=20),
        )
        self.mqls_routed_in_process = counter(
            "mqls_routed_in_process_total",
            "MQLs routed in the scoring agent that emitted them (routed), or left to the routing "
            "agent's read of the MQL topic (deferred: Redis slow or away, the lead busy, an error).",
            closed_guard("outcome", IN_PROCESS_ROUTING_OUTCOMES),
        )
        self.pending_assignments = Gauge(
            "pending_assignments",
            "MQLs parked on this worker's partitions because the roster in Redis is unusable "
            "(roster_error: pending in routing.yaml); routed once it is readable again.",
            namespace=NAMESPACE,
            registry=r,
        )

        # --- SLA / first touch -----------------------------------------------------------
        self.speed_to_lead_seconds = histogram(
            "speed_to_lead_seconds",
            "Time from assignment to the first sales touch.",
            SPEED_TO_LEAD_BUCKETS,
            priorities(),
            ident_guard("team", max_values=50),
        )
        self.sla_breaches = counter(
            "sla_breaches_total",
            "SLA breaches; tier 0 = first-touch SLA, 1.. = escalation tiers.",
            priorities(),
            number_guard("tier", max_values=10),
        )
        self.sla_open_clocks = gauge(
            "sla_open_clocks",
            "SLA clocks running on this worker's partitions.",
            priorities(),
        )

        # --- Dispositions ----------------------------------------------------------------
        self.dispositions = counter(
            "dispositions_total",
            "CRM status changes applied, by status and disposition.",
            closed_guard("status", vocab.crm_statuses),
            closed_guard("disposition", vocab.dispositions, nullable=True),
        )

        # --- Lead API (streams.web) -------------------------------------------------------
        self.api_requests = counter(
            "api_requests_total",
            "Lead API requests, by endpoint, HTTP status sent, and served (local: this worker owns "
            "the lead; forwarded: answered by the worker that does).",
            closed_guard("endpoint", API_ENDPOINTS),
            closed_guard("status", API_STATUSES),
            closed_guard("served", API_SERVED),
        )
        self.api_request_seconds = histogram(
            "api_request_seconds",
            "Lead API request received -> answered; forwarded requests include the hop to the owner.",
            API_REQUEST_BUCKETS,
            closed_guard("served", API_SERVED),
        )

        # --- Infrastructure ----------------------------------------------------------------
        self.redis_waiting = Gauge(
            "redis_waiting",
            "1 while the worker is waiting for Redis to become reachable.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.redis_retries = Counter(
            "redis_retries_total",
            "Redis operations retried after a connection error.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.consumer_lag = gauge(
            "consumer_lag",
            "Records behind the high watermark, per assigned topic partition.",
            ident_guard("topic", max_values=64),
            number_guard("partition", max_values=1024),
        )
        self.worker_info = Info(
            "worker",
            "Version and Faust app id of this worker.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.worker_ready = Gauge(
            "worker_ready",
            "1 while /readyz says ready: consumer group joined, table recovery done, Redis reachable.",
            namespace=NAMESPACE,
            registry=r,
        )
        self.roster_loaded = Gauge(
            "roster_loaded",
            "1 if Redis holds a sales roster; 0: every MQL goes to the fallback owner.",
            namespace=NAMESPACE,
            registry=r,
        )

        self._preinitialise()
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

    def _preinitialise(self) -> None:
        """Create the small closed label sets at zero, so that rate()/increase() see the first
        increment (a series born at 1 has no earlier sample to compare with)."""
        vocab = self.vocabulary
        for kind in vocab.event_kinds:
            for encoding in ENCODINGS:
                self.events_in.labels(kind=kind, encoding=encoding)
        for reason in vocab.dead_letter_reasons:
            self.dead_letters.labels(reason=reason)
        for kind in vocab.event_kinds:
            self.event_to_score_seconds.labels(kind=kind)
        for stage in vocab.stages:
            self.leads_scored.labels(stage=stage)
        for priority in PRIORITIES:
            self.sla_breaches.labels(priority=priority, tier=0)
            self.sla_open_clocks.labels(priority=priority).set(0)
            self.event_to_assignment_seconds.labels(priority=priority)
        for served in API_SERVED:
            self.api_request_seconds.labels(served=served)
            for endpoint in API_ENDPOINTS:
                for status in API_STATUSES:
                    self.api_requests.labels(endpoint=endpoint, status=status, served=served)
        for outcome in IN_PROCESS_ROUTING_OUTCOMES:
            self.mqls_routed_in_process.labels(outcome=outcome)
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
        shadow_sources: Iterable[str] = (),
    ) -> None:
        """Create the label values the configuration knows at zero (``configured_label_values``),
        so the dashboards' ratios and ``increase()`` count the first disposition, data-quality
        issue or MQL of each kind after a worker starts, and a ratio over a reason that has not
        happened yet reads 0 instead of no data.

        ``statuses``: CRM statuses counted by ``dispositions_total`` (disposition ``none``);
        ``dispositions``: rejection reasons (status ``rejected``); ``sources`` x ``mql_bands``
        ((score_band, fast_track) pairs): ``mqls_total``; ``shadow_sources`` (only with a shadow
        model) x directions x every score band: ``shadow_decisions_total``. Values pass the label
        guards as usual.
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
        for source in shadow_sources:
            for direction in SHADOW_DIRECTIONS:
                for band in SCORE_BANDS:
                    self.shadow_decisions.labels(direction=direction, source=source, score_band=band)

    @classmethod
    def create(cls, vocabulary: Vocabulary, *, process_metrics: bool = True) -> Metrics:
        """Metrics on a fresh registry (with process/platform/GC collectors by default)."""
        return cls(CollectorRegistry(auto_describe=True), vocabulary, process_metrics=process_metrics)

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
        if not port:
            return None
        server = self._endpoint.start(port, addr, health)
        host = server.server_address[0]
        shown = f"[{host}]" if ":" in host else host
        paths = "/metrics, /livez, /readyz" if health is not None else "/metrics"
        log.info(
            "serving %s on http://%s:%d (bound to %s)",
            paths,
            shown,
            server.server_port,
            "all interfaces" if host in ("0.0.0.0", "::") else host,
        )
        return server

    def stop(self) -> None:
        """Stop the endpoint started by ``serve`` (no-op if none)."""
        self._endpoint.stop()
