"""Records the drift-*.jsonl files with the real tools: the real Pulumi CLI, engine and Kubernetes provider against the
real control plane of tests/realtools/kubernetes.py, a tiny program (a Deployment and a Job), and four situations as
the drift check meets them: nothing changed; the Deployment's pod gone with the node cordoned (short of replicas, as
mid-rollout); its image changed out of band (drift); a Job that failed at the last `up`. Each file is the
`pulumi preview --refresh --diff --json` event stream, the debug diagnostics and the resources' full states left out.

    .venv/bin/python -m tests.recordings.record_drift      # about 50 s
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.realtools.build import tool
from tests.realtools.kubernetes import Cluster

HERE = Path(__file__).resolve().parent
PROGRAM = '''
import pulumi, pulumi_kubernetes as k
provider = k.Provider("k", context="kind-thanos")
ns = k.core.v1.Namespace("ns", metadata={"name": "d"}, opts=pulumi.ResourceOptions(provider=provider))
opts = pulumi.ResourceOptions(provider=provider, depends_on=[ns])
labels = {"app": "web"}
k.apps.v1.Deployment("web", metadata={"name": "web", "namespace": "d"}, spec={
    "replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
        "containers": [{"name": "c", "image": "nginx:1.27"}]}}}, opts=opts)
k.batch.v1.Job("job", metadata={"name": "job", "namespace": "d"}, spec={"backoffLimit": 0, "template": {"spec": {
    "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]}}}, opts=opts)
'''
FAILING_JOB = '''
k.batch.v1.Job("migrate", metadata={"name": "migrate", "namespace": "d"}, spec={
    "backoffLimit": 0, "activeDeadlineSeconds": 5, "template": {"spec": {"restartPolicy": "Never",
    "nodeSelector": {"no": "such-node"}, "containers": [{"name": "c", "image": "busybox:1.36"}]}}}, opts=opts)
'''
MERGE, STRATEGIC = "application/merge-patch+json", "application/strategic-merge-patch+json"


def trimmed(stdout: str) -> str:
    lines = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        diagnostic = event.get("diagnosticEvent")
        if diagnostic and (diagnostic.get("severity") == "debug" or "from $PATH at" in diagnostic.get("message", "")):
            continue
        for kind in ("resourcePreEvent", "resOutputsEvent"):
            metadata = (event.get(kind) or {}).get("metadata") or {}
            for key in ("old", "new"):
                if metadata.get(key):
                    metadata[key] = {x: metadata[key][x] for x in ("type", "urn", "id") if x in metadata[key]}
        lines.append(json.dumps(event, sort_keys=True))
    return "\n".join(lines) + "\n"


def image(cluster: Cluster, tag: str) -> None:
    cluster.api("PATCH", "/apis/apps/v1/namespaces/d/deployments/web", {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": f"nginx:{tag}"}]}}}}, content_type=STRATEGIC)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="record-drift-"))
    project = work / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: drift\nruntime:\n  name: python\n  options:\n    virtualenv: venv\n")
    os.symlink(Path(__file__).resolve().parents[2] / ".venv", project / "venv")
    (project / "__main__.py").write_text(PROGRAM)
    (work / "state").mkdir()
    try:
        with Cluster(work / "cluster") as cluster:
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")},
                   "PATH": os.pathsep.join([str(project / "venv" / "bin"), *(str(tool(t).parent) for t in (
                       "pulumi", "pulumi-language-python", "pulumi-resource-kubernetes")), os.environ["PATH"]]),
                   "PULUMI_HOME": str(work / "home"), "PULUMI_BACKEND_URL": f"file://{work / 'state'}",
                   "PULUMI_CONFIG_PASSPHRASE": "recording", "PULUMI_SKIP_UPDATE_CHECK": "true",
                   "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "KUBECONFIG": str(cluster.kubeconfig),
                   "NO_COLOR": "1", "PULUMI_ENABLE_STREAMING_JSON_PREVIEW": "true"}

            def pulumi(*args: str) -> str:
                return subprocess.run([str(tool("pulumi")), *args, "--non-interactive"], cwd=project, env=env,
                                      capture_output=True, text=True, timeout=600).stdout

            def record(name: str) -> None:
                (HERE / f"drift-{name}.jsonl").write_text(trimmed(pulumi("preview", "--refresh", "--diff", "--json")))

            pulumi("stack", "init", "dev")
            pulumi("up", "--yes", "--skip-preview")
            record("clean")
            node = cluster.items("/api/v1/nodes")[0]["metadata"]["name"]
            cluster.api("PATCH", f"/api/v1/nodes/{node}", {"spec": {"unschedulable": True}}, content_type=MERGE)
            for pod in cluster.items("/api/v1/namespaces/d/pods?labelSelector=app%3Dweb"):
                cluster.api("DELETE", f"/api/v1/namespaces/d/pods/{pod['metadata']['name']}")
            time.sleep(5)
            record("unready")
            cluster.api("PATCH", f"/api/v1/nodes/{node}", {"spec": {"unschedulable": False}}, content_type=MERGE)
            time.sleep(5)
            image(cluster, "1.28")
            time.sleep(3)
            record("drift")
            image(cluster, "1.27")
            (project / "__main__.py").write_text(PROGRAM + FAILING_JOB)
            pulumi("up", "--yes", "--skip-preview")  # fails: the Job misses its deadline
            record("failed-job")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
