"""Stack configuration: the `thanos:config` key, validated in one call, every problem reported with its key path."""

import copy
import difflib
import re
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


def _reference_path(loc: tuple[Any, ...]) -> str:
    """`('regions', 1, 'storage', 'aws')` -> `regions[].storage(aws)`, the way the config reference names keys."""
    path = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += "[]"
        elif part in STORAGE_PROVIDERS and i > 0 and loc[i - 1] == "storage":
            path += f"({part})"
        else:
            path += f".{part}" if path else str(part)
    return path


def _kebab(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", key).replace("_", "-").lower()


def suggestion(loc: tuple[Any, ...]) -> str:
    """For an unknown key: the key allowed at that place it most resembles (`storageSize` -> `storage-size`)."""
    from .reference import rows  # the reference walks the whole model: only an unknown key pays for it

    parent, key = _reference_path(loc[:-1]), str(loc[-1])
    prefix = f"{parent}." if parent else ""
    allowed = sorted({row[0][len(prefix):].split(".")[0].split("[")[0].split("(")[0]
                      for row in rows() if row[0].startswith(prefix)})
    close = difflib.get_close_matches(_kebab(key), allowed, n=1, cutoff=0.6)
    return close[0] if close else ""


def _message(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        # pydantic names the Python class here ("a valid dictionary or instance of StoreSpec"): say it in YAML terms.
        message = "must be a mapping of keys (key: value)"
        if isinstance(error.get("input"), list):
            return f"{message}, not a list"
    if error["type"] == "extra_forbidden":
        close = suggestion(tuple(error["loc"]))
        return f"unknown key: did you mean {close}?" if close else "unknown key (check the spelling; keys are kebab-case)"
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
        problems = [(key_path(e["loc"]), _message(e)) for e in err.errors()]
        bad = [path for path, _ in problems]
        problems += [(path, message) for path, message in _cross_check_without(raw, err.errors())
                     if not any(path == b or path.startswith((f"{b}.", f"{b}[")) for b in bad)]
        raise ConfigError(problems, source) from None
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


def _drop(raw: Any, error: ErrorDetails) -> bool:
    """Remove the value an error is about from `raw` (its default takes its place); False when that cannot be done
    without changing what the rest of the stack means: a missing key, a list item, a whole mapping refused by a rule of
    its own."""
    loc = [part for i, part in enumerate(error["loc"])
           if not (part in STORAGE_PROVIDERS and i > 0 and error["loc"][i - 1] == "storage")]
    if not loc or error["type"] == "missing" or isinstance(loc[-1], int):
        return False
    parent = raw
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
    if not isinstance(parent, dict) or loc[-1] not in parent:
        return False
    if isinstance(parent[loc[-1]], (dict, list)) and error["type"] != "extra_forbidden":
        return False
    del parent[loc[-1]]
    return True


def _cross_check_without(raw: Any, errors: list[ErrorDetails]) -> list[tuple[str, str]]:
    """The cross-field problems of the stack with its bad values dropped, when it then builds: a bad duration must not
    hide a bad replication destination until the next run. None found when it does not build (see `_drop`)."""
    trimmed = copy.deepcopy(raw)
    for _ in range(3):  # dropping a value can reveal another error (a sibling rule that read it)
        if not all(_drop(trimmed, e) for e in errors):
            return []
        try:
            return cross_check(StackConfig.model_validate(trimmed))
        except ValidationError as err:
            errors = err.errors()
        except ValueError:
            return []
    return []


def shared_bucket_notes(stack: StackConfig) -> list[str]:
    """A region's clusters write its one bucket, blocks at its root: no grant tells one cluster's blocks from
    another's, so a writer identity of one can overwrite the others' (docs/dr.md, "What one writer can damage")."""
    return [f"storage: regions[{i}].clusters {', '.join(c.name for c in region.clusters)} write one bucket: a writer "
            "identity of one can overwrite the blocks of the others (docs/dr.md, \"What one writer can damage\")"
            for i, region in enumerate(stack.regions) if len(region.clusters) > 1]


_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_MISFIT = "does not fit thanos:config there (below a value that is no mapping or list, or past a list's end)"


def _set_at(raw: Any, parts: list[str | int], value: Any) -> str:
    """Set `value` at the key path `parts` of `raw`, creating the mappings and lists on the way (a list index may be
    its length: a new item); return why it cannot, or ""."""
    node = raw
    for part, following in zip(parts[:-1], parts[1:], strict=True):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(part, str) and isinstance(node, dict):
            node = node.setdefault(part, empty)
        elif isinstance(part, int) and isinstance(node, list) and part <= len(node):
            if part == len(node):
                node.append(empty)
            node = node[part]
        else:
            return _MISFIT
    last = parts[-1]
    if isinstance(last, str) and isinstance(node, dict) and last not in node:
        node[last] = value
    elif isinstance(last, int) and isinstance(node, list) and last == len(node):
        node.append(value)
    elif (isinstance(last, str) and isinstance(node, dict)) or (isinstance(last, int) and isinstance(node, list)
                                                                 and last < len(node)):
        return "is set twice: in thanos:config and as its own key"
    else:
        return _MISFIT
    return ""


def fold_path_keys(stack_config: dict[str, Any], project: str = "thanos") -> Any:
    """The raw `thanos:config` of a stack's config map, with each `thanos:config.<path>` key set at that path as
    `pulumi config set --path` would have set it: `pulumi new` writes the template's answers that way (a template can
    only prompt for top-level keys with string values). None when the stack has neither. A path that `thanos:config`
    already sets, or that does not fit its shape, is a ConfigError naming the key."""
    root_key = f"{project}:{CONFIG_KEY}"
    raw = copy.deepcopy(stack_config.get(root_key))
    problems: list[tuple[str, str]] = []
    for key in sorted(k for k in stack_config if k.startswith(f"{root_key}.")):
        path = key.removeprefix(f"{root_key}.")
        parts: list[str | int] = [int(index) if index else name for index, name in _PATH_PART.findall(path)]
        if "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".") != path or not parts:
            problems.append((path, f"{key} is not a key path (like regions[0].clusters[0].name)"))
            continue
        raw = {} if raw is None else raw
        problem = _set_at(raw, parts, stack_config[key])
        if problem:
            problems.append((path, f"{key} {problem}; keep one (pulumi config rm '{key}')"
                             if "twice" in problem else f"{key} {problem}"))
    if problems:
        raise ConfigError(problems, root_key)
    return raw


def from_pulumi() -> StackConfig:
    """Read and validate `thanos:config` of the current Pulumi stack (and its `thanos:config.<path>` keys)."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env

    settings = pulumi.Config()
    prefix = f"{pulumi.get_project()}:{CONFIG_KEY}."
    path_keys = {key: settings.get(key.split(":", 1)[1]) for key in {*CONFIG.get(), *get_config_env()}
                 if key.startswith(prefix)}
    raw = fold_path_keys({f"{pulumi.get_project()}:{CONFIG_KEY}": settings.get_object(CONFIG_KEY), **path_keys},
                         pulumi.get_project())
    warnings: list[str] = []
    stack = load(raw, source=f"Pulumi.{pulumi.get_stack()}.yaml thanos:config", warnings=warnings)
    for warning in warnings:
        pulumi.log.warn(warning)
    return stack


__all__ = ["ConfigError", "StackConfig", "RegionSpec", "ClusterSpec", "load", "from_pulumi", "fold_path_keys",
           "replica_bucket_name", "key_path"]
