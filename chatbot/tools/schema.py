"""Argument schemas: checking what an owner enters, the simple-field form, the model's args.

An action's arguments are a JSON Schema object. Owners edit simple ones as a list of fields
(name, type, description, required) and anything else as raw JSON; both end up as the same
schema. The model's arguments are validated against it (jsonschema, Draft 2020-12) before
anything is called: small Llama models do send wrong types and missing fields.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")
FIELD_TYPES = ("string", "number", "integer", "boolean")
MAX_SCHEMA_BYTES = 8 * 1024
MAX_ARGUMENT_BYTES = 16 * 1024


class SchemaProblem(ValueError):
    """The schema (or the arguments) cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str = "string"
    description: str = ""
    required: bool = False


def empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


def check_schema(schema: object) -> dict[str, Any]:
    """The schema if it is a usable JSON Schema for a function's arguments."""
    if not isinstance(schema, dict):
        raise SchemaProblem("The arguments schema must be a JSON object.")
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise SchemaProblem(f"The arguments schema is larger than {MAX_SCHEMA_BYTES} bytes.")
    if schema.get("type") != "object":
        raise SchemaProblem('The arguments schema must have "type": "object".')
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise SchemaProblem('"properties" must be an object.')
    for name in properties:
        if not FIELD_NAME.match(name):
            raise SchemaProblem(f"{name!r} is not a usable argument name (letters, digits, _).")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise SchemaProblem(
            f"The arguments schema is not valid JSON Schema: {exc.message}"
        ) from None
    return schema


def schema_from_fields(fields: list[Field]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for item in fields:
        if not FIELD_NAME.match(item.name):
            raise SchemaProblem(
                f"{item.name!r} is not a usable argument name (letters, digits, _)."
            )
        if item.type not in FIELD_TYPES:
            raise SchemaProblem(f"{item.type!r} is not one of {', '.join(FIELD_TYPES)}.")
        if item.name in properties:
            raise SchemaProblem(f"The argument {item.name!r} is listed twice.")
        prop: dict[str, Any] = {"type": item.type}
        if item.description:
            prop["description"] = item.description
        properties[item.name] = prop
        if item.required:
            required.append(item.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def fields_of(schema: dict[str, Any]) -> list[Field] | None:
    """The schema as simple fields, or None when it uses more than the simple form shows."""
    if set(schema) - {"type", "properties", "required"}:
        return None
    required = set(schema.get("required") or ())
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict) or set(prop) - {"type", "description"}:
            return None
        if prop.get("type") not in FIELD_TYPES:
            return None
        fields.append(Field(name, prop["type"], str(prop.get("description", "")), name in required))
    return fields


def parse_arguments(arguments_json: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The model's arguments as a dict valid for `schema`, or SchemaProblem saying what is
    wrong in words the model can use to try again."""
    if len(arguments_json.encode()) > MAX_ARGUMENT_BYTES:
        raise SchemaProblem("the arguments are too long")
    text = arguments_json.strip() or "{}"
    try:
        arguments = json.loads(text)
    except ValueError:
        raise SchemaProblem("the arguments are not valid JSON") from None
    if not isinstance(arguments, dict):
        raise SchemaProblem("the arguments must be a JSON object")
    errors = sorted(Draft202012Validator(schema).iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.path) or "arguments"
        raise SchemaProblem(f"{where}: {first.message}"[:300])
    return arguments
