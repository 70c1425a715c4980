"""Stack configuration: the `thanos:config` key, validated in one call, every problem reported with its key path."""

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .capacity import apply_capacity
from .limits import limit_problems
from .stack import ClusterSpec, RegionSpec, StackConfig, cross_check, replica_bucket_name
from .storage import STORAGE_PROVIDERS

CONFIG_KEY = "config"
"""The one structured key of a stack file: `thanos:config`."""


class ConfigError(ValueError):
    """The stack configuration is invalid; `problems` holds (key path, message) pairs, all of them."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "thanos:config"):
        self.problems = problems
        lines = [f"invalid stack configuration in {source}: {len(problems)} problem(s)"]
        lines += [f"  - {path}: {message}" for path, message in problems]
        super().__init__("\n".join(lines))


def key_path(loc: tuple[Any, ...]) -> str:
    """`('regions', 1, 'storage', 'aws', 'bucket')` -> `regions[1].storage.bucket` (the union tag dropped)."""
    path = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in STORAGE_PROVIDERS and i > 0 and loc[i - 1] == "storage":
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _message(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        # pydantic names the Python class here ("a valid dictionary or instance of StoreSpec"): say it in YAML terms.
        message = "must be a mapping of keys (key: value)"
        if isinstance(error.get("input"), list):
            return f"{message}, not a list"
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling; keys are kebab-case)"
    if error["type"] == "union_tag_invalid":
        return f"provider must be one of {', '.join(STORAGE_PROVIDERS)}, got {error['input'].get('provider')!r}" \
            if isinstance(error.get("input"), dict) else message
    if error["type"] != "missing" and not isinstance(error.get("input"), (dict, list)) and repr(error.get("input")) not in message:
        return f"{message} (got {error['input']!r})"
    return message


def load(raw: Any, source: str = "thanos:config", warnings: list[str] | None = None) -> StackConfig:
    """Validate the raw `thanos:config` object; raise ConfigError naming every bad key. With `capacity:`, sizes not
    set come from the capacity plan; warnings about explicit sizes below it (enforce: warn), and about clusters
    sharing a bucket, go to `warnings`. Write limits are checked against the sized ingestors."""
    if raw is None:
        raise ConfigError([("(top level)", "the stack has no thanos:config key")], source)
    try:
        stack = StackConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError([(key_path(e["loc"]), _message(e)) for e in err.errors()], source) from None
    problems = cross_check(stack)
    if problems:
        raise ConfigError(problems, source)
    try:
        stack, problems, notes = apply_capacity(stack)
    except ValueError as err:  # the planner refuses a storage class the region's cloud does not price
        key = "capacity.storage-class" if str(err).startswith("storage class") else "capacity"
        raise ConfigError([(key, str(err))], source) from None
    problems += limit_problems(stack)  # the default head-series limit follows the sizes the plan just filled
    if problems:
        raise ConfigError(problems, source)
    if warnings is not None:
        warnings.extend(f"capacity: {note}" for note in notes)
        warnings.extend(shared_bucket_notes(stack))
    return stack


def shared_bucket_notes(stack: StackConfig) -> list[str]:
    """A region's clusters write its one bucket, blocks at its root: no grant tells one cluster's blocks from
    another's, so a writer identity of one can overwrite the others' (docs/dr.md, "What one writer can damage")."""
    return [f"storage: regions[{i}].clusters {', '.join(c.name for c in region.clusters)} write one bucket: a writer "
            "identity of one can overwrite the blocks of the others (docs/dr.md, \"What one writer can damage\")"
            for i, region in enumerate(stack.regions) if len(region.clusters) > 1]


def from_pulumi() -> StackConfig:
    """Read and validate `thanos:config` of the current Pulumi stack."""
    import pulumi

    warnings: list[str] = []
    stack = load(pulumi.Config().get_object(CONFIG_KEY), source=f"Pulumi.{pulumi.get_stack()}.yaml thanos:config",
                 warnings=warnings)
    for warning in warnings:
        pulumi.log.warn(warning)
    return stack


__all__ = ["ConfigError", "StackConfig", "RegionSpec", "ClusterSpec", "load", "from_pulumi", "replica_bucket_name",
           "key_path"]
