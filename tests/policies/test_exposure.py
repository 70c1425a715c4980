"""Exposure rules (policies/thanos_policies/exposure.py): mTLS, authenticated entry points and their CA, monitors'
file access, the admin API."""

import copy

from ..support.policies import (DEPLOYMENT, OBJSTORE_ENV, STS, check, check_stack, chicago, compactor, container,
                                named, thanos_workload, workload)


def test_exposed_grpc_requires_server_mtls(prod):
    resources = chicago(prod)
    assert check_stack("thanos-exposure-grpc-mtls", resources) == []
    leaf = named(resources, "Deployment", "thanos-query-pods", "thanos")
    args = container(leaf["inputs"], "thanos-query")["args"]
    args[:] = [a for a in args if not a.startswith("--grpc-server-tls-client-ca=")]
    assert check_stack("thanos-exposure-grpc-mtls", resources) == [
        "Service thanos-query-grpc exposes the gRPC StoreAPI of thanos query outside the cluster without server mTLS: "
        "set --grpc-server-tls-cert, --grpc-server-tls-key and --grpc-server-tls-client-ca (anyone who reaches it "
        "reads every series)."]


def test_exposed_http_and_remote_write_are_refused(prod):
    resources = chicago(prod, "thanos")
    named(resources, "Service", "thanos-query", "thanos")["inputs"]["spec"]["type"] = "LoadBalancer"
    router_service = named(resources, "Service", "thanos-receive-router", "thanos")["inputs"]["spec"]
    router_service["type"] = "NodePort"
    router = named(resources, "Deployment", "thanos-receive-router", "thanos")
    args = container(router["inputs"], "thanos-receive-router")["args"]
    args[:] = [a for a in args if not a.startswith("--remote-write.server-tls-client-ca=")]
    assert check_stack("thanos-exposure-grpc-mtls", resources) == [
        "Service thanos-query exposes the HTTP API of thanos query outside the cluster: Thanos has no authentication; "
        "expose an authenticating proxy behind TLS instead.",
        "Service thanos-receive-router exposes the gRPC StoreAPI of thanos receive outside the cluster without server "
        "mTLS: set --grpc-server-tls-cert, --grpc-server-tls-key and --grpc-server-tls-client-ca (anyone who reaches it "
        "reads every series).",
        "Service thanos-receive-router exposes remote-write outside the cluster without a client CA: set "
        "--remote-write.server-tls-cert, -key and -client-ca, or put an authenticating proxy in front (anyone could "
        "write or overwrite series)."]


def test_ingress_entry_point_needs_tls_and_authentication(planned):
    resources = chicago(planned["dev"].plan["resources"], "thanos-global")
    assert check_stack("thanos-exposure-entry-point-auth", resources) == []
    ingress = named(resources, "Ingress", "thanos", "thanos-global")["inputs"]
    for path in ingress["spec"]["rules"][0]["http"]["paths"]:  # to the query-frontend itself, past dev's tenant gate
        path["backend"] = {"service": {"name": "thanos-query-frontend", "port": {"number": 10902}}}
    assert "annotations" not in ingress["metadata"]  # the gate checks the passwords, not nginx
    del ingress["spec"]["tls"]
    assert check_stack("thanos-exposure-entry-point-auth", resources) == [
        "Ingress thanos serves Thanos without TLS for every host: add spec.tls with a certificate (credentials and "
        "queries would cross the network in clear text).",
        "Ingress thanos routes to Thanos with no authentication: route to an authenticating proxy (oauth2-proxy) or "
        "set nginx basic auth (auth-type, auth-secret); Thanos has none."]


def test_gateway_entry_point_routes_through_the_proxy_over_https(prod):
    resources = chicago(prod, "thanos-global")
    assert check_stack("thanos-exposure-entry-point-auth", resources) == []
    route = named(resources, "HTTPRoute", "thanos", "thanos-global")["inputs"]
    route["spec"]["rules"][0]["backendRefs"] = [{"name": "thanos-query-frontend", "port": 10902}]
    named(resources, "Gateway", "thanos", "thanos-global")["inputs"]["spec"]["listeners"][0]["protocol"] = "HTTP"
    assert check_stack("thanos-exposure-entry-point-auth", resources) == [
        "HTTPRoute thanos serves Thanos on a Gateway listener without TLS: use an HTTPS listener.",
        "HTTPRoute thanos routes to Thanos (thanos-query-frontend) directly: Gateway API has no portable "
        "authentication; route to an authenticating proxy (oauth2-proxy) instead.",
        "HTTPRoute thanos-ready serves Thanos on a Gateway listener without TLS: use an HTTPS listener."]


def test_an_auth_proxy_that_skips_auth_on_a_client_header_is_refused(prod):
    """GHSA-7x63-xv5r-3p2x: under --reverse-proxy, skip-auth routes match the client's X-Forwarded-Uri, and every
    client is a trusted proxy until --trusted-proxy-ip is set (oauth2-proxy#3506)."""
    resources = chicago(prod, "thanos-global")
    proxy = named(resources, "Deployment", "thanos-oauth2-proxy", "thanos-global")
    args = container(proxy["inputs"], "oauth2-proxy")["args"]
    assert "--reverse-proxy" in args and not any(a.startswith("--skip-auth") for a in args)
    assert container(proxy["inputs"], "oauth2-proxy")["image"].endswith(":v7.15.6")
    route = named(resources, "HTTPRoute", "thanos", "thanos-global")["inputs"]
    assert "X-Forwarded-Uri" in route["spec"]["rules"][0]["filters"][0]["requestHeaderModifier"]["remove"]
    assert check_stack("thanos-exposure-entry-point-auth", resources) == []
    args.append("--skip-auth-route=GET=^/-/ready$")
    assert check_stack("thanos-exposure-entry-point-auth", resources) == [
        "oauth2-proxy thanos-oauth2-proxy skips authentication for routes it matches against the client's own "
        "X-Forwarded-Uri (--reverse-proxy, skip-auth routes, no --trusted-proxy-ip: GHSA-7x63-xv5r-3p2x): any request "
        "can claim a skipped path. Drop the skip-auth routes and probe oauth2-proxy's own /ping, or set "
        "--trusted-proxy-ip to the proxies that strip the header."]
    args.append("--trusted-proxy-ip=10.0.0.0/8")
    assert check_stack("thanos-exposure-entry-point-auth", resources) == []
    args[:] = [a for a in args if not a.startswith("--email-domain=")] + ["--email-domain=*"]
    assert check_stack("thanos-exposure-entry-point-auth", resources) == [
        "oauth2-proxy thanos-oauth2-proxy lets in every account of the identity provider (--email-domain=* and no "
        "--allowed-group): name the e-mail domains or groups that may query Thanos."]
    args.append("--allowed-group=sre")
    assert check_stack("thanos-exposure-entry-point-auth", resources) == []


def test_a_compactor_store_or_bucket_web_with_admin_operations_on_is_refused(prod):
    """Their HTTP port's mark API has the compactor delete any block; the switch came in v0.33 (compact, bucket web)
    and v0.39 (store), the API itself in v0.24. Without the block viewer there is no API."""
    policy = "thanos-exposure-admin-api-off"
    admin = "--disable-admin-operations"
    served = [("thanos-compactor", STS, "thanos-compactor", "compact"),
              ("thanos-store", STS, "thanos-store", "store"), ("thanos-store-dr-us-west-2", STS, "thanos-store", "store"),
              ("thanos-bucket-web", DEPLOYMENT, "thanos-bucket-web", "tools bucket web")]
    for name, kind, container_name, command in served:
        props = workload(prod, name)["inputs"]
        assert check(policy, kind, props) == [], name
        args = container(props, container_name)["args"]
        for off in ([a for a in args if a != admin], [*args, f"{admin}=false"], [*args, f"--no-{admin[2:]}"]):
            args[:] = off
            assert check(policy, kind, props) == [
                f"{name}: thanos {command} lets anyone who reaches its HTTP port mark every block for deletion (POST "
                "/api/v1/blocks/mark), and the compactor then deletes them: set --disable-admin-operations."], off
    store = thanos_workload("StatefulSet", "store", ["store", "--objstore.config=$(OBJSTORE)"], env=OBJSTORE_ENV)
    store["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = "docker.io/bitnami/thanos:0.38.0"
    assert check(policy, STS, store["inputs"]) == [
        "store: thanos store lets anyone who reaches its HTTP port mark every block for deletion (POST "
        "/api/v1/blocks/mark), and the compactor then deletes them; v0.38.0 cannot turn that off: upgrade to v0.39.0 "
        "or later and set --disable-admin-operations."]
    store["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/thanos/thanos:v0.23.2"
    assert check(policy, STS, store["inputs"]) == []  # no mark API yet
    assert check(policy, STS, compactor("compact", "--disable-admin-operations=true")["inputs"]) == []
    assert check(policy, STS, compactor("compact", "--web.disable")["inputs"]) == []
    assert check(policy, STS, thanos_workload("StatefulSet", "compact", ["compact"])["inputs"]) == []  # runs once
    query = thanos_workload("Deployment", "query", ["query"], replicas=2)
    assert check(policy, DEPLOYMENT, query["inputs"]) == []


def test_a_prometheus_taking_monitors_from_every_namespace_with_file_access_is_refused(planned):
    """A ServiceMonitor from any namespace could point bearerTokenFile at Prometheus' workload identity token and
    send it anywhere: azure's operator-mode Prometheus takes monitors from its own namespace and denies file access."""
    policy, kind = "thanos-exposure-monitor-file-access", "kubernetes:monitoring.coreos.com/v1:Prometheus"
    prometheus = next(r for r in planned["azure"].plan["resources"] if r["type"] == kind)
    props = copy.deepcopy(prometheus["inputs"])
    assert props["spec"]["arbitraryFSAccessThroughSMs"] == {"deny": True}
    assert props["spec"]["serviceMonitorNamespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": props["metadata"]["namespace"]}}
    assert check(policy, kind, props) == []
    props["spec"]["serviceMonitorNamespaceSelector"] = {}
    assert check(policy, kind, props) == []  # every namespace, but no file access
    del props["spec"]["arbitraryFSAccessThroughSMs"]
    assert check(policy, kind, props) == [
        "thanos-prometheus: Prometheus selects serviceMonitors from every namespace and allows them arbitrary file "
        "access: a ServiceMonitor from any namespace can send its token files (bucket write access) anywhere. Select "
        "your own namespaces (e.g. matchLabels kubernetes.io/metadata.name) and set arbitraryFSAccessThroughSMs.deny: "
        "true."]
    props["spec"]["podMonitorSelector"] = {}
    props["spec"]["podMonitorNamespaceSelector"] = {}
    assert "serviceMonitors, podMonitors from every namespace" in check(policy, kind, props)[0]
    props["spec"]["serviceMonitorNamespaceSelector"] = props["spec"]["podMonitorNamespaceSelector"] = None
    assert check(policy, kind, props) == []  # a null namespace selector: Prometheus' own namespace only


STACK_CA_PEM = ("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUStackCaStandIn0000000000000wCgYIKoZIzj0EAwIw\n"
                "-----END CERTIFICATE-----\n")
"""A PEM block standing for the server CA (the pack compares certificates as text; it never parses them)."""


def test_an_entry_point_certificate_from_an_mtls_ca_is_refused(planned):
    """Users trust the entry point's CA: prod's planned entry point (self-signed) passes; the old plan's entry Secret,
    signed by the server CA and carrying it as ca.crt, is refused, and so is a cert-manager Certificate from a CA
    Issuer that signs the leaves too. A Certificate from the entry point's own CA passes."""
    policy = "thanos-exposure-entry-point-ca"
    resources = planned["prod"].plan["resources"]
    global_objects = [r for r in resources if r["inputs"].get("metadata", {}).get("namespace") == "thanos-global"
                      and r.get("provider", "").endswith("k8s-chicago")]
    gateway = next(r for r in global_objects if r["type"] == "kubernetes:gateway.networking.k8s.io/v1:Gateway")
    entry = next(r for r in global_objects if r["type"] == "kubernetes:core/v1:Secret"
                 and r["inputs"]["metadata"]["name"] == "thanos-entry-point-tls")
    bundle = next(r for r in global_objects if r["type"] == "kubernetes:core/v1:Secret"
                  and r["inputs"]["metadata"]["name"] == "thanos-ca-bundle")
    assert "ca.crt" not in entry["inputs"]["stringData"]
    assert check_stack(policy, [gateway, entry, bundle]) == []
    # The plan file shows secret values redacted: the server CA as the engine shows it to the pack.
    server_ca = STACK_CA_PEM
    bundle = copy.deepcopy(bundle)
    bundle["inputs"]["stringData"] = {"ca.crt": server_ca, "readers.crt": "[secret]"}
    old = copy.deepcopy(entry)
    old["inputs"]["stringData"]["ca.crt"] = server_ca
    assert check_stack(policy, [gateway, old, bundle]) == [
        "Gateway thanos serves thanos-entry-point-tls, whose ca.crt is a CA that Secrets thanos-ca-bundle carry too: the "
        "stack's mTLS CA would sign the entry point, and users who trust it would trust whoever holds its key for every "
        "site. Issue the entry point from a CA of its own (name-constrained to the host), an ACME issuer or a Secret of "
        "yours (config: global-view.entry-point.tls)."]

    def cert_manager(kind, name, spec):
        return {"type": f"kubernetes:cert-manager.io/v1:{kind}", "provider": gateway["provider"],
                "inputs": {"apiVersion": "cert-manager.io/v1", "kind": kind,
                           "metadata": {"name": name, "namespace": "thanos-global"}, "spec": spec}}

    mtls = [cert_manager("Issuer", "thanos-ca", {"ca": {"secretName": "thanos-ca-keypair"}}),
            cert_manager("Certificate", "thanos-ruler-grpc-tls", {"secretName": "thanos-ruler-grpc-tls",
                                                                  "issuerRef": {"name": "thanos-ca"}})]
    from_mtls = cert_manager("Certificate", "thanos-entry-point-tls", {"secretName": "thanos-entry-point-tls",
                                                                       "issuerRef": {"name": "thanos-ca", "kind": "Issuer"}})
    assert check_stack(policy, [gateway, *mtls, from_mtls]) == [
        "Gateway thanos serves thanos-entry-point-tls, issued by the CA in Secret thanos-ca-keypair, which also signs "
        "thanos-ruler-grpc-tls: users who trust the entry point's CA would trust whoever holds the key of those "
        "certificates' CA for every site. Issue the entry point from a CA of its own (name-constrained to the host), an "
        "ACME issuer or a Secret of yours (config: global-view.entry-point.tls)."]
    # A Certificate of that CA without a secretName (not set, or computed at apply) is skipped: it used to be sorted
    # beside the named ones, a TypeError that stopped the pack (found by mypy).
    unnamed = cert_manager("Certificate", "thanos-unnamed", {"issuerRef": {"name": "thanos-ca"}})
    assert check_stack(policy, [gateway, *mtls, unnamed, from_mtls]) == check_stack(policy, [gateway, *mtls, from_mtls])
    own = [cert_manager("Issuer", "thanos-entry-point-ca", {"ca": {"secretName": "thanos-entry-point-ca"}}),
           cert_manager("Certificate", "thanos-entry-point-tls", {"secretName": "thanos-entry-point-tls",
                                                                  "issuerRef": {"name": "thanos-entry-point-ca"}})]
    assert check_stack(policy, [gateway, *mtls, *own]) == []
