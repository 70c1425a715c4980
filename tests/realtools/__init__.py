"""The real-tool harness: the tools built from their modules, and the planned containers started with them here.

    objects = kubernetes_objects("dev")                     # plan.py: the plan's objects, secrets included
    with Harness(tmp_path, objects) as harness:             # stops every process and DNS server on exit
        for container in planned_containers("dev", objects):  # pods.py
            process = harness.start(container)
        assert process.wait_ready(20) == "ready", process.output()

- build.py     `tool("thanos")`: the binary, built once per version by ci/tools.sh into the cache outside the clone
- plan.py      the Kubernetes objects of a stack as the program plans them, secrets included
- pods.py      what the kubelet would run for each planned container (env, args, volumes)
- loopback.py  the rewrites for this machine: listeners to loopback ports, buckets to FILESYSTEM folders
- sandbox.py   start-up: a private read-only root with the pod's volumes, as the pod's user; faults: `kill`,
               `freeze`/`thaw`, `stop` (the pod's grace period), and `Harness.restart` in the same pod
- dns.py       the stand-in for the cluster DNS (the plan's Services, the started pods as they get ready: the
               harness probes them each second; `Harness.wait_published`/`wait_unpublished`)
- blocks.py    prepared history: real blocks from promtool with a sidecar's meta section
"""

from .build import tool
from .harness import Harness

__all__ = ["Harness", "tool"]
