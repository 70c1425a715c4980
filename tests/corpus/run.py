"""Run the pack over a corpus fixture in-process (the same rules the analyzer serves)."""

from preflight.engine import Plan, Resource
from preflight.policy import run_policies


def plan_of(fixture) -> Plan:
    """The fixture's records as a plan, every resource on its own provider resource."""
    plan = Plan(project="ext", stack="ext")
    providers = sorted({r["provider"] for r in fixture.resources})
    for urn in providers:
        plan.resources.append(Resource(urn, "pulumi:providers:kubernetes", urn.rsplit("::", 1)[-1], True, None, None,
                                       False, False, [], {}, {}))
    for r in fixture.resources:
        plan.resources.append(Resource(r["urn"], r["type"], r["name"], True, None, r["provider"], False, False, [],
                                       r["inputs"], r["inputs"]))
    return plan


def findings(fixture, config=None) -> list[tuple[str, str, str]]:
    """(policy, resource name or "", message) of every finding, sorted."""
    names = {r["urn"]: r["name"] for r in fixture.resources}
    return sorted((v.policy, names.get(v.urn, ""), v.message) for v in run_policies(plan_of(fixture), config or {}))
