"""Provider conformance: check a recorded plan against the installed provider SDKs' own input types.

The mock engine accepts any property name inside a dict input; the real provider rejects it or silently ignores it.
This walks every recorded resource's inputs through the SDK's `*Args` input types (wire names from the
`pulumi.getter(name=...)` metadata, recursively through nested types, lists and maps) and reports unknown or
missing required properties, deprecated resources and properties, values outside the SDK's enums and literals, and
every custom resource or invoke that would go to a default provider (every stack disables them).
"""

import enum
import functools
import importlib
import inspect
import json
import re
import sys
import typing
from collections import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import Plan, Resource

PACKAGES = {"kubernetes": "pulumi_kubernetes", "aws": "pulumi_aws", "gcp": "pulumi_gcp",
            "azure-native": "pulumi_azure_native", "random": "pulumi_random", "tls": "pulumi_tls"}
"""Pulumi package name -> Python SDK module."""

_REGISTRY = re.compile(r'resource_modules="""(.*?)"""', re.S)


@dataclass
class Report:
    """What a conformance check found, and how much it looked at."""

    problems: list[str] = field(default_factory=list)
    resources: int = 0
    properties: int = 0
    invokes: int = 0


@dataclass(frozen=True)
class Property:
    """One input property of an SDK input type."""

    wire: str
    annotation: Any
    scope: dict[str, Any]
    required: bool
    deprecated: bool


@functools.cache
def _registry(package: str) -> dict[str, tuple[str, str]]:
    """type token -> (module, class name), from the resource module table the SDK registers at import."""
    module = importlib.import_module(PACKAGES[package])
    source = inspect.getsource(module)
    match = _REGISTRY.search(source)
    table: dict[str, tuple[str, str]] = {}
    for entry in json.loads(match.group(1)) if match else []:
        for token, name in entry.get("classes", {}).items():
            table[token] = (entry["fqn"], name)
    return table


def resource_class(token: str) -> type | None:
    """The SDK class of a resource type token (providers included), or None when the SDK is not installed."""
    if token.startswith("pulumi:providers:"):
        package = token.rsplit(":", 1)[1]
        if package not in PACKAGES:
            return None
        return importlib.import_module(PACKAGES[package]).Provider
    package = token.split(":", 1)[0]
    if package not in PACKAGES:
        return None
    found = _registry(package).get(token)
    if not found:
        return None
    return getattr(importlib.import_module(found[0]), found[1])


def args_class(cls: type) -> type | None:
    """The input type of a resource class (`DeploymentInitArgs` in pulumi-kubernetes, `BucketArgs` elsewhere)."""
    module = sys.modules[cls.__module__]
    for name in (f"{cls.__name__}InitArgs", f"{cls.__name__}Args"):
        if isinstance(getattr(module, name, None), type):
            return getattr(module, name)
    return None


@functools.cache
def resource_deprecated(cls: type) -> bool:
    """True when the SDK warns that the resource itself is deprecated."""
    return f'pulumi.log.warn("""{cls.__name__} is deprecated' in inspect.getsource(cls)


@functools.cache
def properties(cls: type) -> dict[str, Property]:
    """Wire name -> Property of an SDK input type (empty for types that are not input types)."""
    found: dict[str, Property] = {}
    for _, member in inspect.getmembers(cls, lambda m: isinstance(m, property)):
        getter = member.fget
        wire = getattr(getter, "_pulumi_name", None)
        if wire is None:
            continue
        annotation = getter.__annotations__.get("return", Any)
        scope = vars(sys.modules[getter.__module__])
        found[wire] = Property(wire, annotation, scope, required=not _optional(annotation),
                               deprecated=hasattr(getter, "_pulumi_deprecated_callable"))
    return found


def _optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(annotation)


@dataclass(frozen=True)
class ListOf:
    """A list input whose elements may be any of `items`."""

    items: tuple[Any, ...]


@dataclass(frozen=True)
class MapOf:
    """A map input (string keys) whose values may be any of `items`."""

    items: tuple[Any, ...]


def candidates(annotation: Any, scope: dict[str, Any]) -> list[Any]:
    """The concrete types an input annotation allows: Input/Output/Awaitable wrappers and None removed, forward
    references evaluated in the SDK module that wrote them, list and map element types resolved the same way."""
    if isinstance(annotation, str):
        annotation = typing.ForwardRef(annotation)
    if isinstance(annotation, typing.ForwardRef):
        text = annotation.__forward_arg__
        if text.startswith("Output["):
            return []
        try:
            annotation = eval(text, scope)  # noqa: S307 (SDK annotations, evaluated where they were written)
        except Exception:  # a name the SDK module does not import: not judged
            return [Any]
        return candidates(annotation, scope)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:
        return [c for arg in args for c in candidates(arg, scope)]
    if origin is abc.Awaitable or annotation is type(None):
        return []
    if origin in (abc.Sequence, list):
        return [ListOf(tuple(candidates(args[0], scope)) if args else (Any,))]
    if origin in (abc.Mapping, dict):
        return [MapOf(tuple(candidates(args[1], scope)) if len(args) == 2 else (Any,))]
    return [annotation]


def _input_type(kind: Any) -> bool:
    return isinstance(kind, type) and bool(properties(kind))


def _is_enum(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, enum.Enum)


def _names(kinds: list[Any]) -> str:
    return " or ".join(sorted({getattr(k, "__name__", None) or type(k).__name__ for k in kinds}))


class Walker:
    """Walks recorded values along the SDK's types, collecting problems into a report."""

    def __init__(self, report: Report):
        self.report = report

    def object(self, value: dict[str, Any], kind: type, path: str, parse_json: bool = False,
               ignore: tuple[str, ...] = ()) -> None:
        """An object of an input type: every key known, every required key present, no deprecated key."""
        props = properties(kind)
        for key, item in value.items():
            self.report.properties += 1
            prop = props.get(key)
            if prop is None:
                if key not in ignore:
                    self.report.problems.append(f"{path}.{key}: no such property in {kind.__name__} "
                                                f"(known: {', '.join(sorted(props)) or 'none'})")
                continue
            if prop.deprecated:
                self.report.problems.append(f"{path}.{key}: deprecated in the SDK")
            self.value(item, candidates(prop.annotation, prop.scope), f"{path}.{key}", parse_json)
        for wire, prop in props.items():
            if prop.required and wire not in value:
                self.report.problems.append(f"{path}.{wire}: required by {kind.__name__} but missing")

    def value(self, value: Any, kinds: list[Any], path: str, parse_json: bool = False) -> None:
        """Any value against the types its property allows."""
        if value is None or not kinds or Any in kinds:
            return
        if parse_json and isinstance(value, str) and str not in kinds:
            try:  # provider resources carry their non-string inputs as JSON text
                value = json.loads(value)
            except ValueError:
                pass
        if isinstance(value, dict):
            typed = [k for k in kinds if _input_type(k)]
            maps = [k for k in kinds if isinstance(k, MapOf)]
            if typed:
                self.object(value, typed[0], path)
            elif maps:
                for key, item in value.items():
                    self.value(item, list(maps[0].items), f"{path}[{key!r}]")
            elif dict not in kinds and object not in kinds:
                self.report.problems.append(f"{path}: an object where the SDK expects {_names(kinds)}")
        elif isinstance(value, list):
            lists = [k for k in kinds if isinstance(k, ListOf)]
            if lists:
                for i, item in enumerate(value):
                    self.value(item, list(lists[0].items), f"{path}[{i}]")
            elif list not in kinds:
                self.report.problems.append(f"{path}: a list where the SDK expects {_names(kinds)}")
        elif isinstance(value, str):
            self.string(value, kinds, path)
        elif isinstance(value, bool):
            if bool not in kinds:
                self.report.problems.append(f"{path}: a boolean where the SDK expects {_names(kinds)}")
        elif isinstance(value, (int, float)) and not {int, float} & set(kinds):
            self.report.problems.append(f"{path}: a number where the SDK expects {_names(kinds)}")

    def string(self, value: str, kinds: list[Any], path: str) -> None:
        """A string: inside the SDK's literals and enums where it has them."""
        literals = [a for k in kinds if typing.get_origin(k) is typing.Literal for a in typing.get_args(k)]
        enums = [k for k in kinds if _is_enum(k)]
        if literals and value not in literals:
            self.report.problems.append(f"{path}: {value!r} is not one of {literals}")
        elif enums and not any(value in {m.value for m in e} for e in enums):
            allowed = sorted({str(m.value) for e in enums for m in e})
            self.report.problems.append(f"{path}: {value!r} is not a value of {enums[0].__name__} {allowed}")
        elif not literals and not enums and str not in kinds:
            self.report.problems.append(f"{path}: a string where the SDK expects {_names(kinds)}")


SCHEMAS = Path(__file__).resolve().parent.parent / "reference" / "schemas"


def check_custom_object(resource: Resource, report: Report) -> bool:
    """A Kubernetes custom resource (Gateway, HTTPRoute, cert-manager) against its CRD's JSON Schema, which rejects
    misspelled fields; False when the type is not a Kubernetes custom resource we have a schema for."""
    _, api_version, kind = resource.type.split(":", 2)
    schema_file = SCHEMAS / f"{kind.lower()}-{api_version.rsplit('/', 1)[-1]}.json"
    if not resource.type.startswith("kubernetes:") or "." not in api_version or not schema_file.is_file():
        return False
    import jsonschema

    validator = jsonschema.Draft7Validator(json.loads(schema_file.read_text()))
    for error in sorted(validator.iter_errors(resource.inputs), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path)
        report.problems.append(f"{resource.urn}.{path}: {error.message[:300]}")
    report.resources += 1
    return True


def check_resource(resource: Resource, report: Report) -> None:
    """Check one recorded custom resource against its SDK input type (a Kubernetes custom resource against its
    CRD schema)."""
    if check_custom_object(resource, report):
        return
    cls = resource_class(resource.type)
    if cls is None:
        report.problems.append(f"{resource.urn}: type {resource.type} is not in any installed provider SDK")
        return
    report.resources += 1
    if resource_deprecated(cls):
        report.problems.append(f"{resource.urn}: {resource.type} is deprecated in the SDK")
    kind = args_class(cls)
    if kind is None:
        report.problems.append(f"{resource.urn}: no input type found for {cls.__name__}")
        return
    is_provider = resource.type.startswith("pulumi:providers:")
    # The engine adds the plugin version to provider inputs; it is not an SDK argument.
    Walker(report).object(resource.inputs, kind, resource.urn, parse_json=is_provider,
                          ignore=("version",) if is_provider else ())


def check_plan(plan: Plan) -> Report:
    """Every custom resource and invoke of the plan against the installed SDKs."""
    report = Report()
    for resource in plan.resources:
        if not resource.custom or resource.type in ("pulumi:pulumi:StackReference",):
            continue
        if not resource.type.startswith("pulumi:providers:") and not resource.provider:
            report.problems.append(f"{resource.urn}: no explicit provider (default providers are disabled)")
        check_resource(resource, report)
    for invoke in plan.invokes:
        report.invokes += 1
        if not invoke.provider:
            report.problems.append(f"invoke {invoke.token}: no explicit provider (default providers are disabled)")
    return report
