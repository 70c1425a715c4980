"""Benchmark: preflight wall time, resources, time per resource and peak memory per stack, against the floor.

The floor is what no program can avoid: importing the SDK modules the stack uses, plus the mock engine's own cost of
registering that many resources with trivial code. Run: `./run bench` (prints a table; asserts nothing).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "3"))

IMPORTS = {
    "aws": "import pulumi_aws as a; a.Provider; a.s3.Bucket; a.iam.Role",
    "gcp": "import pulumi_gcp as g; g.Provider; g.storage.Bucket; g.serviceaccount.Account",
    "azure": ("import pulumi_azure_native as z; z.Provider; z.storage.StorageAccount; "
              "z.managedidentity.UserAssignedIdentity; z.authorization.RoleAssignment"),
    "in-cluster": "import pulumi_random as r; r.RandomPassword",
}
K8S = ("import pulumi, pydantic, yaml, pulumi_kubernetes as k; k.Provider; k.core.v1.Service; k.apps.v1.Deployment; "
       "k.policy.v1.PodDisruptionBudget; k.autoscaling.v2.HorizontalPodAutoscaler; k.networking.v1.NetworkPolicy; "
       "k.batch.v1.Job")

# The floor registers with the same collector settings as preflight (engine.run_program), so both sides pay the same
# garbage-collection cost and the floor stays below what the program can reach.
REGISTER = """
import gc
import pulumi
{imports}
gc.collect(); gc.freeze(); gc.set_threshold(200_000, 100, 1000)
class M(pulumi.runtime.Mocks):
    def new_resource(self, a): return a.name + "-id", dict(a.inputs)
    def call(self, a): return {{}}
pulumi.runtime.set_mocks(M(), project="bench", stack="bench", preview=False)
import pulumi_kubernetes as k
@pulumi.runtime.test
def run():
    for i in range({count}):
        k.core.v1.ConfigMap(f"cm-{{i}}", metadata={{"name": f"cm-{{i}}", "labels": {{"a": "b", "c": "d"}}}},
                            data={{"x": "y" * 200, "z": str(i)}})
run()
"""


def generated_stack(clusters: int) -> dict:
    """An AWS stack with `clusters` clusters spread over up to 4 regions, each region replicated to the next."""
    names = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]
    regions_count = min(4, clusters)
    regions = []
    for r in range(regions_count):
        per_region = clusters // regions_count + (1 if r < clusters % regions_count else 0)
        region = {"name": names[r], "storage": {"provider": "aws", "bucket": f"bench-thanos-{names[r]}"},
                  "clusters": [{"name": f"c{r}x{i}", "kubernetes": {"context": f"ctx-{r}-{i}"},
                                "oidc-issuer": f"https://oidc.eks.{names[r]}.amazonaws.com/id/{r}{i}"}
                               for i in range(per_region)]}
        if regions_count > 1:
            region["storage"]["replication"] = {"destination": names[(r + 1) % regions_count]}
        regions.append(region)
    return {"config": {"thanos:config": {"environment": "prod", "regions": regions}}}


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and the peak RSS (MB) of this one child (wait4 reports the child's own rusage; RUSAGE_CHILDREN
    would be the largest child so far)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed: {err.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss // 1024


def floor(clouds: set[str], resources: int) -> tuple[float, float]:
    """(seconds to start Python and import what the stack uses, seconds to also register `resources` trivial
    resources under the mock engine), each a whole process, best of RUNS."""
    imports = "; ".join([K8S, *(IMPORTS[c] for c in sorted(clouds))])

    def best(count: int) -> float:
        return min(timed([sys.executable, "-c", REGISTER.format(imports=imports, count=count)])[0]
                   for _ in range(RUNS))

    return best(0), best(resources)


def measure(label: str, stack_file: Path) -> dict:
    """Preflight of one stack file, RUNS times; the best wall time and this stack's own largest peak."""
    raw = yaml.safe_load(stack_file.read_text())["config"]["thanos:config"]
    clouds = {r["storage"]["provider"] for r in raw["regions"]}
    walls, peaks, count = [], [], 0
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            plan = Path(tmp) / "plan.json"
            wall, peak = timed([sys.executable, "-m", "preflight", "--config-file", str(stack_file),
                                   "--json", str(plan)])
            count = len(json.loads(plan.read_text())["resources"])
        walls.append(wall)
        peaks.append(peak)
    imports, full_floor = floor(clouds, count)
    best = min(walls)
    overhead = best - full_floor
    if overhead < 0:
        print(f"warning: {label} ran below its floor by {-overhead * 1000:.0f} ms (timing noise); reported as 0",
              file=sys.stderr)
        overhead = 0.0
    return {"stack": label, "resources": count, "wall_s": best, "median_s": statistics.median(walls),
            "import_floor_s": imports, "floor_s": full_floor, "ratio_to_import_floor": best / imports,
            "ratio_to_floor": best / full_floor,
            "ms_per_resource_over_floor": 1000 * overhead / count, "ms_per_resource_total": 1000 * best / count,
            "peak_mb": max(peaks)}


def pack_ready_seconds() -> float:
    """From starting the policy pack to its gRPC port being printed (what the CLI waits for), best of RUNS."""
    best = float("inf")
    for _ in range(max(RUNS, 3)):
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(ROOT / "policies" / "__main__.py")], stdout=subprocess.PIPE,
                                text=True)
        proc.stdout.readline()
        best = min(best, time.perf_counter() - start)
        proc.terminate()
        proc.wait()
    return best


def main() -> None:
    rows = [measure(path.name.split(".")[1], path) for path in sorted(ROOT.glob("Pulumi.*.yaml"))]
    with tempfile.TemporaryDirectory() as tmp:
        for clusters in (1, 4, 16):
            path = Path(tmp) / f"Pulumi.gen{clusters}.yaml"
            path.write_text(yaml.safe_dump(generated_stack(clusters)))
            rows.append(measure(f"aws-{clusters}-clusters", path))
    header = ("stack", "resources", "wall_s", "median_s", "import_floor_s", "floor_s", "ratio_to_import_floor",
              "ratio_to_floor",
              "ms_per_resource_over_floor", "ms_per_resource_total", "peak_mb")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(f"{row[h]:.3f}" if isinstance(row[h], float) else str(row[h]) for h in header))
    sys.path.insert(0, str(ROOT / "policies"))
    from thanos_policies import POLICIES

    print(f"policy pack: {len(POLICIES)} policies, ready to serve in {pack_ready_seconds() * 1000:.0f} ms")
    print("floor_s = start Python, import what the stack uses, register as many trivial resources under mocks")
    print("targets: prod within 1.5x of the floor, ms_per_resource_over_floor < 2.6 and flat from 1 to 16 clusters, "
          "peak_mb < 500")


if __name__ == "__main__":
    main()
