"""Bearer tokens and TLS / mutual TLS on and off, on a real server (certificates made here with openssl)."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.client import PlacementClient
from tests.server_support import dataset, running_server, status_code
from wire.gen.placement.v1 import placement_pb2 as pb

TOKEN = "s3cret-token-value-42"


@pytest.mark.slow
def test_tokens_required_when_configured_and_never_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FP_TEST_TOKENS", f"other-token,{TOKEN}")
    caplog.set_level(logging.DEBUG)
    with running_server(tokens_env="FP_TEST_TOKENS") as (_, address):
        invalid = dataset("tiny")
        invalid.fleet.nodes[0].gpu_count = -1  # would be INVALID_ARGUMENT if it reached the servicer
        cases = {"no token": None, "wrong token": "nope", "empty": ""}
        for name, token in cases.items():
            with PlacementClient(address, timeout_s=10, token=token) as c:
                assert status_code(lambda c=c: c.place(invalid)) is grpc.StatusCode.UNAUTHENTICATED, name
        with PlacementClient(address, timeout_s=10) as c:
            md = (("authorization", f"Basic {TOKEN}"),)
            assert status_code(lambda: c.stub.Verify(pb.VerifyRequest(), timeout=5, metadata=md)) is (
                grpc.StatusCode.UNAUTHENTICATED
            )
            health = health_pb2_grpc.HealthStub(c.channel)  # health stays open without a token
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1
        with PlacementClient(address, timeout_s=10, token=TOKEN) as c:
            assert status_code(lambda: c.place(invalid)) is grpc.StatusCode.INVALID_ARGUMENT
            assert c.verify(dataset("tiny"), pb.Plan()).violations is not None
    assert TOKEN not in caplog.text


def test_tokens_file_and_health_protection(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# ops\n\n{TOKEN}\n")
    with running_server(tokens_file=str(tokens), auth_health=True) as (_, address):
        with PlacementClient(address, timeout_s=10) as c:
            health = health_pb2_grpc.HealthStub(c.channel)
            check = lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5)  # noqa: E731
            assert status_code(check) is grpc.StatusCode.UNAUTHENTICATED
        with PlacementClient(address, timeout_s=10, token=TOKEN) as c:
            assert c.explain(dataset("tiny"), dataset("tiny").workloads[0].name) is not None


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, all signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-days", "2", "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.pem"))  # fmt: skip
    return d


def test_tls_on_plaintext_refused(pki: Path) -> None:
    with running_server(tls_cert=str(pki / "server.pem"), tls_key=str(pki / "server.key")) as (_, address):
        with PlacementClient(address, timeout_s=10, root_certificates=pki / "ca.pem") as c:
            assert c.verify(dataset("tiny"), pb.Plan()) is not None
        with PlacementClient(address, timeout_s=3, max_attempts=1) as plain:
            assert (
                status_code(lambda: plain.verify(dataset("tiny"), pb.Plan())) is grpc.StatusCode.UNAVAILABLE
            )


def test_mutual_tls_needs_a_client_certificate(pki: Path) -> None:
    config = {
        "tls_cert": str(pki / "server.pem"),
        "tls_key": str(pki / "server.key"),
        "tls_client_ca": str(pki / "ca.pem"),
    }
    with running_server(**config) as (_, address):
        with PlacementClient(
            address,
            timeout_s=10,
            root_certificates=pki / "ca.pem",
            client_cert=pki / "client.pem",
            client_key=pki / "client.key",
        ) as c:
            assert c.verify(dataset("tiny"), pb.Plan()) is not None
        with PlacementClient(address, timeout_s=3, root_certificates=pki / "ca.pem", max_attempts=1) as anon:
            assert status_code(lambda: anon.verify(dataset("tiny"), pb.Plan())) is grpc.StatusCode.UNAVAILABLE
