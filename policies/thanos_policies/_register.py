"""How a rule joins the pack: `resource_policy` and `stack_policy` build the policy the pack serves from a validate
function, so every rule reports each finding once (`deduplicated`) and judges values computed at apply
(`judge_unknowns`) the same way."""

from typing import Any, Callable

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy, StackValidationPolicy

from ._unknowns import judge_unknowns


def deduplicated(validate):
    """A validate function that reports each message once per resource (a flag repeated in nine containers is one
    finding, not nine)."""
    def run(args, report):
        seen = set()

        def once(message, urn=None):
            if (message, urn) in seen:
                return
            seen.add((message, urn))
            if urn is None:
                report(message)
            else:
                report(message, urn)
        validate(args, once)
    run.__name__ = validate.__name__
    return run


def _schema(config: dict[str, dict] | None) -> PolicyConfigSchema | None:
    """The config schema of a rule's properties (name -> JSON schema), or None when it takes none."""
    return PolicyConfigSchema(properties=config) if config else None


def resource_policy(name: str, description: str, validate: Callable, level: EnforcementLevel = EnforcementLevel.MANDATORY,
                    config: dict[str, dict] | None = None, remediate: Callable | None = None) -> Any:
    """A rule that judges one resource at a time, as the pack serves it. `config`: its properties (name -> JSON
    schema), `remediate`: returns the resource's fixed props (or None)."""
    return judge_unknowns(ResourceValidationPolicy(name=name, description=description, enforcement_level=level,
                                                   validate=deduplicated(validate), config_schema=_schema(config),
                                                   remediate=remediate))


def stack_policy(name: str, description: str, validate: Callable, level: EnforcementLevel = EnforcementLevel.MANDATORY,
                 config: dict[str, dict] | None = None) -> Any:
    """A rule that judges the stack's resources together, as the pack serves it. `config`: its properties (name ->
    JSON schema)."""
    return judge_unknowns(StackValidationPolicy(name=name, description=description, enforcement_level=level,
                                                validate=deduplicated(validate), config_schema=_schema(config)))
