"""Renamed clusters keep their resources: a resource whose logical name carries a new name is aliased to
the name it had before, so the engine updates it in place instead of deleting it and creating it again."""

import itertools
import re

import pulumi

from config.stack import StackConfig


def renames_of(stack: StackConfig) -> dict[str, list[str]]:
    """Earlier names by current name, for every cluster that was renamed (`renamed-from`)."""
    return {c.name: list(c.renamed_from) for r in stack.regions for c in r.clusters if c.renamed_from}


def earlier_names(name: str, renames: dict[str, list[str]]) -> list[str]:
    """The logical names a resource had before the renames: every way of putting an earlier name back where a current
    one stands as a whole `-`-separated part of `name` (`illinois-store` -> `chicago-store`)."""
    pattern = re.compile("|".join(rf"(?<![a-z0-9]){re.escape(new)}(?![a-z0-9])"
                                  for new in sorted(renames, key=len, reverse=True)))
    pieces, choices, last = [], [], 0
    for match in pattern.finditer(name):
        pieces.append(name[last:match.start()])
        choices.append([match.group(0), *renames[match.group(0)]])
        last = match.end()
    if not choices:
        return []
    names = []
    for chosen in itertools.product(*choices):
        names.append("".join(piece + part for piece, part in zip(pieces, chosen, strict=True)) + name[last:])
    return [n for n in names if n != name]


def keep_state_across_renames(stack: StackConfig) -> None:
    """Alias every resource registered from now on to its earlier names (nothing to do without `renamed-from`)."""
    renames = renames_of(stack)
    if not renames:
        return

    def alias_earlier_names(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        earlier = earlier_names(args.name, renames)
        if not earlier:
            return None
        # merge() appends lists: the resource keeps its own aliases and gains these.
        return pulumi.ResourceTransformationResult(args.props, pulumi.ResourceOptions.merge(
            args.opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(name=old) for old in earlier])))

    # The SDK-side transformation, not the engine-side `register_resource_transform`: the SDK applies it before it
    # registers a resource, so preflight's mock monitor (which runs no engine transforms) records the same aliases
    # that `pulumi up` sends.
    pulumi.runtime.register_stack_transformation(alias_earlier_names)
