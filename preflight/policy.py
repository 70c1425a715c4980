"""Run the real policy pack over a recorded plan, the way the engine's analyzer does."""

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (EnforcementLevel, PolicyCustomTimeouts, PolicyProviderResource, PolicyResource,
                           PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy,
                           StackValidationArgs, StackValidationPolicy)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from .engine import Plan, Resource

POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"


@dataclass(frozen=True)
class Violation:
    """One policy finding."""

    policy: str
    level: str
    urn: str
    message: str

    def to_json(self) -> dict[str, str]:
        """The preflight contract's violation record."""
        return {"policy": self.policy, "level": self.level, "urn": self.urn, "message": self.message}


def load_policies() -> list[Any]:
    """The pack's policies, imported from `policies/thanos_policies` (never its blocking `__main__.py`)."""
    if str(POLICIES_DIR) not in sys.path:
        sys.path.insert(0, str(POLICIES_DIR))
    from thanos_policies import POLICIES

    return POLICIES


LEVELS = ("advisory", "mandatory", "remediate", "disabled")


class PolicyConfigError(ValueError):
    """A policy pack config file is unreadable or names what the pack does not have."""


def environment_policy_config(environment: str) -> tuple[Path | None, str]:
    """The policy config a stack of this environment (`thanos:config` `environment`) uses by default, and why:
    `policies/<environment>.json` when it exists (dev's relaxations for every dev stack, whatever its name), else none
    (every policy at the pack's own level). `pulumi preview` gets the same file through `--policy-pack-config`."""
    path = POLICIES_DIR / f"{environment}.json"
    if path.is_file():
        return path, f"the stack's thanos:config environment is {environment}"
    return None, f"the stack's thanos:config environment is {environment} and there is no policies/{environment}.json"


def load_policy_config(path: Path | None) -> dict[str, Any]:
    """A `--policy-pack-config` JSON file (checked against the pack: policy names, levels, properties), or {}."""
    if path is None:
        return {}
    try:
        config = json.loads(path.read_text())
    except ValueError as err:
        raise PolicyConfigError(f"not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise PolicyConfigError("must be a JSON object of policy names")
    policies = {p.name: p for p in load_policies()}
    problems = []
    for name, entry in config.items():
        policy = policies.get(name)
        if policy is None and name != "all":
            problems.append(f"no policy named {name!r}")
            continue
        level = entry.get("enforcementLevel") if isinstance(entry, dict) else entry
        if not isinstance(entry, (dict, str)) or (level is not None and level not in LEVELS):
            problems.append(f"{name}: enforcementLevel must be one of {', '.join(LEVELS)}")
        properties = policy.config_schema.properties if policy and policy.config_schema else {}
        known = set(properties)
        unknown = sorted(set(entry) - known - {"enforcementLevel"}) if isinstance(entry, dict) else []
        if unknown:
            problems.append(f"{name}: unknown propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}"
                            f" (known: {', '.join(sorted(known)) or 'none'})")
        for key in sorted(set(entry) & known if isinstance(entry, dict) else ()):
            problem = _value_problem(properties[key], entry[key])
            if problem:
                problems.append(f"{name}.{key}: {problem}")
    if problems:
        raise PolicyConfigError("; ".join(problems))
    return config


_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "boolean": bool, "number": (int, float)}


def _value_problem(schema: dict[str, Any], value: Any) -> str:
    """What is wrong with one property's value against its schema (type and enum), as the engine would refuse it."""
    expected = _TYPES.get(schema.get("type", ""))
    if expected and (not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool
                                                          and schema.get("type") != "boolean")):
        return f"must be a {schema['type']}, not {json.dumps(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {', '.join(map(str, schema['enum']))}, not {json.dumps(value)}"
    return ""


def enforcement_level(policy: Any, config: dict[str, Any]) -> EnforcementLevel:
    """The effective level: the policy's own entry, then `all`, then the policy's default (advisory if none)."""
    for key in (policy.name, "all"):
        entry = config.get(key)
        level = entry.get("enforcementLevel") if isinstance(entry, dict) else entry
        if level:
            return EnforcementLevel(level)
    return policy.enforcement_level or EnforcementLevel.ADVISORY


def policy_properties(policy: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The policy's config properties: schema defaults overlaid with the config file's entry."""
    values: dict[str, Any] = {}
    if policy.config_schema:
        values = {k: v["default"] for k, v in policy.config_schema.properties.items() if "default" in v}
    entry = config.get(policy.name)
    if isinstance(entry, dict):
        values.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
    return values


def _options(resource: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(resource.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], resource.parent)


STACK_URN = "urn:pulumi:{plan.stack}::{plan.project}::pulumi:pulumi:Stack::{plan.project}-{plan.stack}"


def _validate(policy: Any, args: Any, urn: str, violations: list[Violation], report: Any) -> None:
    """One policy evaluation; one that touches a value unknown during a preview is skipped with the note the
    engine gives (pulumi_policy reports it as advisory, whatever the policy's level)."""
    try:
        policy.validate(args, report)
    except UnknownValueError as error:
        violations.append(Violation(policy.name, "advisory", urn,
                                    f"can't run policy '{policy.name}' during preview: {error.message}"))


def run_policies(plan: Plan, config: dict[str, Any], policies: list[Any] | None = None) -> list[Violation]:
    """Every violation the pack reports on the plan: resource policies on inputs, stack policies on outputs."""
    policies = load_policies() if policies is None else policies
    by_urn = {r.urn: r for r in plan.resources}
    checked = [r for r in plan.resources if r.custom and not r.type.startswith("pulumi:")]
    violations: list[Violation] = []

    stack_resources = []
    for r in checked:
        provider = by_urn.get(r.provider) if r.provider else None
        stack_resources.append(PolicyResource(
            r.type, unknown_checking_proxy(r.outputs), r.urn, r.name, _options(r),
            PolicyProviderResource(provider.type, provider.inputs, provider.urn, provider.name) if provider else None,
            None, [], {}))
    resource_by_urn = {p.urn: p for p in stack_resources}
    for policy_resource, r in zip(stack_resources, checked, strict=True):
        parent = resource_by_urn.get(r.parent) if r.parent else None
        policy_resource.parent = parent

    # One read-only proxy per resource, shared by every resource policy (building them is the costly part).
    proxied = [(r, unknown_checking_proxy(r.inputs), _options(r)) for r in checked]
    for policy in policies:
        level = enforcement_level(policy, config)
        if level == EnforcementLevel.DISABLED:
            continue
        shown = "mandatory" if level in (EnforcementLevel.MANDATORY, EnforcementLevel.REMEDIATE) else "advisory"
        properties = policy_properties(policy, config)
        if isinstance(policy, ResourceValidationPolicy):
            for r, props, opts in proxied:
                args = ResourceValidationArgs(r.type, props, r.urn, r.name, opts, None, properties)
                _validate(policy, args, r.urn, violations, lambda message, urn=None, _r=r, _p=policy, _level=shown:
                          violations.append(Violation(_p.name, _level, _r.urn, message)))
        elif isinstance(policy, StackValidationPolicy):
            _validate(policy, StackValidationArgs(stack_resources, properties), STACK_URN.format(plan=plan),
                      violations, lambda message, urn=None, _p=policy, _level=shown:
                      violations.append(Violation(_p.name, _level, urn or "", message)))
    return violations
