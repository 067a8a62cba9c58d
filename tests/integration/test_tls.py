"""Connection security through Temporal's envconfig: `cadenza` processes reach the server over
mutual TLS with nothing but `TEMPORAL_TLS_*` variables. The dev server speaks plain gRPC, so the
test puts a TLS-terminating proxy in front of it that requires a client certificate signed by
the test's CA; a client without one is refused with a clear error."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.processes import cadenza, spawn_worker
from worker.client import connect_config


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_pki(folder: Path) -> None:
    """ca.pem, server.pem/.key (127.0.0.1, localhost) and client.pem/.key."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("cadenza test CA"))
        .issuer_name(_name("cadenza test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder / "ca", ca, ca_key)
    for name, extra in (
        ("server", [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
        ("client", [x509.DNSName("cadenza-worker")]),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(extra), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(folder / name, cert, key)


@contextlib.asynccontextmanager
async def mtls_proxy(upstream: str, pki: Path) -> AsyncIterator[str]:
    """A TLS endpoint (client certificate required, ALPN h2) piping to `upstream`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    context.load_verify_locations(pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    host, port = upstream.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    folder = tmp_path / "pki"
    folder.mkdir()
    make_pki(folder)
    return folder


async def test_worker_and_cli_connect_over_mutual_tls_from_envconfig_alone(
    temporal_address: str, task_queue: str, tmp_path: Path, pki: Path
) -> None:
    async with mtls_proxy(temporal_address, pki) as address:
        tls = {
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_TLS": "true",
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki / "ca.pem"),
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki / "client.pem"),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki / "client.key"),
            "TEMPORAL_TLS_SERVER_NAME": "localhost",
        }
        worker = spawn_worker(task_queue, tmp_path / "worker.log", **tls)
        try:
            proc = await asyncio.to_thread(
                cadenza,
                "run",
                "examples/data-pipeline.yaml",
                "--input",
                '{"rows": [1, 2]}',
                "--wait",
                "--json",
                "--task-queue",
                task_queue,
                **tls,
            )
            assert proc.returncode == 0, proc.stderr + (tmp_path / "worker.log").read_text()
            assert json.loads(proc.stdout)["status"] == "completed"
            # without a client certificate the proxy refuses the handshake: a clear error
            anonymous = {k: v for k, v in tls.items() if "CLIENT" not in k}
            refused = await asyncio.to_thread(cadenza, "top", "--json", **anonymous)
            assert refused.returncode == 2, refused.stdout
            assert f"cannot reach Temporal at {address}" in refused.stderr
            assert "Traceback" not in refused.stderr
        finally:
            # (a graceful stop waits out the shutdown RPC through this bare-bones proxy: 30 s)
            worker.kill()
            worker.wait(timeout=60)


def test_api_key_and_profiles_come_from_envconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API key turns TLS on (Temporal Cloud); a TOML profile supplies address and namespace."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", "ns.acct.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "ns.acct")
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret-key")
    config = connect_config()
    assert config["target_host"] == "ns.acct.tmprl.cloud:7233"
    assert config["namespace"] == "ns.acct" and config["api_key"] == "secret-key"
    assert config["tls"] is True or config["tls"]
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY"):
        monkeypatch.delenv(name)
    toml = tmp_path / "temporal.toml"
    toml.write_text(
        '[profile.prod]\naddress = "temporal.internal:7233"\nnamespace = "payments"\n'
        "[profile.prod.tls]\n"
        f'client_cert_path = "{tmp_path / "c.pem"}"\nclient_key_path = "{tmp_path / "c.key"}"\n'
    )
    (tmp_path / "c.pem").write_text("cert")
    (tmp_path / "c.key").write_text("key")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(toml))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")
    config = connect_config()
    assert config["target_host"] == "temporal.internal:7233" and config["namespace"] == "payments"
    assert config["tls"].client_cert == b"cert" and config["tls"].client_private_key == b"key"
