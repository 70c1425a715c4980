"""The strict base model and the value types every spec shares (durations, quantities, names)."""

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION_RE = re.compile(r"^(\d+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART_RE = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")

_MEMORY_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
                 "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
_MEMORY_RE = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_CPU_RE = re.compile(r"^(\d+(?:\.\d+)?)(m)?$")
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CRON_RE = re.compile(r"^(\S+\s+){4}\S+$")


def duration_seconds(value: str) -> float:
    """Seconds in a Prometheus/Thanos duration such as `30d`, `1h30m` or `0d` (the `y` is 365 days)."""
    if not _DURATION_RE.match(value):
        raise ValueError(f"{value!r} is not a duration: use a number and a unit (ms, s, m, h, d, w, y), e.g. 30d or 1h30m")
    return sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART_RE.findall(value))


def memory_bytes(value: str) -> int:
    """Bytes in a Kubernetes memory quantity such as `512Mi` or `2Gi`."""
    match = _MEMORY_RE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a memory quantity: use e.g. 512Mi or 2Gi")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""])


def cpu_millicores(value: str) -> int:
    """Millicores in a Kubernetes CPU quantity such as `250m` or `2`."""
    match = _CPU_RE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a CPU quantity: use e.g. 250m or 2")
    number = float(match.group(1))
    return int(number if match.group(2) else number * 1000)


def _check_duration(value: str) -> str:
    duration_seconds(value)
    return value


def _check_memory(value: str) -> str:
    memory_bytes(value)
    return value


def _check_cpu(value: str) -> str:
    cpu_millicores(value)
    return value


def _check_dns_label(value: str) -> str:
    if len(value) > 40 or not _DNS_LABEL_RE.match(value):
        raise ValueError(f"{value!r} must be lower-case letters, digits and '-', at most 40 characters")
    return value


def _check_cron(value: str) -> str:
    if not _CRON_RE.match(value):
        raise ValueError(f"{value!r} is not a cron schedule: five fields (minute hour day month weekday), e.g. 23 3 * * *")
    return value


def _schema(title: str, pattern: str, example: str) -> WithJsonSchema:
    """The JSON Schema of a validated string type (for editors; the validator stays the authority)."""
    return WithJsonSchema({"type": "string", "title": title, "pattern": pattern, "examples": [example]})


Duration = Annotated[str, AfterValidator(_check_duration), _schema("duration", _DURATION_RE.pattern, "30d")]
"""A Prometheus/Thanos duration string: `30d`, `2h`, `1h30m`, `0d` (0 means forever for retention)."""
Memory = Annotated[str, AfterValidator(_check_memory), _schema("quantity", _MEMORY_RE.pattern, "2Gi")]
"""A Kubernetes memory quantity: `512Mi`, `2Gi`."""
Cpu = Annotated[str, AfterValidator(_check_cpu), _schema("cpu", _CPU_RE.pattern, "250m")]
"""A Kubernetes CPU quantity: `250m`, `2`."""
Cron = Annotated[str, AfterValidator(_check_cron), _schema("cron", _CRON_RE.pattern, "23 3 * * *")]
"""A Kubernetes CronJob schedule: five fields, `23 3 * * *`."""
Name = Annotated[str, AfterValidator(_check_dns_label), _schema("name", _DNS_LABEL_RE.pattern, "chicago")]
"""A DNS-label-safe name (regions, clusters): it ends up in resource and Kubernetes names."""


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable, YAML keys are kebab-case."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=_kebab,
                              populate_by_name=True, validate_default=True, use_attribute_docstrings=True)


__all__ = ["StrictModel", "Duration", "Memory", "Cpu", "Cron", "Name", "duration_seconds", "memory_bytes",
           "cpu_millicores"]
