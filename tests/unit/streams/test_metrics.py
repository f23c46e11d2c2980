"""streams.metrics: names, bounded labels, score bands, one registry per instance, endpoint."""

from __future__ import annotations

import math
import socket
import urllib.request

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents.domain.events import CRM_STATUSES, DISPOSITIONS, EVENT_KINDS, STAGES
from leadflow.compose import DEAD_LETTER_REASONS
from leadflow.compose import METRIC_VOCABULARY as VOCABULARY
from streams.metric_labels import (
    OTHER,
    SCORE_BANDS,
    BoundedMetric,
    Vocabulary,
    elapsed_seconds,
    mql_label_pairs,
    score_band,
)
from streams.metric_schema import FORBIDDEN_LABELS, SPEED_TO_LEAD_BUCKETS
from streams.metrics import Metrics

# Metric attribute -> (exposed family name, type, label names): the contract dashboards and
# alerts are written against.
EXPECTED = {
    "events_in": ("leadflow_events_in", "counter", {"kind", "encoding"}),
    "dead_letters": ("leadflow_dead_letters", "counter", {"reason"}),
    "dead_letter_delivery_failures": ("leadflow_dead_letter_delivery_failures", "counter", set()),
    "hand_offs": ("leadflow_events_handed_off", "counter", set()),
    "duplicates_skipped": ("leadflow_duplicates_skipped", "counter", {"stage"}),
    "event_to_score_seconds": ("leadflow_event_to_score_seconds", "histogram", {"kind"}),
    "event_to_assignment_seconds": ("leadflow_event_to_assignment_seconds", "histogram", {"priority"}),
    "leads_scored": ("leadflow_leads_scored", "counter", {"stage"}),
    "mqls": ("leadflow_mqls", "counter", {"source", "score_band", "fast_track"}),
    "shadow_decisions": ("leadflow_shadow_decisions", "counter", {"direction", "source", "score_band"}),
    "assignments": ("leadflow_assignments", "counter", {"rule", "priority"}),
    "fallback_assignments": ("leadflow_fallback_assignments", "counter", {"reason"}),
    "mqls_routed_in_process": ("leadflow_mqls_routed_in_process", "counter", {"outcome"}),
    "speed_to_lead_seconds": ("leadflow_speed_to_lead_seconds", "histogram", {"priority", "team"}),
    "sla_breaches": ("leadflow_sla_breaches", "counter", {"priority", "tier"}),
    "sla_open_clocks": ("leadflow_sla_open_clocks", "gauge", {"priority"}),
    "dispositions": ("leadflow_dispositions", "counter", {"status", "disposition"}),
    "data_quality_issues": ("leadflow_data_quality_issues", "counter", {"issue_code"}),
    "api_requests": ("leadflow_api_requests", "counter", {"endpoint", "status", "served"}),
    "api_request_seconds": ("leadflow_api_request_seconds", "histogram", {"served"}),
    "redis_waiting": ("leadflow_redis_waiting", "gauge", set()),
    "redis_retries": ("leadflow_redis_retries", "counter", set()),
    "consumer_lag": ("leadflow_consumer_lag", "gauge", {"topic", "partition"}),
    # The Prometheus text format exposes an Info as a gauge named <name>_info.
    "worker_info": ("leadflow_worker_info", "gauge", {"version", "app_id"}),
    "worker_ready": ("leadflow_worker_ready", "gauge", set()),
    "roster_loaded": ("leadflow_roster_loaded", "gauge", set()),
}


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), VOCABULARY)


def _exercise(m: Metrics) -> None:
    """One sample in every labelled metric."""
    m.events_in.labels(kind="form_submitted", encoding="avro").inc()
    m.dead_letters.labels(reason="undecodable").inc()
    m.duplicates_skipped.labels(stage="scoring").inc()
    m.event_to_score_seconds.labels(kind="web_activity").observe(0.02)
    m.event_to_assignment_seconds.labels(priority="P1").observe(1.5)
    m.leads_scored.labels(stage="mql").inc()
    m.mqls.labels(source="paid_search", score_band=score_band(72), fast_track=False).inc()
    m.shadow_decisions.labels(direction="gained", source="paid_search", score_band="60-70").inc()
    m.assignments.labels(rule="enterprise_territory", priority="P1").inc()
    m.fallback_assignments.labels(reason="no_rule_matched").inc()
    m.speed_to_lead_seconds.labels(priority="P1", team="emea-ae").observe(420)
    m.sla_breaches.labels(priority="P2", tier=1).inc()
    m.sla_open_clocks.labels(priority="P1").inc()
    m.dispositions.labels(status="rejected", disposition="not_now").inc()
    m.data_quality_issues.labels(issue_code="rejection_without_disposition").inc()
    m.redis_waiting.set(1)
    m.redis_retries.inc()
    m.consumer_lag.labels(topic="leadflow.in.form-submits", partition=3).set(17)
    m.set_worker_info(app_id="leadflow", version="1.2.3")


def _scrape(m: Metrics) -> dict[str, object]:
    text = generate_latest(m.registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


# --- names and types ------------------------------------------------------------------------


def test_every_metric_is_exported_with_its_name_type_and_labels(metrics: Metrics) -> None:
    _exercise(metrics)
    families = _scrape(metrics)
    for attr, (name, kind, labels) in EXPECTED.items():
        assert hasattr(metrics, attr), attr
        assert name in families, f"{attr}: {name} not exported"
        family = families[name]
        assert family.type == kind, (attr, family.type)
        sample_labels = {k for s in family.samples for k in s.labels if k != "le"}
        assert sample_labels == labels, attr


def test_all_names_are_namespaced(metrics: Metrics) -> None:
    _exercise(metrics)
    for name in _scrape(metrics):
        assert name.startswith("leadflow_"), name


def test_sample_names_cover_suffixes(metrics: Metrics) -> None:
    names = metrics.sample_names()
    for expected in (
        "leadflow_events_in_total",
        "leadflow_event_to_score_seconds_bucket",
        "leadflow_speed_to_lead_seconds_count",
        "leadflow_speed_to_lead_seconds_sum",
        "leadflow_redis_waiting",
        "leadflow_consumer_lag",
        "leadflow_worker_info",
        "leadflow_sla_open_clocks",
        "leadflow_redis_retries_total",
    ):
        assert expected in names
    assert "leadflow_events_in" not in names  # counters are only exposed with _total


def test_histogram_buckets(metrics: Metrics) -> None:
    score = metrics.event_to_score_seconds.metric._upper_bounds
    assert score[0] == 0.005 and score[-2] == 60.0 and score[-1] == math.inf
    stl = metrics.speed_to_lead_seconds.metric._upper_bounds
    assert stl[-2] == 7 * 86400
    # Default SLAs and business targets are exact bucket edges (10 min, 1 h, 24 h, 48 h, 5 d).
    for edge in (600, 3600, 86400, 172800, 432000):
        assert edge in SPEED_TO_LEAD_BUCKETS
    assert 120.0 in metrics.event_to_assignment_seconds.metric._upper_bounds


# --- bounded labels -------------------------------------------------------------------------


def test_no_personal_or_unbounded_label_names(metrics: Metrics) -> None:
    _exercise(metrics)
    for family in metrics.registry.collect():
        for sample in family.samples:
            assert not (set(sample.labels) & FORBIDDEN_LABELS), (family.name, sample.labels)


def test_labelled_metrics_are_all_bounded(metrics: Metrics) -> None:
    for attr, (_, _kind, labels) in EXPECTED.items():
        if labels and attr != "worker_info":  # Info labels are set once, by the worker itself
            assert isinstance(getattr(metrics, attr), BoundedMetric), attr


@pytest.mark.parametrize(
    "call, label, value",
    [
        (lambda m, v: m.events_in.labels(kind=v, encoding="json"), "kind", "jane@example.com"),
        (lambda m, v: m.events_in.labels(kind="crm_status", encoding=v), "encoding", "protobuf"),
        (lambda m, v: m.dead_letters.labels(reason=v), "reason", "field 'email' = 'x@y.z' invalid"),
        (lambda m, v: m.dispositions.labels(status=v, disposition=None), "status", "Rejected by Bob"),
        (lambda m, v: m.dispositions.labels(status="rejected", disposition=v), "disposition", "he hates us"),
        (lambda m, v: m.leads_scored.labels(stage=v), "stage", "ld_0123456789abcdef"),
        (lambda m, v: m.mqls.labels(source=v, score_band="90+", fast_track=True), "source", "bob@acme.io"),
        (lambda m, v: m.assignments.labels(rule="default", priority=v), "priority", "urgent!!"),
        (lambda m, v: m.assignments.labels(rule=v, priority="P1"), "rule", "route to Bob <bob@x.io>"),
        (lambda m, v: m.fallback_assignments.labels(reason=v), "reason", "EMEA team with spaces"),
        (lambda m, v: m.data_quality_issues.labels(issue_code=v), "issue_code", "x" * 200),
        (lambda m, v: m.sla_breaches.labels(priority="P1", tier=v), "tier", "first"),
    ],
)
def test_unexpected_values_are_recorded_as_other(metrics: Metrics, call, label: str, value: str) -> None:
    call(metrics, value).inc()
    values = {s.labels[label] for f in metrics.registry.collect() for s in f.samples if label in s.labels}
    assert value not in values
    assert OTHER in values


def test_closed_vocabularies_pass_through(metrics: Metrics) -> None:
    for kind in EVENT_KINDS:
        metrics.event_to_score_seconds.labels(kind=kind).observe(0.1)
    for reason in DEAD_LETTER_REASONS:
        metrics.dead_letters.labels(reason=reason).inc()
    for status in CRM_STATUSES:
        for disposition in (*DISPOSITIONS, None):
            metrics.dispositions.labels(status=status, disposition=disposition).inc()
    for stage in STAGES:
        metrics.leads_scored.labels(stage=stage).inc()
    families = _scrape(metrics)
    dispositions = {s.labels["disposition"] for s in families["leadflow_dispositions"].samples}
    assert dispositions == {*DISPOSITIONS, "none"}
    reasons = {s.labels["reason"] for s in families["leadflow_dead_letters"].samples}
    assert reasons == set(DEAD_LETTER_REASONS)
    assert OTHER not in {s.labels["stage"] for s in families["leadflow_leads_scored"].samples}


def test_identifier_labels_are_capped(metrics: Metrics) -> None:
    for i in range(500):
        metrics.assignments.labels(rule=f"rule_{i}", priority="P2").inc()
    rules = {s.labels["rule"] for s in _scrape(metrics)["leadflow_assignments"].samples}
    assert OTHER in rules
    assert len(rules) <= 51  # 50 admitted values + "other"
    # Values admitted before the cap keep their own series.
    metrics.assignments.labels(rule="rule_0", priority="P2").inc()
    assert metrics.assignments.labels(rule="rule_0", priority="P2")._value.get() == 2


def test_value_normalisation(metrics: Metrics) -> None:
    metrics.mqls.labels(source="webinar", score_band=95.5, fast_track=True).inc()
    metrics.sla_breaches.labels(priority="P1", tier=2).inc()
    metrics.duplicates_skipped.labels(stage=None).inc()
    families = _scrape(metrics)
    (mql,) = [s for s in families["leadflow_mqls"].samples if s.name.endswith("_total")]
    assert mql.labels == {"source": "webinar", "score_band": "90+", "fast_track": "true"}
    tiers = {s.labels["tier"] for s in families["leadflow_sla_breaches"].samples}
    assert "2" in tiers
    stages = {s.labels["stage"] for s in families["leadflow_duplicates_skipped"].samples}
    assert stages == {"none"}


def test_positional_labels_and_label_errors(metrics: Metrics) -> None:
    metrics.events_in.labels("web_activity", "json").inc(2)
    assert metrics.events_in.labels(kind="web_activity", encoding="json")._value.get() == 2
    with pytest.raises(ValueError):
        metrics.events_in.labels(kind="web_activity")
    with pytest.raises(ValueError):
        metrics.events_in.labels(kind="web_activity", encoding="json", email="a@b.c")
    with pytest.raises(ValueError):
        metrics.events_in.labels("web_activity", encoding="json")


def test_rejected_values_are_not_logged(metrics: Metrics, caplog: pytest.LogCaptureFixture) -> None:
    metrics.mqls.labels(source="alice@example.com", score_band="50-60", fast_track=False).inc()
    metrics.mqls.labels(source="bob@example.com", score_band="50-60", fast_track=False).inc()
    assert "example.com" not in caplog.text
    assert sum("source" in r.getMessage() for r in caplog.records) == 1  # logged once


# --- score bands ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "score, band",
    [
        (-20, "<50"),
        (0, "<50"),
        (49.999, "<50"),
        (50, "50-60"),
        (50.0001, "50-60"),
        (59.999, "50-60"),
        (60, "60-70"),
        (69.99, "60-70"),
        (70, "70-80"),
        (79.9, "70-80"),
        (80, "80-90"),
        (80.5, "80-90"),
        (89.999, "80-90"),
        (90, "90+"),
        (150, "90+"),
        (math.inf, "90+"),
        (-math.inf, "<50"),
        (math.nan, "<50"),
        (None, "<50"),
    ],
)
def test_score_band_edges(score, band) -> None:
    assert score_band(score) == band


def test_score_bands_are_the_label_vocabulary() -> None:
    assert {score_band(s) for s in range(-50, 200)} == set(SCORE_BANDS)


def test_elapsed_seconds() -> None:
    assert elapsed_seconds(1_000, 3_500) == 2.5
    assert elapsed_seconds(5_000, 4_000) == 0.0  # clock skew never gives a negative latency
    assert elapsed_seconds(None, 4_000) is None


# --- registries -------------------------------------------------------------------------------


def test_two_instances_do_not_clash() -> None:
    a, b = Metrics(CollectorRegistry(), VOCABULARY), Metrics(CollectorRegistry(), VOCABULARY)
    a.events_in.labels(kind="crm_status", encoding="json").inc(5)
    assert a.events_in.labels(kind="crm_status", encoding="json")._value.get() == 5
    assert b.events_in.labels(kind="crm_status", encoding="json")._value.get() == 0
    c, d = Metrics.create(VOCABULARY), Metrics.create(VOCABULARY)
    assert c.registry is not d.registry
    c.redis_retries.inc()
    assert d.redis_retries._value.get() == 0


def test_same_registry_twice_is_refused() -> None:
    registry = CollectorRegistry()
    Metrics(registry, VOCABULARY)
    with pytest.raises(ValueError):
        Metrics(registry, VOCABULARY)


def test_global_registry_untouched() -> None:
    Metrics.create(VOCABULARY)
    Metrics(CollectorRegistry(), VOCABULARY)
    global_names = {f.name for f in REGISTRY.collect()}
    assert not any(n.startswith("leadflow") for n in global_names)


def test_create_adds_process_metrics_only_when_asked() -> None:
    assert "process_cpu_seconds_total" in Metrics.create(VOCABULARY).sample_names()
    assert "process_cpu_seconds_total" not in Metrics.create(VOCABULARY, process_metrics=False).sample_names()


def test_the_closed_label_sets_are_the_vocabulary_handed_in() -> None:
    """The runtime knows no event kind, stage, status or reason code: the composition root's
    vocabulary decides what is recorded and what is created at zero."""
    small = Vocabulary(
        event_kinds=("signup",),
        stages=("trial",),
        crm_statuses=("won",),
        dispositions=("budget",),
        dead_letter_reasons=("bad_bytes",),
    )
    m = Metrics(CollectorRegistry(), small)
    m.events_in.labels(kind="form_submitted", encoding="json").inc()
    m.leads_scored.labels(stage="trial").inc()
    m.dispositions.labels(status="won", disposition="not_now").inc()
    families = _scrape(m)
    assert {s.labels["kind"] for s in families["leadflow_events_in"].samples} == {"signup", OTHER}
    assert {s.labels["reason"] for s in families["leadflow_dead_letters"].samples} == {"bad_bytes"}
    assert {s.labels["stage"] for s in families["leadflow_leads_scored"].samples} == {"trial"}
    assert {s.labels["disposition"] for s in families["leadflow_dispositions"].samples} == {OTHER}


@pytest.mark.parametrize(
    "field, values",
    [
        ("event_kinds", ()),
        ("stages", ("mql", "mql")),
        ("crm_statuses", ("has space",)),
        ("dispositions", (OTHER,)),
        ("dead_letter_reasons", ("none",)),
    ],
)
def test_a_vocabulary_is_distinct_identifiers(field, values) -> None:
    good = {
        f: getattr(VOCABULARY, f)
        for f in ("event_kinds", "stages", "crm_statuses", "dispositions", "dead_letter_reasons")
    }
    with pytest.raises(ValueError, match=f"Vocabulary.{field}"):
        Vocabulary(**{**good, field: values})
    with pytest.raises(TypeError, match="Vocabulary"):
        Metrics(CollectorRegistry(), good)  # type: ignore[arg-type]


def test_series_are_precreated_for_rates(metrics: Metrics) -> None:
    """rate()/increase() need a 0 sample before the first event, or they miss it."""
    families = _scrape(metrics)
    assert {s.labels["reason"] for s in families["leadflow_dead_letters"].samples} == set(DEAD_LETTER_REASONS)
    breaches = {(s.labels["priority"], s.labels["tier"]) for s in families["leadflow_sla_breaches"].samples}
    assert {("P1", "0"), ("P2", "0"), ("P3", "0")} <= breaches
    assert len(families["leadflow_events_in"].samples) >= 6


def test_closed_histograms_and_stages_start_at_zero(metrics: Metrics) -> None:
    families = _scrape(metrics)
    assert {s.labels["stage"] for s in families["leadflow_leads_scored"].samples} == set(STAGES)
    assert all(s.value == 0 for s in families["leadflow_leads_scored"].samples)
    kinds = {s.labels["kind"] for s in families["leadflow_event_to_score_seconds"].samples}
    assert kinds == set(EVENT_KINDS)
    priorities = {s.labels["priority"] for s in families["leadflow_event_to_assignment_seconds"].samples}
    assert priorities == {"P1", "P2", "P3"}


@pytest.fixture(scope="module")
def configured() -> dict[str, tuple]:
    """What the repo's config/scoring-model.yaml and config/sla.yaml make start at zero."""
    from agents.routing.config import load_routing_config
    from agents.scoring.model import load_model
    from agents.sla.config import load_sla_config
    from leadflow.compose import Configs, configured_label_values
    from streams.settings import REPO_ROOT

    return configured_label_values(
        Configs(
            load_model(REPO_ROOT / "config" / "scoring-model.yaml"),
            load_routing_config(REPO_ROOT / "config" / "routing.yaml"),
            load_sla_config(REPO_ROOT / "config" / "sla.yaml"),
        )
    )


def _zeros(m: Metrics, family: str, *labels: str) -> set[tuple[str, ...]]:
    """Values of ``labels`` of the family's counter samples, each asserted to be 0."""
    samples = [s for s in _scrape(m)[family].samples if s.name.endswith("_total")]
    assert all(s.value == 0 for s in samples), [s for s in samples if s.value]
    return {tuple(s.labels[n] for n in labels) for s in samples}


def test_configured_label_values_come_from_the_config_files(configured) -> None:
    from agents.disposition.rules import ISSUE_CODES
    from agents.scoring.model import load_model
    from agents.sla.config import load_sla_config
    from streams.settings import REPO_ROOT

    model = load_model(REPO_ROOT / "config" / "scoring-model.yaml")
    sla = load_sla_config(REPO_ROOT / "config" / "sla.yaml")
    # Every rejection reason the files name (recycled, recaptured, permanent), and the fixed list.
    assert set(configured["dispositions"]) == set(DISPOSITIONS)
    assert {*sla.dispositions.recycle, *sla.dispositions.recapture, *model.permanent_dispositions} <= set(
        configured["dispositions"]
    )
    # Statuses that publish a disposition; touches only stop SLA clocks.
    assert set(configured["statuses"]) == {"accepted", "sql", "rejected", "converted", "closed_won", "closed_lost"}
    assert set(configured["statuses"]) <= set(CRM_STATUSES)
    assert configured["issue_codes"] == tuple(ISSUE_CODES)
    assert set(configured["sources"]) == {*model.attribution.channels, "other", "unknown"}
    assert "route" in configured["duplicate_stages"] and "score" in configured["duplicate_stages"]


def test_start_at_zero_creates_the_configured_series(metrics: Metrics, configured) -> None:
    metrics.start_at_zero(**configured)
    dispositions = _zeros(metrics, "leadflow_dispositions", "status", "disposition")
    assert {("rejected", d) for d in DISPOSITIONS} <= dispositions
    assert {(s, "none") for s in configured["statuses"]} <= dispositions
    assert ("first_touch", "none") not in dispositions
    assert OTHER not in {v for pair in dispositions for v in pair}
    assert _zeros(metrics, "leadflow_data_quality_issues", "issue_code") == {(c,) for c in configured["issue_codes"]}
    mqls = _zeros(metrics, "leadflow_mqls", "source", "score_band", "fast_track")
    assert {source for source, _, _ in mqls} == set(configured["sources"])
    assert len(mqls) == len(configured["sources"]) * len(configured["mql_bands"])
    assert _zeros(metrics, "leadflow_duplicates_skipped", "stage") == {(s,) for s in configured["duplicate_stages"]}
    # The first event of each kind is then an increase from 0 (what rate()/increase() need).
    metrics.dispositions.labels(status="rejected", disposition="competitor").inc()
    assert metrics.dispositions.labels(status="rejected", disposition="competitor")._value.get() == 1


def test_mql_label_pairs_follow_the_thresholds() -> None:
    # Default model: MQL above 50, fast track above 80.
    assert mql_label_pairs(50, 80) == (
        ("50-60", "false"),
        ("60-70", "false"),
        ("70-80", "false"),
        ("80-90", "false"),
        ("80-90", "true"),
        ("90+", "true"),
    )
    # Another model: MQL above 45, fast track above 90.
    pairs = mql_label_pairs(45, 90)
    assert ("<50", "false") in pairs and ("90+", "true") in pairs and ("80-90", "true") not in pairs
    assert ("90+", "false") in pairs  # exactly 90 is not fast-tracked
    # Every (band, fast_track) a real MQL score gets is in the list.
    for lowest, fast in ((50, 80), (45, 90), (62.5, 62.5)):
        pairs = set(mql_label_pairs(lowest, fast))
        for score in [lowest + 0.01 + i * 0.37 for i in range(400)]:
            assert (score_band(score), "true" if score > fast else "false") in pairs, (lowest, fast, score)


# --- helpers ----------------------------------------------------------------------------------


def test_set_consumer_lag_replaces_partitions(metrics: Metrics) -> None:
    metrics.set_consumer_lag({("leadflow.in.form-submits", 0): 10, ("leadflow.in.form-submits", 1): 5})
    metrics.set_consumer_lag({("leadflow.in.form-submits", 1): 7, ("leadflow.in.crm-status", 2): -3})
    samples = {
        (s.labels["topic"], s.labels["partition"]): s.value for s in _scrape(metrics)["leadflow_consumer_lag"].samples
    }
    assert samples == {("leadflow.in.form-submits", "1"): 7, ("leadflow.in.crm-status", "2"): 0}


def test_waiting_for_redis(metrics: Metrics) -> None:
    with metrics.waiting_for_redis():
        assert metrics.redis_waiting._value.get() == 1
    assert metrics.redis_waiting._value.get() == 0


def test_worker_info(metrics: Metrics) -> None:
    metrics.set_worker_info(app_id="leadflow-test", version="9.9")
    (sample,) = _scrape(metrics)["leadflow_worker_info"].samples
    assert sample.name == "leadflow_worker_info"
    assert sample.labels == {"app_id": "leadflow-test", "version": "9.9"}


# --- endpoint ---------------------------------------------------------------------------------


def test_serve_port_zero_does_not_serve(metrics: Metrics) -> None:
    assert metrics.serve(0) is None
    metrics.stop()  # no-op


def test_serve_exposes_this_registry_only(metrics: Metrics) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    other = Metrics(CollectorRegistry(), VOCABULARY)
    other.fallback_assignments.labels(reason="only_in_other").inc()
    metrics.events_in.labels(kind="form_submitted", encoding="json").inc()
    server = metrics.serve(port, addr="127.0.0.1")
    try:
        assert server.server_port == port
        with pytest.raises(RuntimeError):
            metrics.serve(port, addr="127.0.0.1")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        metrics.stop()
    assert 'leadflow_events_in_total{encoding="json",kind="form_submitted"} 1.0' in body
    assert "only_in_other" not in body
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_remove_uses_bounded_values(metrics: Metrics) -> None:
    metrics.sla_open_clocks.labels(priority="P2").set(4)
    metrics.sla_open_clocks.remove(priority="P2")
    metrics.sla_open_clocks.remove(priority="P2")  # already gone: no error
    priorities = {s.labels["priority"] for s in _scrape(metrics)["leadflow_sla_open_clocks"].samples}
    assert priorities == {"P1", "P3"}


def test_a_worker_starts_the_configured_series_at_zero(tmp_path) -> None:
    """create_app (what `leadflow worker` runs) applies the configuration's vocabularies."""
    from leadflow.compose import create_app
    from streams.settings import load_settings

    metrics = Metrics(CollectorRegistry(), VOCABULARY)
    create_app(load_settings(data_dir=tmp_path / "data"), metrics=metrics)
    assert ("rejected", "not_now") in _zeros(metrics, "leadflow_dispositions", "status", "disposition")
    assert ("rejection_without_disposition",) in _zeros(metrics, "leadflow_data_quality_issues", "issue_code")
    assert ("paid_search", "60-70", "false") in _zeros(metrics, "leadflow_mqls", "source", "score_band", "fast_track")
