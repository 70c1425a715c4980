"""Real keys and certificates for the pulumi-tls resources under the mock engine, so the code that consumes them
(Secrets, trust bundles) is exercised with what the provider would really return. Keys derive from the resource
name and signatures are deterministic, so the same input gives the same plan."""

import datetime
import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CURVES = {"P224": ec.SECP224R1(), "P256": ec.SECP256R1(), "P384": ec.SECP384R1(), "P521": ec.SECP521R1()}
_EXTENDED = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}
_NAME_FIELDS = {"commonName": NameOID.COMMON_NAME, "organization": NameOID.ORGANIZATION_NAME,
                "organizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME}


def private_key(name: str, inputs: dict[str, Any]) -> dict[str, str]:
    """PrivateKey outputs (ECDSA only: the program asks for nothing else)."""
    if inputs.get("algorithm") != "ECDSA":
        raise ValueError(f"preflight mocks only ECDSA keys, not {inputs.get('algorithm')}")
    curve = _CURVES[inputs.get("ecdsaCurve") or "P224"]
    seed = int.from_bytes(hashlib.sha512(f"preflight-key/{name}".encode()).digest(), "big")
    key = ec.derive_private_key(seed % (2 ** (curve.key_size - 1)) + 1, curve)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return {"privateKeyPem": pem, "publicKeyPem": public}


def _ecdsa_key(pem: str) -> ec.EllipticCurvePrivateKey:
    """A key `private_key` made (the PEM of a PrivateKey's outputs)."""
    key = serialization.load_pem_private_key(pem.encode(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"preflight mocks only ECDSA keys, not {type(key).__name__}")
    return key


def _subject(subject: dict[str, Any] | None) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, str((subject or {})[key]))
                      for key, oid in _NAME_FIELDS.items() if (subject or {}).get(key)])


def _sign(name: str, subject: x509.Name, public_key: Any, issuer: x509.Name, issuer_key: Any,
          inputs: dict[str, Any], dns_names: list[str]) -> str:
    # Valid from the start of today (UTC): real now-relative validity, the same bytes all day.
    start = datetime.datetime.now(datetime.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    uses = set(inputs.get("allowedUses") or [])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(int.from_bytes(hashlib.sha256(f"serial/{name}".encode()).digest()[:16], "big") >> 1)
               .not_valid_before(start)
               .not_valid_after(start + datetime.timedelta(hours=int(inputs["validityPeriodHours"])))
               .add_extension(x509.BasicConstraints(ca=bool(inputs.get("isCaCertificate")), path_length=None),
                              critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature="digital_signature" in uses, content_commitment=False,
                   key_encipherment="key_encipherment" in uses, data_encipherment=False, key_agreement=False,
                   key_cert_sign="cert_signing" in uses, crl_sign="crl_signing" in uses, encipher_only=False,
                   decipher_only=False), critical=True))
    extended = [_EXTENDED[u] for u in sorted(uses) if u in _EXTENDED]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns_names]),
                                        critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def self_signed_cert(name: str, inputs: dict[str, Any]) -> dict[str, str]:
    """SelfSignedCert outputs: the CA certificate."""
    key = _ecdsa_key(inputs["privateKeyPem"])
    subject = _subject(inputs.get("subject"))
    return {"certPem": _sign(name, subject, key.public_key(), subject, key, inputs, inputs.get("dnsNames") or [])}


def cert_request(inputs: dict[str, Any]) -> dict[str, str]:
    """CertRequest outputs: a CSR signed by the key."""
    key = _ecdsa_key(inputs["privateKeyPem"])
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(inputs.get("subject")))
    if inputs.get("dnsNames"):
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in inputs["dnsNames"]]),
                                        critical=False)
    csr = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    return {"certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode()}


def locally_signed_cert(name: str, inputs: dict[str, Any]) -> dict[str, str]:
    """LocallySignedCert outputs: the CSR's subject, key and SANs signed by the CA."""
    csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
    ca = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    ca_key = _ecdsa_key(inputs["caPrivateKeyPem"])
    try:
        dns_names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    return {"certPem": _sign(name, csr.subject, csr.public_key(), ca.subject, ca_key, inputs, dns_names)}
