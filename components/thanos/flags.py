"""The pinned Thanos release's flag table: every flag we emit is checked against it when the args are built."""

import json
from functools import lru_cache
from pathlib import Path

FLAG_TABLE = Path(__file__).resolve().parents[2] / "reference" / "thanos-v0.42.4-flags.json"


@lru_cache(maxsize=1)
def _commands() -> dict[str, dict]:
    return json.loads(FLAG_TABLE.read_text())["commands"]


def known_flags(command: str) -> dict[str, dict]:
    """Every flag `thanos <command>` accepts (documented and hidden), by name without dashes."""
    entry = _commands()[command]
    return {**entry.get("flags", {}), **entry.get("hidden_flags", {})}


def flag_problem(command: str, arg: str) -> str | None:
    """Why `arg` is not a valid, non-deprecated flag of `thanos <command>`, or None when it is."""
    if not arg.startswith("--"):
        return f"{arg!r} is not a --flag"
    name = arg[2:].split("=", 1)[0]
    flags = known_flags(command)
    spec = flags.get(name)
    if spec is None and name.startswith("no-") and flags.get(name[3:], {}).get("negatable"):
        spec = flags[name[3:]]
    if spec is None:
        return f"thanos {command} has no flag --{name} in v0.42.4"
    if spec.get("deprecated"):
        return f"thanos {command} --{name} is deprecated in v0.42.4"
    if spec.get("value") and "=" not in arg:
        return f"thanos {command} --{name} takes a value (--{name}=...)"
    if not spec.get("value") and "=" in arg:
        return f"thanos {command} --{name} is a switch and takes no value"
    allowed = spec.get("allowed")
    if allowed and arg.split("=", 1)[1] not in allowed:
        return f"thanos {command} --{name} must be one of {', '.join(allowed)}"
    return None


def thanos_args(command: str, flags: list[str]) -> list[str]:
    """`[*command words, *flags]` after checking each flag against the table; raises ValueError naming the bad ones."""
    problems = [p for p in (flag_problem(command, f) for f in flags) if p]
    if problems:
        raise ValueError("; ".join(problems))
    return [*command.split(), *flags]
