"""Every artifact checked by the real tool that consumes it: Kubernetes schemas, promtool, the Thanos flag table,
the objstore key table, the GitHub workflow schema."""

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from components.platform.kube import CUSTOM_KINDS
from components.thanos.flags import flag_problem

from tests.support.stacks import ROOT, STACKS

KUBERNETES_VERSION = "1.34.0"
OBJSTORE_KEYS = json.loads((ROOT / "reference" / "thanos-v0.42.4-objstore.json").read_text())
THANOS_COMMANDS = ("tools bucket web", "tools bucket verify", "tools bucket replicate", "tools bucket retention",
                   "tools bucket cleanup", "query-frontend", "sidecar", "query", "store", "compact", "rule", "receive")


def tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(path).exists(), f"{name} is not installed (.ci/run installs it)"
    return path


def kubernetes_validate(files: list[str]) -> list[str]:
    """Problems kubernetes-validate finds in strict mode, warnings included: it only warns (exit 0) on an object it
    has no schema for, which would let a custom resource through unchecked."""
    proc = subprocess.run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, *files],
                          capture_output=True, text=True)
    output = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return output if proc.returncode or output else []


CRD_SCHEMAS = ROOT / "reference" / "schemas"


def crd_schema(obj: dict) -> Path | None:
    """The copied CRD schema of a custom resource (Gateway API, cert-manager), or None for a built-in kind."""
    if (obj["apiVersion"], obj["kind"]) not in CUSTOM_KINDS:
        return None
    return CRD_SCHEMAS / f"{obj['kind'].lower()}-{obj['apiVersion'].rsplit('/', 1)[-1]}.json"


@pytest.mark.parametrize("stack", STACKS)
def test_manifests_pass_the_official_kubernetes_schemas_strictly(planned, stack):
    files = sorted(p for p in planned[stack].manifests.rglob("*.yaml") if "files" not in p.parent.parts)
    custom = [f for f in files if crd_schema(yaml.safe_load(f.read_text()))]
    assert len(files) > 40
    assert kubernetes_validate([str(f) for f in files if f not in custom]) == []
    for path in custom:  # kubernetes-validate has no schema for custom resources: their CRDs' schemas check them
        obj = yaml.safe_load(path.read_text())
        schema = crd_schema(obj)
        assert schema.is_file(), f"{path.name}: no CRD schema copied for {obj['kind']}"
        proc = subprocess.run([tool("check-jsonschema"), "--schemafile", str(schema), str(path)], capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_crd_schemas_reject_a_misspelled_gateway_field(tmp_path):
    bad = tmp_path / "gateway.yaml"
    bad.write_text("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: x}\n"
                   "spec: {gatewayClassName: eg, listeners: [{name: https, protocol: HTTPS, port: 443, hostnme: x}]}\n")
    proc = subprocess.run([tool("check-jsonschema"), "--schemafile", str(CRD_SCHEMAS / "gateway-v1.json"), str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "hostnme" in proc.stdout


def test_kubernetes_validate_rejects_a_broken_manifest_and_an_unknown_kind(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n")
    assert kubernetes_validate([str(bad)])
    custom = tmp_path / "custom.yaml"
    custom.write_text("apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {}\n")
    problems = kubernetes_validate([str(custom)])
    assert len(problems) == 1 and "Couldn't find schema for kind ServiceMonitor" in problems[0]


def thanos_containers(objects):
    """Every Thanos container of the workloads and of the CronJobs (bucket verify, replicate, retention, cleanup)."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "CronJob"):
            template = obj["spec"]["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else obj["spec"]["template"]
            for c in template["spec"]["containers"]:
                if c["image"].startswith("quay.io/thanos/thanos:"):
                    yield obj, c


def command_of(args: list[str]) -> tuple[str, list[str]]:
    for command in THANOS_COMMANDS:
        words = command.split()
        if args[: len(words)] == words:
            return command, args[len(words):]
    raise AssertionError(f"unknown thanos command in {args[:3]}")


REFERENCE_FLAGS = json.loads((ROOT / "reference" / "thanos-v0.42.4-flags.json").read_text())["commands"]


def reference_problems(command: str, args: list[str]) -> list[str]:
    """The emitted flags read against the reference table directly (not through components.flags, which the
    builders use): known, not deprecated, a value exactly when the flag takes one, an allowed value, no repeats of a
    flag that is not repeatable."""
    table = {**REFERENCE_FLAGS[command]["flags"], **REFERENCE_FLAGS[command].get("hidden_flags", {})}
    problems, seen = [], Counter()
    for arg in args:
        name, equals, value = arg.removeprefix("--").partition("=")
        spec = table.get(name)
        if spec is None and name.startswith("no-") and table.get(name[3:], {}).get("negatable"):
            spec = table[name[3:]]
        seen[name] += 1
        if not arg.startswith("--") or spec is None:
            problems.append(f"unknown {arg}")
        elif spec.get("deprecated"):
            problems.append(f"deprecated {arg}")
        elif bool(equals) != bool(spec["value"]):
            problems.append(f"{arg}: value given {bool(equals)}, takes one {spec['value']}")
        elif spec.get("allowed") and value not in spec["allowed"]:
            problems.append(f"{arg}: not one of {spec['allowed']}")
        elif seen[name] > 1 and not spec["repeatable"]:
            problems.append(f"{arg}: repeated")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_thanos_flag_exists_in_v0_42_4_and_is_not_deprecated(planned, stack):
    seen, checked = set(), 0
    for obj, c in thanos_containers(planned[stack].objects()):
        command, flags = command_of(c["args"])
        seen.add(command)
        assert reference_problems(command, flags) == [], obj["metadata"]["name"]
        checked += len(flags)
    # In operator mode (azure) prometheus-operator writes the sidecar's flags, not this program.
    sidecar = {"sidecar"} if stack != "azure" else set()
    assert {*sidecar, "query", "query-frontend", "store", "compact", "rule", "receive", "tools bucket web",
            "tools bucket verify"} <= seen
    if stack == "dev":  # the in-cluster DR copy is made and kept by bucket jobs
        assert {"tools bucket replicate", "tools bucket retention", "tools bucket cleanup"} <= seen
    assert checked > 80


def test_the_reference_check_catches_what_it_should():
    assert reference_problems("query", ["--store=x", "--endpoint=x", "--query.replica-label=a",
                                        "--query.replica-label=b", "--query.timeout", "--log.level=loud"]) == [
        "unknown --store=x", "deprecated --endpoint=x", "--query.timeout: value given False, takes one True",
        "--log.level=loud: not one of ['error', 'warn', 'info', 'debug']"]
    assert reference_problems("compact", ["--wait", "--no-wait", "--wait=true", "--http-address=a", "--http-address=b"]) == [
        "--wait=true: value given True, takes one False", "--http-address=b: repeated"]


def test_flag_table_catches_removed_and_deprecated_flags():
    assert "no flag --store" in flag_problem("query", "--store=dnssrv+_grpc._tcp.x")
    assert "deprecated" in flag_problem("query", "--endpoint=dnssrv+_grpc._tcp.x")
    assert "deprecated" in flag_problem("store", "--store.grpc.series-sample-limit=1")
    assert "takes no value" in flag_problem("compact", "--wait=true")
    assert flag_problem("compact", "--wait") is None and flag_problem("compact", "--no-wait") is None


def inline_flag(args, name):
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return [yaml.safe_load(v) for v in values]


def test_cache_and_sd_configs_use_only_known_keys(planned):
    objects = planned["prod"].objects()
    checked = 0
    for _, c in thanos_containers(objects):
        for cfg in inline_flag(c["args"], "index-cache.config") + inline_flag(c["args"], "store.caching-bucket.config"):
            allowed = set(OBJSTORE_KEYS["caching_bucket"]["envelope"]) | set(OBJSTORE_KEYS["index_cache"]["envelope"])
            assert set(cfg) <= allowed
            # Thanos reads the envelope strictly but the backend's config leniently: a misspelt key is ignored.
            assert set(cfg["config"]) <= set(OBJSTORE_KEYS["index_cache"][cfg["type"]]["config"])
            checked += 1
        for cfg in inline_flag(c["args"], "query-range.response-cache-config"):
            assert set(cfg["config"]) <= set(OBJSTORE_KEYS["response_cache"]["MEMCACHED"]["config"])
            checked += 1
        for cfg in inline_flag(c["args"], "endpoint.sd-config"):
            assert set(cfg) <= set(OBJSTORE_KEYS["query_endpoint_sd_config"]["top_level"])
            for endpoint in cfg["endpoints"]:
                assert set(endpoint) <= set(OBJSTORE_KEYS["query_endpoint_sd_config"]["endpoint_keys"])
            checked += 1
    assert checked >= 8


def test_hashring_uses_only_known_keys(planned):
    rings = [json.loads(cm["data"]["hashrings.json"]) for cm in planned["prod"].objects("ConfigMap")
             if "hashrings.json" in cm.get("data", {})]
    assert len(rings) == 2, "one hashring per prod cluster"
    for document in rings:
        assert len(document) == 1
        ring = document[0]
        assert set(ring) <= set(OBJSTORE_KEYS["receive_hashring"]["hashring_keys"])
        assert len(ring["endpoints"]) == 6
        for endpoint in ring["endpoints"]:
            assert set(endpoint) <= set(OBJSTORE_KEYS["receive_hashring"]["endpoint_object_keys"])


# The keys of a kubernetes_sd_config (Prometheus docs, configuration.md, <kubernetes_sd_config>); Debian's promtool
# is built without Kubernetes discovery, so these blocks are checked here and the rest of each job by promtool.
KUBERNETES_SD_KEYS = {"role", "api_server", "kubeconfig_file", "namespaces", "selectors", "attach_metadata",
                      "basic_auth", "authorization", "oauth2", "tls_config", "proxy_url", "follow_redirects",
                      "enable_http2"}
KUBERNETES_SD_ROLES = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}


def promtool_checkable(config: dict, files: Path | None = None) -> tuple[dict, list[dict]]:
    """The config with each kubernetes_sd_configs block swapped for an empty static target list (so promtool still
    checks the job's relabelling, TLS and authorisation), and the blocks taken out. The service account's token and
    CA files it names are made in `files` (promtool checks that they exist)."""
    blocks = []
    for job in config.get("scrape_configs", []):
        if "kubernetes_sd_configs" in job:
            blocks += job.pop("kubernetes_sd_configs")
            job["static_configs"] = [{"targets": []}]
        for section, key in (("authorization", "credentials_file"), ("tls_config", "ca_file")):
            if files and key in job.get(section, {}):
                assert job[section][key].startswith("/var/run/secrets/kubernetes.io/serviceaccount/"), job[section]
                local = files / Path(job[section][key]).name
                local.touch()
                job[section][key] = str(local)
    return config, blocks


def test_prometheus_configs_pass_promtool(planned, tmp_path):
    checked = kubernetes = 0
    for stack in STACKS:
        for cm in planned[stack].objects("ConfigMap"):
            if "prometheus.yml" in cm.get("data", {}):
                config, blocks = promtool_checkable(yaml.safe_load(cm["data"]["prometheus.yml"]), tmp_path)
                for block in blocks:
                    assert set(block) <= KUBERNETES_SD_KEYS and block["role"] in KUBERNETES_SD_ROLES, block
                    assert set(block.get("namespaces", {})) <= {"names", "own_namespace"}, block
                kubernetes += len(blocks)
                path = tmp_path / f"{stack}-{cm['metadata']['namespace']}.yml"
                path.write_text(yaml.safe_dump(config))
                proc = subprocess.run([tool("promtool"), "check", "config", str(path)], capture_output=True, text=True)
                assert proc.returncode == 0, proc.stdout + proc.stderr
                checked += 1
    assert checked >= len(STACKS)
    assert kubernetes >= 5 * len(STACKS), "every stack's Prometheus discovers through the Kubernetes API"


def test_kubernetes_sd_blocks_are_checked(tmp_path):
    """What promtool cannot check here is refused by the test's own check."""
    config, blocks = promtool_checkable({"scrape_configs": [{"job_name": "x", "kubernetes_sd_configs": [{"role": "pods"}]}]})
    assert blocks == [{"role": "pods"}] and config["scrape_configs"][0]["static_configs"] == [{"targets": []}]
    assert blocks[0]["role"] not in KUBERNETES_SD_ROLES


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_ruler_rules_pass_promtool(planned, stack, tmp_path):
    """Every ruler's rules (the global ruler's too). `partial_response_strategy` is Thanos' own group field, which
    promtool does not know: it is checked here and removed before promtool reads the rest."""
    checked = 0
    for cm in planned[stack].objects("ConfigMap"):
        for key, text in cm.get("data", {}).items():
            if cm["metadata"]["name"] == "thanos-ruler-rules":
                document = yaml.safe_load(text)
                for group in document["groups"]:
                    assert group.pop("partial_response_strategy", "abort") in ("abort", "warn")
                path = tmp_path / f"{cm['metadata']['namespace']}-{key}"
                path.write_text(yaml.safe_dump(document))
                proc = subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
                assert proc.returncode == 0, proc.stdout + proc.stderr
                assert "SUCCESS" in proc.stdout + proc.stderr
                checked += 1
    assert checked


def test_promtool_rejects_a_broken_rule(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("groups: [{name: x, rules: [{alert: A, expr: 'sum(('}]}]\n")
    assert subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True).returncode != 0


def test_github_workflows_match_their_schema():
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    assert {Path(w).name for w in workflows} >= {"pull-request.yml", "deploy.yml", "drift.yml"}
    proc = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    actions = sorted(str(p) for p in (ROOT / ".github" / "actions").glob("*/action.yml"))
    assert actions
    proc = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", *actions],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
