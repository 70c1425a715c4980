"""The Kubernetes objects of a shipped stack exactly as the program plans them, secrets included (the mock engine's
certificates are real keys and certificates, and every other secret comes from config): what the real tools run."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def kubernetes_objects(stack: str, overrides: dict[str, Any] | None = None,
                       config_file: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(cluster, object) for every Kubernetes object of `stack` (its stack file, or `config_file` of that shape),
    unredacted, in URN order; with `overrides` merged into its `thanos:config` first (mappings merged key by key,
    anything else replaced). Planned in a fresh interpreter, since the mock engine's state is per process."""
    request = json.dumps({"overrides": overrides or {}, "config_file": str(config_file) if config_file else None})
    proc = subprocess.run([sys.executable, "-m", "tests.realtools.plan", stack, request], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise RuntimeError(f"planning {stack} failed:\n{proc.stderr[-4000:]}")
    return [(cluster, obj) for cluster, obj in json.loads(proc.stdout)]


def merged(base: Any, overrides: Any) -> Any:
    """`overrides` over `base`: mappings merged key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(overrides, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in overrides.items()}}
    return overrides


def _plan(stack: str, overrides: dict[str, Any] | None = None,
          config_file: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    import yaml

    import config as stack_config
    from preflight import engine
    from preflight.cli import offline_config, placeholder_stack_outputs
    from preflight.manifests import K8S_PROVIDER_PREFIX, is_object

    for var in ("KUBECONFIG", "PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS"):
        os.environ.pop(var, None)
    raw = yaml.safe_load((config_file or ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    raw["thanos:config"] = merged(raw["thanos:config"], overrides or {})
    settings = stack_config.load(raw["thanos:config"])
    plan = engine.run_program(ROOT / "__main__.py", "thanos", stack, offline_config(raw, settings),
                              placeholder_stack_outputs(settings.stack_references()))
    providers = {r.urn: r.name for r in plan.resources if r.type == "pulumi:providers:kubernetes"}
    return [(providers.get(r.provider or "", "_default").removeprefix(K8S_PROVIDER_PREFIX), r.inputs)
            for r in plan.resources if r.custom and is_object(r.type)]


def kubernetes_clusters(stack: str) -> dict[str, str]:
    """Planned cluster -> the Kubernetes cluster it is on (its kubeconfig context or cluster stack): dev's clusters
    are namespaces of one kind cluster, and share its DNS."""
    import yaml

    import config as stack_config

    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    settings = stack_config.load(raw["thanos:config"])
    return {c.name: c.kubernetes.context or c.kubernetes.stack or c.name for r in settings.regions for c in r.clusters}


if __name__ == "__main__":
    request = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    objects = _plan(sys.argv[1], request.get("overrides"),
                    Path(request["config_file"]) if request.get("config_file") else None)
    sys.stdout.write(json.dumps(objects))
    sys.stdout.flush()
    os._exit(0)
