"""`python -m preflight STACK`: plan a stack offline, run the policy pack over it, write JSON and manifests."""

import argparse
import json
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_MANDATORY, EXIT_CONFIG, EXIT_PROGRAM = 0, 1, 2, 3


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m preflight",
                                     description="Plan a stack under Pulumi's mock engine and run the policy pack.")
    parser.add_argument("stack", nargs="?", help="stack name: reads Pulumi.STACK.yaml")
    parser.add_argument("--config-file", type=Path, help="a stack file of that shape to use instead")
    parser.add_argument("--json", type=Path, dest="json_path", help="write the plan as JSON here")
    parser.add_argument("--manifests", type=Path, help="write every Kubernetes object as YAML under this directory")
    parser.add_argument("--no-policy", action="store_true", help="do not run the policy pack")
    parser.add_argument("--conformance", action="store_true",
                        help="also check every input against the installed provider SDKs' types (exit 1 on a problem)")
    parser.add_argument("--program", type=Path, default=ROOT / "__main__.py",
                        help="the Pulumi program to run (default: this project's __main__.py)")
    parser.add_argument("--first-preview", action="store_true",
                        help="plan as the first `pulumi preview` of a new stack sees it: every computed output unknown")
    parser.add_argument("--baseline", type=Path,
                        help="the stack's last state (`pulumi stack export`) or an earlier `--json` plan: refuse "
                             "deleting or replacing a stateful resource, or a hashring that loses endpoints in the "
                             "step their pods go (exit 1) unless the stack allows it; explain each hashring change")
    parser.add_argument("--policy-config", type=Path,
                        help="policy pack config JSON (default policies/ENVIRONMENT.json when it exists, ENVIRONMENT "
                             "being the stack's thanos:config environment: dev, prod...)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also print the resources by type and every policy finding on its own line")
    args = parser.parse_args(argv)
    if not args.stack and not args.config_file:
        parser.error("give a STACK or --config-file")
    return args


def stack_name_of(args: argparse.Namespace) -> str:
    """STACK when given, else the middle part of the config file name (Pulumi.<stack>.yaml)."""
    if args.stack:
        return args.stack
    parts = args.config_file.name.split(".")
    return parts[1] if len(parts) >= 3 else args.config_file.stem


class OptionError(ValueError):
    """A command-line option is unusable; the message names the option."""


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` map of a stack file."""
    if not path.is_file():
        raise FileNotFoundError(f"no stack file {path}")
    with path.open() as stream:  # a stream, so YAML errors name the file rather than "<unicode string>"
        document = yaml.safe_load(stream) or {}
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise ValueError(f"{path}: expected a mapping with a 'config:' mapping")
    return document.get("config") or {}


_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def key_lines(path: Path, config_key: str) -> Callable[[str], int | None]:
    """A function giving the line of the stack file where a key path of `config_key` (`regions[1].storage.bucket`)
    is, or for a key that is not there (a missing one) the line of the nearest key above it."""
    try:
        with path.open() as stream:
            root = yaml.compose(stream)
    except (OSError, yaml.YAMLError):
        return lambda _: None

    def child(node: Any, part: str | int) -> Any:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            return next((value for key, value in node.value if key.value == part), None)
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            return node.value[part]
        return None

    def line(key_path: str) -> int | None:
        node = child(child(root, "config"), config_key)
        if node is None:
            return None
        found = node.start_mark.line  # the value's first line; a mapping's key is on the line above its block
        for index, name in _PART.findall("" if key_path == "(top level)" else key_path):
            part: str | int = int(index) if index else name
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                key = next((k for k, _ in node.value if k.value == part), None)
                if key is None:
                    break
                found, node = key.start_mark.line, child(node, part)
            else:
                node = child(node, part)
                if node is None:
                    break
                found = node.start_mark.line
        return found + 1

    return line


def config_error_text(err: Any, stack_file: Path, config_key: str) -> str:
    """The config error with the stack file's line of each problem."""
    line_of = key_lines(stack_file, config_key)
    lines = str(err).splitlines()[:1]
    for key_path, message in err.problems:
        line = line_of(key_path)
        lines.append(f"  - {key_path}: {message}" + (f" ({stack_file.name}:{line})" if line else ""))
    return "\n".join(lines)


SECRET_PLACEHOLDER = "preflight-placeholder-secret"
URL_PLACEHOLDER = "https://alerts.invalid/preflight-placeholder-secret"
"""A secret that is a URL (a Slack or webhook URL) gets a placeholder of that shape: Alertmanager parses it."""


def offline_config(raw: dict[str, Any], settings: Any, project: str = "thanos") -> dict[str, Any]:
    """The stack file's config with what cannot be read offline replaced: `secure:` values (encrypted with a key
    preflight does not have) and the secret keys the stack needs but keeps out of the file (set with
    `pulumi config set --secret`) become placeholders; they are secrets, so they only ever show as "[secret]"."""
    from .report import secrets_to_set

    config = {key: SECRET_PLACEHOLDER if isinstance(value, dict) and set(value) == {"secure"} else value
              for key, value in raw.items()}
    for secret in secrets_to_set(raw, settings, project):
        config[f"{project}:{secret.key}"] = URL_PLACEHOLDER if secret.url else SECRET_PLACEHOLDER
    return config


def check_options(args: argparse.Namespace, environment: str) -> tuple[dict[str, Any] | None, Path | None, str]:
    """Refuse unusable options before anything runs or is written; return the policy config to use (None with
    --no-policy), its file and why that one."""
    if not args.program.is_file():
        raise OptionError(f"--program {args.program}: no such file")
    if args.json_path:
        if args.json_path.is_dir():
            raise OptionError(f"--json {args.json_path}: is a directory; give a file path")
        if not args.json_path.parent.is_dir():
            raise OptionError(f"--json {args.json_path}: directory {args.json_path.parent} does not exist")
    if args.manifests:
        from .manifests import ManifestDirError, check_manifest_dir

        try:
            check_manifest_dir(args.manifests)
        except ManifestDirError as err:
            raise OptionError(f"--manifests {args.manifests}: {err}") from None
    from . import policy

    path, why = args.policy_config, "--policy-config"
    if path is None:
        path, why = policy.environment_policy_config(environment)
    elif not path.is_file():
        raise OptionError(f"--policy-config {path}: no such file")
    if path is None:
        return (None if args.no_policy else {}), None, why
    try:
        config = policy.load_policy_config(path)
    except policy.PolicyConfigError as err:
        raise OptionError(f"--policy-config {path}: {err}") from None
    return (None if args.no_policy else config), path, why


def placeholder_stack_outputs(references: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """Deterministic stand-ins for the outputs read from other stacks."""
    outputs: dict[str, dict[str, str]] = {}
    for stack, names in references.items():
        outputs[stack] = {}
        for name in names:
            if "oidc" in name.lower() or "issuer" in name.lower():
                outputs[stack][name] = f"https://oidc.preflight.invalid/{stack.replace('/', '-')}"
            else:
                outputs[stack][name] = f"# kubeconfig of {stack} (preflight placeholder)\n"
    return outputs


def summary(plan: Any, verbose: bool = False, settings: Any = None) -> str:
    """The plan's size (with `verbose`, its resources by component and type), then what runs in each cluster."""
    from .report import reached_through, type_counts, what_runs, workloads

    lines = [f"Plan of {plan.project}/{plan.stack}: {len(plan.resources)} resources "
             f"({sum(r.custom for r in plan.resources)} custom, {sum(not r.custom for r in plan.resources)} components)"
             + ("" if verbose else "; --verbose lists them by type")]
    if verbose:
        lines += type_counts(plan)
    return "\n".join(lines + what_runs(workloads(plan), reached_through(settings) if settings else None))


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    stack = stack_name_of(args)
    stack_file = args.config_file or ROOT / f"Pulumi.{stack}.yaml"

    import config as stack_config

    project = (yaml.safe_load((ROOT / "Pulumi.yaml").read_text()) or {}).get("name", "thanos")
    try:
        raw_config = read_stack_file(stack_file)
        warnings: list[str] = []
        settings = stack_config.load(stack_config.fold_path_keys(raw_config, project),
                                     source=f"{stack_file.name} {project}:{stack_config.CONFIG_KEY}", warnings=warnings)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
    except stack_config.ConfigError as err:
        print(config_error_text(err, stack_file, f"{project}:{stack_config.CONFIG_KEY}"), file=sys.stderr)
        if any(key.startswith(f"{project}:{stack_config.CONFIG_KEY}.") for key in raw_config):  # made by `pulumi new`
            print(f"  Set a key with: pulumi config set --path '{project}:{stack_config.CONFIG_KEY}.<key>' VALUE "
                  f"-s {stack}", file=sys.stderr)
        return EXIT_CONFIG
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"invalid stack file: {err}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        policy_config, policy_path, policy_why = check_options(args, settings.environment)
        baseline = None
        if args.baseline:
            from .destructive import BaselineError, load_baseline

            try:
                baseline = load_baseline(args.baseline)
            except BaselineError as err:
                raise OptionError(f"--baseline {err}") from None
    except OptionError as err:
        print(f"preflight: {err}", file=sys.stderr)
        return EXIT_CONFIG

    # The plan must not depend on this host: drop what the SDK would otherwise read from the environment.
    for var in ("KUBECONFIG", "PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS"):
        os.environ.pop(var, None)
    from . import engine

    try:
        plan = engine.run_program(args.program, project, stack, offline_config(raw_config, settings, project),
                                  placeholder_stack_outputs(settings.stack_references()),
                                  first_preview=args.first_preview)
    except Exception:  # the program raised: show where, the way `pulumi preview` would
        print(f"the program raised while planning stack {stack}:", file=sys.stderr)
        traceback.print_exc()
        return EXIT_PROGRAM

    violations = None
    if policy_config is not None:
        from . import policy

        violations = policy.run_policies(plan, policy_config)

    from . import report

    print(summary(plan, args.verbose, settings))
    print("\n".join(report.endpoints(plan.outputs, stack)))
    if violations is not None:
        print(f"Policy config: {_shown(policy_path) if policy_path else 'none'} ({policy_why})")
    print("\n".join(report.findings(violations, args.verbose)))
    edits = []
    if baseline is not None:
        from .destructive import destructive_edits
        from .hashring import ring_changes

        rings = ring_changes(plan, baseline)
        edits = destructive_edits(plan, baseline, settings.allow_destructive) + [
            ring.edit(settings.allow_destructive) for ring in rings if not ring.safe]
        refused = sum(not e.allowed for e in edits)
        print(f"Destructive edits against {args.baseline.name}: {refused} refused, {len(edits) - refused} allowed "
              f"(of {len(baseline)} resources)")
        from .destructive import grouped_lines

        for line in grouped_lines(edits, args.verbose):
            print(line)
        if refused:
            print("  To go ahead with one, add its name to allow-destructive in the stack's thanos:config.")
        if rings:
            print(f"Hashring changes against {args.baseline.name}: {len(rings)}")
            for ring in rings:
                print(ring.line())
    nonconforming = False
    if args.conformance:
        from .conformance import check_plan

        checked = check_plan(plan)
        nonconforming = bool(checked.problems)
        print(f"Conformance: {checked.resources} resources, {checked.properties} property names and {checked.invokes} "
              f"invokes checked against the installed provider SDKs: {len(checked.problems) or 'no'} problem(s)")
        for problem in checked.problems:
            print(f"  [conformance] {problem}")
    # Manifests first: their writer checks every path before writing any, so a refusal leaves nothing behind.
    if args.manifests:
        from .manifests import write_manifests

        try:
            count, inner = write_manifests(plan, args.manifests)
        except ValueError as err:
            print(f"preflight: --manifests {args.manifests}: {err}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"wrote {count} Kubernetes manifests under {args.manifests}, and {inner} files from inside them "
              "(<cluster>/<namespace>/files/: prometheus.yml, rule files, dashboards)")
    from .prerequisites import prerequisites, text

    needed = prerequisites(plan)
    print(text(needed))
    secrets = report.secrets_to_set(raw_config, settings, project)
    print("\n".join(report.secrets_text(secrets, project, stack)))
    policy_args = "--policy-pack policies" + (f" --policy-pack-config {_shown(policy_path)}" if policy_path else "")
    if args.json_path:
        document = {"project": plan.project, "stack": plan.stack,
                    "resources": [r.to_json() for r in plan.resources], "outputs": plan.outputs,
                    "violations": [v.to_json() for v in violations or []],
                    "destructive": [e.to_json() for e in edits],
                    "prerequisites": [p.to_json() for p in needed]}
        args.json_path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    mandatory = any(v.level == "mandatory" for v in violations or [])
    destructive = any(not e.allowed for e in edits)
    print(report.next_command(stack, policy_args, mandatory or nonconforming, bool(secrets), destructive))
    return EXIT_MANDATORY if mandatory or nonconforming or destructive else EXIT_OK


def run() -> None:
    """Entry point: exit without the SDK's event-loop teardown noise."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
