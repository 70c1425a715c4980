"""Helpers of the policy tests: run one rule over a resource or plan-shaped resources (as the engine passes
them), and find workloads and containers in a plan."""

import ast
import copy

import yaml
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from components.storage import aws as cloud_aws
from config.storage import AwsStorage
from preflight.policy import load_policies
from tests.support.stacks import ROOT


POLICY_DIR = ROOT / "policies" / "thanos_policies"
FIRED_LINES_FILE = "THANOS_FIRED_LINES"
"""Environment variable: a file where `record_policy_lines` appends `file:line` of every pack line a test ran."""


def report_call_sites() -> dict[tuple[str, int], str]:
    """Every `report(...)` call of the pack: (file, line) -> the message as written (its first string part)."""
    sites = {}
    for path in sorted(POLICY_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "report":
                sites[(str(path), node.lineno)] = ast.get_source_segment(path.read_text(), node.args[0])[:100]
    return sites


POLICIES = {p.name: p for p in load_policies()}
STS = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def options(protect=False):
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def check(policy: str, type_token: str, props: dict, config: dict | None = None, protect=False) -> list[str]:
    """Messages one resource policy reports."""
    found: list[str] = []
    args = ResourceValidationArgs(type_token, unknown_checking_proxy(copy.deepcopy(props)), f"urn:x::{type_token}::r",
                                  "r", options(protect), None, config or {})
    POLICIES[policy].validate(args, lambda message, urn=None: found.append(message))
    return found


def check_stack(policy: str, resources: list[dict], config: dict | None = None) -> list[str]:
    """Messages one stack policy reports over plan-shaped resources (type, inputs, provider)."""
    found: list[str] = []
    built = []
    for i, r in enumerate(resources):
        provider = PolicyProviderResource("pulumi:providers:kubernetes", {}, r["provider"], "p") \
            if r.get("provider") else None
        built.append(PolicyResource(r["type"], unknown_checking_proxy(copy.deepcopy(r["inputs"])), r.get("urn", f"u{i}"),
                                    r.get("name", f"r{i}"), options(r.get("protect", False)), provider, None, [], {}))
    POLICIES[policy].validate(StackValidationArgs(built, config or {}), lambda message, urn=None: found.append(message))
    return found


def workload(resources, name, cluster="chicago", namespace="thanos"):
    return copy.deepcopy(next(r for r in resources if r["type"] in (STS, DEPLOYMENT)
                              and r["inputs"]["metadata"]["name"] == name and cluster in r["provider"]
                              and r["inputs"]["metadata"].get("namespace", namespace) == namespace))


def container(props, name):
    return next(c for c in props["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def set_flag(props, container_name, name, value):
    c = container(props, container_name)
    c["args"] = [a for a in c["args"] if not a.startswith(f"--{name}=")] + ([f"--{name}={value}"] if value else [])


def aws_secret(bucket, provider="urn:pulumi:prod::thanos::pulumi:providers:kubernetes::k8s-chicago"):
    return {"type": "kubernetes:core/v1:Secret", "provider": provider,
            "inputs": {"metadata": {"name": "thanos-objstore", "namespace": "thanos"},
                       "stringData": {"objstore.yml": cloud_aws.objstore_config(
                           AwsStorage(provider="aws", bucket=bucket), "us-east-1")}}}


def _service(name: str, app: str, headless: bool = False) -> dict:
    return {"type": "kubernetes:core/v1:Service", "provider": K8S, "inputs": {
        "metadata": {"name": name, "namespace": "mon"},
        "spec": {"selector": {"app": app}, **({"clusterIP": "None"} if headless else {})}}}


def _config_map(name: str, key: str, text: str, labels: dict | None = None) -> dict:
    return {"type": "kubernetes:core/v1:ConfigMap", "provider": K8S,
            "inputs": {"metadata": {"name": name, "namespace": "mon", "labels": labels or {}}, "data": {key: text}}}


def _mounting(workload: dict, volume: str, config_map: str, path: str) -> dict:
    pod = workload["inputs"]["spec"]["template"]["spec"]
    pod["volumes"].append({"name": volume, "configMap": {"name": config_map}})
    pod["containers"][0]["volumeMounts"] = [{"name": volume, "mountPath": path}]
    return workload


def chicago(resources, namespace=None):
    return copy.deepcopy([r for r in resources if "chicago" in (r["provider"] or "")
                          and (namespace is None or (r["inputs"].get("metadata") or {}).get("namespace") == namespace)])


def named(resources, kind, name, namespace):
    return next(r for r in resources if r["type"].endswith(f":{kind}") and r["inputs"]["metadata"]["name"] == name
                and r["inputs"]["metadata"]["namespace"] == namespace)


UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The engine's sentinel for a string unknown during a preview (what pulumi_policy's proxy refuses to read)."""
K8S = "urn:pulumi:x::x::pulumi:providers:kubernetes::c"


def thanos_workload(kind: str, name: str, args: list[str], replicas: int = 1, volumes=None, env=None) -> dict:
    container = {"name": name, "image": "quay.io/thanos/thanos:v0.42.4", "args": args, "env": env or []}
    pod = {"containers": [container], "volumes": volumes or []}
    if kind == "CronJob":
        spec = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": pod}}}}
        type_token = "kubernetes:batch/v1:CronJob"
    else:
        spec = {"replicas": replicas, "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}
        type_token = f"kubernetes:apps/v1:{kind}"
    return {"type": type_token, "provider": K8S, "urn": f"urn:{name}",
            "inputs": {"kind": kind, "metadata": {"name": name, "namespace": "mon"}, "spec": spec}}


def objstore_secret(bucket: str = "blocks") -> dict:
    text = yaml.safe_dump({"type": "S3", "config": {"bucket": bucket, "endpoint": "s3.us-east-1.amazonaws.com"}})
    return {"type": "kubernetes:core/v1:Secret", "provider": K8S,
            "inputs": {"metadata": {"name": "objstore", "namespace": "mon"}, "stringData": {"objstore.yml": text}}}


OBJSTORE_ENV = [{"name": "OBJSTORE", "valueFrom": {"secretKeyRef": {"name": "objstore", "key": "objstore.yml"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]


def compactor(name: str, *extra: str) -> dict:
    return thanos_workload("StatefulSet", name, ["compact", "--wait", "--objstore.config=$(OBJSTORE)", *extra],
                           env=OBJSTORE_ENV)
