"""What a single-node Kafka broker (KRaft, combined broker+controller, on loopback) is
configured with: its ``server.properties``, an optional SASL_SSL listener and the cluster id
its storage is formatted with. Pure: :mod:`leadflow.devstack.kafka` writes and runs them."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
NODE_ID = 1


@dataclass(frozen=True)
class SaslSslListener:
    """An extra SASL_SSL listener, as managed Kafka services expose (MSK, Confluent, Aiven).

    ``keystore_pem`` holds the broker's unencrypted PKCS#8 key and certificate chain (Kafka's
    PEM keystore); ``users`` are SCRAM users created when the storage is formatted (KIP-900),
    for both SCRAM-SHA-256 and SCRAM-SHA-512, and accepted with PLAIN as well.
    """

    port: int
    keystore_pem: Path
    users: Mapping[str, str] = field(default_factory=dict)

    def properties(self) -> dict[str, str]:
        plain_users = " ".join(f'user_{name}="{password}"' for name, password in self.users.items())
        return {
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(self.keystore_pem),
        }

    def format_arguments(self) -> list[str]:
        args = []
        for name, password in self.users.items():
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                args += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        return args


def server_properties(
    *, port: int, controller_port: int, log_dir: Path, sasl_ssl: SaslSslListener | None = None
) -> dict[str, str]:
    """Broker config for one combined broker+controller node on loopback."""
    props = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        # The app creates every topic with an explicit partition count (co-partitioning).
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        # One node: internal topics cannot be replicated; few partitions = faster first use.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "8",
        # Nobody else will join: do not delay the first consumer-group rebalance.
        "group.initial.rebalance.delay.ms": "0",
        # Accept oversized records (up to 10 MiB) so leadflow, not the broker, rejects them:
        # they reach the dead-letter topic with a reason instead of failing at the publisher.
        "message.max.bytes": str(10 * 1024 * 1024),
    }
    if sasl_ssl is not None:
        props["listeners"] += f",SASL_SSL://{HOST}:{sasl_ssl.port}"
        props["advertised.listeners"] += f",SASL_SSL://{HOST}:{sasl_ssl.port}"
        props["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
        props.update(sasl_ssl.properties())
    return props


def render_properties(props: Mapping[str, str]) -> str:
    """Java .properties text; backslashes escaped so Windows-ish or odd paths survive."""
    lines = [f"{key}={value.replace(chr(92), chr(92) * 2)}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """A Kafka cluster id (Uuid: 16 random bytes, URL-safe base64, no padding).

    Generated here rather than with `StorageTool random-uuid` to save a JVM start.
    Same rules as Kafka's Uuid.randomUuid(): not a reserved id, no leading '-'.
    """
    while True:
        raw = os.urandom(16)
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        if not text.startswith("-") and raw[:15] != bytes(15):  # 0 and 1 are reserved
            return text
