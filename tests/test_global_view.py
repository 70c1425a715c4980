"""The global view: the TLS chain proven with a real handshake on the certificates the plan holds, the global tier's
wiring, the config rules, and the entry point's htpasswd."""

import json
import socket
import ssl
import threading

import bcrypt
import pytest
import yaml

import config
from components.global_view.entry_point import htpasswd_line
from components.global_view.leaves import LEAF_SERVICE
from components.global_view.tier import (global_query_flags, global_replica_labels, global_rule_groups, global_sd_config,
                                         rules_query_sd_config)
from components.thanos.query import query_args

from tests.support.stacks import run_probe, stack_config

DUMP_CERTIFICATES = """
plan = {plan}
out = {{"secrets": {{}}, "outputs": plan.outputs, "records": []}}
for r in plan.resources:
    if r.type == "kubernetes:core/v1:Secret" and (r.inputs.get("type") == "kubernetes.io/tls" or
                                                  r.inputs["metadata"]["name"] == "thanos-ca-bundle"):
        provider = next(p.name for p in plan.resources if p.urn == r.provider)
        meta = r.inputs["metadata"]
        out["secrets"][provider + "/" + meta["namespace"] + "/" + meta["name"]] = r.inputs["stringData"]
    if r.type in ("aws:route53/record:Record",):
        out["records"].append(r.inputs)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    planned = {}
    for stack in ("prod", "dev"):
        proc = run_probe(tmp_path_factory.mktemp(stack), DUMP_CERTIFICATES.format(plan=f"plan_stack({stack!r})"))
        assert proc.returncode == 0, proc.stderr
        planned[stack] = json.loads(proc.stdout.splitlines()[-1])
    return planned


def write_pair(tmp_path, name, secret):
    paths = {}
    for key in ("tls.crt", "tls.key", "ca.crt"):
        paths[key] = tmp_path / f"{name}-{key}"
        paths[key].write_text(secret[key])
    return paths


def server_pair(tmp_path, planned, where: str, secret: str, accepts: str):
    """A server's certificate (`where` is provider/namespace) and the client CA it accepts: the file of the
    namespace's planned thanos-ca-bundle that its flags name (readers.crt or writers.crt)."""
    paths = write_pair(tmp_path, f"{where.replace('/', '-')}-{secret}", planned["secrets"][f"{where}/{secret}"])
    paths["clients.crt"] = tmp_path / f"{where.replace('/', '-')}-{accepts}"
    paths["clients.crt"].write_text(planned["secrets"][f"{where}/thanos-ca-bundle"][accepts])
    return paths


def handshake(server_files, client_files, server_name):
    """A TLS 1.3 server requiring a client certificate from its client CA (as Thanos does with
    --grpc-server-tls-client-ca) and a client dialling `server_name`; returns (client error or None, server error
    or None, the peer's subject)."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    server_ctx.load_cert_chain(server_files["tls.crt"], server_files["tls.key"])
    server_ctx.load_verify_locations(server_files["clients.crt"])
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(client_files["ca.crt"])
    if "tls.key" in client_files:
        client_ctx.load_cert_chain(client_files["tls.crt"], client_files["tls.key"])
    listener = socket.create_server(("127.0.0.1", 0))
    result = {"server": None, "subject": None}

    def serve():
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                result["subject"] = dict(item[0] for item in tls.getpeercert()["subject"])
                tls.sendall(tls.recv(4))
        except (ssl.SSLError, OSError) as err:
            result["server"] = err

    thread = threading.Thread(target=serve)
    thread.start()
    client_error = None
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=server_name) as tls:
                tls.sendall(b"ping")
                if tls.recv(4) != b"ping":
                    client_error = "no echo"
    except (ssl.SSLError, OSError) as err:
        client_error = err
    thread.join(10)
    listener.close()
    return client_error, result["server"], result["subject"]


def test_the_global_query_reaches_a_leaf_over_mtls_with_the_name_it_dials(certificates, tmp_path):
    """prod: the SRV record's target for chicago is the name the global query dials (dnssrvnoa+ keeps names); the
    leaf's server certificate, the global tier's client certificate and the stack CA complete a TLS 1.3 handshake."""
    prod = certificates["prod"]
    srv = next(r for r in prod["records"] if r["type"] == "SRV")
    chicago = next(v.split()[-1].rstrip(".") for v in srv["records"] if ".chicago." in v)
    leaf = server_pair(tmp_path, prod, "k8s-chicago/thanos", "thanos-query-grpc-tls", "readers.crt")
    client = write_pair(tmp_path, "client", prod["secrets"]["k8s-chicago/thanos-global/thanos-global-client-tls"])
    client_error, server_error, subject = handshake(leaf, client, chicago)
    assert (client_error, server_error) == (None, None)
    assert subject == {"commonName": "thanos-global-query"}
    # The standby's global tier (seattle) holds its own client certificate from the same CA: it gets in too.
    standby = write_pair(tmp_path, "standby", prod["secrets"]["k8s-seattle/thanos-global/thanos-global-client-tls"])
    assert handshake(leaf, standby, chicago)[:2] == (None, None)


def test_a_client_without_a_certificate_or_dialling_another_name_is_refused(certificates, tmp_path):
    prod = certificates["prod"]
    leaf = server_pair(tmp_path, prod, "k8s-chicago/thanos", "thanos-query-grpc-tls", "readers.crt")
    anonymous = {"ca.crt": leaf["ca.crt"]}
    client_error, server_error, _ = handshake(leaf, anonymous, "query.chicago.obs.acme.internal")
    assert client_error is not None and isinstance(server_error, ssl.SSLError)
    assert "CERTIFICATE_REQUIRED" in str(client_error) or "PEER_DID_NOT_RETURN_A_CERTIFICATE" in str(server_error)
    client = write_pair(tmp_path, "client", prod["secrets"]["k8s-chicago/thanos-global/thanos-global-client-tls"])
    client_error, _, _ = handshake(leaf, client, "query.seattle.obs.acme.internal")
    assert isinstance(client_error, ssl.SSLCertVerificationError) and "mismatch" in str(client_error)


def test_a_remote_writer_needs_the_client_certificate_too(certificates, tmp_path):
    dev = certificates["dev"]
    router = server_pair(tmp_path, dev, "k8s-chicago/thanos-chicago", "thanos-remote-write-tls", "writers.crt")
    writer = write_pair(tmp_path, "writer", dev["secrets"]["k8s-chicago/thanos-chicago/thanos-remote-write-client-tls"])
    name = "thanos-receive-router.thanos-chicago.svc.cluster.local"
    assert handshake(router, writer, name)[:2] == (None, None)
    assert handshake(router, {"ca.crt": router["ca.crt"]}, name)[0] is not None


def test_each_certificate_opens_only_what_it_is_for(certificates, planned, tmp_path):
    """One CA per trust relationship: a writer's certificate does not open a leaf (reading every series), the global
    query's does not open a router (writing), and one cluster's writer does not write into another cluster. The
    servers below accept the bundle file their planned flags name."""
    def args_of(name):
        workload = next(o for o in planned["prod"].objects(cluster="chicago")
                        if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == name
                        and o["metadata"]["namespace"] == "thanos")
        return workload["spec"]["template"]["spec"]["containers"][0]["args"]

    assert "--grpc-server-tls-client-ca=/etc/thanos/ca/readers.crt" in args_of("thanos-query-pods")
    assert "--remote-write.server-tls-client-ca=/etc/thanos/ca/writers.crt" in args_of("thanos-receive-router")
    prod = certificates["prod"]
    leaf = server_pair(tmp_path, prod, "k8s-chicago/thanos", "thanos-query-grpc-tls", "readers.crt")
    router = server_pair(tmp_path, prod, "k8s-chicago/thanos", "thanos-remote-write-tls", "writers.crt")
    seattle_router = server_pair(tmp_path, prod, "k8s-seattle/thanos", "thanos-remote-write-tls", "writers.crt")
    reader = write_pair(tmp_path, "reader", prod["secrets"]["k8s-chicago/thanos-global/thanos-global-client-tls"])
    writer = write_pair(tmp_path, "writer", prod["secrets"]["k8s-chicago/thanos/thanos-remote-write-client-tls"])
    leaf_name, router_name = "query.chicago.obs.acme.internal", "thanos-receive-router.thanos.svc.cluster.local"
    assert handshake(leaf, reader, leaf_name)[:2] == (None, None)
    assert handshake(router, writer, router_name)[:2] == (None, None)
    for server, client, name in ((leaf, writer, leaf_name), (router, reader, router_name),
                                 (seattle_router, writer, router_name)):
        _, server_error, _ = handshake(server, client, name)
        assert isinstance(server_error, ssl.SSLError) and "certificate verify failed" in str(server_error), server_error


def test_dev_leaves_are_dialled_by_their_service_names_with_matching_certificates(certificates, tmp_path):
    dev = certificates["dev"]
    leaves = dev["outputs"]["global"]["leaves"]
    assert leaves == ["thanos-query-grpc.thanos-chicago.svc.cluster.local:10901",
                      "thanos-query-grpc.thanos-seattle.svc.cluster.local:10901"]
    client = write_pair(tmp_path, "client", dev["secrets"]["k8s-chicago/thanos-global/thanos-global-client-tls"])
    for leaf_address, namespace in zip(leaves, ("thanos-chicago", "thanos-seattle"), strict=True):
        leaf = server_pair(tmp_path, dev, f"k8s-{namespace.split('-')[1]}/{namespace}", "thanos-query-grpc-tls",
                           "readers.crt")
        assert handshake(leaf, client, leaf_address.rsplit(":", 1)[0])[:2] == (None, None)


def test_ca_rotation_trusts_old_and_new_until_the_old_is_dropped(tmp_path):
    """Phase 1 of a rotation (trust 1 and 2, still sign with 1): servers signed by the old CA and clients holding the
    bundle work together, and the bundle carries both CAs."""
    probe = DUMP_CERTIFICATES.format(
        plan="plan_stack('dev', edit=lambda c: c.update(tls={'ca-generation': 2, 'trusted-ca-generations': [1, 2]}))")
    proc = run_probe(tmp_path, probe)
    assert proc.returncode == 0, proc.stderr
    planned = json.loads(proc.stdout.splitlines()[-1])
    secrets = planned["secrets"]
    leaf = secrets["k8s-chicago/thanos-chicago/thanos-query-grpc-tls"]
    assert leaf["ca.crt"].count("BEGIN CERTIFICATE") == 2
    bundle = secrets["k8s-chicago/thanos-chicago/thanos-ca-bundle"]
    assert {key: pem.count("BEGIN CERTIFICATE") for key, pem in bundle.items()} == {
        "ca.crt": 2, "readers.crt": 2, "writers.crt": 2}  # every CA rotates with the same generations
    client = write_pair(tmp_path, "client", secrets["k8s-chicago/thanos-global/thanos-global-client-tls"])
    server = server_pair(tmp_path, planned, "k8s-chicago/thanos-chicago", "thanos-query-grpc-tls", "readers.crt")
    assert handshake(server, client, "thanos-query-grpc.thanos-chicago.svc.cluster.local")[:2] == (None, None)


# --- the global tier's wiring -----------------------------------------------------------------------------------

def test_the_global_query_lists_every_leaf_strict_and_dedups_on_every_replica_label(planned):
    query = next(o for o in planned["prod"].objects("Deployment", cluster="chicago")
                 if o["metadata"]["namespace"] == "thanos-global" and o["metadata"]["name"] == "thanos-query-pods")
    args = query["spec"]["template"]["spec"]["containers"][0]["args"]
    sd = json.loads(next(a.split("=", 1)[1] for a in args if a.startswith("--endpoint.sd-config=")))
    # By name and strict, never through the SRV record: a discovered leaf that dies is dropped without a warning.
    assert sd["endpoints"] == [{"address": f"query.{c}.obs.acme.internal:10901", "strict": True} for c in ("chicago", "seattle")] + \
        [{"address": f"thanos-ruler-{i}.thanos-ruler.thanos-global.svc.cluster.local:10901", "strict": True} for i in (0, 1)]
    assert sd["default_client_config"]["tls_config"]["cert_file"] == "/etc/thanos/tls/tls.crt"
    labels = sorted(a.split("=", 1)[1] for a in args if a.startswith("--query.replica-label="))
    assert labels == ["prometheus_replica", "receive_replica", "rule_replica"]
    assert "--query.partial-response" in args and "--store.response-timeout=90s" in args
    assert "--endpoint.info-timeout=15s" in args
    outputs = planned["prod"].plan["outputs"]["global"]
    assert outputs["endpoint"] == "https://thanos.obs.acme.internal"
    assert outputs["leaves"] == ["query.chicago.obs.acme.internal:10901", "query.seattle.obs.acme.internal:10901"]


def test_every_stack_shows_the_global_tier(planned):
    for stack in ("dev", "prod", "gcp", "azure"):
        outputs = planned[stack].plan["outputs"]["global"]
        assert len(outputs["leaves"]) == 2 and outputs["endpoint"].startswith("https://")
        tiers = [r for r in planned[stack].plan["resources"] if r["type"] == "thanos:global:Tier"]
        assert len(tiers) == (1 if stack == "dev" else 2)


def test_the_global_ruler_warns_on_its_missing_cluster_alert_and_aborts_on_configured_groups(planned):
    """The default group exists to see a missing cluster: with strict leaves a dead one makes the query error for it,
    and an aborting group would fail its evaluation instead of firing. Configured groups abort."""
    rules = next(o for o in planned["dev"].objects("ConfigMap", cluster="chicago")
                 if o["metadata"]["namespace"] == "thanos-global" and o["metadata"]["name"] == "thanos-ruler-rules")
    groups = yaml.safe_load(rules["data"]["thanos.yaml"])["groups"]
    assert [g["partial_response_strategy"] for g in groups] == ["warn"]
    assert {r["labels"]["cluster"] for r in groups[0]["rules"]} == {"chicago", "seattle"}
    raw = stack_config("prod")
    raw["global-view"]["ruler"] = {"rule-groups": [{"name": "mine", "rules": [{"alert": "A", "expr": "vector(1)"}]}]}
    view = config.load(raw).global_view
    assert [g["partial_response_strategy"] for g in global_rule_groups(view, ["chicago"])] == ["abort"]


def test_distributed_mode_partitions_by_cluster_on_the_thanos_engine_over_leaves_only():
    raw = stack_config("prod")
    raw["global-view"].update({"mode": "distributed", "query": {"promql-engine": "thanos"}, "ruler": {"enabled": False}})
    view = config.load(raw).global_view
    sd = global_sd_config(view, ["query.chicago.obs.acme.internal:10901"], "thanos-global")
    assert sd["endpoints"] == [{"address": "query.chicago.obs.acme.internal:10901", "strict": True}]
    assert global_replica_labels(view, ["prometheus_replica"]) == ["prometheus_replica"]
    args = query_args(view.query, sd, ["prometheus_replica"], extra_flags=global_query_flags(view))
    assert {"--query.mode=distributed", "--query.partition-label=cluster", "--query.promql-engine=thanos",
            "--query.distributed-with-overlapping-interval"} <= set(args)


def test_distributed_mode_reads_the_global_ruler_through_a_query_partitioned_by_tier():
    """With the ruler on, the distributed global query lists the query in front of the ruler (in the clear, inside
    the namespace) instead of the ruler's StoreAPI, and partitions by `tier` beside `cluster`; that query lists every
    ruler replica over mTLS. In local mode the global query still lists the ruler replicas themselves."""
    raw = stack_config("prod")
    raw["global-view"].update({"mode": "distributed", "query": {"promql-engine": "thanos"}})
    view = config.load(raw).global_view
    leaf = {"address": "query.chicago.obs.acme.internal:10901", "strict": True}
    sd = global_sd_config(view, [leaf["address"]], "thanos-global")
    assert sd["endpoints"] == [leaf, {"address": "thanos-query-rules.thanos-global.svc.cluster.local:10901",
                                      "strict": True, "client_config": {"tls_config": {"enabled": False}}}]
    assert [f for f in global_query_flags(view) if f.startswith("--query.partition-label")] == [
        "--query.partition-label=cluster", "--query.partition-label=tier"]
    rules = rules_query_sd_config(view, "thanos-global")
    assert rules["default_client_config"] == sd["default_client_config"]
    assert [e["address"] for e in rules["endpoints"]] == [
        f"thanos-ruler-{i}.thanos-ruler.thanos-global.svc.cluster.local:10901" for i in range(view.ruler.replicas)]
    assert view.ruler.query.replicas == 2 and not view.ruler.query.autoscaling.enabled
    assert (view.ruler.query.resources.requests.memory, view.ruler.query.resources.limits.memory) == ("64Mi", "256Mi")
    raw["global-view"]["mode"] = "local"
    local = config.load(raw).global_view
    assert [e["address"] for e in global_sd_config(local, [leaf["address"]], "thanos-global")["endpoints"]] == [
        leaf["address"], *(e["address"] for e in rules["endpoints"])]


def test_in_distributed_mode_only_the_rules_query_reads_the_ruler_and_only_the_global_query_reads_it(tmp_path):
    """dev planned in distributed mode (the rules query with one replica, as dev runs one of everything): the rules
    query is a Deployment of the global namespace with the small default size; NetworkPolicies let the global query
    reach it and it reach the ruler, and no longer let the global query reach the ruler directly."""
    from tests.network_policies import reachable

    by_name = global_tier_of_dev(tmp_path, (
        "    c['global-view']['mode'] = 'distributed'\n"
        "    c['global-view']['query']['promql-engine'] = 'thanos'\n"
        "    c['global-view']['ruler']['query'] = {'replicas': 1}\n"))
    rules = by_name[("Deployment", "thanos-query-rules-pods")]["spec"]
    assert rules["replicas"] == 1
    container = rules["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["memory"] == "64Mi"
    assert ("HorizontalPodAutoscaler", "thanos-query-rules-pods") not in by_name

    def pod(component: str) -> dict:
        return {"ns": "thanos-global", "labels": {"app.kubernetes.io/name": f"thanos-{component}",
                                                  "app.kubernetes.io/instance": "chicago",
                                                  "app.kubernetes.io/component": component,
                                                  "app.kubernetes.io/part-of": "thanos"}}

    policies = [o for (kind, _), o in by_name.items() if kind == "NetworkPolicy"]
    assert reachable(policies, pod("query"), pod("query-rules"), 10901)
    assert reachable(policies, pod("query-rules"), pod("ruler"), 10901)
    assert not reachable(policies, pod("query"), pod("ruler"), 10901)
    assert not reachable(policies, pod("query-frontend"), pod("query-rules"), 10901)


def test_the_prometheus_engine_is_the_default_and_left_unrendered_the_thanos_one_is_a_choice_per_tier():
    raw = stack_config("prod")
    stack = config.load(raw)
    assert stack.thanos.query.promql_engine == stack.global_view.query.promql_engine == "prometheus"
    assert not [a for a in query_args(stack.thanos.query, {}, []) if a.startswith("--query.promql-engine")]
    raw["thanos"].setdefault("query", {})["promql-engine"] = "thanos"
    stack = config.load(raw)
    assert "--query.promql-engine=thanos" in query_args(stack.thanos.query, {}, [])
    assert stack.global_view.query.promql_engine == "prometheus"


@pytest.mark.parametrize(("change", "key", "message"), [
    (lambda v: v.update({"extra-replica-labels": ["cluster"]}), "global-view", "must not list cluster"),
    (lambda v: v.update({"host-cluster": "boston"}), "global-view.host-cluster", "'boston' is not a cluster"),
    (lambda v: v.update({"network-cidrs": []}), "global-view", "network-cidrs is required"),
    (lambda v: v.update({"network-cidrs": ["0.0.0.0/0"]}), "global-view.network-cidrs", "every address"),
    (lambda v: v.update({"store-response-timeout": "5m"}), "global-view", "must be below query.timeout"),
    (lambda v: v.update({"store-response-timeout": "30s"}), "global-view", "must be above the leaves'"),
    (lambda v: v.update({"mode": "distributed", "partition-labels": ["prometheus_replica"]}),
     "global-view.partition-labels", "is a replica label"),
    (lambda v: v.update({"mode": "distributed", "ruler": {"enabled": False}}),
     "global-view.query.promql-engine", "runs only on the Thanos engine: set promql-engine: thanos (not prometheus)"),
    (lambda v: v.update({"mode": "distributed", "query": {"promql-engine": "thanos"}, "extra-replica-labels": ["tier"]}),
     "global-view", "partition-labels and replica labels must be disjoint (tier)"),
    (lambda v: v.update({"query": {"promql-engine": "v8"}}), "global-view.query.promql-engine", "'prometheus' or 'thanos'"),
    (lambda v: v.pop("dns"), "global-view", "needs dns"),
    (lambda v: v["entry-point"].pop("oidc-client-id"), "global-view.entry-point", "needs oidc-issuer-url and oidc-client-id"),
])
def test_bad_global_view_config_names_the_key(change, key, message):
    raw = stack_config("prod")
    change(raw["global-view"])
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    assert any(path == key and message in text for path, text in err.value.problems), err.value.problems


def test_tls_rotation_settings_are_checked():
    raw = stack_config("dev")
    raw["tls"] = {"ca-generation": 2, "trusted-ca-generations": [1]}
    with pytest.raises(config.ConfigError, match="must include ca-generation 2"):
        config.load(raw)


def test_htpasswd_is_bcrypt_stable_and_verifies():
    line = htpasswd_line("thanos", "correct horse", "key")
    assert line == htpasswd_line("thanos", "correct horse", "key") != htpasswd_line("thanos", "another", "key")
    # The salt comes from the key, never from the password: the same salt for another password.
    assert line.split("$")[3][:22] == htpasswd_line("thanos", "another", "key").split("$")[3][:22] != \
        htpasswd_line("thanos", "correct horse", "other key").split("$")[3][:22]
    user, hashed = line.split(":", 1)
    assert user == "thanos" and hashed.startswith("$2b$10$")
    assert bcrypt.checkpw(b"correct horse", hashed.encode()) and not bcrypt.checkpw(b"wrong", hashed.encode())
    with pytest.raises(ValueError, match="longer than 72 bytes"):
        htpasswd_line("thanos", "x" * 73, "key")


def test_basic_auth_users_each_get_their_own_password(tmp_path):
    """One htpasswd line and one generated password per person (the secret output globalBasicAuth.users): the shared
    user is gone, and each person's password opens only their own line."""
    probe = (
        "def edit(c):  # without tenants: nginx checks the passwords\n"
        "    c['global-view']['entry-point'].update({'basic-auth-users': ['alice', 'bob']})\n"
        "    c.pop('tenancy')\n"
        "plan = plan_stack('dev', edit=edit)\n"
        "secret = next(r.inputs for r in plan.resources if r.type == 'kubernetes:core/v1:Secret'\n"
        "              and r.inputs['metadata']['name'] == 'thanos-basic-auth')\n"
        "users = {r.name.rsplit('-', 1)[-1]: r.outputs['result'] for r in plan.resources\n"
        "         if r.type == 'random:index/randomPassword:RandomPassword' and '-basic-auth-' in r.name\n"
        "         and not r.name.endswith('-salt-key')}\n"
        "print(json.dumps({'auth': secret['stringData']['auth'], 'out': plan.outputs['globalBasicAuth'], 'users': users}))\n")
    proc = run_probe(tmp_path, probe)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["out"] == "[secret]"  # the stack output holds them, as a secret
    users = result["users"]
    assert sorted(users) == ["alice", "bob"] and users["alice"] != users["bob"]
    lines = dict(line.split(":", 1) for line in result["auth"].splitlines())
    assert sorted(lines) == ["alice", "bob"]  # no shared "thanos" user
    for user, password in users.items():
        assert bcrypt.checkpw(password.encode(), lines[user].encode())
        other = next(u for u in lines if u != user)
        assert not bcrypt.checkpw(password.encode(), lines[other].encode())
    raw = stack_config("dev")
    raw["global-view"]["entry-point"].update({"basic-auth-users": ["alice"], "basic-auth-user": "thanos"})
    with pytest.raises(config.ConfigError, match="not both"):
        config.load(raw)


def test_cert_manager_issues_from_the_stack_ca_and_its_resources_match_the_crds(tmp_path):
    """With tls.issuer cert-manager every namespace gets a CA Issuer per CA that signs there (each holding only that
    CA) and one Certificate per Secret (no pulumi-tls leaf certificates); each validates against cert-manager's CRD
    schema."""
    probe = (
        "from preflight.conformance import check_plan\n"
        "plan = plan_stack('dev', edit=lambda c: c.update(tls={'issuer': 'cert-manager'}))\n"
        "report = check_plan(plan)\n"
        "kinds = [r.type for r in plan.resources]\n"
        "certs = [r.inputs for r in plan.resources if r.type.endswith(':Certificate')]\n"
        "issuers = sorted(r.inputs['metadata']['namespace'] + '/' + r.inputs['metadata']['name'] for r in plan.resources"
        " if r.type == 'kubernetes:cert-manager.io/v1:Issuer')\n"
        "print(json.dumps({'problems': report.problems, 'issuers': issuers,"
        " 'signed': kinds.count('tls:index/locallySignedCert:LocallySignedCert'), 'certs': certs}))\n")
    proc = run_probe(tmp_path, probe)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["problems"] == [] and result["signed"] == 0
    assert result["issuers"] == ["thanos-chicago/thanos-ca", "thanos-chicago/thanos-writers-ca", "thanos-global/thanos-ca",
                                 "thanos-global/thanos-readers-ca", "thanos-seattle/thanos-ca",
                                 "thanos-seattle/thanos-writers-ca"]
    leaf = next(c for c in result["certs"] if c["metadata"]["name"] == "thanos-query-grpc-tls"
                and c["metadata"]["namespace"] == "thanos-chicago")
    assert leaf["spec"]["dnsNames"] == ["thanos-query-grpc.thanos-chicago.svc.cluster.local",
                                        "thanos-query-grpc.thanos-chicago.svc"]
    assert leaf["spec"]["usages"] == ["digital signature", "key encipherment", "server auth"]
    assert leaf["spec"]["issuerRef"] == {"name": "thanos-ca", "kind": "Issuer", "group": "cert-manager.io"}
    reader = next(c for c in result["certs"] if c["metadata"]["name"] == "thanos-global-client-tls")
    assert reader["spec"]["issuerRef"]["name"] == "thanos-readers-ca"


@pytest.mark.parametrize("stack", ["dev", "prod", "gcp", "azure"])
def test_the_global_validation_job_waits_for_every_leaf_service_and_dns_record(planned, stack):
    # It dials every leaf: started before a leaf's Service or DNS record exists, its first attempts fail for nothing.
    resources = planned[stack].plan["resources"]
    leaves = {r["urn"] for r in resources if r["type"] == "kubernetes:core/v1:Service"
              and r["inputs"]["metadata"]["name"] == LEAF_SERVICE}
    # A dependency on a component is one on each of its resources (the SDK sends their URNs).
    dns = {r["urn"] for r in resources if r["parent"] and r["parent"].endswith("thanos:global:Dns::global-dns")}
    jobs = [r for r in resources if r["type"] == "kubernetes:batch/v1:Job"
            and r["inputs"]["metadata"]["namespace"] == config.load(stack_config(stack)).global_view.namespace]
    assert jobs and leaves and (dns or stack == "dev")
    for job in jobs:
        assert leaves | dns <= set(job["dependsOn"]), sorted(leaves | dns - set(job["dependsOn"]))
        annotations = job["inputs"]["metadata"]["annotations"]
        assert annotations["pulumi.com/replaceUnready"] == "true"
        assert int(annotations["pulumi.com/timeoutSeconds"]) > job["inputs"]["spec"]["activeDeadlineSeconds"]


def test_the_entry_point_certificate_is_no_ca_and_comes_from_no_mtls_ca(certificates, tmp_path):
    """prod's default entry point certificate (source self-signed): one for the stack (host and standby serve the same),
    for the host only, no CA; a user who trusts exactly it reaches the host, and its key vouches for no other site
    (what it signs for another name is refused). No CA of the stack verifies it: nobody is asked to trust a CA whose
    key also opens the leaves and routers."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    prod = certificates["prod"]
    host = "thanos.obs.acme.internal"
    entry = prod["secrets"]["k8s-chicago/thanos-global/thanos-entry-point-tls"]
    assert prod["secrets"]["k8s-seattle/thanos-global/thanos-entry-point-tls"]["tls.crt"] == entry["tls.crt"]
    cert = x509.load_pem_x509_certificate(entry["tls.crt"].encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert not cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [host]

    def reaches(server_crt: str, server_key: str, trusted: str, name: str):
        files = {k: tmp_path / f"{abs(hash((k, server_crt, trusted)))}.pem" for k in ("crt", "key", "ca")}
        for key, text in zip(files, (server_crt, server_key, trusted), strict=True):
            files[key].write_text(text)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(files["crt"], files["key"])
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.load_verify_locations(files["ca"])
        listener = socket.create_server(("127.0.0.1", 0))

        def serve():
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with socket.create_connection(listener.getsockname(), timeout=10) as raw:
                with client_ctx.wrap_socket(raw, server_hostname=name) as tls:
                    tls.sendall(b".")
            return None
        except (ssl.SSLError, OSError) as err:
            return err
        finally:
            thread.join(10)
            listener.close()

    assert reaches(entry["tls.crt"], entry["tls.key"], entry["tls.crt"], host) is None
    bundle = prod["secrets"]["k8s-chicago/thanos-global/thanos-ca-bundle"]
    for ca in bundle.values():  # the server CA and the readers CA
        assert isinstance(reaches(entry["tls.crt"], entry["tls.key"], ca, host), ssl.SSLCertVerificationError)
    # Whoever holds the entry key signs a certificate for another site: a user who trusts the entry certificate
    # still refuses it.
    entry_key = serialization.load_pem_private_key(entry["tls.key"].encode(), None)
    other_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "bank.example.com")])
    forged = (x509.CertificateBuilder().subject_name(name).issuer_name(cert.subject).public_key(other_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(cert.not_valid_before_utc)
              .not_valid_after(cert.not_valid_after_utc)
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("bank.example.com")]), critical=False)
              .sign(entry_key, hashes.SHA256()))
    forged_pem = forged.public_bytes(serialization.Encoding.PEM).decode()
    other_pem = other_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    assert isinstance(reaches(forged_pem, other_pem, entry["tls.crt"], "bank.example.com"), ssl.SSLCertVerificationError)


@pytest.mark.parametrize("tls, message", [
    ({"source": "acme"}, "cluster-issuer is required with source acme"),
    ({"source": "secret"}, "secret-name is required with source secret"),
    ({"source": "ca", "secret-name": "mine"}, "secret-name is only read with source secret"),
    ({"source": "stack-ca"}, "Input should be"),
])
def test_bad_entry_point_tls_names_the_key(tls, message):
    raw = stack_config("prod")
    raw["global-view"]["entry-point"]["tls"] = tls
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    assert any(path.startswith("global-view.entry-point.tls") and message in text
               for path, text in err.value.problems), err.value.problems
    raw = stack_config("prod")
    raw["global-view"]["entry-point"]["tls-secret"] = "mine"
    with pytest.raises(config.ConfigError, match="tls-secret moved"):
        config.load(raw)


def test_the_entry_point_ca_is_its_own_and_name_constrained_to_the_host(tmp_path):
    """Source ca: cert-manager makes a CA in the tier's namespace, critical name constraints permitting only the host
    and names under it, self-signed by an Issuer that signs nothing else; the host's Certificate is the only one it
    issues, and no
    pulumi-tls certificate stands for the entry point. Source acme: the user's ClusterIssuer. Every object matches
    cert-manager's CRD schema."""
    probe = (
        "from preflight.conformance import check_plan\n"
        "out = {}\n"
        "for source, extra in (('ca', {}), ('acme', {'cluster-issuer': 'letsencrypt'})):\n"
        "    plan = plan_stack('prod', edit=lambda c: c['global-view']['entry-point'].update(tls={'source': source, **extra}))\n"
        "    objects = [r.inputs for r in plan.resources if r.type.startswith('kubernetes:cert-manager.io/')\n"
        "               and r.inputs['metadata']['namespace'] == 'thanos-global' and r.provider.endswith('k8s-chicago')]\n"
        "    names = [r.name for r in plan.resources if r.type.startswith('tls:') and 'entry' in r.name]\n"
        "    out[source] = {'problems': check_plan(plan).problems, 'objects': objects, 'tls': names}\n"
        "print(json.dumps(out))\n")
    proc = run_probe(tmp_path, probe)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    ca = result["ca"]
    assert ca["problems"] == [] and ca["tls"] == []
    certs = {o["metadata"]["name"]: o["spec"] for o in ca["objects"] if o["kind"] == "Certificate"}
    issuers = {o["metadata"]["name"]: o["spec"] for o in ca["objects"] if o["kind"] == "Issuer"}
    root = certs["thanos-entry-point-ca"]
    assert root["isCA"] is True and root["nameConstraints"] == {
        "critical": True, "permitted": {"dnsDomains": ["thanos.obs.acme.internal"]}}
    assert issuers[root["issuerRef"]["name"]] == {"selfSigned": {}}
    assert issuers["thanos-entry-point-ca"] == {"ca": {"secretName": "thanos-entry-point-ca"}}
    leaf = certs["thanos-entry-point-tls"]
    assert leaf["issuerRef"]["name"] == "thanos-entry-point-ca" and leaf["dnsNames"] == ["thanos.obs.acme.internal"]
    signers = [c["issuerRef"]["name"] for c in certs.values()]
    assert signers.count("thanos-entry-point-ca") == 1 and signers.count(root["issuerRef"]["name"]) == 1
    acme = result["acme"]
    assert acme["problems"] == [] and acme["tls"] == []
    (leaf,) = [o["spec"] for o in acme["objects"] if o["kind"] == "Certificate"]
    assert leaf["issuerRef"] == {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"}


TWO_TENANTS = {"tenants": [{"name": "team-a", "readers": ["team-a-devs"]}, {"name": "team-b", "readers": ["team-b-devs"]}],
               "operators": ["platform-sre"]}


@pytest.mark.parametrize("stack, change, key, message", [
    ("prod", lambda c: c["global-view"]["entry-point"].update({"allowed-groups": ["team-a-devs", "platform-sre"]}),
     "tenancy.tenants[1].readers[0]", "not in global-view.entry-point.allowed-groups"),
    ("dev", lambda c: c["global-view"]["entry-point"].update({"basic-auth-users": ["team-a-devs", "team-b-devs"]}),
     "tenancy.operators[0]", "'platform-sre' is not a basic-auth user"),
    ("prod", lambda c: c["tenancy"]["tenants"][0].update({"readers": ["team-*"]}), "tenancy", "no wildcard"),
    ("prod", lambda c: c["tenancy"]["tenants"][0].update({"readers": ["a,b"]}), "tenancy", "no comma"),
    ("prod", lambda c: c["tenancy"]["tenants"][1].update({"readers": ["team-a-devs"]}), "tenancy",
     "tenants[1].readers[0] 'team-a-devs' already reads tenants[0] (team-a)"),
    ("prod", lambda c: c["tenancy"].update({"operators": ["team-b-devs"]}), "tenancy", "also reads tenants[1]"),
])
def test_bad_tenant_readers_name_the_key(stack, change, key, message):
    """Every reader and operator must be someone the entry point lets in, and belong to one tenant."""
    raw = stack_config(stack)
    raw["tenancy"] = json.loads(json.dumps(TWO_TENANTS))
    change(raw)
    with pytest.raises(config.ConfigError) as err:
        config.load(raw)
    assert any(path == key and message in text for path, text in err.value.problems), err.value.problems


def global_tier_of_dev(tmp_path, edit_body: str) -> dict[tuple[str, str], dict]:
    """(kind, name) -> inputs of every object in dev's global namespace, dev planned with `edit_body` (the indented
    body of `def edit(c):`, which changes the config mapping `c`)."""
    probe = ("def edit(c):\n" + edit_body + "plan = plan_stack('dev', edit=edit)\n"
             "objects = [r.inputs for r in plan.resources\n"
             "           if r.custom and r.inputs.get('metadata', {}).get('namespace') == 'thanos-global']\n"
             "print(json.dumps(objects, default=str))\n")
    proc = run_probe(tmp_path, probe)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {(o["kind"], o["metadata"]["name"]): o for o in json.loads(proc.stdout.splitlines()[-1])}


def test_with_tenants_the_entry_point_goes_through_the_gate_and_only_operators_reach_grafana(tmp_path):
    """dev (basic auth) with tenants: the ingress sends everything to the gate, which checks the passwords itself
    (nginx's htpasswd Secret and auth annotations are gone); NetworkPolicies let only the ingress controller reach the
    gate and only the gate reach Grafana; Grafana reads the global query (operators only reach it)."""
    by_name = global_tier_of_dev(tmp_path, (
        "    c['global-view']['entry-point']['basic-auth-users'] = ['alice', 'bob', 'ops']\n"
        "    c['tenancy'] = {'tenants': [{'name': 'team-a', 'readers': ['alice']}, {'name': 'team-b', 'readers': ['bob']}],\n"
        "                    'operators': ['ops']}\n"))
    ingress = by_name[("Ingress", "thanos")]
    assert "annotations" not in ingress["metadata"]  # no nginx basic auth: the gate checks
    backends = {p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert backends == {"thanos-tenant-gate"}
    assert ("Secret", "thanos-basic-auth") not in by_name
    gate = json.loads(by_name[("Secret", "thanos-tenant-gate-config")]["stringData"]["caddy.json"])
    accounts = gate["apps"]["http"]["servers"]["gate"]["routes"][1]["handle"][1]["providers"]["http_basic"]["accounts"]
    assert sorted(a["username"] for a in accounts) == ["alice", "bob", "ops"]
    assert all(bcrypt.checkpw(b"x", a["password"].encode()) is False for a in accounts)  # hashes, not passwords

    def allowed_from(policy_name: str) -> list:
        return by_name[("NetworkPolicy", policy_name)]["spec"]["ingress"][0]["from"]
    assert allowed_from("thanos-entry-point-ingress") == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ingress-nginx"}}}]
    assert by_name[("NetworkPolicy", "thanos-entry-point-ingress")]["spec"]["podSelector"]["matchLabels"][
        "app.kubernetes.io/name"] == "thanos-tenant-gate"
    assert allowed_from("thanos-grafana-ingress") == [{"podSelector": {"matchExpressions": [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["tenant-gate"]}]}}]
    datasource = yaml.safe_load(by_name[("ConfigMap", "thanos-grafana-datasources")]["data"]["thanos.yaml"])
    assert datasource["datasources"][0]["url"] == "http://thanos-query.thanos-global.svc.cluster.local:10902"
def test_basic_auth_on_a_gateway_goes_through_the_gate_which_checks_the_passwords(tmp_path):
    """dev without tenants, its entry point a Gateway with basic auth (Gateway API has no portable basic auth): the
    HTTPRoute sends everything to the tenant gate, which checks each user's bcrypt line and sends them all, as
    operators, to the global query-frontend (and Grafana); its readiness route is the gate's own; no htpasswd Secret;
    only the Gateway's controller reaches the gate."""
    by_name = global_tier_of_dev(tmp_path, (
        "    c['global-view']['entry-point'].update({'kind': 'gateway', 'class': 'cloud-provider-kind',\n"
        "                                            'basic-auth-users': ['alice', 'bob'],\n"
        "                                            'controller-namespace': 'kube-system'})\n"
        "    c.pop('tenancy')\n"))
    routes = {name: o["spec"]["rules"][0] for (kind, name), o in by_name.items() if kind == "HTTPRoute"}
    assert {name: [b["name"] for b in rule["backendRefs"]] for name, rule in routes.items()} == {
        "thanos": ["thanos-tenant-gate"], "thanos-ready": ["thanos-tenant-gate"]}
    assert routes["thanos-ready"]["matches"] == [{"path": {"type": "Exact", "value": "/-/ready"}}]
    assert ("Secret", "thanos-basic-auth") not in by_name and ("Deployment", "thanos-tenant-gate-pods") in by_name
    assert ("Deployment", "thanos-query-tenants-pods") not in by_name  # no tenants: nothing enforces
    gate = json.loads(by_name[("Secret", "thanos-tenant-gate-config")]["stringData"]["caddy.json"])
    routes_of_gate = gate["apps"]["http"]["servers"]["gate"]["routes"]
    accounts = routes_of_gate[1]["handle"][1]["providers"]["http_basic"]["accounts"]
    assert sorted(a["username"] for a in accounts) == ["alice", "bob"]
    operators = routes_of_gate[2]
    assert operators["match"] == [{"vars": {"{http.auth.user.id}": ["alice", "bob"]}}]
    upstreams = json.dumps(operators["handle"])
    assert "thanos-query-frontend.thanos-global.svc.cluster.local:10902" in upstreams
    assert "thanos-grafana" in upstreams
    policy = by_name[("NetworkPolicy", "thanos-entry-point-ingress")]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "thanos-tenant-gate"
    assert policy["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "kube-system"}}}]


def test_with_tenants_the_global_frontend_reads_through_an_enforcing_query(planned):
    """dev has tenants: the global query-frontend's downstream is thanos-query-tenants, which enforces tenant_id from
    THANOS-TENANT and reads only the global query's gRPC; the global query (operators, the global ruler) does not
    enforce; the NetworkPolicies open exactly that path; the routers take the tenant from the certificate."""
    from tests.network_policies import reachable

    dev = planned["dev"]
    deployments = {o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0].get("args", [])
                   for o in dev.objects("Deployment", "chicago") if o["metadata"]["namespace"] == "thanos-global"}
    frontend, tenants, query = (deployments[f"thanos-{n}-pods"] for n in ("query-frontend", "query-tenants", "query"))
    assert "--query-frontend.downstream-url=http://thanos-query-tenants.thanos-global.svc.cluster.local:10902" in frontend
    assert "--query-frontend.tenant-header=THANOS-TENANT" in frontend
    assert {"--query.enforce-tenancy", "--query.tenant-header=THANOS-TENANT", "--query.tenant-label-name=tenant_id",
            "--query.default-tenant-id=default-tenant"} <= set(tenants)
    sd = json.loads(next(a for a in tenants if a.startswith("--endpoint.sd-config=")).split("=", 1)[1])
    assert sd == {"endpoints": [{"address": "thanos-query.thanos-global.svc.cluster.local:10901", "strict": True}]}
    # The global query's StoreAPI does not deduplicate: the enforcing query names every replica label.
    assert {a for a in tenants if a.startswith("--query.replica-label=")} == \
        {a for a in query if a.startswith("--query.replica-label=")}
    assert not any("tenan" in a for a in query)

    def pod(component: str) -> dict:
        return {"ns": "thanos-global", "labels": {"app.kubernetes.io/name": f"thanos-{component}",
                                                  "app.kubernetes.io/instance": "chicago",
                                                  "app.kubernetes.io/component": component,
                                                  "app.kubernetes.io/part-of": "thanos"}}

    policies = dev.objects("NetworkPolicy")
    assert reachable(policies, pod("query-frontend"), pod("query-tenants"), 10902)
    assert reachable(policies, pod("query-tenants"), pod("query"), 10901)
    assert not reachable(policies, pod("query-frontend"), pod("query"), 10902)  # no path around the enforcing query
    assert not reachable(policies, pod("query-frontend"), pod("query"), 10901)
    assert reachable(policies, pod("ruler"), pod("query"), 10902)
    routers = [o["spec"]["template"]["spec"]["containers"][0]["args"] for o in dev.objects("Deployment")
               if o["metadata"]["name"] == "thanos-receive-router"]
    assert len(routers) == 2 and all("--receive.tenant-certificate-field=organization" in r for r in routers)


def test_without_tenants_nothing_enforces_and_nothing_is_labelled(planned):
    prod = planned["prod"]
    frontend = next(o for o in prod.objects("Deployment", "chicago") if o["metadata"]["namespace"] == "thanos-global"
                    and o["metadata"]["name"] == "thanos-query-frontend-pods")
    args = frontend["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--query-frontend.downstream-url=http://thanos-query.thanos-global.svc.cluster.local:10902" in args
    assert not any("tenan" in a for o in prod.objects("Deployment") for c in o["spec"]["template"]["spec"]["containers"]
                   for a in c.get("args") or [])
    config = yaml.safe_load(prod.files("chicago", "thanos", "thanos-prometheus")["prometheus.yml"])
    assert not any(r.get("target_label") == "tenant_id" for j in config["scrape_configs"]
                   for r in j.get("relabel_configs") or [])
