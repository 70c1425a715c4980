"""The real-tool harness: the tools built from their modules, and the planned containers started with them here.

    with Harness(tmp_path) as harness:          # stops every process it started on exit
        process = harness.start(container)      # a PlannedContainer from pods.planned_containers(...)
        assert process.wait_ready(20) == "ready", process.output()

- build.py     `tool("thanos")`: the binary, built once per version by ci/tools.sh into the cache outside the clone
- plan.py      the Kubernetes objects of a stack as the program plans them, secrets included
- pods.py      what the kubelet would run for each planned container (env, args, volumes)
- loopback.py  the rewrites for this machine: listeners to loopback ports, buckets to FILESYSTEM folders
- sandbox.py   start-up: a private read-only root with the pod's volumes, as the pod's user
"""

from .build import tool
from .harness import Harness

__all__ = ["Harness", "tool"]
