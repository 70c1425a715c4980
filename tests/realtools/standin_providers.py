"""STAND-INS for the pulumi-tls and pulumi-random provider plugins, which no registry here serves.

Test-only. Started by the real Pulumi engine as `pulumi-resource-tls` / `pulumi-resource-random` (shims on PATH that
`shims(folder)` writes), over the engine's provider gRPC protocol. They implement exactly the resource types this
program uses, with the upstream semantics the plan depends on:
- every input change replaces the resource (the upstream schemas mark every input ForceNew), and a certificate
  inside its early-renewal window is replaced (`readyForRenewal`);
- computed outputs are unknown during a preview of a create or a replace;
- real keys, certificates and passwords (ECDSA/RSA keys, x509 with the planned key usages, bcrypt hashes), so TLS
  between the planned components works;
- the outputs upstream marks sensitive come back as secrets.
Property names are the Pulumi schema's (camelCase), as the engine sends them.

    python standin_providers.py tls|random [engine-address ...]   prints the port, then serves
"""

import datetime
import hashlib
import secrets as randomness
import string
import sys
from concurrent import futures
from importlib import metadata
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SIGNATURE = "4dabf18193072939515e22adb298388d"
SECRET = "1b47061264138c4ac30d75fd1eb44270"


def _plain(value: Any) -> Any:
    """A property value with its secret wrappers removed (the engine sends secrets wrapped: acceptSecrets)."""
    if isinstance(value, dict):
        if value.get(SIGNATURE) == SECRET:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _has_unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return value == UNKNOWN


def _secret(value: Any) -> dict:
    return {SIGNATURE: SECRET, "value": value}


def _struct(value: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    json_format.ParseDict(value, out)
    return out


def _dict(value: struct_pb2.Struct) -> dict:
    return json_format.MessageToDict(value) if value is not None else {}


# ---------------------------------------------------------------------------------------------------------- tls
def _tls():
    # Imported here: the random stand-in does not need cryptography.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    curves = {"P224": ec.SECP224R1, "P256": ec.SECP256R1, "P384": ec.SECP384R1, "P521": ec.SECP521R1}
    key_usages = {"digital_signature": "digital_signature", "content_commitment": "content_commitment",
                  "key_encipherment": "key_encipherment", "data_encipherment": "data_encipherment",
                  "key_agreement": "key_agreement", "cert_signing": "key_cert_sign", "crl_signing": "crl_sign",
                  "encipher_only": "encipher_only", "decipher_only": "decipher_only"}
    extended_usages = {"any_extended": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
                       "server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
                       "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
                       "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
                       "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
                       "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING}
    subject_fields = {"commonName": NameOID.COMMON_NAME, "organization": NameOID.ORGANIZATION_NAME,
                      "organizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME, "locality": NameOID.LOCALITY_NAME,
                      "province": NameOID.STATE_OR_PROVINCE_NAME, "country": NameOID.COUNTRY_NAME,
                      "postalCode": NameOID.POSTAL_CODE, "serialNumber": NameOID.SERIAL_NUMBER}

    def load_key(pem: str):
        return serialization.load_pem_private_key(pem.encode(), password=None)

    def algorithm_of(key) -> str:
        if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            return "RSA"
        if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            return "ECDSA"
        return "ED25519"

    def private_key(inputs: dict) -> tuple[str, dict]:
        algorithm = inputs["algorithm"]
        if algorithm == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs.get("rsaBits", 2048)))
            legacy = serialization.PrivateFormat.TraditionalOpenSSL
        elif algorithm == "ECDSA":
            key = ec.generate_private_key(curves[inputs.get("ecdsaCurve", "P224")]())
            legacy = serialization.PrivateFormat.TraditionalOpenSSL
        elif algorithm == "ED25519":
            key = ed25519.Ed25519PrivateKey.generate()
            legacy = serialization.PrivateFormat.PKCS8
        else:
            raise ValueError(f"algorithm: unsupported {algorithm!r} (RSA, ECDSA, ED25519)")
        pem = key.private_bytes(serialization.Encoding.PEM, legacy, serialization.NoEncryption()).decode()
        pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
        public = key.public_key()
        public_pem = public.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        outputs = {"privateKeyPem": _secret(pem), "privateKeyPemPkcs8": _secret(pkcs8),
                   "publicKeyPem": public_pem, "publicKeyFingerprintSha256": hashlib.sha256(der).hexdigest()}
        return hashlib.sha1(der).hexdigest(), outputs

    def name(subject: dict | None) -> x509.Name:
        attributes = []
        for field, oid in subject_fields.items():
            value = (subject or {}).get(field)
            if value:
                attributes.append(x509.NameAttribute(oid, value))
        return x509.Name(attributes)

    def validity(inputs: dict) -> tuple[datetime.datetime, datetime.datetime]:
        start = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        return start, start + datetime.timedelta(hours=int(inputs["validityPeriodHours"]))

    def extensions(builder, inputs: dict, public, issuer_public):
        uses = inputs.get("allowedUses") or []
        unknown = [u for u in uses if u not in key_usages and u not in extended_usages]
        if unknown:
            raise ValueError(f"allowedUses: unsupported {unknown}")
        all_flags = {flag: False for flag in key_usages.values()}
        all_flags.update({key_usages[u]: True for u in uses if u in key_usages})
        if any(all_flags.values()):
            builder = builder.add_extension(x509.KeyUsage(**all_flags), critical=True)
        extended = [extended_usages[u] for u in uses if u in extended_usages]
        if extended:
            builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
        is_ca = bool(inputs.get("isCaCertificate"))
        builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        # Go's x509 (which upstream uses) adds a subject key id to CA certificates and an authority key id from the
        # issuer's: chain building in Go clients (Thanos) relies on neither, but keep the same shape.
        if is_ca or inputs.get("setSubjectKeyId"):
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public),
                                        critical=False)
        return builder

    def sans(builder, inputs: dict):
        import ipaddress
        names = [x509.DNSName(d) for d in inputs.get("dnsNames") or []]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in inputs.get("ipAddresses") or []]
        names += [x509.UniformResourceIdentifier(u) for u in inputs.get("uris") or []]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder

    def signature_hash(key):
        return None if algorithm_of(key) == "ED25519" else hashes.SHA256()

    def certificate_outputs(cert, inputs: dict) -> dict:
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        return {"certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
                "validityStartTime": start.isoformat().replace("+00:00", "Z"),
                "validityEndTime": end.isoformat().replace("+00:00", "Z"),
                "readyForRenewal": ready_for_renewal(end.isoformat(), inputs)}

    def self_signed_cert(inputs: dict) -> tuple[str, dict]:
        key = load_key(inputs["privateKeyPem"])
        start, end = validity(inputs)
        serial = x509.random_serial_number()
        builder = (x509.CertificateBuilder().subject_name(name(inputs.get("subject")))
                   .issuer_name(name(inputs.get("subject"))).public_key(key.public_key()).serial_number(serial)
                   .not_valid_before(start).not_valid_after(end))
        builder = sans(extensions(builder, inputs, key.public_key(), key.public_key()), inputs)
        cert = builder.sign(key, signature_hash(key))
        return str(serial), {**certificate_outputs(cert, inputs), "keyAlgorithm": algorithm_of(key)}

    def cert_request(inputs: dict) -> tuple[str, dict]:
        key = load_key(inputs["privateKeyPem"])
        builder = sans(x509.CertificateSigningRequestBuilder().subject_name(name(inputs.get("subject"))), inputs)
        pem = builder.sign(key, signature_hash(key)).public_bytes(serialization.Encoding.PEM).decode()
        return hashlib.sha1(pem.encode()).hexdigest(), {"certRequestPem": pem, "keyAlgorithm": algorithm_of(key)}

    def locally_signed_cert(inputs: dict) -> tuple[str, dict]:
        request = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
        ca_key = load_key(inputs["caPrivateKeyPem"])
        ca = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
        start, end = validity(inputs)
        serial = x509.random_serial_number()
        builder = (x509.CertificateBuilder().subject_name(request.subject).issuer_name(ca.subject)
                   .public_key(request.public_key()).serial_number(serial).not_valid_before(start)
                   .not_valid_after(end))
        builder = extensions(builder, inputs, request.public_key(), ca.public_key())
        for extension in request.extensions:  # the request's subject alternative names, as upstream copies them
            if isinstance(extension.value, x509.SubjectAlternativeName):
                builder = builder.add_extension(extension.value, critical=extension.critical)
        cert = builder.sign(ca_key, signature_hash(ca_key))
        return str(serial), {**certificate_outputs(cert, inputs), "caKeyAlgorithm": algorithm_of(ca_key)}

    return {
        "tls:index/privateKey:PrivateKey": (private_key, {"ecdsaCurve": "P224", "rsaBits": 2048}),
        "tls:index/selfSignedCert:SelfSignedCert": (self_signed_cert, {"earlyRenewalHours": 0}),
        "tls:index/certRequest:CertRequest": (cert_request, {}),
        "tls:index/locallySignedCert:LocallySignedCert": (locally_signed_cert, {"earlyRenewalHours": 0}),
    }


def ready_for_renewal(end: str, inputs: dict) -> bool:
    """Upstream: a certificate is due once now is within earlyRenewalHours of its end (or past it)."""
    end_time = datetime.datetime.fromisoformat(end.replace("Z", "+00:00"))
    early = datetime.timedelta(hours=int(inputs.get("earlyRenewalHours") or 0))
    return datetime.datetime.now(datetime.timezone.utc) >= end_time - early


# ------------------------------------------------------------------------------------------------------- random
def _random():
    import bcrypt

    def password(inputs: dict) -> tuple[str, dict]:
        length = int(inputs["length"])
        classes = []
        for flag, alphabet, minimum in (("upper", string.ascii_uppercase, "minUpper"),
                                        ("lower", string.ascii_lowercase, "minLower"),
                                        ("numeric", string.digits, "minNumeric"),
                                        ("special", inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?",
                                         "minSpecial")):
            if inputs.get(flag, True):
                classes.append((alphabet, int(inputs.get(minimum) or 0)))
        if not classes:
            raise ValueError("at least one of upper, lower, numeric, special must be true")
        chars = [randomness.choice(alphabet) for alphabet, minimum in classes for _ in range(minimum)]
        pool = "".join(alphabet for alphabet, _ in classes)
        chars += [randomness.choice(pool) for _ in range(max(0, length - len(chars)))]
        randomness.SystemRandom().shuffle(chars)
        result = "".join(chars)
        hashed = bcrypt.hashpw(result.encode(), bcrypt.gensalt()).decode()
        return "none", {"result": _secret(result), "bcryptHash": _secret(hashed)}

    defaults = {"upper": True, "lower": True, "numeric": True, "special": True, "minUpper": 0, "minLower": 0,
                "minNumeric": 0, "minSpecial": 0}
    return {"random:index/randomPassword:RandomPassword": (password, defaults)}


# --------------------------------------------------------------------------------------------------- the server
class StandInProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, package: str):
        self.package = package
        self.resources = {"tls": _tls, "random": _random}[package]()
        try:
            self.version = metadata.version(f"pulumi_{package}")
        except metadata.PackageNotFoundError:
            self.version = "0.0.0"

    def _resource(self, urn: str):
        token = urn.split("::")[2].split("$")[-1]
        if token not in self.resources:
            raise ValueError(f"stand-in {self.package} provider: {token} is not implemented")
        return self.resources[token]

    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=self.version)

    def GetSchema(self, request, context):
        return provider_pb2.GetSchemaResponse(schema=f'{{"name": "{self.package}", "version": "{self.version}"}}')

    def CheckConfig(self, request, context):
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request, context):
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

    def Configure(self, request, context):
        return provider_pb2.ConfigureResponse(acceptSecrets=True, supportsPreview=True)

    def Check(self, request, context):
        _, defaults = self._resource(request.urn)
        news = _dict(request.news)
        return provider_pb2.CheckResponse(inputs=_struct({**defaults, **news}))

    def Diff(self, request, context):
        _, defaults = self._resource(request.urn)
        olds = _plain(_dict(request.old_inputs) or _dict(request.olds))
        news = _plain(_dict(request.news))
        changed = sorted(k for k in set(olds) | set(news)
                         if k in news and (_has_unknown(news[k]) or olds.get(k, defaults.get(k)) != news[k])
                         or k not in news and k in olds and olds[k] != defaults.get(k))
        state = _plain(_dict(request.olds))
        if "validityEndTime" in state and ready_for_renewal(state["validityEndTime"], news):
            changed.append("readyForRenewal")
        if not changed:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_SOME, replaces=changed,
                                         diffs=changed)

    def Create(self, request, context):
        make, defaults = self._resource(request.urn)
        inputs = _dict(request.properties)
        if request.preview:
            return provider_pb2.CreateResponse(id="", properties=_struct(inputs))
        try:
            resource_id, outputs = make({**defaults, **_plain(inputs)})
        except (ValueError, KeyError) as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{request.urn}: {error}")
        return provider_pb2.CreateResponse(id=resource_id, properties=_struct({**inputs, **outputs}))

    def Read(self, request, context):
        state = _dict(request.properties)
        plain = _plain(state)
        if "validityEndTime" in plain:
            state["readyForRenewal"] = ready_for_renewal(plain["validityEndTime"], plain)
        return provider_pb2.ReadResponse(id=request.id, properties=_struct(state), inputs=request.inputs)

    def Update(self, request, context):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                      f"{request.urn}: every input of this resource replaces it (upstream: ForceNew); no update")

    def Delete(self, request, context):
        return empty_pb2.Empty()

    def Cancel(self, request, context):
        return empty_pb2.Empty()


def main(argv: list[str]) -> None:
    package = argv[1]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(StandInProvider(package), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:  # the engine interrupts its plugins when it is done with them
        server.stop(grace=1)


def shims(folder, python: str) -> list[str]:
    """Writes `pulumi-resource-tls` and `pulumi-resource-random` into folder (put it on PATH): the names the engine
    looks for. Returns their paths."""
    from pathlib import Path
    paths = []
    for package in ("tls", "random"):
        path = Path(folder) / f"pulumi-resource-{package}"
        path.write_text(f"#!/bin/sh\n# STAND-IN for the {package} provider plugin (tests/realtools/standin_providers.py)\n"
                        f"exec {python} {Path(__file__).resolve()} {package} \"$@\"\n")
        path.chmod(0o755)
        paths.append(str(path))
    return paths


if __name__ == "__main__":
    main(sys.argv)
