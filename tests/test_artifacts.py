"""Every artifact checked by the real tool that consumes it: Kubernetes schemas, promtool, the Thanos flag table,
the objstore key table, the GitHub workflow schema."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.flags import flag_problem

from .conftest import ROOT, STACKS

KUBERNETES_VERSION = "1.34.0"
OBJSTORE_KEYS = json.loads((ROOT / "reference" / "thanos-v0.42.4-objstore.json").read_text())
THANOS_COMMANDS = ("tools bucket web", "query-frontend", "sidecar", "query", "store", "compact", "rule", "receive")


def tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(path).exists(), f"{name} is not installed (.ci/run installs it)"
    return path


@pytest.mark.parametrize("stack", STACKS)
def test_manifests_pass_the_official_kubernetes_schemas_strictly(planned, stack):
    files = sorted(str(p) for p in planned[stack].manifests.rglob("*.yaml"))
    assert len(files) > 40
    proc = subprocess.run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, *files],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kubernetes_validate_rejects_a_broken_manifest(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n")
    proc = subprocess.run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode != 0


def thanos_containers(objects):
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            for c in obj["spec"]["template"]["spec"]["containers"]:
                if c["image"].startswith("quay.io/thanos/thanos:"):
                    yield obj, c


def command_of(args: list[str]) -> tuple[str, list[str]]:
    for command in THANOS_COMMANDS:
        words = command.split()
        if args[: len(words)] == words:
            return command, args[len(words):]
    raise AssertionError(f"unknown thanos command in {args[:3]}")


@pytest.mark.parametrize("stack", STACKS)
def test_every_thanos_flag_exists_in_v0_42_4_and_is_not_deprecated(planned, stack):
    seen = set()
    for obj, c in thanos_containers(planned[stack].objects()):
        command, flags = command_of(c["args"])
        seen.add(command)
        problems = [p for p in (flag_problem(command, f) for f in flags) if p]
        assert not problems, f"{obj['metadata']['name']}: {problems}"
    assert {"sidecar", "query", "query-frontend", "store", "compact", "rule", "receive", "tools bucket web"} <= seen


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
            assert set(cfg["config"]) <= set(OBJSTORE_KEYS["index_cache"]["MEMCACHED"]["config"])
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
    for cm in planned["prod"].objects("ConfigMap"):
        if "hashrings.json" in cm.get("data", {}):
            for ring in json.loads(cm["data"]["hashrings.json"]):
                assert set(ring) <= set(OBJSTORE_KEYS["receive_hashring"]["hashring_keys"])


def test_prometheus_configs_pass_promtool(planned, tmp_path):
    checked = 0
    for stack in STACKS:
        for cm in planned[stack].objects("ConfigMap"):
            if "prometheus.yml" in cm.get("data", {}):
                path = tmp_path / f"{stack}-{cm['metadata']['name']}.yml"
                path.write_text(cm["data"]["prometheus.yml"])
                proc = subprocess.run([tool("promtool"), "check", "config", str(path)], capture_output=True, text=True)
                assert proc.returncode == 0, proc.stdout + proc.stderr
                checked += 1
    assert checked >= len(STACKS)


def test_ruler_rules_pass_promtool(planned, tmp_path):
    checked = 0
    for cm in planned["prod"].objects("ConfigMap"):
        for key, text in cm.get("data", {}).items():
            if cm["metadata"]["name"] == "thanos-ruler-rules":
                path = tmp_path / key
                path.write_text(text)
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
    proc = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
