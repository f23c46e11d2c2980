"""Production parity: leadflow against a SASL_SSL Kafka listener (SCRAM, session CA) and a Redis
with AUTH and TLS, as managed services run them. Real broker, real redis-server, real workers and
CLI processes; a wrong password or an untrusted CA must fail fast with one line and no secret."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from agents.domain.identity import lead_id_for_email
from leadflow.devstack.redis import RedisServer, RedisTls
from streams.connections import KafkaUnavailable, RedisUnavailable, check_kafka_sync, kafka_client_kwargs
from streams.redis_client import wait_for_redis
from streams.settings import REPO_ROOT, load_settings
from tests.integration.conftest import SASL_PASSWORD, WorkerHarness, free_port
from tests.integration.factories import as_avro, as_json, form_submit, web_activity
from tests.integration.kafkatools import KafkaTools

pytestmark = pytest.mark.integration

REDIS_PASSWORD = "r3dis-Auth-pw"


@pytest.fixture(scope="module")
def secure_redis(tls_files, tmp_path_factory):
    """A redis-server with requirepass and a TLS port (plain port kept for the probes)."""
    server = RedisServer(
        free_port(),
        tmp_path_factory.mktemp("secure-redis"),
        tie_to_parent=True,
        password=REDIS_PASSWORD,
        tls=RedisTls(free_port(), tls_files.server_cert, tls_files.server_key, tls_files.ca),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def secure_redis_overrides(secure_redis, tls_files, tmp_path_factory) -> dict[str, str]:
    password_file = tmp_path_factory.mktemp("redis-secret") / "redis-password"
    password_file.write_text(REDIS_PASSWORD + "\n")
    return {
        "redis_url": f"rediss://127.0.0.1:{secure_redis.tls.port}/0",
        "redis_password_file": str(password_file),
        "redis_ssl_ca_file": str(tls_files.ca),
    }


def cli(args: list[str], env_overrides: dict[str, str], timeout: float = 60, stdin: bytes | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update({k if k.startswith("LEADFLOW_") else f"LEADFLOW_{k.upper()}": str(v) for k, v in env_overrides.items()})
    return subprocess.run(
        [sys.executable, "-m", "leadflow.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )


def assert_one_line_error(result, *must_contain: str, secrets=(SASL_PASSWORD, REDIS_PASSWORD)) -> str:
    err = result.stderr.decode()
    out = result.stdout.decode()
    assert result.returncode != 0, out + err
    assert "Traceback" not in err and "Traceback" not in out, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for text in must_contain:
        assert text in lines[0], lines[0]
    for secret in secrets:
        assert secret not in err + out
    return lines[0]


# --- Kafka over SASL_SSL ------------------------------------------------------------------


def test_end_to_end_slice_over_sasl_ssl_and_redis_tls_auth(
    stack, stack_settings, sasl_ssl_overrides, secure_redis_overrides, tmp_path
):
    """form submit -> lead scored -> MQL -> assignment, with every client on the secured listeners:
    topic creation, the worker (Faust consumer, producer, changelogs), the roster CLI, publish, tail."""
    overrides = {**sasl_ssl_overrides, **secure_redis_overrides}
    harness = WorkerHarness(stack_settings, tmp_path, **overrides)  # creates topics over SASL_SSL
    try:
        loaded = cli(["roster", "load", str(REPO_ROOT / "config" / "roster.yaml")], harness.env_overrides)
        assert loaded.returncode == 0, loaded.stderr.decode()
        assert "rediss://127.0.0.1" in loaded.stdout.decode() and REDIS_PASSWORD not in loaded.stdout.decode()
        harness.start()
        kafka = KafkaTools(client=kafka_client_kwargs(harness.settings))
        email = "morgan.lee@acme-logistics.com"  # acme-logistics.com: an account owner in config/roster.yaml
        lead = lead_id_for_email(email)
        published = cli(["publish", "form", "-"], harness.env_overrides, stdin=as_json(form_submit(email)) + b"\n")
        assert published.returncode == 0, published.stderr.decode()
        kafka.produce(
            harness.topics.web_activity,
            [
                as_avro("web_activity", web_activity(email=email)),
                as_json(web_activity(email=email, page_type="demo", url="https://example.com/demo")),
            ],
        )
        out = kafka.consume(
            harness.topics.assignments,
            timeout=120,
            until=harness.watch(lambda rs: any(r["value"]["lead_id"] == lead for r in rs)),
        )
        [assignment] = [r["value"] for r in out if r["value"]["lead_id"] == lead]
        assert assignment["owner_id"] == "ae-ana" and not assignment["is_fallback"], harness.logs()
        mqls = kafka.consume(
            harness.topics.mqls, timeout=10, until=lambda rs: any(r["value"]["lead_id"] == lead for r in rs)
        )
        assert [r["value"]["event_id"] for r in mqls if r["value"]["lead_id"] == lead] == [assignment["mql_event_id"]]

        tailed = cli(
            ["tail", "assignments", "--from-beginning", "--max", "1", "--timeout", "20"], harness.env_overrides
        )
        assert tailed.returncode == 0, tailed.stderr.decode()
        assert lead in tailed.stdout.decode()
        logs = harness.logs()
        assert SASL_PASSWORD not in logs and REDIS_PASSWORD not in logs
        assert email not in logs
    finally:
        harness.stop_all()


def test_plaintext_client_cannot_use_the_sasl_listener(stack, sasl_ssl_overrides, stack_settings):
    """The listener really is secured: a client without TLS/SASL gets nowhere."""
    settings = load_settings(
        **{**stack_settings.model_dump(), "kafka_bootstrap": sasl_ssl_overrides["kafka_bootstrap"]}
    )
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable) as failure:
        check_kafka_sync(settings, timeout_s=5)
    assert time.monotonic() - started < 10
    assert sasl_ssl_overrides["kafka_bootstrap"] in str(failure.value)


@pytest.mark.parametrize("case", ["wrong_password", "untrusted_ca", "wrong_mechanism_user"])
def test_bad_kafka_credentials_fail_fast_with_one_line(case, stack, sasl_ssl_overrides, tls_files, tmp_path):
    overrides = dict(sasl_ssl_overrides)
    expected = {
        "wrong_password": "authentication failed",
        "untrusted_ca": "certificate verification failed",
        "wrong_mechanism_user": "authentication failed",
    }[case]
    if case == "wrong_password":
        overrides.pop("kafka_sasl_password_file")
        overrides["kafka_sasl_password"] = "not-the-password"
    elif case == "untrusted_ca":
        overrides["kafka_ssl_ca_file"] = str(tls_files.other_ca)
    else:
        overrides["kafka_sasl_username"] = "nobody"
    overrides["data_dir"] = str(tmp_path / "data")
    started = time.monotonic()
    result = cli(["worker"], overrides, timeout=60)
    elapsed = time.monotonic() - started
    line = assert_one_line_error(
        result, overrides["kafka_bootstrap"], "SASL_SSL", expected, secrets=(SASL_PASSWORD, "not-the-password")
    )
    assert elapsed < 15, f"took {elapsed:.1f}s: {line}"
    # The same check guards the CLI commands that talk to Kafka.
    for args in (["topics", "create"], ["tail", "mqls", "--max", "1", "--timeout", "5"]):
        assert_one_line_error(cli(args, overrides, timeout=60), expected, secrets=(SASL_PASSWORD, "not-the-password"))


def test_mutual_tls_client_certificate_is_accepted(stack, sasl_ssl_overrides, tls_files):
    settings = load_settings(
        **sasl_ssl_overrides, kafka_ssl_cert_file=tls_files.client_cert, kafka_ssl_key_file=tls_files.client_key
    )
    check_kafka_sync(settings, timeout_s=10)  # raises on failure


# --- Redis with AUTH and TLS --------------------------------------------------------------


def test_redis_auth_and_tls(secure_redis, secure_redis_overrides, tls_files):
    settings = load_settings(**secure_redis_overrides)
    client = wait_for_redis(settings, max_wait_s=10)
    assert client.ping() is True
    assert client.connection_pool.connection_kwargs.get("ssl_ca_certs") == str(tls_files.ca)

    # Password in the URL works too, and is redacted wherever the URL is shown.
    in_url = load_settings(
        redis_url=f"rediss://:{REDIS_PASSWORD}@127.0.0.1:{secure_redis.tls.port}/0", redis_ssl_ca_file=tls_files.ca
    )
    assert wait_for_redis(in_url, max_wait_s=10).ping() is True
    shown = cli(
        ["roster", "show"],
        {"redis_url": in_url.redis_url, "redis_ssl_ca_file": str(tls_files.ca), "redis_key_prefix": "empty-prefix"},
    )  # no roster: the URL is shown
    assert REDIS_PASSWORD not in shown.stdout.decode() + shown.stderr.decode()
    assert "rediss://:***@127.0.0.1" in shown.stdout.decode() + shown.stderr.decode()


@pytest.mark.parametrize("case", ["wrong_password", "no_password", "untrusted_ca"])
def test_bad_redis_credentials_fail_fast_with_one_line(case, secure_redis, secure_redis_overrides, tls_files):
    overrides = dict(secure_redis_overrides)
    expected = {
        "wrong_password": "authentication failed",
        "no_password": "authentication required",
        "untrusted_ca": "certificate verification failed",
    }[case]
    if case == "wrong_password":
        overrides.pop("redis_password_file")
        overrides["redis_password"] = "not-the-password"
    elif case == "no_password":
        overrides.pop("redis_password_file")
    else:
        overrides["redis_ssl_ca_file"] = str(tls_files.other_ca)
    settings = load_settings(**overrides)
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as failure:
        wait_for_redis(settings, max_wait_s=30)
    assert time.monotonic() - started < 5, "credential errors are not retried"
    message = str(failure.value)
    assert expected in message and "\n" not in message
    assert "not-the-password" not in message and REDIS_PASSWORD not in message
    # The CLI says the same in one line.
    assert_one_line_error(cli(["roster", "show"], overrides), expected, secrets=(REDIS_PASSWORD, "not-the-password"))
