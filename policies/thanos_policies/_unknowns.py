"""A value computed at apply (during a first `pulumi preview`): a rule judges what is known, and what it could not judge
is a finding at the rule's own level, naming the resource and the value, so a preview cannot pass a mandatory rule
it never ran. `unknownValues: note` in a rule's config turns that back into the engine's advisory note."""

from pulumi_policy import PolicyConfigSchema, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError

UNKNOWN_VALUES = "unknownValues"
"""The config property every rule takes: "finding" (default) or "note"."""
UNKNOWN_VALUES_SCHEMA = {"type": "string", "enum": ["finding", "note"], "default": "finding"}
SHOWN = 5
"""How many resources a stack rule's finding names before it counts the rest."""


def _unknown_at(props, path: list) -> bool:
    """Whether reading `path` in a resource's (proxied) props meets a value computed at apply."""
    value = props
    try:
        for key in path:
            if isinstance(key, str) and hasattr(value, "get"):
                value = value.get(key)
            elif isinstance(key, int) and hasattr(value, "__getitem__") and not isinstance(value, str) \
                    and key < len(value):
                value = value[key]
            else:
                return False
            if value is None:
                return False
    except UnknownValueError:
        return True
    return False


def _path(error: UnknownValueError) -> list:
    return [int(p) if p.isdigit() else p for p in error.props]


def _message(policy: str, what: str, error: UnknownValueError) -> str:
    return (f"{policy} could not judge {what} during this preview: its value at .{'.'.join(error.props)} is computed "
            f"at apply, so the rule (which stops at the first such value) would first run at `pulumi up`, after the "
            f"step. Build that value from what is known before the resource exists, or accept it for this rule "
            f"({UNKNOWN_VALUES}: note).")


def judge_unknowns(policy):
    """The policy again, its validate judging values computed at apply (a finding, or the note when configured) and
    `unknownValues` added to its config schema."""
    validate = policy.validate
    stack = isinstance(policy, StackValidationPolicy)

    def run(args, report):
        try:
            validate(args, report)
        except UnknownValueError as error:
            if (args.get_config() or {}).get(UNKNOWN_VALUES) == "note":
                raise
            if not stack:
                report(_message(policy.name, "this resource", error))
                return
            path = _path(error)
            hidden = [r for r in args.resources if _unknown_at(r.props, path)]
            # None: read from somewhere other than a resource's props (a provider's, a parent's): the stack's finding.
            for r in hidden[:SHOWN] or [None]:
                report(_message(policy.name, f"{r.resource_type} {r.name}" if r else "the stack", error),
                       r.urn if r else None)
            if len(hidden) > SHOWN:
                report(f"{policy.name} could not judge {len(hidden) - SHOWN} more resources during this preview "
                       f"(value at .{'.'.join(error.props)} computed at apply).")

    run.__name__ = getattr(validate, "__name__", "validate")
    schema = policy.config_schema
    properties = {**(schema.properties if schema else {}), UNKNOWN_VALUES: UNKNOWN_VALUES_SCHEMA}
    extra = {"remediate": policy.remediate} if not stack and policy.has_remediation() else {}
    return type(policy)(name=policy.name, description=policy.description, enforcement_level=policy.enforcement_level,
                        validate=run, config_schema=PolicyConfigSchema(properties=properties,
                                                                       required=schema.required if schema else None),
                        **extra)
