"""`python -m preflight.contexts STACK`: the kubeconfig contexts a stack names, one per line (CI fetches their
credentials before `pulumi preview`; clusters read from a cluster stack's kubeconfig output need none)."""

import sys
from pathlib import Path

import config as stack_config

from .cli import ROOT, read_stack_file


def contexts(stack_file: Path) -> list[str]:
    """Every `kubernetes.context` of the stack, in config order."""
    raw = read_stack_file(stack_file)
    settings = stack_config.load(stack_config.fold_path_keys(raw), source=f"{stack_file.name} thanos:config")
    return [c.kubernetes.context for r in settings.regions for c in r.clusters if c.kubernetes.context]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m preflight.contexts STACK", file=sys.stderr)
        return 2
    try:
        found = contexts(ROOT / f"Pulumi.{argv[0]}.yaml")
    except (OSError, ValueError) as err:
        print(f"preflight.contexts: {err}", file=sys.stderr)
        return 2
    print("\n".join(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
