"""The Quix Streams peer of `leadflow bench` (leadflow/bench/quix_peer.py): librdkafka and Quix
accept the project's security mapping (streams.connections); the same outputs as leadflow's agents for
the same records; and the figures and lines the bench reports for it."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from leadflow.bench.quix_peer import PeerRules, figures
from leadflow.bench.results import add_quix_ratio, floor_lines
from leadflow.bench.topic_io import belongs_to_run
from streams.app import build_codec, partition_for
from streams.connections import librdkafka_client_config
from streams.consume import Meta
from streams.settings import load_settings
from streams.topics import TopicNames
from tests.bench_reference import agents_outputs, bench_items, decode_outputs


def test_librdkafka_and_quix_accept_the_sasl_ssl_config(tmp_path):
    """Key names and values librdkafka knows (an unknown one fails at construction), and a CA it loads."""
    from confluent_kafka import Producer
    from quixstreams.kafka.configuration import ConnectionConfig

    from leadflow.devstack.pki import make_tls_files

    tls = make_tls_files(tmp_path / "pki")
    settings = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",
        kafka_ssl_ca_file=tls.ca,
    )
    config = librdkafka_client_config(settings)
    Producer(config).flush(0)
    quix = ConnectionConfig.from_librdkafka_dict(config)
    assert quix.as_librdkafka_dict()["sasl.password"] == "pw" and quix.security_protocol == "sasl_ssl"
    assert "pw" not in repr(quix)


class _State:
    """One key's slice of a store, with the part of Quix's State the peer uses."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def set(self, name: str, value: Any) -> None:
        self.values[name] = value


def test_the_peer_gives_the_agents_outputs_for_the_same_records():
    """In-process, one record at a time, its internal records right after (as the reference
    pumps them): the same outputs, record for record, dead letters included."""
    settings = load_settings(topic_partitions=4)
    codec = build_codec(settings, register=False)
    now_ms = 1_790_000_000_000
    clock = lambda: now_ms / 1000 + 1.0  # noqa: E731 - a fixed clock: the outputs carry it
    items = bench_items(settings, codec, 500, now_ms=now_ms - 500, bad_share=0.05)
    expected = agents_outputs(settings, items, clock=clock)

    from leadflow.compose import load_configs

    peer = PeerRules(settings, codec, load_configs(settings), clock=clock)
    names, stores, offsets = TopicNames.from_settings(settings), defaultdict(dict), defaultdict(int)
    sink: list[tuple[bytes, bytes]] = []

    def process(topic: str, key: bytes | None, value: bytes, ts: int) -> list:
        partition = partition_for(key, settings.topic_partitions) if key else 0
        offsets[topic, partition] += 1
        meta = Meta(topic, partition, offsets[topic, partition], key, value, ts, None)
        return peer.process(meta, _State(stores[partition, key]))

    for field, key, value, ts, _ in items:
        queue = process(getattr(names, field), key, value, ts)
        while queue:
            send = queue.pop(0)
            if send.internal:
                queue.extend(process("peer.internal", send.key, send.value, ts))
            else:
                sink.append((send.key, send.value))
    got = decode_outputs(codec, sink)

    assert expected.count("lead_scored") > 200 and expected.mql_leads() and expected.dead_letters
    assert expected.scored_causes("merge")  # the visitor path ran
    assert sorted(got.records, key=repr) == sorted(expected.records, key=repr)
    assert sorted(got.dead_letters) == sorted(expected.dead_letters)


def test_figures_and_the_ratio_to_the_pipeline():
    quix = figures(6000, 3.0, 2.5, 4.0)
    assert (quix["events_per_s"], quix["events_per_cpu_s"], quix["events_per_worker_cpu_s"]) == (2000, 2400, 1500)
    results = {"pipeline": {"events_per_s": 500.0, "events_per_worker_cpu_s": 450.0}, "quix_peer": quix}
    add_quix_ratio(results)
    assert (results["pipeline_over_quix"], results["pipeline_over_quix_per_cpu_s"]) == (0.25, 0.3)
    [line] = floor_lines(results)
    assert "2,000 events/s" in line and "1,500 per CPU-s" in line and "pipeline / Quix: 25.0% (30.0% per CPU-s)" in line


@pytest.mark.parametrize("quix", [{"skipped": "quixstreams is not installed (pip install -e '.[bench]')"}, None])
def test_no_ratio_without_the_peer(quix):
    results = {"pipeline": {"events_per_s": 500.0}, **({"quix_peer": quix} if quix else {})}
    add_quix_ratio(results)
    assert results["pipeline_over_quix"] is None and results["pipeline_over_quix_per_cpu_s"] is None
    assert floor_lines(results) == ([f"{'Quix Streams peer':<36} skipped: {quix['skipped']}"] if quix else [])


@pytest.mark.parametrize(
    "topic, ours",
    [
        ("bench-1.leads.in", True),
        ("bench-1-quix-__assignor-__leader", True),
        ("changelog__bench-1-quix--bench-1.quix.keyed--default", True),
        ("repartition__bench-1-quix--x", True),
        ("changelog__bench-2-quix--bench-2.quix.keyed--default", False),
        ("bench-10.leads.in", False),
        ("leads.in", False),
    ],
)
def test_the_run_cleans_up_the_quix_peers_internal_topics_too(topic, ours):
    assert belongs_to_run(topic, "bench-1") is ours
