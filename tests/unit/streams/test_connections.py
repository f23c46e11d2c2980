"""Security settings and client configuration: one place decides how every client connects."""

from __future__ import annotations

import ssl

import pytest

from leadflow.devstack.kafka_config import SaslSslListener, server_properties
from leadflow.devstack.redis import RedisTls, render_redis_conf
from streams.connections import (
    describe_kafka_error,
    faust_broker_credentials,
    kafka_client_kwargs,
    librdkafka_client_config,
    redact_url,
    redis_client_kwargs,
)
from streams.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("rediss://:hunter2@cache.internal:6380/1", "rediss://:***@cache.internal:6380/1"),
        ("rediss://svc:hunter2@cache.internal:6380/1", "rediss://svc:***@cache.internal:6380/1"),
        ("https://user:p%40ss@registry:8081", "https://user:***@registry:8081"),
    ],
)
def test_redact_url_hides_passwords_only(url, shown):
    assert redact_url(url) == shown


def test_plaintext_is_the_default_and_needs_nothing():
    kwargs = kafka_client_kwargs(load_settings())
    assert kwargs == {"bootstrap_servers": "127.0.0.1:19092", "security_protocol": "PLAINTEXT"}
    assert faust_broker_credentials(load_settings()) is None


def test_sasl_ssl_settings_reach_every_client(tmp_path):
    password_file = tmp_path / "pw"
    password_file.write_text("from-a-file\n")
    settings = load_settings(
        kafka_bootstrap="b1:9096,b2:9096",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="svc",
        kafka_sasl_password_file=password_file,
        kafka_ssl_check_hostname=False,
    )
    kwargs = kafka_client_kwargs(settings)
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("svc", "from-a-file")
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext) and kwargs["ssl_context"].check_hostname is False
    credentials = faust_broker_credentials(settings)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.password == "from-a-file"
    assert "from-a-file" not in repr(settings) and "from-a-file" not in repr(credentials)


def test_ssl_only_uses_a_tls_context_without_sasl():
    settings = load_settings(kafka_security_protocol="SSL")
    kwargs = kafka_client_kwargs(settings)
    assert kwargs["security_protocol"] == "SSL" and "sasl_mechanism" not in kwargs
    assert faust_broker_credentials(settings).protocol.value == "SSL"


@pytest.mark.parametrize(
    "overrides, named",
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "LEADFLOW_KAFKA_SASL_USERNAME"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"}, "LEADFLOW_KAFKA_SASL_PASSWORD"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI"}, "LEADFLOW_KAFKA_SASL_MECHANISM"),
        ({"kafka_ssl_cert_file": "/etc/hosts"}, "LEADFLOW_KAFKA_SSL_KEY_FILE"),
        ({"kafka_ssl_ca_file": "/nonexistent/ca.pem"}, "LEADFLOW_KAFKA_SSL_CA_FILE"),
        ({"redis_password": "a", "redis_password_file": "/etc/hosts"}, "LEADFLOW_REDIS_PASSWORD_FILE"),
    ],
)
def test_inconsistent_security_settings_fail_naming_the_key(overrides, named):
    with pytest.raises(SettingsError) as failure:
        load_settings(**overrides)
    assert named in str(failure.value)


def test_secret_values_are_never_echoed_in_errors():
    with pytest.raises(SettingsError) as failure:
        load_settings(redis_url="http://admin:topsecret@cache:6379")
    assert "topsecret" not in str(failure.value) and "LEADFLOW_REDIS_URL" in str(failure.value)
    with pytest.raises(SettingsError) as failure:
        load_settings(kafka_sasl_password=["not", "a", "string", "topsecret"])
    assert "topsecret" not in str(failure.value)


def test_long_values_are_cut_in_errors():
    with pytest.raises(SettingsError) as failure:
        load_settings(topic_partitions="9" * 100_000)
    assert len(str(failure.value)) < 600


def test_redis_kwargs_carry_auth_and_tls(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    settings = load_settings(
        redis_url="rediss://cache:6380/0", redis_username="app", redis_password="pw", redis_ssl_ca_file=ca
    )
    kwargs = redis_client_kwargs(settings)
    assert kwargs == {
        "username": "app",
        "password": "pw",
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": str(ca),
    }
    assert redis_client_kwargs(load_settings()) == {}


def test_kafka_errors_become_causes_without_secrets():
    settings = load_settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password="pw")
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "self-signed certificate in certificate chain"
    assert "TLS certificate verification failed" in describe_kafka_error(verify, settings)
    assert "connection refused" in describe_kafka_error(ConnectionRefusedError(111, "refused"), settings)

    class SaslAuthenticationFailed(Exception):
        pass

    assert "authentication failed" in describe_kafka_error(SaslAuthenticationFailed("bad"), settings)


def test_devstack_sasl_ssl_listener_config(tmp_path):
    listener = SaslSslListener(29094, tmp_path / "ks.pem", {"svc": "pw"})
    props = server_properties(port=1, controller_port=2, log_dir=tmp_path, sasl_ssl=listener)
    assert props["listeners"].endswith(",SASL_SSL://127.0.0.1:29094")
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"]
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert listener.format_arguments() == [
        "--add-scram",
        "SCRAM-SHA-256=[name=svc,password=pw]",
        "--add-scram",
        "SCRAM-SHA-512=[name=svc,password=pw]",
    ]


def test_devstack_redis_conf_with_auth_and_tls(tmp_path):
    conf = render_redis_conf(
        port=1,
        data_dir=tmp_path,
        log_file=tmp_path / "l",
        password="pw",
        tls=RedisTls(2, tmp_path / "c", tmp_path / "k", tmp_path / "ca"),
    )
    assert 'requirepass "pw"' in conf and "tls-port 2" in conf


def test_librdkafka_plaintext_needs_only_the_servers():
    assert librdkafka_client_config(load_settings(kafka_bootstrap="b1:9092,b2:9092")) == {
        "bootstrap.servers": "b1:9092,b2:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_librdkafka_sasl_ssl_with_scram_maps_every_security_setting(tmp_path):
    password_file, ca_file = tmp_path / "pw", tmp_path / "ca.pem"
    password_file.write_text("from-a-file\n")
    ca_file.write_text("(a PEM CA)\n")
    settings = load_settings(
        kafka_bootstrap="b1:9096",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="svc",
        kafka_sasl_password_file=password_file,
        kafka_ssl_ca_file=ca_file,
        kafka_ssl_check_hostname=False,
    )
    assert librdkafka_client_config(settings) == {
        "bootstrap.servers": "b1:9096",
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(ca_file),
        "ssl.endpoint.identification.algorithm": "none",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "svc",
        "sasl.password": "from-a-file",
    }


def test_librdkafka_ssl_with_a_client_certificate_and_the_system_trust_store(tmp_path):
    for name in ("client.pem", "client.key"):
        (tmp_path / name).write_text("(PEM)\n")
    settings = load_settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cert_file=tmp_path / "client.pem",
        kafka_ssl_key_file=tmp_path / "client.key",
        kafka_ssl_key_password="key-pw",
    )
    config = librdkafka_client_config(settings)
    assert config["ssl.ca.location"] == "probe"  # librdkafka's wheels find the system CAs only so
    assert (config["ssl.certificate.location"], config["ssl.key.location"]) == (
        str(tmp_path / "client.pem"),
        str(tmp_path / "client.key"),
    )
    assert config["ssl.key.password"] == "key-pw"
    assert config["ssl.endpoint.identification.algorithm"] == "https"
    assert not any(k.startswith("sasl.") for k in config)
