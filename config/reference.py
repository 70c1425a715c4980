"""The configuration reference, generated from the models so it cannot drift: docs/configuration.md's table of every
key and a JSON Schema of the stack file (editor completion through a yaml-language-server modeline).

    python -m config.reference          write docs/configuration.md's table and config/stack.schema.json
    python -m config.reference --check  exit 1 when either differs from the models
"""

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, WithJsonSchema
from pydantic.fields import FieldInfo

from .stack import StackConfig
from .thanos import Resources

COLLAPSED = {Resources: "resources: requests/limits of cpu and memory"}
"""Sections shown as one row: they repeat under every component and mean the same everywhere."""

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DOC = ROOT / "docs" / "configuration.md"
SCHEMA = Path(__file__).resolve().parent / "stack.schema.json"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The config models inside an annotation (a model, a list of them, an optional one or a union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _provider(model: type[BaseModel]) -> str:
    """The tag of one variant of the storage union (its `provider: Literal[...]`)."""
    return typing.get_args(model.model_fields["provider"].annotation)[0]


def type_name(field: FieldInfo) -> str:
    """A short type for the table: duration, quantity, name, one of ..., list of ..., a section."""
    for item in field.metadata:
        if isinstance(item, WithJsonSchema) and item.json_schema:
            return str(item.json_schema["title"])
    return _annotation_name(field.annotation)


def _annotation_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        titles = [m.json_schema["title"] for m in annotation.__metadata__
                  if isinstance(m, WithJsonSchema) and m.json_schema]
        return str(titles[0]) if titles else _annotation_name(args[0])
    if annotation in COLLAPSED:
        return COLLAPSED[annotation]
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        variants = _models(annotation)
        if len(variants) > 1:
            return "by provider: " + ", ".join(_provider(v) for v in variants)
        return " or ".join(_annotation_name(a) for a in args if a is not type(None))
    if origin in (list, tuple):
        inner = _annotation_name(args[0]) if args else "value"
        return f"list of {inner}s" if origin is list and inner == "section" else (
            f"list of {inner}" if origin is list else f"pair of {inner}")
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return {str: "string", int: "integer", bool: "boolean", float: "number"}.get(annotation, str(annotation))


def default_text(field: FieldInfo) -> str:
    """The default as a user writes it, `required`, or `see below` for a section with its own defaults."""
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.get_default(call_default_factory=True, validated_data={})
        if isinstance(value, Resources):
            limits = ", ".join(f"{k} {v}" for k, v in value.requests.model_dump(exclude_none=True).items())
            return f"requests {limits}; limit memory {value.limits.memory}"
        if isinstance(value, BaseModel):
            return "see below"
        return json.dumps(value) if value not in ([], {}) else "none"
    if field.default is None:
        return "none"
    if isinstance(field.default, bool):
        return str(field.default).lower()
    return str(field.default)


def rows(model: type[BaseModel] = StackConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) for every key under `model`, sections followed by their keys."""
    found = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        meaning = " ".join((field.description or "").split())
        nested = [m for m in _models(field.annotation) if m not in COLLAPSED]
        is_list = typing.get_origin(field.annotation) is list or any(
            typing.get_origin(a) is list for a in typing.get_args(field.annotation))
        found.append((key, type_name(field), default_text(field), meaning))
        if len(nested) > 1:  # a union on provider: one block of keys per variant
            for variant in nested:
                tag = _provider(variant)
                found += [(k, t, d, m) for k, t, d, m in rows(variant, f"{key}({tag}).") if not k.endswith(".provider")]
        elif nested:
            found += rows(nested[0], f"{key}[]." if is_list else f"{key}.")
    return found


def markdown_table() -> str:
    """The configuration table of docs/configuration.md."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{key}` | {cell(kind)} | {cell(default)} | {cell(meaning)} |" for key, kind, default, meaning in rows()]
    return "\n".join(lines)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a `Pulumi.<stack>.yaml` file of this project."""
    config = StackConfig.model_json_schema(by_alias=True)
    defs = config.pop("$defs")
    defs["StackConfig"] = config
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://thanos-platform.invalid/stack.schema.json",
        "title": "Pulumi stack file of the Thanos platform",
        "description": "Generated from config/*.py by `python -m config.reference`; do not edit by hand.",
        "type": "object",
        "properties": {
            "secretsprovider": {"type": "string"}, "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
            "config": {
                "type": "object",
                "properties": {
                    "thanos:config": {"$ref": "#/$defs/StackConfig"},
                    "pulumi:disable-default-providers": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["thanos:config"],
            },
        },
        "required": ["config"],
        "$defs": defs,
    }


def with_table(text: str) -> str:
    """The reference page's text with the generated table between its markers."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


def schema_text() -> str:
    """The schema file's exact content."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    page = REFERENCE_DOC.read_text()
    if "--check" in argv:
        stale = [p.name for p, want in ((REFERENCE_DOC, with_table(page)), (SCHEMA, schema_text()))
                 if not p.is_file() or p.read_text() != want]
        if stale:
            print(f"out of date with config/*.py: {', '.join(stale)}; run python -m config.reference", file=sys.stderr)
            return 1
        return 0
    REFERENCE_DOC.write_text(with_table(page))
    SCHEMA.write_text(schema_text())
    print(f"wrote the configuration table of {REFERENCE_DOC.relative_to(ROOT)} ({len(rows())} keys) and {SCHEMA.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
