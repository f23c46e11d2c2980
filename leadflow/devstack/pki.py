"""A throwaway PKI for the local stack and the tests: a CA, a server certificate for
127.0.0.1/localhost signed by it, a client certificate (mTLS), and an unrelated second CA
(to prove that an untrusted chain fails). Never for production: keys are unencrypted."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # PEM CA certificate that signed the server certificate
    server_cert: Path
    server_key: Path  # unencrypted PKCS#8
    server_keystore: Path  # key + chain in one PEM file (Kafka's PEM keystore)
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ca(common_name: str, days: int = 2):
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(ca_key, ca_cert, common_name: str, usage, sans=(), days: int = 2):
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def tls_file_paths(directory: Path) -> TlsFiles:
    return TlsFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        server_keystore=directory / "server-keystore.pem",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.pem",
    )


def ensure_tls_files(directory: Path, days: int = 365) -> TlsFiles:
    """The PKI in ``directory``, made once (the local stack keeps it across restarts)."""
    files = tls_file_paths(directory)
    if all(Path(p).is_file() for p in vars(files).values()):
        return files
    return make_tls_files(directory, days=days)


def make_tls_files(directory: Path, days: int = 2) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_key, ca_cert = _ca("leadflow dev CA", days)
    server_key, server_cert = _leaf(
        ca_key,
        ca_cert,
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        days,
    )
    client_key, client_cert = _leaf(ca_key, ca_cert, "leadflow-client", ExtendedKeyUsageOID.CLIENT_AUTH, (), days)
    _, other_cert = _ca("some other CA", days)
    pem = serialization.Encoding.PEM
    files = tls_file_paths(directory)
    files.ca.write_bytes(ca_cert.public_bytes(pem))
    files.server_cert.write_bytes(server_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    files.server_key.write_bytes(_pem_key(server_key))
    files.server_keystore.write_bytes(_pem_key(server_key) + server_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    files.client_cert.write_bytes(client_cert.public_bytes(pem))
    files.client_key.write_bytes(_pem_key(client_key))
    files.other_ca.write_bytes(other_cert.public_bytes(pem))
    for path in (files.server_key, files.server_keystore, files.client_key):
        path.chmod(0o600)
    return files
