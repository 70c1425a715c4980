"""The tls and random STAND-INS (tests/realtools/standin_providers.py) over the engine's own gRPC protocol: real
keys and certificates that verify, every input change a replacement, outputs unknown in a preview."""

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from tests.realtools.standin_providers import SECRET, SIGNATURE

PROVIDERS = Path(__file__).parent / "realtools" / "standin_providers.py"


@pytest.fixture
def started():
    processes = []

    def start(package: str):
        proc = subprocess.Popen([sys.executable, str(PROVIDERS), package], stdout=subprocess.PIPE, text=True)
        processes.append(proc)
        port = int(proc.stdout.readline())
        return provider_pb2_grpc.ResourceProviderStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

    yield start
    for proc in processes:
        proc.terminate()
        proc.wait(timeout=10)


def struct(value: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    json_format.ParseDict(value, out)
    return out


def plain(value):
    if isinstance(value, dict):
        if value.get(SIGNATURE) == SECRET:
            return plain(value["value"])
        return {k: plain(v) for k, v in value.items()}
    return value


def create(stub, token: str, inputs: dict, preview: bool = False) -> tuple[str, dict]:
    urn = f"urn:pulumi:dev::thanos::{token}::x"
    checked = stub.Check(provider_pb2.CheckRequest(urn=urn, news=struct(inputs)))
    response = stub.Create(provider_pb2.CreateRequest(urn=urn, properties=checked.inputs, preview=preview))
    return response.id, json_format.MessageToDict(response.properties)


def test_tls_certificates_chain_and_verify_for_their_uses(started, tmp_path):
    stub = started("tls")
    _, ca_key = create(stub, "tls:index/privateKey:PrivateKey", {"algorithm": "ECDSA", "ecdsaCurve": "P384"})
    assert ca_key["privateKeyPem"][SIGNATURE] == SECRET  # sensitive upstream: a secret
    _, ca = create(stub, "tls:index/selfSignedCert:SelfSignedCert", {
        "privateKeyPem": plain(ca_key["privateKeyPem"]), "isCaCertificate": True, "validityPeriodHours": 48,
        "allowedUses": ["cert_signing", "crl_signing", "digital_signature"], "subject": {"commonName": "test CA"}})
    _, key = create(stub, "tls:index/privateKey:PrivateKey", {"algorithm": "ECDSA", "ecdsaCurve": "P256"})
    _, request = create(stub, "tls:index/certRequest:CertRequest", {
        "privateKeyPem": plain(key["privateKeyPem"]), "dnsNames": ["localhost"], "subject": {"commonName": "leaf"}})
    _, leaf = create(stub, "tls:index/locallySignedCert:LocallySignedCert", {
        "certRequestPem": request["certRequestPem"], "caCertPem": ca["certPem"],
        "caPrivateKeyPem": plain(ca_key["privateKeyPem"]), "validityPeriodHours": 24,
        "allowedUses": ["digital_signature", "key_encipherment", "server_auth", "client_auth"]})
    (tmp_path / "ca.pem").write_text(ca["certPem"])
    (tmp_path / "leaf.pem").write_text(leaf["certPem"])
    (tmp_path / "leaf.key").write_text(plain(key["privateKeyPem"]))
    verify = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", str(tmp_path / "ca.pem"),
                             str(tmp_path / "leaf.pem")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(tmp_path / "leaf.pem")],
                          capture_output=True, text=True).stdout
    assert "DNS:localhost" in text and "TLS Web Client Authentication" in text
    assert leaf["readyForRenewal"] is False and leaf["validityEndTime"].endswith("Z")


def test_every_input_change_replaces_and_a_preview_leaves_outputs_unknown(started):
    stub = started("random")
    token = "random:index/randomPassword:RandomPassword"
    resource_id, password = create(stub, token, {"length": 32, "special": False})
    result = plain(password["result"])
    assert len(result) == 32 and result.isalnum() and password["result"][SIGNATURE] == SECRET
    urn = f"urn:pulumi:dev::thanos::{token}::x"
    same = stub.Diff(provider_pb2.DiffRequest(urn=urn, id=resource_id, olds=struct(password),
                                              old_inputs=struct({"length": 32, "special": False}),
                                              news=struct({"length": 32, "special": False})))
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE
    longer = stub.Diff(provider_pb2.DiffRequest(urn=urn, id=resource_id, olds=struct(password),
                                                old_inputs=struct({"length": 32, "special": False}),
                                                news=struct({"length": 40, "special": False})))
    assert longer.changes == provider_pb2.DiffResponse.DIFF_SOME and list(longer.replaces) == ["length"]
    _, previewed = create(stub, token, {"length": 32}, preview=True)
    assert "result" not in previewed  # computed: unknown until the resource is created
