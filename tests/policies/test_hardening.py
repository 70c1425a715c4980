"""Hardening rules (policies/thanos_policies/hardening.py): pinned images, non-root, resources, probes, one version."""

import copy
import json

from tests.support.stacks import run_probe
from ..support.policies import DEPLOYMENT, STS, check, check_stack, container, workload


DIGEST = "sha256:" + "ab" * 32


def test_the_pack_can_require_images_pinned_by_digest(prod):
    store = workload(prod, "thanos-store")["inputs"]
    assert check("thanos-hardening-pods", STS, store) == []  # tags are enough unless required
    found = check("thanos-hardening-pods", STS, store, {"requireDigests": True})
    assert found and all("is pinned by tag only: a tag can be moved; pin it by digest (config: image-digests)." in m
                         for m in found), found
    for c in store["spec"]["template"]["spec"]["containers"]:
        c["image"] = f"{c['image']}@{DIGEST}"
    assert check("thanos-hardening-pods", STS, store, {"requireDigests": True}) == []
    # The operator's Prometheus runs the Thanos sidecar from spec.thanos.image.
    prometheus = {"spec": {"thanos": {"image": "quay.io/thanos/thanos:v0.42.4"}}}
    assert check("thanos-hardening-pods", "kubernetes:monitoring.coreos.com/v1:Prometheus", prometheus,
                 {"requireDigests": True}) == [
        "the Thanos image quay.io/thanos/thanos:v0.42.4 is pinned by tag only: a tag can be moved; pin it by digest "
        "(config: image-digests)."]
    prometheus["spec"]["thanos"]["image"] += f"@{DIGEST}"
    assert check("thanos-hardening-pods", "kubernetes:monitoring.coreos.com/v1:Prometheus", prometheus,
                 {"requireDigests": True}) == []


def test_image_digests_pin_every_container_of_a_repository_and_keep_the_tag(tmp_path):
    probe = f"""
plan = plan_stack("dev", edit=lambda c: c.update({{"image-digests": {{"quay.io/thanos/thanos": "{DIGEST}"}}}}))
images = set()
for r in plan.resources:
    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                images.add(x) if k == "image" and isinstance(x, str) else walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(r.inputs)
versions = {{r.inputs["metadata"]["labels"].get("app.kubernetes.io/version") for r in plan.resources
            if r.type == "kubernetes:apps/v1:StatefulSet" and r.inputs["metadata"]["name"] == "thanos-store"}}
print(json.dumps({{"images": sorted(images), "versions": sorted(versions)}}))
"""
    proc = run_probe(tmp_path, probe)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    thanos = [i for i in result["images"] if i.startswith("quay.io/thanos/thanos")]
    assert thanos == [f"quay.io/thanos/thanos:v0.42.4@{DIGEST}"]  # every one, the tag kept
    assert any(i.startswith("quay.io/prometheus/prometheus:") and "@" not in i for i in result["images"])  # others not
    assert result["versions"] == ["v0.42.4"]


def test_hardening(prod):
    store = workload(prod, "thanos-store")["inputs"]
    assert check("thanos-hardening-pods", STS, store) == []
    c = container(store, "thanos-store")
    c["image"] = "quay.io/thanos/thanos:latest"
    c["securityContext"]["readOnlyRootFilesystem"] = False
    del c["readinessProbe"]
    assert check("thanos-hardening-pods", STS, store) == [
        "container thanos-store image quay.io/thanos/thanos:latest is not pinned to a version (config: thanos.image).",
        "container thanos-store needs readOnlyRootFilesystem and allowPrivilegeEscalation false.",
        "container thanos-store needs liveness and readiness probes."]


def test_one_version(prod):
    assert check_stack("thanos-hardening-one-version", prod) == []
    broken = copy.deepcopy(prod)
    container(workload_in(broken, "thanos-store"), "thanos-store")["image"] = "quay.io/thanos/thanos:v0.41.0"
    assert check_stack("thanos-hardening-one-version", broken) == [
        "the stack runs more than one Thanos version: v0.41.0, v0.42.4 (config: thanos.image)."]


def workload_in(resources, name):
    return next(r for r in resources if r["type"] in (STS, DEPLOYMENT) and r["inputs"]["metadata"]["name"] == name)["inputs"]


def test_hardening_of_the_pod_and_every_container(prod):
    store = workload(prod, "thanos-store")["inputs"]
    pod = store["spec"]["template"]["spec"]
    del pod["securityContext"]["runAsNonRoot"]
    assert check("thanos-hardening-pods", STS, store) == []  # runAsUser 65534 and each container's runAsNonRoot
    del pod["securityContext"]["runAsUser"]
    c = container(store, "thanos-store")
    del c["securityContext"]["runAsNonRoot"]
    c["securityContext"]["capabilities"] = {"drop": ["NET_RAW"]}
    del c["resources"]["requests"]
    assert check("thanos-hardening-pods", STS, store) == [
        "the pod does not set runAsNonRoot.",
        "container thanos-store does not drop ALL capabilities.",
        "container thanos-store needs resource requests and a memory limit."]
